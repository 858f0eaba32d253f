"""`vidloader bench`: the same clip list through vidloader and its peers, checked, timed, tabulated."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError
from .._validate import check_choice, check_int, check_positive_float
from ..backends import check_resize, dali_missing
from ..dataset import VideoDataset
from ..sampling import ClipSpec
from ._peers import PEERS, PeerUnavailable, require_dali_cpu_codecs

VIDLOADER_BACKENDS = ("vidloader-pyav", "vidloader-dali")
MEAN_ABS_BOUND, PSNR_BOUND = 4.0, 35.0
LUMA_MAD_BOUND, LUMA_PSNR_BOUND = 2.0, 40.0


def machine_info() -> dict[str, Any]:
    import av
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "av": av.__version__,
    }
    try:
        cpu = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = cpu[0].split(":", 1)[1].strip() if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    for mod, key in (("cv2", "opencv"), ("nvidia.dali", "dali"), ("decord", "decord")):
        try:
            info[key] = __import__(mod, fromlist=["__version__"]).__version__
        except Exception:
            info[key] = None
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def _reference(info, indices: Sequence[int]) -> np.ndarray:
    import av

    want, last, got = set(indices), max(indices), {}
    with av.open(info.path) as c:
        for i, frame in enumerate(c.decode(c.streams[info.stream_index])):
            if i in want:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return np.stack([got[i] for i in indices])


def _mad_psnr(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    mse = float((diff**2).mean())
    return float(diff.mean()), 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Same frames as the reference? ``exact``, ``close`` or ``DIFFERS``, with the figures behind it.

    ``close`` on RGB means within MEAN_ABS_BOUND / PSNR_BOUND. Decoders also differ in how they upsample
    4:2:0 chroma (FFmpeg's swscale, behind PyAV's rgb24, takes the nearest chroma sample; DALI
    interpolates), which on colourful fine texture alone exceeds the RGB bound; BT.601 luma of the RGB
    frames cancels the chroma terms, so a frame that is within LUMA_MAD_BOUND / LUMA_PSNR_BOUND on luma is
    the right frame with other chroma (``basis: "luma"``). A neighbouring frame of real video is far
    outside both (mean |luma diff| ≈ 14 on the 360p workloads)."""
    if got.shape != want.shape:
        return {"check": "DIFFERS", "why": f"shape {got.shape} vs {want.shape}"}
    mad, psnr = _mad_psnr(got, want)
    res: dict[str, Any] = {"mean_abs_diff": round(mad, 3), "psnr_db": round(psnr, 2)}
    if mad == 0:
        return {"check": "exact", **res}
    if mad <= MEAN_ABS_BOUND and psnr >= PSNR_BOUND:
        return {"check": "close", "basis": "rgb", **res}
    lmad, lpsnr = _mad_psnr(_luma(got.astype(np.float64)), _luma(want.astype(np.float64)))
    res.update(luma_mean_abs_diff=round(lmad, 3), luma_psnr_db=round(lpsnr, 2))
    if lmad <= LUMA_MAD_BOUND and lpsnr >= LUMA_PSNR_BOUND:
        return {"check": "close", "basis": "luma", **res}
    return {"check": "DIFFERS", **res}


