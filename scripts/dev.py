#!/usr/bin/env python3
"""Set up and run vidloader on a fresh machine with nothing but Python 3.11+ and pip.

    python3 scripts/dev.py demo     # the main job on the embedded demo data
    python3 scripts/dev.py test     # the whole test suite
    python3 scripts/dev.py check    # build the environment if needed, then `pip check` and an import smoke test
    python3 scripts/dev.py lock     # regenerate requirements/lock-py3XX.txt from pyproject.toml (same pins)
    python3 scripts/dev.py lock --upgrade --cutoff 2027-01-15   # move the pins to what was published by then
    python3 scripts/dev.py api      # regenerate docs/api.md from the public docstrings (--check: fail if stale)

Every install comes from the lock file for the running Python (`requirements/lock-py311.txt`, ...): every
package pinned exactly, dependencies of dependencies included, installed with `--no-deps` so nothing outside
the lock can slip in. The environment (.venv, or $VIDLOADER_VENV) carries a stamp of the lock, the install recipe
and the Python it was made with; the stamp is written last, so a venv without a matching stamp (an
older lock, another Python, an install that was interrupted) is deleted and built again, never reused.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VIDLOADER_VENV") or ROOT / ".venv")
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".vidloader-stamp.json"
PROJECT_STAMP = VENV / ".vidloader-project"
LOCK_DIR = ROOT / "requirements"
LOCKED_PYTHONS = ("3.11", "3.12")
EXTRAS = ("dev", "bench", "store", "index", "ray")
UV_VERSION = "0.13.9"  # the lock tool, itself pinned: another uv may resolve or format differently
TOOLS = ROOT / ".cache" / f"uv-{UV_VERSION}"
# Modules with compiled parts that the project loads: each must import in a new environment. torchaudio is
# here because its 2.11.1 wheel imported with an OSError against torch 2.11.0 (a symbol torch lacks).
# Bump when the install steps below change, so environments made the old way are rebuilt.
RECIPE = "2"
SMOKE = (
    "torch",
    "torchvision",
    "torchaudio",
    "av",
    "nvidia.dali",
    "nvidia.dali.fn",
    "triton",
    "cv2",
    "decord",
)


def lock_path(version: str | None = None) -> Path:
    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return LOCK_DIR / f"lock-py{version.replace('.', '')}.txt"


def _die(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def _want_stamp() -> dict[str, str]:
    lock = lock_path()
    if platform.system() != "Linux" or platform.machine() != "x86_64" or not lock.exists():
        _die(
            f"no lock file for Python {platform.python_version()} on {platform.system()} {platform.machine()}: "
            f"locked are Python {', '.join(LOCKED_PYTHONS)} on Linux x86_64 ({LOCK_DIR.name}/). Use one of "
            "those, or add the version to LOCKED_PYTHONS in scripts/dev.py and run `python3 scripts/dev.py lock`."
        )
    return {
        "lock": _sha(lock),
        "recipe": RECIPE,
        "python": f"{platform.python_version()} {os.path.realpath(sys.executable)}",
    }


def _env_is_current(want: dict[str, str]) -> bool:
    try:
        have = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return False
    if have != want or not PY.exists():
        return False
    # A stamp over a broken interpreter (a deleted base Python, a venv copied elsewhere) is no environment.
    return subprocess.run([str(PY), "-I", "-c", "import encodings"], capture_output=True).returncode == 0


def _pip(*args: str) -> None:
    cmd = [str(PY), "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        # A machine-wide extra index that lacks a package says so once per package; that is not news.
        if "is ignored: it is neither a file nor a directory" not in line:
            print(line, end="", flush=True)
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


# Free space a new environment needs where it is made and in the temp folder pip unpacks wheels into: the
# locked environment is 6.6 GiB (torch's CUDA libraries most of it). A disk that fills half-way through the
# install leaves a broken folder and pip's "No space left on device" deep in its output (a CI run failed so).
ENV_GIB = 10


def check_space(places: list[Path], *, need_gib: float = ENV_GIB) -> None:
    """Stop, naming the folder and both sizes, where ``places`` lack ``need_gib`` GiB free."""
    for where in places:
        where = next(d for d in (where, *where.parents) if d.exists())  # a venv folder not made yet
        free = shutil.disk_usage(where).free / 2**30
        if free < need_gib:
            _die(
                f"{where} has {free:.1f} GiB free; building the environment needs about {need_gib:.0f} GiB "
                "(free space there, or point VIDLOADER_VENV / TMPDIR at a disk that has it)"
            )


def build_env(want: dict[str, str]) -> None:
    check_space([VENV.parent, Path(tempfile.gettempdir())])
    if VENV.exists():
        print(
            f"[dev] {VENV} does not match the lock, this Python or a finished install: rebuilding", flush=True
        )
        shutil.rmtree(VENV)
    t0 = time.time()
    print(
        f"[dev] creating {VENV} from {lock_path().relative_to(ROOT)} (first time: a few minutes)", flush=True
    )
    venv.EnvBuilder(with_pip=True).create(VENV)
    _pip("install", "-q", "--no-deps", "-r", str(lock_path()))
    install_project()
    smoke_test()
    STAMP.write_text(json.dumps(want, indent=1))
    print(f"[dev] environment ready in {time.time() - t0:.0f} s", flush=True)


def install_project() -> None:
    """The project itself, editable, against the locked setuptools (so its build needs nothing outside the
    lock either). Its dependencies all come from the lock; pyproject.toml only adds entry points and metadata,
    so a change there reinstalls the project (seconds), not the environment."""
    _pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    PROJECT_STAMP.write_text(_project_id())


def _project_id() -> str:
    return f"{_sha(ROOT / 'pyproject.toml')} {ROOT}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def smoke_test() -> None:
    """`pip check`, then import every module whose compiled parts we load, each in a new interpreter."""
    _pip("check")
    for mod in (*SMOKE, "vidloader"):
        res = subprocess.run([str(PY), "-c", f"import {mod}"], capture_output=True, text=True)
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
            _die(f"import smoke test: `import {mod}` failed in {VENV}: {tail}")
    print(f"[dev] pip check and import smoke test passed ({', '.join(SMOKE)}, vidloader)", flush=True)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under whatever python3 the machine has
        sys.exit(f"vidloader needs Python >= 3.11, this is {sys.version.split()[0]}")
    want = _want_stamp()
    if not _env_is_current(want):
        build_env(want)
    elif not PROJECT_STAMP.exists() or PROJECT_STAMP.read_text() != _project_id():
        install_project()


def lock(argv: list[str]) -> int:
    """Regenerate every lock file with a pinned uv; without --upgrade the existing pins are kept."""
    upgrade = "--upgrade" in argv
    cutoff = argv[argv.index("--cutoff") + 1] if "--cutoff" in argv else None
    if upgrade and not cutoff:
        _die("lock --upgrade needs --cutoff YYYY-MM-DD: the date whose releases the new pins come from")
    uv = TOOLS / "bin" / "uv"
    if not uv.exists():
        venv.EnvBuilder(with_pip=True).create(TOOLS)
        subprocess.check_call(
            [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"]
        )
    for version in LOCKED_PYTHONS:
        out = lock_path(version)
        old = out.read_text().splitlines() if out.exists() else []
        date = cutoff or next((ln.split("cutoff ")[1] for ln in old if ln.startswith("# cutoff ")), None)
        if not date:
            _die(f"{out} has no '# cutoff' line: pass --cutoff YYYY-MM-DD")
        with tempfile.TemporaryDirectory() as tmp:
            body = Path(tmp) / "lock.txt"
            body.write_text("\n".join(ln for ln in old if not ln.startswith("#")) + "\n")
            cmd = [str(uv), "pip", "compile", str(ROOT / "pyproject.toml"), "--quiet", "--no-header"]
            cmd += [f"--extra={e}" for e in EXTRAS]
            cmd += ["--python-version", version, "--python-platform", "x86_64-manylinux_2_28"]
            cmd += ["--annotation-style", "line", "--index-url", "https://pypi.org/simple"]
            cmd += [
                "--exclude-newer",
                f"{date}T00:00:00Z",
                "-o",
                str(body),
                *(["--upgrade"] if upgrade else []),
            ]
            subprocess.check_call(cmd, cwd=ROOT)
            header = [
                f"# Every package vidloader installs on Python {version}, Linux x86_64: extras {', '.join(EXTRAS)}.",
                "# Generated from pyproject.toml by `python3 scripts/dev.py lock` (uv pip compile); do not edit.",
                f"# cutoff {date}",
            ]
            out.write_text("\n".join(header) + "\n" + body.read_text().replace(str(ROOT) + "/", ""))
        print(f"[dev] wrote {out.relative_to(ROOT)}", flush=True)
    return 0


def marks_of(name: str) -> str:
    return "slow" if name == "slow" else "not slow"


def run_tests(args: list[str]) -> int:
    """The whole suite: the tests marked slow (mostly waiting on subprocesses, servers and deadlines) and the
    others run as two pytest processes at once, each with its own temporary folder, their reports printed
    one after the other; it fails when either does (also when either collects nothing). With arguments,
    one pytest run of those."""
    base = [str(PY), "-m", "pytest", "-q"]
    if args:
        return subprocess.call(base + args, cwd=ROOT)
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="vidloader-tests-") as tmp, contextlib.ExitStack() as stack:
        runs = {}
        for name in ("slow", "other"):
            marks = marks_of(name)
            log = stack.enter_context(open(Path(tmp) / f"{name}.log", "w+"))
            cmd = [*base, "-m", marks, f"--basetemp={Path(tmp) / name}", str(ROOT / "tests")]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(proc.kill)  # an interrupted run leaves no pytest behind (a no-op once it ended)
            runs[name] = (proc, log)
        for name, (proc, log) in runs.items():
            codes[name] = proc.wait()
            log.seek(0)
            print(f"[dev] tests marked {marks_of(name)} (exit {codes[name]}):", flush=True)
            sys.stdout.write(log.read())
            sys.stdout.flush()
    return max(codes.values())


def main(argv: list[str]) -> int:
    jobs = {
        "demo": [
            str(PY),
            str(ROOT / "train_example.py"),
            "--config",
            str(ROOT / "configs" / "demo_cpu.yaml"),
        ],
        "api": [str(PY), str(ROOT / "scripts" / "api_docs.py")],
    }
    if argv[:1] == ["lock"]:
        return lock(argv[1:])
    if argv[:1] == ["check"]:
        fresh = not _env_is_current(_want_stamp())
        ensure_env()
        if not fresh:  # a new environment was just checked by build_env
            smoke_test()
        return 0
    if argv[:1] == ["test"]:
        ensure_env()
        return run_tests(argv[1:])
    if not argv or argv[0] not in jobs:
        print(
            f"usage: python3 scripts/dev.py {{{'|'.join([*jobs, 'test', 'check', 'lock'])}}} [args]",
            file=sys.stderr,
        )
        return 2
    ensure_env()
    return subprocess.call(jobs[argv[0]] + argv[1:], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
