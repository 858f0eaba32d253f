"""Faults that stop a pass with a named error, never a skip, a hang or an orphaned process: a store that
cannot be reached (refused connections, every request failing, the S3 server killed mid-epoch), a script
without a ``__main__`` guard, decode workers that cannot start, and a main process that dies under its
process workers. Figures: docs/soak.md ("Faults that stop a pass")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

import vidloader as vl
from stores import fresh_store
from vidloader import _process_pool
from vidloader._main_guard import importing_main
from vidloader.dataset import _store_health as health
from vidloader.dataset import (
    configure_store,
    store_config,
    textured_frames,
    write_video,
)
from vidloader.loader._workers import DecodePool, run_task

HERE = Path(__file__).resolve().parent
VIDEOS = 16
# What a fault may take before its named error, by the goal ("within a minute").
NAMED_WITHIN_S = 60.0
# How long process workers may outlive their main process ("within a few seconds").
ORPHAN_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class folder of VIDEOS small H.264 files, one distinct object per clip in the store tests."""
    root = tmp_path_factory.mktemp("faults")
    (root / "class0").mkdir()
    for i in range(VIDEOS):
        write_video(root / "class0" / f"v{i:03d}.mp4", textured_frames(24, 64, 96, seed=i), gop=12, bframes=2)
    return root


@pytest.fixture(autouse=True)
def _fresh_store() -> Iterator[None]:
    with fresh_store():
        yield


