"""A store that cannot be reached is the store's error, never a file's: what counts as unreachable
(refused, DNS, connect timeouts; 5xx or timeouts that the store's root shares; several failing requests in a
row), the circuit breaker per store, one retry budget per request within ``request_timeout``, and the
``StoreUnavailableError`` that ends a pass under every on_error. The S3 server killed mid-epoch:
tests/test_faults.py."""

from __future__ import annotations

import contextlib
import pickle
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import fsspec
import pytest

import vidloader as vl
from stores import FlakyFileSystem, RangeHTTPServer, free_port, fresh_store
from vidloader.dataset import _store_health as health
from vidloader.dataset import (
    clear_store_cache,
    configure_store,
    store_outage,
    store_stats,
    tar_member_url,
    textured_frames,
    write_video,
)
from vidloader.dataset._store import filesystem
from vidloader.dataset._store_retry import classify


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class folder of small H.264 files."""
    root = tmp_path_factory.mktemp("store-health")
    (root / "class0").mkdir()
    for i in range(16):
        write_video(root / "class0" / f"v{i:03d}.mp4", textured_frames(24, 64, 96, seed=i), gop=12, bframes=2)
    return root


@pytest.fixture(autouse=True)
def _fresh_store() -> Iterator[None]:
    with fresh_store():
        yield


def test_store_unavailable_error_is_no_file_error_and_crosses_processes_whole() -> None:
    err = vl.StoreUnavailableError("http://u:pw@10.0.0.9:9000 (s3://bucket)", "stat failed (refused)")
    assert isinstance(err, vl.VidloaderError)
    # Not a VideoError (skip would swallow it) nor an OSError (a decoder's open would make it the file's).
    assert not isinstance(err, (vl.VideoError, OSError))
    assert (
        str(err)
        == "the store at http://***@10.0.0.9:9000 (s3://bucket) is unreachable: stat failed (refused)"
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is vl.StoreUnavailableError
    assert (back.endpoint, back.reason, str(back)) == (err.endpoint, err.reason, str(err))


def test_classify_tells_an_unreachable_store_from_a_bad_file() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert classify(refused) == "unreachable"
    assert classify(socket.gaierror(-2, "Name or service not known")) == "unreachable"
    assert classify(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")) == "unreachable"
    assert classify(botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x")) == "unreachable"
    # fsspec's HTTP filesystem reports a stat that could not connect as FileNotFoundError.
    not_found = FileNotFoundError("http://x/a.mp4")
    not_found.__cause__ = refused
    assert classify(not_found) == "unreachable"
    assert classify(FileNotFoundError("http://x/a.mp4")) == "missing"
    # A connection that was made and then broke, or a slow read: the store is there, worth a retry.
    assert classify(ConnectionResetError(104, "Connection reset by peer")) == "transient"
    assert classify(TimeoutError("read timed out")) == "transient"


def test_breaker_opens_for_the_store_not_the_file() -> None:
    url, other = "s3://bucket/videos/a.mp4", "s3://other/videos/a.mp4"
    member = tar_member_url("s3://bucket/shards/s-000.tar", "videos/b.mp4")
    assert health.failed(url, endpoint="http://e (s3://bucket)", reason="refused", down=True, now=100.0)
    err = store_outage(member, now=105.0)  # a tar member of the same bucket: the same store
    assert isinstance(err, vl.StoreUnavailableError)
    assert err.endpoint == "http://e (s3://bucket)" and err.reason.startswith("refused (while reading s3://")
    assert store_outage(other, now=105.0) is None and store_outage("/data/a.mp4", now=105.0) is None
    with pytest.raises(vl.StoreUnavailableError):
        health.check(url, now=105.0)
    assert store_outage(url, now=100.0 + health.COOLDOWN_S) is None  # requests reach the store again
    health.succeeded(url)
    # Transient failures open it only several requests in a row, with no answer in between.
    for _ in range(2):
        for _ in range(health.TRIP_AFTER - 1):
            assert health.failed(url, endpoint="E", reason="503", down=False, now=200.0) is None
        health.succeeded(url)
    for _ in range(health.TRIP_AFTER - 1):
        health.failed(url, endpoint="E", reason="503", down=False, now=200.0)
    err = health.failed(url, endpoint="E", reason="503", down=False, now=200.0)
    assert err is not None and err.reason.startswith(f"{health.TRIP_AFTER} requests in a row failed")
    clear_store_cache()
    assert store_outage(url, now=200.0) is None


def test_s3_reads_have_one_retry_budget() -> None:
    configure_store(request_timeout=4.0)
    fs, _ = filesystem("s3://bucket/videos/a.mp4")
    assert fs.retries == 1  # s3fs calls botocore once per request
    assert fs.config_kwargs["retries"] == {"total_max_attempts": 1}  # botocore makes one attempt
    assert fs.config_kwargs["connect_timeout"] <= 4.0 and fs.config_kwargs["read_timeout"] <= 4.0
    assert fsspec.filesystem("s3") is not fs  # the user's own S3 filesystem keeps its settings
    http, _ = filesystem("http://127.0.0.1:9/videos/a.mp4")
    timeout = http.client_kwargs["timeout"]  # aiohttp's own: 5 minutes a request
    assert timeout.sock_read == 4.0 and timeout.sock_connect <= 4.0


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers: a hung store."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def test_a_store_that_never_answers_fails_within_request_timeout() -> None:
    configure_store(request_timeout=1.0, backoff=0.01)
    # Each attempt's socket read times out inside request_timeout, not after aiohttp's 5 minutes.
    with silent_server() as url, pytest.raises(vl.StoreUnavailableError) as err:
        vl.probe_video(f"{url}/videos/a.mp4")
    want = rf"the store at {re.escape(url)} is unreachable: stat failed after 1 attempt in .*Timeout"
    assert re.search(rf"{want}.*; a request for {re.escape(url)} itself failed too", str(err.value)), (
        err.value
    )


def test_request_timeout_bounds_the_retries(videos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FlakyFileSystem, "inner_protocol", "file")
    configure_store(retries=1000, backoff=0.02, request_timeout=0.5)
    FlakyFileSystem.queued[:] = [ConnectionResetError(104, "Connection reset by peer")] * 1000
    with pytest.raises(vl.ProbeError, match=r"failed after \d+ attempts in \d+\.\ds") as err:
        vl.probe_video(f"flaky://{videos / 'class0' / 'v000.mp4'}")
    attempts = int(re.findall(r"after (\d+) attempts", str(err.value))[0])
    assert 1 < attempts < 1000
    assert store_stats()["retries"] == attempts - 1


@pytest.mark.parametrize(("on_error", "retries"), [("raise", 5), ("skip", 5), ("skip", 0)])
def test_a_refused_connection_is_the_stores_error_not_the_files(on_error: str, retries: int) -> None:
    configure_store(backoff=0.01, retries=retries)
    port = free_port()  # nothing listens there
    with pytest.raises(
        vl.StoreUnavailableError,
        match=rf"the store at http://127\.0\.0\.1:{port} is unreachable: stat failed after {retries + 1} "
        r"attempts?.*Cannot connect to host",
    ):
        vl.VideoDataset.from_paths([f"http://127.0.0.1:{port}/v/a.mp4"], on_error=on_error, use_cache=False)
    # Known down in this process now: the next request to it fails at once, with no retries.
    spent = store_stats()["retries"]
    with pytest.raises(vl.StoreUnavailableError, match=rf"127\.0\.0\.1:{port}"):
        vl.probe_video(f"http://127.0.0.1:{port}/v/b.mp4")
    assert store_stats()["retries"] == spent


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_every_request_failing_stops_the_pass(videos: Path, on_error: str) -> None:
    configure_store(backoff=0.01)
    with RangeHTTPServer(videos) as http:
        paths = [f"{http.url}/class0/{p.name}" for p in sorted((videos / "class0").glob("*.mp4"))]
        ds = vl.VideoDataset.from_paths(paths, use_cache=False)
        loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=2, on_error=on_error)  # type: ignore[arg-type]
        delivered = 0
        with pytest.raises(
            vl.StoreUnavailableError,
            match=rf"the store at {re.escape(http.url)} is unreachable: range read of bytes .* failed after 6 "
            rf"attempts .*503.*; a request for {re.escape(http.url)} itself failed too \(.*503",
        ):
            for batch in loader:
                delivered += len(batch)
                http.fail_next = 10**9  # from now on every request answers 503
        loader.close()
    assert 0 < delivered < loader.num_clips
    assert loader.stats["skipped_clips"] == 0


def test_a_failing_file_on_a_store_that_answers_stays_the_files(videos: Path) -> None:
    configure_store(backoff=0.01)
    with RangeHTTPServer(videos) as http:
        ds = vl.VideoDataset.from_paths([f"{http.url}/class0/v000.mp4"], use_cache=False)
        http.fail_next = 6  # the read's six attempts; the store's root answers (404) after them
        with pytest.raises(vl.DecodeError, match=r"v000\.mp4: cannot open .*after 6 attempts.*503"):
            vl.PyAVBackend().decode_clip(ds[0], [0, 1])
    assert store_outage(ds[0].path) is None
