#!/usr/bin/python3
"""Validates docker/compose.yaml with `docker-compose config` (no Docker engine needed) and checks the
resolved configuration: the services, how compute and kvstore share the socket and the arena, the
RocksDB volume, shm sizes, GPU reservation, healthchecks, restart policies. Also checks the image
helper scripts (shell syntax; collect-libs.sh on real binaries) and, when built, runs the health probe
the healthchecks use against a real leoam-kvstore.

Exit 77 (skip) when docker-compose is missing, except under CI=true (fail).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get("LEOAM_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("LEOAM_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
DOCKER_DIR = os.path.join(SOURCE_DIR, "docker")
COMPOSE_FILE = os.path.join(DOCKER_DIR, "compose.yaml")
SKIP = 77

# Variables compose.yaml reads; cleared so that the defaults are what is checked.
COMPOSE_VARS = ["LEOAM_MODEL_DIR", "LEOAM_MODEL_FILE", "LEOAM_MODE", "LEOAM_DEVICE_BUDGET", "LEOAM_MAX_CONCURRENT",
                "LEOAM_PORT", "LEOAM_IMAGE_PREFIX", "LEOAM_TAG", "LEOAM_ARENA_SIZE", "LEOAM_DISK_LIMIT",
                "LEOAM_DURABILITY", "LEOAM_RUN_TMPFS_SIZE", "COMPOSE_PROFILES", "COMPOSE_FILE",
                "COMPOSE_PROJECT_NAME"]


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition, message):
    if condition:
        return
    print(("FAIL (CI=true): " if in_ci() else "SKIP: ") + message, file=sys.stderr)
    sys.exit(1 if in_ci() else SKIP)


def parse_bytes(text):
    """'8GiB', '9g', '1gb', '64mb' -> bytes (binary multiples, as tmpfs and Docker read them)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError("not a size: %r" % text)
    return int(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower())


def read(path):
    with open(path) as f:
        return f.read()


def flag(command, name):
    """Value of --name=value in a command list (None when absent)."""
    values = [c.split("=", 1)[1] for c in command if c.startswith("--%s=" % name)]
    return values[-1] if values else None


