"""The tree stays lint-, format- and type-clean: ruff and mypy as configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# train_example.py and the modules beside it that it is built from.
TRAIN_SCRIPT = sorted(p.name for p in ROOT.glob("train_*.py"))


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


@pytest.mark.parametrize(
    "args",
    [
        ["check", "src", "tests", "scripts", "benchmarks", "examples", *TRAIN_SCRIPT],
        [
            "format",
            "--check",
            "src",
            "tests",
            "scripts",
            "benchmarks",
            "examples",
            *TRAIN_SCRIPT,
        ],
    ],
)
def test_ruff(args: list[str]) -> None:
    res = subprocess.run([tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


@pytest.mark.slow
def test_mypy_src() -> None:
    res = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
