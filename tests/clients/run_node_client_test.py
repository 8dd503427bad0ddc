#!/usr/bin/python3
"""Runs tests/clients/node_client_test.js against the real leoam-compute + leoam-kvstore.

Exit 77 (skip) when node, client/node/node_modules (scripts/install-deps.sh runs `npm ci`) or the
shared model is missing, except under CI=true (fail).
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import leoam_servers  # noqa: E402

SOURCE_DIR = os.environ.get("LEOAM_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))


def main():
    node = shutil.which("node")
    leoam_servers.require(node is not None, "node is not installed (scripts/install-deps.sh installs it)")
    modules = os.path.join(SOURCE_DIR, "client", "node", "node_modules", "@grpc", "grpc-js")
    leoam_servers.require(os.path.isdir(modules),
                          "%s missing: run `npm ci` in client/node (scripts/install-deps.sh does)" % modules)
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    leoam_servers.require(major >= 18, "node %s is too old (node:test needs >= 18)" % version)
    model = leoam_servers.shared_path("models/stories260K.gguf")
    reference = leoam_servers.shared_path("models/stories260K.greedy.jsonl")
    with leoam_servers.LeoamServers(model) as servers:
        env = dict(os.environ, LEOAM_SERVER=servers.address, LEOAM_REFERENCE=reference,
                   LEOAM_SOURCE_DIR=SOURCE_DIR)
        code = subprocess.run([node, "--test-reporter=spec", os.path.join(HERE, "node_client_test.js")],
                              env=env).returncode
        if code != 0:
            print(servers.logs(), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
