"""The install is reproducible: exact lock files, an environment that matches them, a stamp that cannot be
fooled by an older or half-built venv, and a GPU check that cannot pass without a GPU."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(version: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / f"lock-py{version.replace('.', '')}.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"not an exact pin: {line!r}"
        pins[_norm(m[1])] = m[2]
    return pins


def _dev_module(monkeypatch: pytest.MonkeyPatch, venv: Path):
    monkeypatch.setenv("VIDLOADER_VENV", str(venv))
    spec = importlib.util.spec_from_file_location("vidloader_dev_script", ROOT / "scripts" / "dev.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_lock_pins_everything_pyproject_asks_for(version: str) -> None:
    pins = _lock(version)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(meta["dependencies"]) + [d for ds in meta["optional-dependencies"].values() for d in ds]
    for dep in wanted:
        name = _norm(re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0])
        assert name in pins, f"{dep!r} is in pyproject.toml but not in the {version} lock: run dev.py lock"
    # The pair that broke a fresh clone: torchaudio 2.11.1 needs a torch symbol torch 2.11.0 lacks.
    assert pins["torch"] == "2.11.0" and pins["torchaudio"] == "2.11.0"
    header = (ROOT / "requirements" / f"lock-py{version.replace('.', '')}.txt").read_text().splitlines()[:3]
    assert any(re.fullmatch(r"# cutoff \d{4}-\d{2}-\d{2}", ln) for ln in header)


def test_running_environment_is_the_lock() -> None:
    """Every locked package is installed at its pinned version here: a venv older than the lock fails."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not (ROOT / "requirements" / f"lock-py{version.replace('.', '')}.txt").exists():
        pytest.skip(f"no lock for Python {version}")
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment made by scripts/dev.py")
    wrong = {}
    for name, pinned in _lock(version).items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = "missing"
        if have != pinned:
            wrong[name] = f"{have} (lock: {pinned})"
    assert not wrong, f"environment differs from the lock: {wrong}"


def test_stamp_refuses_half_built_and_stale_envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "venv"
    dev = _dev_module(monkeypatch, venv)
    want = dev._want_stamp()
    assert set(want) == {"lock", "recipe", "python"}
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    assert not dev._env_is_current(want), "an interrupted install (no stamp yet) must not be reused"
    (venv / ".vidloader-stamp.json").write_text(json.dumps({**want, "lock": "0" * 64}))
    assert not dev._env_is_current(want), "an environment made from another lock must not be reused"
    (venv / ".vidloader-stamp.json").write_text(json.dumps({**want, "python": "3.10.0 /usr/bin/python3.10"}))
    assert not dev._env_is_current(want), "an environment made with another Python must not be reused"
    (venv / ".vidloader-stamp.json").write_text(json.dumps(want))
    assert dev._env_is_current(want)
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(tmp_path / "deleted-python")
    assert not dev._env_is_current(want), "a stamp over a broken interpreter is no environment"


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the no-GPU exit; a GPU machine runs the real check"
)
def test_gpu_check_fails_without_a_gpu() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("gpu_check: FAILED: no CUDA device"), last


def test_an_environment_is_not_started_on_a_disk_without_room(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _dev_module(monkeypatch, tmp_path / "venv")
    free = shutil.disk_usage(tmp_path).free / 2**30
    dev.check_space([tmp_path, tmp_path / "venv" / "not-made"], need_gib=free / 2)  # room: nothing happens
    with pytest.raises(SystemExit) as stopped:
        dev.check_space([tmp_path], need_gib=free + 1024)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "GiB free" in err and f"about {free + 1024:.0f} GiB" in err
