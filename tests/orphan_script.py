"""A script whose main process dies mid-epoch (run by tests/test_faults.py and benchmarks/faults.py):

    python tests/orphan_script.py VIDEO_FOLDER {wait|exit}

After the first batch of a loader with process workers it prints one JSON line: its pid, the pids of every
process below it (the decode workers, multiprocessing's resource tracker) and the /dev/shm files they
map; then it waits to be killed (``wait``) or ends at once with ``os._exit`` (``exit``), skipping every
clean-up."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import vidloader as vl


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended while we looked
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def shm_files(pids: list[int]) -> list[str]:
    files = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        files |= {line.split(None, 5)[-1] for line in maps.splitlines() if "/dev/shm/" in line}
    return sorted(f.removesuffix(" (deleted)") for f in files)


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    ds = vl.VideoDataset.from_folder(folder, use_cache=False, progress=False)
    loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=2, worker_type="process")
    it = iter(loader)
    next(it)
    below = descendants(os.getpid())
    report = {"main": os.getpid(), "workers": loader._pool.workers.pids(), "below": below}
    report["shm"] = shm_files([os.getpid(), *below])
    print(json.dumps(report), flush=True)
    if mode == "exit":
        os._exit(0)
    time.sleep(600)


if __name__ == "__main__":
    main()
