"""Shared fixtures for the tensorbridge tests."""

import gc
import importlib
import os
import pathlib

import pytest

# TensorFlow's C++ logging (oneDNN and CPU feature notices) on import: quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TensorFlow exports its own copy of LLVM to the whole process, and PoCL (the
# OpenCL device some tests use) loaded after it crashes in LLVM's static
# initialisers. Asking for the device loads PoCL first, whatever imports
# TensorFlow later (collection of test_tensorflow.py does). scripts/test-python
# runs the TensorFlow tests in a process of their own as well.
import tensorbridge as _tb  # noqa: E402

_tb.is_available("opencl")


def pytest_configure(config):
    """Stops the run when a module the test command requires is missing, so
    that its tests cannot quietly turn into skips (TB_REQUIRE_MODULES is a
    comma-separated list; scripts/test-python sets it per interpreter)."""
    required = [m for m in os.environ.get("TB_REQUIRE_MODULES", "").split(",") if m]
    missing = []
    for name in required:
        try:
            importlib.import_module(name)
        except Exception as e:  # an ImportError, or a module that fails to load
            missing.append(f"{name} ({type(e).__name__}: {e})")
    if missing:
        pytest.exit("required by TB_REQUIRE_MODULES but not importable: " + ", ".join(missing),
                    returncode=3)


@pytest.fixture
def collect():
    """Runs the garbage collector, so deleter counts are settled when read."""
    def run():
        gc.collect()
    return run


@pytest.fixture(scope="session")
def library_path():
    """The path of libtensorbridge.so for the ctypes and cffi tests:
    $TENSORBRIDGE_LIB (scripts/test-python sets it), else a build's; the test
    skips when there is none."""
    env = os.environ.get("TENSORBRIDGE_LIB")
    if env:
        assert os.path.exists(env), f"TENSORBRIDGE_LIB={env} does not exist"
        return env
    root = pathlib.Path(__file__).resolve().parents[2]
    for folder in ("build-python/lib/src", "build/src"):
        found = sorted((root / folder).glob("libtensorbridge.so*"))
        if found:
            return str(found[0])
    pytest.skip("no libtensorbridge.so: set TENSORBRIDGE_LIB (scripts/test-python does)")
