"""Shared helpers of the reference tests: locating ../shared and the CTest skip convention."""

import os
import sys

# CTest maps this exit code to "skipped" (SKIP_RETURN_CODE in tests/reference/CMakeLists.txt).
SKIP_RETURN_CODE = 77


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def shared_dir():
    env = os.environ.get("LEOAM_SHARED")
    if env:
        return env
    # Default: ../shared next to the repository (tests/reference/ -> repo root -> ..).
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared"))


def shared_path(relative):
    """Full path of `relative` under the shared dir, or None when it does not exist."""
    p = os.path.join(shared_dir(), relative)
    return p if os.path.exists(p) else None


def missing_shared(relative):
    """Report missing shared data: exit 1 under CI=true, else exit with the skip code."""
    msg = f"shared test data {relative} not found under {shared_dir()} (set LEOAM_SHARED)"
    if in_ci():
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)
    print("SKIP: " + msg)
    sys.exit(SKIP_RETURN_CODE)
