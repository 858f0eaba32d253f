"""ProcessWorkers: a worker stopped while it was sending a result never leaves the program hanging."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import os, struct, sys, time
    from pathlib import Path

    from vidloader._process_pool import ProcessWorkers


    def half_a_result(marker: str) -> None:
        # Write the start of a 1 MB result message into the pool's result pipe, then never finish it: what
        # a worker stopped in the middle of sending a clip's frames leaves behind. The pipe is a local of
        # the executor's worker loop (concurrent.futures.process._process_worker) further up this stack.
        frame = sys._getframe()
        while "result_queue" not in frame.f_locals:
            frame = frame.f_back
        writer = frame.f_locals["result_queue"]._writer
        os.write(writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
        Path(marker).touch()
        time.sleep(3600)


    if __name__ == "__main__":
        marker = Path(sys.argv[1])
        workers = ProcessWorkers(1)
        workers.submit(half_a_result, str(marker))
        t0 = time.monotonic()
        while not marker.exists():
            assert time.monotonic() - t0 < 120, "the worker never ran"
            time.sleep(0.05)
        time.sleep(0.5)  # the executor's thread is now waiting for the rest of the message
        workers.close()
        print("closed", flush=True)
    """
)


@pytest.mark.slow  # spawns worker processes
def test_a_worker_stopped_mid_result_does_not_hang_the_program(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    try:
        run = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "marker")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            "the program did not exit after close(): the executor's thread still waits for the result"
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "closed"
    assert "Traceback" not in run.stderr, run.stderr