class _Usage:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = r.ru_utime + r.ru_stime

    def cpu_util(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return (r.ru_utime + r.ru_stime - self.cpu) / max(time.perf_counter() - self.t, 1e-9)


def _rss_mb() -> float | None:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class _RSSPeak:
    """Peak resident memory while one backend runs, sampled on a thread: ru_maxrss alone is the peak of the
    whole process so far, which would charge every backend with the largest one before it."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak = _rss_mb() or 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, _rss_mb() or 0.0)

    def __enter__(self) -> _RSSPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb() or 0.0)
        if self.peak == 0.0:  # no way to read the current RSS here: fall back to the process peak
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time_batches(make_iter: Any, n_batches: int, seconds: float | None) -> tuple[list[float], float]:
    """Per-batch latencies (the first, warm-up batch included, at index 0) and the time to the first batch.

    Stops after ``n_batches`` or, with ``seconds``, once that much wall time has passed (two batches at
    least, so there is always one steady batch)."""
    lat: list[float] = []
    start = t = time.perf_counter()
    it = make_iter()
    try:
        for k, _ in enumerate(it):
            now = time.perf_counter()
            lat.append(now - t)
            t = now
            if k + 1 >= n_batches or (seconds is not None and k >= 1 and now - start >= seconds):
                break
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # an unfinished loader pass must stop its prefetch thread before the next run
    return lat, lat[0] if lat else 0.0


def run_bench(
    dataset: VideoDataset,
    *,
    backends: Sequence[str],
    frames: int = 16,
    stride: int = 2,
    batch_size: int = 8,
    resize: int | tuple[int, int] | None = None,
    workers: int = 2,
    clips: int = 64,
    sampling: str = "random",
    clips_per_video: int | None = None,
    repeats: int = 3,
    seconds: float | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Check, then time each backend on one clip list; the report is what ``--json`` writes.

    Backends run one after another in the given order, each ``repeats`` times over the whole list (or for
    at most ``seconds`` per run). A backend that cannot run here gets ``{"skipped": reason}``; one that
    fails gets ``{"error": ...}``; the others still run."""
    import torch
    from tqdm import tqdm

    from ..loader import VideoLoader

    unknown = [b for b in backends if b not in (*VIDLOADER_BACKENDS, *PEERS)]
    if unknown:
        raise ConfigError(
            f"unknown backend(s) {unknown}; choose from {sorted((*VIDLOADER_BACKENDS, *PEERS))}"
        )
    check_int("repeats", repeats, minimum=1)
    check_int("clips", clips, minimum=1)
    check_int("workers", workers, minimum=0)
    seconds = check_positive_float("seconds", seconds, allow_none=True)
    resize = check_resize(resize)
    check_choice("sampling", sampling, ("random", "uniform", "multiview", "sliding"))
    # Random clips, several per video when the dataset is small, so every run has `clips` clips; the
    # other plans in video order (no shuffle), the way an evaluation pass reads them.
    if clips_per_video is None:
        clips_per_video = max(1, -(-clips // len(dataset))) if sampling == "random" else 4
    per_video = check_int("clips_per_video", clips_per_video, minimum=1)
    # Random plans of a small workload put several clips of one file in a batch, which a training epoch
    # over a real dataset (one clip per video) never does; vidloader would decode those together and look
    # faster than it is in training, so shared decode passes are only on for the evaluation-style plans.
    shared = sampling != "random"
    kw: dict[str, Any] = dict(
        sampling=sampling,
        shuffle=sampling == "random",
        clips_per_video=per_video,
        batch_size=batch_size,
        frames_per_clip=frames,
        frame_stride=stride,
        seed=seed,
        resize=resize,
        num_workers=workers,
        output_layout="NTHWC",
    )
    planner = VideoLoader(dataset, backend="pyav", **kw)
    plan: list[ClipSpec] = planner.clip_plan(0)
    n_batches = max(2, min(clips, len(plan)) // batch_size)
    if n_batches * batch_size > len(plan):
        n_batches = len(plan) // batch_size
    if n_batches < 2:
        raise ConfigError(
            f"the dataset gives {len(plan)} clips; the benchmark needs at least {2 * batch_size}"
        )
    plan = plan[: n_batches * batch_size]
    from ..backends import output_size

    native = {output_size(dataset[c.video_index], None, apply_rotation=False) for c in plan}
    if resize is None and len(native) > 1:
        raise ConfigError(
            f"the clips come in {len(native)} frame sizes (e.g. {sorted(native)[:3]}) and a batch needs one: "
            "give --resize HxW, or --resize <short side> (every clip is then resized to the first clip's "
            "size, for vidloader and the peers alike)"
        )
    hw = None
    if resize is not None:
        hw = output_size(dataset[plan[0].video_index], resize, apply_rotation=False)
        # Every row resizes to this one size, vidloader's too: on mixed data a short side alone would give
        # each clip its own size (vidloader's batch would not stack) and time different work than the peers.
        kw["resize"] = hw
    check_clips = plan[:2]
    refs = [_reference(dataset[c.video_index], c.frame_indices) for c in check_clips]
    results: dict[str, Any] = {}
    for name in backends:
        res: dict[str, Any] = {}
        try:
            if name in VIDLOADER_BACKENDS:
                on_gpu = name == "vidloader-dali" and torch.cuda.is_available()
                device = torch.device("cuda" if on_gpu else "cpu")
                if name == "vidloader-dali":
                    missing = dali_missing(device)
                    if missing:
                        raise PeerUnavailable(missing)
                    if not on_gpu:
                        # On a CPU box DALI's CPU decoder would hand H.264 files to the PyAV fallback, so the
                        # row would time PyAV under DALI's name.
                        require_dali_cpu_codecs(dataset, {c.video_index for c in plan})
                loader = VideoLoader(
                    dataset,
                    backend="dali" if name == "vidloader-dali" else "pyav",
                    device=device,
                    shared_decode=shared,
                    **kw,
                )
                if loader.clip_plan(0)[: len(plan)] != plan:
                    raise RuntimeError("vidloader's plan differs from the benchmark's clip list")
                # Checked through a loader like the timed one (same backend and path, full size), so the
                # check covers what the benchmark times, batch buffer included.
                # One clip per batch: at full size the check clips of a mixed folder differ in shape.
                check = VideoLoader(
                    dataset,
                    backend="dali" if name == "vidloader-dali" else "pyav",
                    device=device,
                    **{**kw, "resize": None, "batch_size": 1, "num_workers": 0},
                )
                if check.clip_plan(0)[: len(check_clips)] != check_clips:
                    raise RuntimeError("vidloader's check plan differs from the benchmark's clip list")
                got = [b.video[0].cpu().numpy() for _, b in zip(check_clips, check, strict=False)]
                check.close()

                def make_iter(loader: Any = loader, pool: Any = None) -> Any:
                    loader.set_epoch(0)
                    return iter(loader)
            elif hasattr(peer := PEERS[name](), "batches"):
                pool = None
                got = []
                # One clip at a time: at full size the check clips of a mixed folder differ in shape.
                for check_clip in check_clips:
                    first = next(
                        iter(peer.batches(dataset, [check_clip], batch_size=1, resize=None, workers=0))
                    )
                    got.append((np.asarray(first.cpu()) if hasattr(first, "cpu") else first)[0])

                def make_iter(loader: Any = peer, pool: Any = None) -> Any:
                    return loader.batches(dataset, plan, batch_size=batch_size, resize=hw, workers=workers)
            else:
                got = [peer.decode(dataset[c.video_index], c.frame_indices, None) for c in check_clips]
                pool = ThreadPoolExecutor(max_workers=max(1, workers))

                def make_iter(loader: Any = peer, pool: Any = pool) -> Any:
                    peer = loader

                    def one(clip: ClipSpec) -> np.ndarray:
                        return peer.decode(dataset[clip.video_index], clip.frame_indices, hw)

                    for b in range(n_batches):
                        yield np.stack(list(pool.map(one, plan[b * batch_size : (b + 1) * batch_size])))

            checks = [compare(g, r) for g, r in zip(got, refs, strict=True)]
            rank = ("exact", "close rgb", "close luma", "DIFFERS")
            worst = max(
                checks, key=lambda c: rank.index(" ".join(filter(None, (c["check"], c.get("basis")))))
            )
            res.update(worst)
            rates, p50, p95, firsts, utils = [], [], [], [], []
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            with _RSSPeak() as rss:
                for _ in tqdm(range(repeats), desc=name, disable=not progress, leave=False):
                    usage = _Usage()
                    lat, first = _time_batches(make_iter, n_batches, seconds)
                    # The first batch (warm-up: pool start, caches, pipeline build) is reported on its own
                    # as the time to first batch and left out of the rate and the percentiles.
                    steady = lat[1:]
                    rates.append(len(steady) * batch_size / max(sum(steady), 1e-9))
                    p50.append(float(np.percentile(steady, 50)))
                    p95.append(float(np.percentile(steady, 95)))
                    firsts.append(first)
                    utils.append(usage.cpu_util())
            res.update(
                clips_per_s=statistics.median(rates),
                clips_per_s_min=min(rates),
                clips_per_s_max=max(rates),
                frames_per_s=statistics.median(rates) * frames,
                p50_batch_s=statistics.median(p50),
                p95_batch_s=statistics.median(p95),
                first_batch_s=statistics.median(firsts),
                cpu_util=statistics.median(utils),
                peak_rss_mb=round(rss.peak, 1),
                peak_gpu_mb=(torch.cuda.max_memory_allocated() / 2**20)
                if torch.cuda.is_available()
                else None,
            )
            if name in VIDLOADER_BACKENDS:
                loader.close()
            if name not in VIDLOADER_BACKENDS and pool is not None:
                pool.shutdown()
        except PeerUnavailable as exc:
            res = {"skipped": str(exc)}
        except Exception as exc:  # a failing peer is reported, the others still run
            res = {"error": f"{type(exc).__name__}: {exc}"}
        results[name] = res
    return {
        "machine": machine_info(),
        "config": {
            "sampling": sampling,
            "clips_per_video": per_video,
            "shared_decode": shared,
            "frames": frames,
            "stride": stride,
            "batch_size": batch_size,
            "resize": resize,
            "workers": workers,
            "clips": len(plan),
            "repeats": repeats,
            "seconds": seconds,
            "seed": seed,
            "videos": len(dataset),
        },
        "backends": results,
        "ceiling": None,
    }


def format_table(report: dict[str, Any]) -> str:
    rows = report["backends"]
    base = rows.get("vidloader-pyav", {}).get("clips_per_s")
    ceiling = (report.get("ceiling") or {}).get("frames_per_s")
    lines = [
        f"{'backend':16s} {'clips/s':>9s} {'range':>15s} {'frames/s':>9s} {'p50 s':>7s} {'p95 s':>7s} "
        f"{'first s':>7s} {'cpu':>5s} {'vs vl-pyav':>10s} {'ceiling':>7s}  frames"
    ]
    for name, r in rows.items():
        if "clips_per_s" not in r:
            lines.append(f"{name:16s} skipped: {r.get('skipped', r.get('error'))}")
            continue
        ratio = f"{r['clips_per_s'] / base:.2f}x" if base else "-"
        share = f"{100 * r['frames_per_s'] / ceiling:.0f}%" if ceiling else "-"
        rng = f"{r['clips_per_s_min']:.1f}-{r['clips_per_s_max']:.1f}"
        check = r["check"]
        if r.get("basis") == "luma":
            check += f" on luma (mad {r['luma_mean_abs_diff']}; chroma upsampling differs: rgb mad {r['mean_abs_diff']})"
        elif check != "exact":
            check += f" (mad {r['mean_abs_diff']}, {r['psnr_db']} dB)"
        lines.append(
            f"{name:16s} {r['clips_per_s']:9.2f} {rng:>15s} {r['frames_per_s']:9.1f} {r['p50_batch_s']:7.3f} "
            f"{r['p95_batch_s']:7.3f} {r['first_batch_s']:7.3f} {r['cpu_util']:5.2f} {ratio:>10s} "
            f"{share:>7s}  {check}"
        )
    peers = [r["clips_per_s"] for n, r in rows.items() if n not in VIDLOADER_BACKENDS and "clips_per_s" in r]
    if base and peers:
        lines.append(f"vidloader-pyav vs best peer: {base / max(peers):.2f}x")
    ceil = report.get("ceiling")
    if ceil:
        if "frames_per_s" in ceil:
            lines.append(f"ceiling: {ceil['frames_per_s']:.1f} raw decoded frames/s ({ceil['how']})")
        else:
            lines.append(
                f"ceiling: {'skipped' if 'skipped' in ceil else 'failed'}: {ceil.get('skipped', ceil.get('error'))}"
            )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, r) for n, r in report["backends"].items() if "clips_per_s" in r]
    fig, ax = plt.subplots(figsize=(1.6 * max(len(rows), 2) + 2, 4))
    names = [n for n, _ in rows]
    med = [r["clips_per_s"] for _, r in rows]
    err = [
        [m - r["clips_per_s_min"] for m, (_, r) in zip(med, rows, strict=True)],
        [r["clips_per_s_max"] - m for m, (_, r) in zip(med, rows, strict=True)],
    ]
    colors = ["tab:blue" if n.startswith("vidloader") else "tab:gray" for n in names]
    ax.bar(names, med, yerr=err, capsize=4, color=colors)
    ax.set_ylabel("clips/s (median, min-max)")
    cfg = report["config"]
    ax.set_title(
        f"{cfg['frames']} frames, stride {cfg['stride']}, batch {cfg['batch_size']}, {cfg['workers']} workers"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, default=str))
