"""Real stores on loopback for the object-store tests and benchmarks/remote.py.

- ``s3_server``: moto's S3-compatible server (``moto[server]``) on 127.0.0.1 at a free port; clients find it
  through the standard AWS variables (AWS_ENDPOINT_URL and test credentials), as a user's on-premises store.
- ``RangeHTTPServer``: a threaded HTTP server over a folder that answers ``Range`` requests (206), with
  optional added latency per request and injected faults (503 for the first requests, 403 under
  ``/denied/``), for ``http(s)://``-style range reads.
- ``FlakyFileSystem``: an fsspec filesystem (``flaky://``) over another one that fails its first reads, to
  check retries against real errors a store raises.
- ``fresh_store``: this process's store layer as new for one test (no open files, stats or known outages),
  its configuration put back after.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import fsspec
from fsspec.spec import AbstractFileSystem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's S3 server on loopback; ``latency`` seconds are added to every request it serves."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.latency = 0.0
        self.requests = 0

    def wrap(self, app: Any) -> Any:
        def delayed(environ: Any, start_response: Any) -> Any:
            self.requests += 1
            if self.latency:
                time.sleep(self.latency)
            return app(environ, start_response)

        return delayed


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server on loopback and point the AWS variables at it (as a user's on-premises store
    through AWS_ENDPOINT_URL)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    handle = S3Server(endpoint)
    # werkzeug's server looks its WSGI app up per request: wrapping it adds the latency server-side.
    server._server.app = handle.wrap(server._server.app)  # type: ignore[union-attr]
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield handle
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # s3fs caches filesystem instances with their endpoint; a later server is a new endpoint.
        fsspec.filesystem("s3").clear_instance_cache()


class _Handler(BaseHTTPRequestHandler):
    server: RangeHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _file(self) -> Path | None:
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = (self.server.root / rel).resolve()
        if self.server.root not in path.parents or not path.is_file():
            return None
        return path

    def _fault(self) -> bool:
        srv = self.server
        with srv.lock:
            srv.requests += 1
            fail = srv.fail_next > 0
            if fail:
                srv.fail_next -= 1
        if srv.latency:
            time.sleep(srv.latency)
        if fail:
            self._empty(503)
            return True
        if self.path.startswith("/denied/"):
            self._empty(403)
            return True
        return False

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        if self._fault():
            return
        path = self._file()
        if path is None:
            self._empty(404)
            return
        size = path.stat().st_size
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        start, end = 0, size - 1
        if m:
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            with path.open("rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))
            with self.server.lock:
                self.server.bytes_sent += end - start + 1


class RangeHTTPServer(ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1 with Range support; ``latency`` seconds are added to every request."""

    daemon_threads = True

    def __init__(self, root: Path, *, latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root).resolve()
        self.latency = latency
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0
        self.fail_next = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> RangeHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


class FlakyFileSystem(AbstractFileSystem):
    """``flaky://<path>``: ``inner_protocol``'s filesystem whose first reads fail with the queued errors."""

    protocol = "flaky"
    inner_protocol: ClassVar[str] = "s3"
    queued: ClassVar[list[BaseException]] = []
    reads: ClassVar[int] = 0

    def _inner(self) -> Any:
        return fsspec.filesystem(self.inner_protocol)

    def info(self, path: str, **kwargs: Any) -> dict:
        return self._inner().info(path)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        FlakyFileSystem.reads += 1
        if FlakyFileSystem.queued:
            raise FlakyFileSystem.queued.pop(0)
        return self._inner().cat_file(path, start=start, end=end)


fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)


def serve_main(argv: list[str] | None = None) -> int:
    """``python tests/stores.py --root DIR --latency S``: both servers in their own process (as a store on
    another machine: their CPU and GIL are not the client's); prints one JSON line with the endpoints and
    serves until stdin closes. Clients set AWS_ENDPOINT_URL themselves."""
    import argparse
    import json
    import logging
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with s3_server() as s3, RangeHTTPServer(Path(args.root)) as http:
        s3.latency = http.latency = args.latency
        print(json.dumps({"s3": s3.endpoint, "http": http.url}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve_main())


@contextlib.contextmanager
def fresh_store() -> Iterator[None]:
    """This process's store layer as new (no open remote files, counters, injected faults or stores known to
    be down), and the store configuration as it was once the block ends."""
    from dataclasses import asdict

    from vidloader.dataset import clear_store_cache, configure_store, reset_store_stats, store_config

    before = store_config()
    clear_store_cache()
    reset_store_stats()
    FlakyFileSystem.queued.clear()
    try:
        yield
    finally:
        configure_store(**asdict(before))
        clear_store_cache()
