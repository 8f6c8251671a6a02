"""pyproject.toml declares what the code imports (deptry, configured in [tool.deptry])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# tests/ included; everything else deptry should not read (data, caches, the venv).
NOT_CODE = r"\.venv|\.git|corpus|eval/|docs|data|test-artifacts|\.eval-cache"


def deptry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deptry", ".", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_product_and_bench_imports_equal_the_declared_dependencies() -> None:
    # Every third-party import of the packages and bench/ is declared (bench-only ones in the `bench` extra), no
    # runtime dependency is declared but unused, no dev-only package is imported by product code.
    result = deptry()
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_the_tests_import_is_declared() -> None:
    # Tests may import dev packages (DEP004) and need not use every runtime dependency (DEP002).
    result = deptry("--exclude", NOT_CODE, "--ignore", "DEP002,DEP004")
    assert result.returncode == 0, result.stdout + result.stderr
