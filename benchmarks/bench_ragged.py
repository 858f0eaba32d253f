"""Benchmark of the ragged clip op (mixed frame sizes, one launch) against the uniform op on a batch of the same
total pixels.

Workload (defaults): B=16 clips of T=16 frames, frame sizes mixed as in scraped data (landscape 4:3 and 16:9,
portrait, square, odd sizes; 144p to 480p), -> 224x224 float16 NCTHW. The uniform batch has B clips of one
4:3 size whose total pixel count matches the ragged batch (within 0.5 %). Boxes are drawn per clip from its own
frame exactly as TrainClipTransform does, with the same seeds for both batches; a second workload uses whole
frames (no crop), which makes the input traffic equal by construction.

    python benchmarks/bench_ragged.py --device cpu --repeats 15 --clock cpu
    python benchmarks/bench_ragged.py --device cuda --repeats 50

Rows (each timed interleaved with the others, median of --repeats):
  uniform op      clip_resized_crop_normalize on the uniform [B, T, H, W, 3] batch
  ragged op (uniform input)   clip_resized_crop_normalize_ragged on the same uniform batch as RaggedClips
  ragged op (mixed input)     clip_resized_crop_normalize_ragged on the mixed-size batch
The figure of merit is "ragged op (mixed input)" / "uniform op" (goal: within 1.10); median and minimum are
both printed (on a shared machine the minimum is the steadier one).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch

from vidloader.ops import (
    RaggedClips,
    backend_for,
    clip_resized_crop_normalize,
    clip_resized_crop_normalize_ragged,
)
from vidloader.transforms import TrainClipTransform

# (H, W): 4:3 and 16:9 landscape, portrait phone video, square, odd sizes; 144p to 480p.
MIXED_SIZES = [
    (240, 320), (360, 480), (270, 480), (480, 270), (256, 340), (144, 256), (320, 320), (241, 319),
    (480, 360), (180, 320), (288, 352), (360, 640), (226, 402), (398, 224), (256, 256), (135, 241),
]  # fmt: skip
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_clock = time.perf_counter


def _time(
    fns: dict[str, Callable[[], torch.Tensor]], repeats: int, device: torch.device
) -> dict[str, tuple[float, float]]:
    """Median and minimum ms per row (on a shared machine the minimum is the steadier figure)."""
    for fn in fns.values():  # warm-up (Triton compile, allocator)
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved, so drift on a shared machine hits every row alike
            _sync(device)
            t0 = _clock()
            fn()
            _sync(device)
            times[name].append(_clock() - t0)
    return {k: (statistics.median(v) * 1e3, min(v) * 1e3) for k, v in times.items()}


def _uniform_size(total: int, batch: int) -> tuple[int, int]:
    per = total / batch
    h = round(math.sqrt(per * 3 / 4))
    return h, round(per / h)


def run(
    device: torch.device, repeats: int, batch: int, frames: int, size: int, out_dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(0)
    sizes = [MIXED_SIZES[i % len(MIXED_SIZES)] for i in range(batch)]
    clips = [torch.randint(0, 256, (frames, h, w, 3), dtype=torch.uint8, generator=g) for h, w in sizes]
    mixed = RaggedClips.from_clips(clips).to(device)
    total = sum(h * w for h, w in sizes)
    uh, uw = _uniform_size(total, batch)
    video = torch.randint(0, 256, (batch, frames, uh, uw, 3), dtype=torch.uint8, generator=g).to(device)
    as_ragged = RaggedClips.from_batch(video)
    print(
        f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, backend: {backend_for(device)}"
    )
    print(
        f"mixed: {batch} clips x {frames} frames, {len(set(sizes))} sizes {min(sizes)}..{max(sizes)}, "
        f"{total} px/frame-set; uniform: {uh}x{uw} x {batch} = {uh * uw * batch} px "
        f"({(uh * uw * batch / total - 1) * 100:+.2f} %); out {size}x{size} {out_dtype} NCTHW; repeats={repeats}"
    )
    seeds = list(range(100, 100 + batch))
    for label, transform in (
        ("random resized crops (scale 0.08-1)", TrainClipTransform(size=size)),
        ("whole frames", None),
    ):
        if transform is None:
            ub = torch.tensor([[0, 0, uh, uw]] * batch)
            mb = torch.tensor([[0, 0, h, w] for h, w in sizes])
            flips = torch.zeros(batch, dtype=torch.bool)
            ufl = mfl = flips
        else:
            ub, ufl, _ = transform.draw_params(uh, uw, seeds)
            mb, mfl, _ = transform.draw_params_per_clip(sizes, seeds)
        crop_u = int(sum(h * w for *_, h, w in ub.tolist()))
        crop_m = int(sum(h * w for *_, h, w in mb.tolist()))
        kw: dict = dict(out_dtype=out_dtype, layout="NCTHW")
        fns = {
            "uniform op": lambda ub=ub, ufl=ufl, kw=kw: clip_resized_crop_normalize(
                video, ub, size, ufl, MEAN, STD, **kw
            ),
            "ragged op (uniform input)": lambda ub=ub, ufl=ufl, kw=kw: clip_resized_crop_normalize_ragged(
                as_ragged, ub, size, ufl, MEAN, STD, **kw
            ),
            "ragged op (mixed input)": lambda mb=mb, mfl=mfl, kw=kw: clip_resized_crop_normalize_ragged(
                mixed, mb, size, mfl, MEAN, STD, **kw
            ),
        }
        ms = _time(fns, repeats, device)
        med0, min0 = ms["uniform op"]
        print(
            f"\n{label}: crop pixels uniform {crop_u}, mixed {crop_m} ({(crop_m / crop_u - 1) * 100:+.1f} %)"
        )
        print("| implementation              | median ms |   min ms | median vs uniform | min vs uniform |")
        print("|-----------------------------|-----------|----------|-------------------|----------------|")
        for name, (med, low) in ms.items():
            print(f"| {name:<27} | {med:9.1f} | {low:8.1f} | {med / med0:16.3f}x | {low / min0:13.3f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="cpu: this thread's CPU time (forces 1 torch thread; steady on a machine other jobs share)",
    )
    args = ap.parse_args()
    if args.clock == "cpu":
        if args.device != "cpu":
            ap.error("--clock cpu measures CPU work; use it with --device cpu")
        global _clock
        _clock = time.thread_time
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"clock: {args.clock}")
    run(
        torch.device(args.device),
        args.repeats,
        args.batch,
        args.frames,
        args.size,
        getattr(torch, args.dtype),
    )


if __name__ == "__main__":
    main()
