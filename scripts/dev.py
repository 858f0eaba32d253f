#!/usr/bin/env python3
"""Set up and run vidloader on a fresh machine with nothing but Python 3.11+ and pip.

    python3 scripts/dev.py demo    # the main job on the embedded demo data
    python3 scripts/dev.py test    # the whole test suite

Creates .venv (if missing), installs the project with its dev and bench extras (again only when
pyproject.toml changed), then runs the job inside it. Standard library only: it runs before anything is
installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".vidloader-installed"


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under whatever python3 the machine has
        sys.exit(f"vidloader needs Python >= 3.11, this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print(f"[dev] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[dev] installing vidloader with its dev and bench extras (first time: a few minutes)", flush=True)
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev,bench]"])
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    jobs = {
        "demo": [
            str(PY),
            str(ROOT / "train_example.py"),
            "--config",
            str(ROOT / "configs" / "demo_cpu.yaml"),
        ],
        "test": [str(PY), "-m", "pytest", "-q", str(ROOT / "tests")],
    }
    if not argv or argv[0] not in jobs:
        print(f"usage: python3 scripts/dev.py {{{'|'.join(jobs)}}} [extra args for the job]", file=sys.stderr)
        return 2
    ensure_env()
    return subprocess.call(jobs[argv[0]] + argv[1:], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