def child_env() -> dict[str, str]:
    """The environment of a script run here: this checkout's vidloader first on the path."""
    src = str(Path(vl.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}


def test_a_clip_failure_while_its_store_is_down_is_the_stores_error() -> None:
    url = "s3://bucket/videos/a.mp4"
    health.failed(url, endpoint="http://e (s3://bucket)", reason="refused", down=True)

    def fails(path: str) -> None:
        # What FFmpeg makes of a read whose StoreUnavailableError PyAV dropped.
        raise vl.DecodeError(path, "decoding failed (InvalidDataError: Invalid data found)")

    with pytest.raises(vl.StoreUnavailableError, match="refused") as err:
        run_task(fails, url)
    assert isinstance(err.value.__cause__, vl.DecodeError)
    with pytest.raises(vl.DecodeError):
        run_task(fails, "/data/local.mp4")
    with pytest.raises(vl.DecodeError):
        run_task(fails, "s3://other-bucket/a.mp4")


# ---- the S3 server killed mid-epoch ------------------------------------------------------------------------


@pytest.fixture
def s3_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen]:
    """moto's S3 server in a process of its own (tests/stores.py), to be killed by pid."""
    cmd = [sys.executable, str(HERE / "stores.py"), "--root", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = json.loads(proc.stdout.readline())["s3"]
        for k, v in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        fsspec.filesystem("s3").clear_instance_cache()
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        fsspec.filesystem("s3").clear_instance_cache()


@pytest.mark.slow
@pytest.mark.parametrize("worker_type", ["thread", "process"])
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_store_killed_mid_epoch_raises_a_named_error(
    videos: Path, s3_process: subprocess.Popen, worker_type: str, on_error: str
) -> None:
    fs = fsspec.filesystem("s3")
    # A bucket per case: the previous case's decode threads may still be finishing their requests to its
    # dead server, and their failures hold that store's breaker open in this process for its cooldown.
    bucket = f"outage-{worker_type}-{on_error}"
    fs.mkdir(bucket)
    files = sorted((videos / "class0").glob("*.mp4"))
    for p in files:
        fs.put_file(str(p), f"{bucket}/{p.name}")
    ds = vl.VideoDataset.from_paths([f"s3://{bucket}/{p.name}" for p in files], use_cache=False)
    loader = vl.VideoLoader(
        ds, batch_size=2, frames_per_clip=4, num_workers=2, worker_type=worker_type, on_error=on_error
    )  # type: ignore[arg-type]
    delivered, killed, workers = 0, 0.0, []
    with pytest.raises(vl.StoreUnavailableError) as err:
        for batch in loader:
            delivered += len(batch)
            if not killed:
                workers = loader._pool.workers.pids() if worker_type == "process" else []
                s3_process.kill()
                s3_process.wait(timeout=30)
                killed = time.monotonic()
    took = time.monotonic() - killed
    assert took < NAMED_WITHIN_S, f"{took:.1f}s to {err.value}"
    assert err.value.endpoint == f"{os.environ['AWS_ENDPOINT_URL']} (s3://{bucket})"
    assert "EndpointConnectionError" in err.value.reason
    assert 0 < delivered < loader.num_clips
    assert loader.stats["skipped_clips"] == 0  # never a skip
    # The pass shut its workers down.
    assert loader._pool._workers is None
    assert all(not alive(p) for p in workers)


# ---- a script without a __main__ guard ---------------------------------------------------------------------


def test_the_main_process_is_not_importing_main() -> None:
    assert importing_main() is False


@pytest.mark.slow
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_script_without_main_guard_gets_a_config_error(videos: Path, on_error: str) -> None:
    res = subprocess.run(
        [sys.executable, str(HERE / "unguarded_script.py"), str(videos), on_error],
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(),
    )
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("vidloader._errors.ConfigError: worker_type='process' needs a __main__ guard")
    assert 'if __name__ == "__main__":' in last
    assert res.stderr.count("Traceback (most recent call last)") == 1, res.stderr[-3000:]
    assert "worker process died" not in res.stderr and "skipping" not in res.stderr
    assert "clips" not in res.stdout


def _die_while_starting(*_: object) -> None:
    os._exit(3)


@pytest.mark.slow
def test_workers_that_cannot_start_are_a_pool_error_not_skips(
    videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pool runs this in each worker instead of its own initializer (spawned workers import this module).
    monkeypatch.setattr(_process_pool, "start_worker", _die_while_starting)
    ds = vl.VideoDataset.from_paths(sorted((videos / "class0").glob("*.mp4"))[:4], use_cache=False)
    loader = vl.VideoLoader(
        ds, batch_size=2, frames_per_clip=4, num_workers=2, worker_type="process", on_error="skip"
    )
    with pytest.raises(
        vl.WorkerPoolError, match=rf"died while starting.*{_process_pool.STARTUP_DEATHS} times in a row"
    ) as err:
        list(loader)
    assert re.search(r"exit codes \[[^\]]*\b3\b", str(err.value)), str(err.value)
    assert loader.stats["skipped_clips"] == 0
    loader.close()


@pytest.mark.slow
def test_process_workers_read_with_the_main_process_store_config() -> None:
    configure_store(retries=2, request_timeout=7.0, block_size=65536)
    pool = DecodePool(num_workers=1, worker_type="process")
    try:
        got = pool.submit(store_config).result(timeout=600)
    finally:
        pool.close()
    assert got == store_config()


# ---- the main process dies under its process workers -------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "os._exit"])
def test_workers_end_with_their_main_process(videos: Path, how: str) -> None:
    mode = "exit" if how == "os._exit" else "wait"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "orphan_script.py"), str(videos), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    below: list[int] = []
    try:
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline())
        below = report["below"]
        assert len(report["workers"]) == 2 and set(report["workers"]) <= set(below)
        if how == "SIGKILL":
            os.kill(report["main"], signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + ORPHAN_LIMIT_S
        while any(alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in below if alive(p)] == []
        # multiprocessing's resource tracker (gone too, by now) removed the semaphores of the pool's queues
        # and the shared batch buffers the workers wrote into.
        assert any(Path(f).name.startswith(f"vidloader-{report['main']}-") for f in report["shm"])
        assert [f for f in report["shm"] if Path(f).exists()] == []
    finally:
        for p in below:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
