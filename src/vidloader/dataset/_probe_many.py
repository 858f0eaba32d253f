"""Probing many files: through the probe cache and an earlier index, in parallel, with a progress bar.

Engines: "thread" (one process; demuxing is I/O-bound and PyAV drops the GIL), "process" (a spawn or
forkserver pool, never fork: a process that ran DALI hangs in forked children), and "ray" (the same probe
function as a Ray Data job, locally or on a cluster through ``address``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict

from .._errors import ConfigError, ProbeError
from .._validate import check_bool, check_choice, check_opt_int
from ._info import VideoInfo
from ._location import is_remote
from ._probe_cache import ProbeCache
from ._probe_file import probe_video

Engine = Literal["thread", "process", "ray"]
ENGINES: tuple[str, ...] = ("thread", "process", "ray")
Result = VideoInfo | ProbeError


class ProbeOptions(TypedDict, total=False):
    """How files are probed: the keywords of ``probe_many``, which ``VideoDataset.from_folder``,
    ``from_manifest`` and ``from_paths`` pass on to it (defaults as ``probe_many`` gives them, except that
    ``from_paths`` shows no progress bar unless asked).

    Args:
        cache_dir: the probe cache's folder (default: ``default_cache_dir()``).
        use_cache: read and write the probe cache (default True).
        refresh: probe every file again, reading neither the probe cache nor an earlier index, and store
            the fresh results in the cache (default False).
        verify: decode every frame of every file once, recording the damage only a decoder sees (default
            False; a cached or earlier result counts only when it was verified too).
        num_workers: probe threads or processes (default None or 0: sized to the CPUs).
        video_stream: the video stream to index (default None: the best one).
        progress: show a progress bar (default True).
        engine: "thread" (default), "process" or "ray".
        address: the Ray cluster to join with engine="ray" (default None: start Ray locally).
    """

    cache_dir: str | Path | None
    use_cache: bool
    refresh: bool
    verify: bool
    num_workers: int | None
    video_stream: int | None
    progress: bool
    engine: Engine
    address: str | None


class Probe(NamedTuple):
    """What every file is probed with: the video stream choice and whether every frame is decoded."""

    video_stream: int | None
    verify: bool


def probe_one(path: str, how: Probe) -> Result:
    """The probe every engine runs: a VideoInfo, or the ProbeError saying why the file cannot be used."""
    try:
        return probe_video(path, video_stream=how.video_stream, verify=how.verify)
    except ProbeError as exc:
        return exc


def _probe_chunk(paths: Sequence[str], how: Probe) -> list[Result]:
    return [probe_one(p, how) for p in paths]


def _threads(paths: Sequence[str], how: Probe, workers: int) -> Iterator[Result]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda p: probe_one(p, how), paths)


def _processes(paths: Sequence[str], how: Probe, workers: int) -> Iterator[Result]:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    # Chunks amortise the pickling of results; small enough that the bar still moves.
    size = max(1, min(64, len(paths) // (workers * 8) or 1))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
        for results in pool.map(_probe_chunk, chunks, [how] * len(chunks)):
            yield from results


def _ray_batch(batch: dict[str, Any], video_stream: int | None, verify: bool) -> dict[str, Any]:
    infos, errors = [], []
    for p in batch["path"]:
        res = probe_one(str(p), Probe(video_stream, verify))
        infos.append("" if isinstance(res, ProbeError) else json.dumps(res.to_json()))
        errors.append(res.reason if isinstance(res, ProbeError) else "")
    return {"i": batch["i"], "info": infos, "error": errors}


def _ray(paths: Sequence[str], how: Probe, address: str | None) -> Iterator[Result]:
    try:
        import ray
    except ImportError:
        raise ConfigError("engine='ray' needs ray: pip install 'vidloader[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    ds = ray.data.from_items([{"i": i, "path": p} for i, p in enumerate(paths)])
    fn: Any = _ray_batch  # Ray's stubs do not know fn_kwargs feed the extra argument
    # Batches of files per task: a task per file costs more in scheduling than a probe does.
    kwargs = {"video_stream": how.video_stream, "verify": how.verify}
    mapped = ds.map_batches(fn, batch_size=32, batch_format="numpy", fn_kwargs=kwargs)
    out = mapped.take_all()
    by_index = {int(r["i"]): r for r in out}
    for i, p in enumerate(paths):
        r = by_index[i]
        yield ProbeError(p, r["error"]) if r["error"] else VideoInfo.from_json(json.loads(r["info"]))


def probe_many(
    paths: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    verify: bool = False,
    num_workers: int | None = None,
    video_stream: int | None = None,
    progress: bool = True,
    engine: Engine = "thread",
    address: str | None = None,
    known: Mapping[str, VideoInfo] | None = None,
) -> list[Result]:
    """Probe files in parallel, skipping those the cache or ``known`` already describe.

    Args:
        paths: the files, in the order results are returned.
        cache_dir, use_cache: the local SQLite probe cache (keyed by absolute path, size, mtime, stream).
        refresh: probe every file, reading neither the cache nor ``known``; fresh results are cached.
        verify: decode every frame once (see ``probe_video``); a cached or known result is reused only
            when it was verified too.
        num_workers: threads or processes (default, or 0: twice the CPUs, at most 8, for threads; the CPUs
            for processes); Ray sizes its own pool.
        video_stream: the video stream to index (default: the best one).
        progress: show a progress bar.
        engine: "thread", "process" or "ray".
        address: the Ray cluster to join (engine="ray"; default: start Ray locally).
        known: absolute path -> VideoInfo of files that need no probe (an earlier index, still matching).

    Returns:
        One VideoInfo or ProbeError per path.

    Raises:
        ConfigError: a bad option value, or Ray asked for and not installed.
    """
    check_bool("use_cache", use_cache)
    check_bool("refresh", refresh)
    check_bool("verify", verify)
    check_bool("progress", progress)
    check_opt_int("num_workers", num_workers, minimum=0)
    check_opt_int("video_stream", video_stream, minimum=0)
    check_choice("engine", engine, ENGINES)
    cache = ProbeCache(cache_dir) if use_cache else None
    keys = _cache_keys(paths, video_stream, cache, num_workers)
    cached = cache.get_many([k for k in keys if k]) if cache and not refresh else {}
    results, todo = _reuse(paths, keys, cached, None if refresh else known, verify)
    how = Probe(video_stream, verify)
    run = _runner(engine, [paths[i] for i in todo], how, num_workers, address)
    fresh = _collect(run, todo, keys, results, "verifying" if verify else "indexing", progress)
    if cache:
        cache.put_many(fresh)
        cache.close()
    return [r for r in results if r is not None]


def _cache_keys(
    paths: Sequence[str], video_stream: int | None, cache: ProbeCache | None, num_workers: int | None
) -> list[str | None]:
    """Each file's probe-cache key (None: the file cannot be cached)."""
    if cache is not None and any(is_remote(p) for p in paths):
        # A remote file's key needs its size and ETag: one request each, made in parallel.
        with ThreadPoolExecutor(max_workers=num_workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
            return list(pool.map(lambda p: ProbeCache.key(p, video_stream), paths))
    return [ProbeCache.key(p, video_stream) for p in paths]


def _reuse(
    paths: Sequence[str],
    keys: list[str | None],
    cached: Mapping[str, VideoInfo],
    known: Mapping[str, VideoInfo] | None,
    verify: bool,
) -> tuple[list[Result | None], list[int]]:
    """(results with what ``known`` or the cache already describe filled in, the indices left to probe).
    Under ``verify`` only a verified result will do."""
    results: list[Result | None] = [None] * len(paths)
    todo: list[int] = []
    for i, (p, k) in enumerate(zip(paths, keys, strict=True)):
        hits = [(known or {}).get(os.path.abspath(p)), cached.get(k) if k is not None else None]
        hit = next((h for h in hits if h is not None and (h.verified or not verify)), None)
        if hit is not None:
            results[i] = replace(hit, path=p)  # keep the spelling the caller used
        else:
            todo.append(i)
    return results, todo


def _runner(
    engine: Engine,
    todo_paths: list[str],
    how: Probe,
    num_workers: int | None,
    address: str | None,
) -> Callable[[], Iterator[Result]]:
    """The engine's probe of ``todo_paths``, started only when ``_collect`` calls it."""
    cpus = os.cpu_count() or 2
    if engine == "thread":
        # Demuxing waits on reads (more threads than cores pay); a full decode keeps a core busy.
        return lambda: _threads(todo_paths, how, num_workers or (cpus if how.verify else min(8, cpus * 2)))
    if engine == "process":
        return lambda: _processes(todo_paths, how, num_workers or cpus)
    return lambda: _ray(todo_paths, how, address)


def _collect(
    run: Callable[[], Iterator[Result]],
    todo: list[int],
    keys: list[str | None],
    results: list[Result | None],
    desc: str,
    progress: bool,
) -> dict[str, VideoInfo]:
    from tqdm import tqdm

    fresh: dict[str, VideoInfo] = {}
    if not todo:
        return fresh
    bar = tqdm(total=len(todo), desc=desc, unit="file", disable=not progress or len(todo) < 2)
    for i, res in zip(todo, run(), strict=True):
        results[i] = res
        k = keys[i]
        if isinstance(res, VideoInfo) and k is not None:
            fresh[k] = res
        bar.update(1)
    bar.close()
    return fresh
