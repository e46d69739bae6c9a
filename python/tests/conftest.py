"""Shared paths and helpers of the Python tests (run by ctest as python.pytest, from scripts/test.sh).

The module under test is the one the build made (PYTHONPATH=build/python, set by ctest). Tests that need ../shared
skip with a message when it is absent and fail when JAGGED_REQUIRE_SHARED=1, as the C++ tests do."""

import os
import subprocess
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("JAGGED_SOURCE_DIR", Path(__file__).resolve().parents[2]))
FIXTURES = SOURCE_DIR / "tests" / "fixtures"
SHARED = SOURCE_DIR.parent / "shared"
STORIES = SHARED / "models" / "stories260K"
CLI = Path(os.environ.get("JAGGED_CLI", SOURCE_DIR / "build" / "jagged"))


def require_path(path):
    """Skips (or fails under JAGGED_REQUIRE_SHARED=1) unless path exists."""
    if Path(path).exists():
        return Path(path)
    message = f"{path} is absent"
    if os.environ.get("JAGGED_REQUIRE_SHARED") == "1":
        pytest.fail(message + " (JAGGED_REQUIRE_SHARED=1)")
    pytest.skip(message)


def run_cli(*args, stdin=""):
    """Runs the built `jagged` binary; returns stdout (the test fails on a non-zero exit)."""
    assert CLI.exists(), f"{CLI} is missing: build the CLI first"
    result = subprocess.run([str(CLI), *map(str, args)], input=stdin, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"jagged {' '.join(map(str, args))} failed: {result.stderr}"
    return result.stdout
