"""Test fixture: runs the real leoam-kvstore and leoam-compute on unix sockets in a temp dir.

Standard library only, so that the Node test's runner can use it without python3-grpcio.
Environment (set by CTest, see tests/clients/CMakeLists.txt):
  LEOAM_SHARED      shared test data (models/stories260K.gguf, models/stories260K.greedy.jsonl)
  LEOAM_BUILD_DIR   build tree; binaries in $LEOAM_BUILD_DIR/bin
  CI                "true": missing prerequisites fail the test instead of skipping it
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# CTest's SKIP_RETURN_CODE for these tests.
SKIP = 77


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition, message):
    """Missing prerequisite: exit FAIL under CI, SKIP elsewhere."""
    if condition:
        return
    if in_ci():
        print("FAIL (CI=true): " + message, file=sys.stderr)
        sys.exit(1)
    print("SKIP: " + message, file=sys.stderr)
    sys.exit(SKIP)


def shared_path(relative):
    """Path of a shared test file; fails under CI and skips elsewhere when it is missing."""
    shared = os.environ.get("LEOAM_SHARED", "../shared")
    path = os.path.join(shared, relative)
    require(os.path.isfile(path), "shared test data %s not found under %s (set LEOAM_SHARED)" % (relative, shared))
    return path


def binary(name):
    """A built binary; a missing one is a broken build, so this fails (never skips)."""
    path = os.path.join(os.environ.get("LEOAM_BUILD_DIR", "build"), "bin", name)
    if not os.access(path, os.X_OK):
        print("FAIL: %s not built (looked for %s)" % (name, path), file=sys.stderr)
        sys.exit(1)
    return path


def _socket_accepts(path):
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class _Process:
    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def wait_socket(self, path, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before listening:\n%s" %
                                   (self.name, self.proc.returncode, self.log_tail()))
            if _socket_accepts(path):
                return
            time.sleep(0.05)
        raise RuntimeError("%s did not listen on %s within %ss:\n%s" %
                           (self.name, path, timeout_s, self.log_tail()))

    def log_tail(self, max_bytes=4000):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            data = f.read()
        return data[-max_bytes:].decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout_s=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class LeoamServers:
    """leoam-compute serving `model` (+ leoam-kvstore with with_kvstore); `address` is compute's target.

    With the store, compute runs a paged mode (leoam-compute requires one with --kvstore):
    kvstore_compute_args, default --mode=leoam --budget=1.0 (attend to every page: exact) with a small
    --device-budget so that pages really go through the store (128KiB: 32 page slots of stories260K,
    enough for one layer's attention at 256 positions, far fewer than its 5 layers' pages).

    with LeoamServers(model) as servers:
        ... connect to servers.address (unix:///tmp/.../compute.sock) ...
    On a failure inside the block the processes' log tails are printed.
    """

    KVSTORE_COMPUTE_ARGS = ("--mode=leoam", "--budget=1.0", "--device-budget=128KiB")

    def __init__(self, model, with_kvstore=False, compute_args=("--threads=1",), startup_timeout_s=60,
                 kvstore_compute_args=KVSTORE_COMPUTE_ARGS):
        self.model = model
        self.with_kvstore = with_kvstore
        self.compute_args = list(compute_args)
        self.kvstore_compute_args = list(kvstore_compute_args)
        self.startup_timeout_s = startup_timeout_s
        self.dir = None
        self.kvstore = None
        self.compute = None

    @property
    def compute_socket(self):
        return os.path.join(self.dir, "compute.sock")

    @property
    def kvstore_socket(self):
        return os.path.join(self.dir, "kvstore.sock")

    @property
    def address(self):
        return "unix://" + self.compute_socket

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="leoam-clients-")
        if self.with_kvstore:
            self.kvstore = _Process("leoam-kvstore", [
                binary("leoam-kvstore"), "--listen=unix://" + self.kvstore_socket,
                "--data-dir=" + os.path.join(self.dir, "kv"), "--arena-dir=" + self._arena_dir(),
                "--arena-size=64MiB", "--io-threads=2"], os.path.join(self.dir, "kvstore.log"))
            self.kvstore.wait_socket(self.kvstore_socket, self.startup_timeout_s)
        argv = [binary("leoam-compute"), "--model=" + self.model, "--listen=" + self.address]
        if self.with_kvstore:
            argv.append("--kvstore=unix://" + self.kvstore_socket)
            argv += self.kvstore_compute_args
        self.compute = _Process("leoam-compute", argv + self.compute_args,
                                os.path.join(self.dir, "compute.log"))
        self.compute.wait_socket(self.compute_socket, self.startup_timeout_s)
        return self

    def _arena_dir(self):
        # The arena belongs in a tmpfs; fall back to the temp dir where /dev/shm is missing.
        return "/dev/shm" if os.path.isdir("/dev/shm") else self.dir

    def logs(self):
        out = []
        for p in (self.compute, self.kvstore):
            if p is not None:
                out.append("---- %s log (%s) ----\n%s" % (p.name, p.log_path, p.log_tail()))
        return "\n".join(out)

    def stop(self):
        codes = {}
        for p in (self.compute, self.kvstore):
            if p is not None:
                codes[p.name] = p.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return codes

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not SystemExit:
            print(self.logs(), file=sys.stderr)
        self.stop()