def compose_config(*extra, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
    clean.update(env or {})
    out = subprocess.run(["docker-compose", "-f", COMPOSE_FILE] + list(extra) + ["config"],
                         capture_output=True, text=True, env=clean, cwd=SOURCE_DIR, timeout=120)
    if out.returncode != 0:
        raise AssertionError("docker-compose config failed (%d):\n%s" % (out.returncode, out.stderr))
    import yaml  # python3-yaml, a dependency of Debian's docker-compose
    return yaml.safe_load(out.stdout)


def mounts(service):
    """{container path: (source, read_only)} of a service's volumes (short syntax, as config prints it)."""
    result = {}
    for v in service.get("volumes", []):
        parts = v.split(":") if isinstance(v, str) else [v["source"], v["target"], "ro" if v.get("read_only") else "rw"]
        result[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
    return result


class ComposeConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = compose_config()
        cls.services = cls.config["services"]

    def test_services(self):
        self.assertEqual(set(self.services), {"kvstore", "compute", "compute-cpu"})
        # A plain `up` starts kvstore + compute (GPU); compute-cpu only when asked for.
        self.assertNotIn("profiles", self.services["compute"])
        self.assertNotIn("profiles", self.services["kvstore"])
        self.assertEqual(self.services["compute-cpu"]["profiles"], ["cpu"])
        dockerfiles = {"kvstore": "Dockerfile.kvstore", "compute": "Dockerfile.compute",
                       "compute-cpu": "Dockerfile.compute-cpu"}
        for name, dockerfile in dockerfiles.items():
            build = self.services[name]["build"]
            self.assertEqual(os.path.realpath(build["context"]), os.path.realpath(SOURCE_DIR))
            self.assertEqual(build["dockerfile"], "docker/" + dockerfile)
            self.assertTrue(os.path.isfile(os.path.join(DOCKER_DIR, dockerfile)))
        self.assertIn("nvidia/cuda", read(os.path.join(DOCKER_DIR, "Dockerfile.compute")))
        self.assertRegex(read(os.path.join(DOCKER_DIR, "Dockerfile.compute-cpu")), r"FROM debian:12-slim")
        self.assertTrue(os.path.isfile(os.path.join(SOURCE_DIR, ".dockerignore")))

    def test_gpu_reservation_only_on_the_gpu_service(self):
        devices = self.services["compute"]["deploy"]["resources"]["reservations"]["devices"]
        self.assertEqual(len(devices), 1)
        self.assertIn("gpu", devices[0]["capabilities"])
        self.assertEqual(devices[0]["driver"], "nvidia")
        self.assertNotIn("deploy", self.services["compute-cpu"])
        self.assertNotIn("deploy", self.services["kvstore"])

    def test_socket_and_arena_are_shared(self):
        volumes = self.config["volumes"]
        kv = self.services["kvstore"]
        listen = flag(kv["command"], "listen")
        self.assertTrue(listen.startswith("unix://"), listen)
        socket_dir = os.path.dirname(listen[len("unix://"):])
        arena_dir = flag(kv["command"], "arena-dir")
        kv_mounts = mounts(kv)
        self.assertIn(socket_dir, kv_mounts)
        self.assertIn(arena_dir, kv_mounts)
        shared_volume = kv_mounts[arena_dir][0]
        # The arena lives in a tmpfs named volume big enough for it.
        self.assertEqual(volumes[shared_volume]["driver_opts"]["type"], "tmpfs")
        opts = dict(o.split("=", 1) for o in volumes[shared_volume]["driver_opts"]["o"].split(",") if "=" in o)
        self.assertGreater(parse_bytes(opts["size"]), parse_bytes(flag(kv["command"], "arena-size")))
        for name in ("compute", "compute-cpu"):
            with self.subTest(service=name):
                svc = self.services[name]
                m = mounts(svc)
                # Same volume at the same path: the arena path Hello returns opens in compute too.
                self.assertEqual(m.get(arena_dir, (None,))[0], shared_volume)
                self.assertEqual(m.get(socket_dir, (None,))[0], kv_mounts[socket_dir][0])
                self.assertEqual(flag(svc["command"], "kvstore"), listen)
                # Same uid: the arena file is mode 0600.
                self.assertEqual(svc["user"], kv["user"])
                self.assertEqual(svc["depends_on"]["kvstore"]["condition"], "service_healthy")
        self.assertEqual(opts.get("uid"), kv["user"].split(":")[0])

    def test_rocksdb_volume(self):
        kv = self.services["kvstore"]
        data_dir = flag(kv["command"], "data-dir")
        source, read_only = mounts(kv)[data_dir]
        self.assertIn(source, self.config["volumes"])  # a named volume, not the container's layer
        self.assertFalse(read_only)
        self.assertNotIn("driver_opts", self.config["volumes"][source] or {})  # on disk, not tmpfs

    def test_shm_sizes_explicit(self):
        for name, svc in self.services.items():
            with self.subTest(service=name):
                self.assertGreater(parse_bytes(svc["shm_size"]), 0)

    def test_model_mounted_read_only(self):
        for name in ("compute", "compute-cpu"):
            svc = self.services[name]
            model = flag(svc["command"], "model")
            model_dir = os.path.dirname(model)
            source, read_only = mounts(svc)[model_dir]
            self.assertTrue(read_only)
            self.assertEqual(os.path.realpath(source), os.path.realpath(os.path.join(DOCKER_DIR, "models")))

    def test_healthchecks_probe_the_service_address(self):
        kv = self.services["kvstore"]
        self.assertEqual(kv["healthcheck"]["test"][:2], ["CMD", "leoam-health-probe"])
        self.assertEqual(kv["healthcheck"]["test"][2], flag(kv["command"], "listen"))
        for name in ("compute", "compute-cpu"):
            svc = self.services[name]
            test = svc["healthcheck"]["test"]
            self.assertEqual(test[:2], ["CMD", "leoam-health-probe"])
            port = flag(svc["command"], "listen").rsplit(":", 1)[1]
            self.assertEqual(test[2], "localhost:" + port)
            # The port is published on loopback only.
            self.assertTrue(any(p.startswith("127.0.0.1:") and p.split(":")[2].split("/")[0] == port
                                for p in svc["ports"]), svc["ports"])
        for name, svc in self.services.items():
            with self.subTest(service=name):
                hc = svc["healthcheck"]
                for key in ("interval", "timeout", "retries", "start_period"):
                    self.assertIn(key, hc)
                self.assertIn(svc["restart"], ("unless-stopped", "always", "on-failure"))
        # Every image builds the probe (build-in-image.sh) and puts it on PATH.
        script = read(os.path.join(DOCKER_DIR, "build-in-image.sh"))
        self.assertIn("health_probe.cc", script)
        for dockerfile in ("Dockerfile.kvstore", "Dockerfile.compute", "Dockerfile.compute-cpu"):
            text = read(os.path.join(DOCKER_DIR, dockerfile))
            self.assertIn("build-in-image.sh", text)
            self.assertIn("PATH=/opt/leoam/bin", text)

    def test_variables_override_defaults(self):
        config = compose_config(env={"LEOAM_ARENA_SIZE": "2GiB", "LEOAM_RUN_TMPFS_SIZE": "3g",
                                     "LEOAM_MODEL_DIR": "/srv/models", "LEOAM_MODEL_FILE": "m.gguf",
                                     "LEOAM_PORT": "6000"})
        kv = config["services"]["kvstore"]
        self.assertEqual(flag(kv["command"], "arena-size"), "2GiB")
        self.assertIn("size=3g", config["volumes"]["leoam-run"]["driver_opts"]["o"])
        compute = config["services"]["compute"]
        self.assertEqual(flag(compute["command"], "model"), "/models/m.gguf")
        self.assertEqual(mounts(compute)["/models"][0], "/srv/models")
        self.assertTrue(any(p.startswith("127.0.0.1:6000:") for p in compute["ports"]), compute["ports"])

    def test_cpu_profile_resolves(self):
        config = compose_config("--profile", "cpu")
        self.assertIn("compute-cpu", config["services"])


class ImageScriptsTest(unittest.TestCase):
    def test_shell_syntax(self):
        for script in ("build-in-image.sh", "collect-libs.sh"):
            out = subprocess.run(["sh", "-n", os.path.join(DOCKER_DIR, script)], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_dockerfiles_build_targets_this_tree_defines(self):
        # The targets each Dockerfile passes to build-in-image.sh (a trailing "?" = optional) must be
        # CMake targets of this tree, or the image build fails late.
        out = subprocess.run(["ninja", "-C", BUILD_DIR, "-t", "targets", "all"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        known = set(re.findall(r"^([^:\s]+): phony$", out.stdout, re.MULTILINE))
        for dockerfile in ("Dockerfile.kvstore", "Dockerfile.compute", "Dockerfile.compute-cpu"):
            text = read(os.path.join(DOCKER_DIR, dockerfile)).replace("\\\n", " ")
            m = re.search(r"build-in-image\.sh\s+/opt/leoam\s+([^\n]+)", text)
            self.assertIsNotNone(m, dockerfile)
            targets = [t.strip('"') for t in m.group(1).split()]
            self.assertIn("leoam-kvstore" if "kvstore" in dockerfile else "leoam-compute", targets)
            for t in targets:
                if not t.endswith("?"):
                    self.assertIn(t, known, "%s builds %s, which is not a target" % (dockerfile, t))

    def test_collect_libs_copies_what_the_binaries_load(self):
        kvstore = os.path.join(BUILD_DIR, "bin", "leoam-kvstore")
        if not os.access(kvstore, os.X_OK):
            self.fail("leoam-kvstore not built (%s)" % kvstore)
        with tempfile.TemporaryDirectory() as dest:
            out = subprocess.run([os.path.join(DOCKER_DIR, "collect-libs.sh"), dest, kvstore],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            libs = os.listdir(dest)
            self.assertTrue(any(n.startswith("libgrpc++.so") for n in libs), libs)
            self.assertTrue(any(n.startswith("librocksdb.so") for n in libs), libs)
            self.assertFalse(any(n.startswith("libc.so") or n.startswith("ld-linux") for n in libs), libs)


def _socket_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class HealthProbeTest(unittest.TestCase):
    """The probe the healthchecks run, against a real leoam-kvstore: SERVING -> 0, gone -> 1."""

    def test_probe_against_kvstore(self):
        probe = os.path.join(BUILD_DIR, "bin", "leoam-health-probe")
        kvstore = os.path.join(BUILD_DIR, "bin", "leoam-kvstore")
        for binary in (probe, kvstore):
            if not os.access(binary, os.X_OK):
                self.fail("%s not built" % binary)
        with tempfile.TemporaryDirectory(prefix="leoam-docker-test-") as tmp:
            sock = os.path.join(tmp, "kvstore.sock")
            log = open(os.path.join(tmp, "kvstore.log"), "wb")
            arena_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
            proc = subprocess.Popen([kvstore, "--listen=unix://" + sock, "--data-dir=" + os.path.join(tmp, "kv"),
                                     "--arena-dir=" + arena_dir, "--arena-size=16MiB", "--io-threads=1"],
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 60
                while not (os.path.exists(sock) and _socket_accepts(sock)):
                    self.assertIsNone(proc.poll(), "leoam-kvstore exited: " + read(log.name))
                    self.assertLess(time.monotonic(), deadline, "leoam-kvstore did not listen")
                    time.sleep(0.05)
                out = subprocess.run([probe, "unix://" + sock], capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout.strip(), "SERVING")
                # A service the server does not know: not healthy.
                out = subprocess.run([probe, "unix://" + sock, "no.such.Service"], capture_output=True, text=True,
                                     timeout=30)
                self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.close()
            # The store is gone: the probe fails within its timeout.
            out = subprocess.run([probe, "unix://" + sock, "", "500"], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 1)
        # Bad usage.
        self.assertEqual(subprocess.run([probe], capture_output=True).returncode, 2)


def main():
    require(shutil.which("docker-compose") is not None,
            "docker-compose not installed (Debian package docker-compose; scripts/install-deps.sh installs it)")
    try:
        import yaml  # noqa: F401
    except ImportError:
        require(False, "python3-yaml not installed for %s" % sys.executable)
    result = unittest.main(argv=[sys.argv[0]] + sys.argv[1:], exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
