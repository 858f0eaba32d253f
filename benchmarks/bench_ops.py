"""Benchmark of the fused clip op against unfused pipelines.

Workload (defaults): B=16 clips of T=16 frames, 256x340 uint8 RGB -> 224x224 float16 NCTHW, one
RandomResizedCrop box (scale 0.08-1) and flip coin per clip drawn exactly as TrainClipTransform does.

    python benchmarks/bench_ops.py --device cpu --repeats 5
    python benchmarks/bench_ops.py --device cuda --repeats 20
    python benchmarks/bench_ops.py --device cuda --antialias   # every row resizes with antialias=True

Rows:
  fused op          vidloader.ops.clip_resized_crop_normalize (Triton on CUDA, the torch reference on CPU)
  reference         the pure-torch reference called directly (per-clip loop)
  torch chain       crop -> float -> F.interpolate -> flip -> /255 -> -mean -> /std per clip, stack, permute, cast
  torchvision v2    per clip: v2.functional resized_crop (uint8, bilinear, same antialias) -> hflip ->
                    to_dtype(float32, scale=True) -> normalize, then stack, permute, cast (it rounds to uint8
                    after resizing, so it is not numerically the same op)

"bytes moved" is a model, not a measurement: every torch op reads its inputs and writes its output once. The
minimum is reading each clip's crop region once as uint8 plus writing the output once.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidloader.ops import backend_for, clip_resized_crop_normalize, resized_crop_normalize_reference
from vidloader.transforms import TrainClipTransform

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Workload:
    video: torch.Tensor
    boxes: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor | None
    size: tuple[int, int]
    out_dtype: torch.dtype
    layout: str
    antialias: bool

    @property
    def in_elems(self) -> int:
        """uint8 elements of all crop regions (each read once at best)."""
        t = self.video.shape[1]
        return int(sum(t * h * w * 3 for _, _, h, w in self.boxes.tolist()))

    @property
    def out_elems(self) -> int:
        return self.video.shape[0] * self.video.shape[1] * self.size[0] * self.size[1] * 3

    @property
    def out_bytes(self) -> int:
        return self.out_elems * torch.finfo(self.out_dtype).bits // 8


def make_workload(args: argparse.Namespace, device: torch.device) -> Workload:
    g = torch.Generator().manual_seed(0)
    video = torch.randint(
        0, 256, (args.batch, args.frames, args.height, args.width, 3), dtype=torch.uint8, generator=g
    )
    transform = TrainClipTransform(size=args.size, jitter=(0.4, 0.4, 0.4) if args.jitter else None)
    boxes, flip, jitter = transform.draw_params(args.height, args.width, list(range(args.batch)))
    return Workload(
        video=video.to(device),
        boxes=boxes,
        flip=flip,
        jitter=jitter,
        size=(args.size, args.size),
        out_dtype=DTYPES[args.dtype],
        layout=args.layout,
        antialias=args.antialias,
    )


def fused(w: Workload) -> torch.Tensor:
    return clip_resized_crop_normalize(
        w.video, w.boxes, w.size, w.flip, MEAN, STD, out_dtype=w.out_dtype, layout=w.layout, jitter=w.jitter,
        antialias=w.antialias,
    )  # fmt: skip


def reference(w: Workload) -> torch.Tensor:
    dev = w.video.device
    return resized_crop_normalize_reference(
        w.video, w.boxes.to(dev), list(w.size), w.flip.to(dev), list(MEAN), list(STD), w.out_dtype, w.layout,
        None if w.jitter is None else w.jitter.to(dev), 1, w.antialias,
    )  # fmt: skip


def _finish(clips: list[torch.Tensor], w: Workload) -> torch.Tensor:
    # clips: [T, 3, H', W'] float32 each -> [B, 3, T, H', W'] (or NTHWC) in out_dtype
    x = torch.stack(clips)
    x = x.permute(0, 2, 1, 3, 4) if w.layout == "NCTHW" else x.permute(0, 1, 3, 4, 2)
    return x.contiguous().to(w.out_dtype)


def torch_chain(w: Workload) -> torch.Tensor:
    dev = w.video.device
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    clips = []
    for n, (y0, x0, h, wd) in enumerate(w.boxes.tolist()):
        x = w.video[n, :, y0 : y0 + h, x0 : x0 + wd, :].float().permute(0, 3, 1, 2)
        x = F.interpolate(x, size=w.size, mode="bilinear", align_corners=False, antialias=w.antialias)
        if bool(w.flip[n]):
            x = x.flip(-1)
        clips.append((x / 255 - mean) / std)
    return _finish(clips, w)


def torchvision_v2(w: Workload) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    clips = []
    for n, (y0, x0, h, wd) in enumerate(w.boxes.tolist()):
        x = w.video[n].permute(0, 3, 1, 2)  # [T, 3, H, W] uint8, a view
        x = TF.resized_crop(x, y0, x0, h, wd, list(w.size), antialias=w.antialias)
        if bool(w.flip[n]):
            x = TF.horizontal_flip(x)
        x = TF.to_dtype(x, torch.float32, scale=True)
        clips.append(TF.normalize(x, list(MEAN), list(STD)))
    return _finish(clips, w)


def modelled_bytes(name: str, w: Workload) -> int:
    """Bytes read + written under the one-read-one-write-per-op model (see the module docstring)."""
    n_in, n_out, out_b = w.in_elems, w.out_elems, w.out_bytes
    flipped = int(w.flip.sum()) / len(w.flip)
    if name == "fused op" and backend_for(w.video.device) == "triton":
        # Jitter's contrast pre-pass reads the input a second time (and writes one float per tile).
        return n_in * (2 if w.jitter is not None else 1) + out_b
    if name in ("fused op", "reference"):  # without Triton the op runs the reference
        # crop u8 -> f32 copy, interpolate, (flip), (jitter: /255, 3 blends, 2 greys, 1 mean), one
        # fused normalise/cast/layout write
        jitter = 0 if w.jitter is None else n_out * (8 + 3 * 8 + 2 * 4 + 4 + 3 * 8)
        return n_in * (1 + 4) + n_in * 4 + n_out * 4 + round(flipped * n_out * 8) + jitter + n_out * 4 + out_b
    if name == "torch chain":
        # .float(), interpolate, (flip), /255, -mean, /std, stack, permute+contiguous, cast
        per = n_in * 5 + n_in * 4 + n_out * 4 + round(flipped * n_out * 8) + 3 * n_out * 8
        return per + n_out * 8 + n_out * 8 + n_out * 4 + out_b
    if name == "torchvision v2":
        # uint8 resize (read crop, write u8), (flip u8), to_dtype, normalize (sub + div), stack, permute, cast
        per = n_in + n_out + round(flipped * n_out * 2) + n_out * 5 + 2 * n_out * 8
        return per + n_out * 8 + n_out * 8 + n_out * 4 + out_b
    raise KeyError(name)


def time_it(fn: Callable[[Workload], torch.Tensor], w: Workload, repeats: int) -> tuple[float, float]:
    """(median, min) seconds over ``repeats`` runs after one warm-up."""
    cuda = w.video.is_cuda
    fn(w)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(w)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn(w)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Device-to-device bytes/s of ``clone`` (counting the read and the write)."""
    x = torch.empty(nbytes, dtype=torch.uint8, device=device)
    x.clone()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        x.clone()
    end.record()
    end.synchronize()
    return 2 * nbytes * repeats / (start.elapsed_time(end) / 1e3)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    parser.add_argument("--layout", choices=["NCTHW", "NTHWC"], default="NCTHW")
    parser.add_argument(
        "--jitter", action="store_true", help="add colour jitter to the fused op and reference"
    )
    parser.add_argument(
        "--antialias", action="store_true", help="resize with antialias=True (every row, unfused ones too)"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="rows to leave out, e.g. --skip 'torchvision v2'"
    )
    return parser.parse_args()


def print_workload(args: argparse.Namespace, device: torch.device, w: Workload) -> float | None:
    """The machine, the workload and its minimum bytes; returns the device copy bandwidth (None on CPU)."""
    minimum = w.in_elems + w.out_bytes
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
        f"torch {torch.__version__}, fused backend: {backend_for(device)}"
    )
    print(
        f"workload: B={args.batch} T={args.frames} {args.height}x{args.width} uint8 -> {args.size}x{args.size} "
        f"{args.dtype} {args.layout}{' + jitter' if args.jitter else ''}"
        f"{' + antialias' if args.antialias else ''}; repeats={args.repeats}"
    )
    print(
        f"minimum bytes: {w.in_elems / 1e6:.1f} MB crop regions read + {w.out_bytes / 1e6:.1f} MB written = {minimum / 1e6:.1f} MB"
    )
    bandwidth = copy_bandwidth(device) if device.type == "cuda" else None
    if bandwidth is not None:
        print(f"device-to-device copy bandwidth (clone of 1 GiB): {bandwidth / 1e9:.0f} GB/s")
    return bandwidth


def time_rows(
    rows: list[tuple[str, Callable[[Workload], torch.Tensor]]],
    w: Workload,
    repeats: int,
    bandwidth: float | None,
) -> dict[str, tuple[float, float]]:
    """Time every row and print the table: per implementation, times, speed-up over the torch chain and
    modelled bytes. Returns (median, min) seconds per row."""
    minimum = w.in_elems + w.out_bytes
    header = f"| {'implementation':<15} | {'median ms':>9} | {'min ms':>8} | {'vs chain':>8} | {'bytes (model)':>13} | {'x minimum':>9} |"
    if bandwidth is not None:
        header += f" {'GB/s (min bytes)':>16} | {'% of copy':>9} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    results = {name: time_it(fn, w, repeats) for name, fn in rows}
    chain = results.get("torch chain", (float("nan"),))[0]
    for name, (median, best) in results.items():
        moved = modelled_bytes(name, w)
        vs_chain = f"{chain / median:.2f}x" if chain == chain else "n/a"  # NaN without a chain row
        line = (
            f"| {name:<15} | {median * 1e3:>9.1f} | {best * 1e3:>8.1f} | {vs_chain:>8} | "
            f"{moved / 1e6:>10.0f} MB | {moved / minimum:>8.2f}x |"
        )
        if bandwidth is not None:
            gbs = minimum / median / 1e9
            line += f" {gbs:>16.0f} | {100 * gbs * 1e9 / bandwidth:>8.0f}% |"
        print(line)
    return results


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    w = make_workload(args, device)

    rows: list[tuple[str, Callable[[Workload], torch.Tensor]]] = [
        ("fused op", fused),
        ("reference", reference),
    ]
    if not args.jitter:  # the unfused pipelines below have no jitter
        rows += [("torch chain", torch_chain), ("torchvision v2", torchvision_v2)]
    rows = [r for r in rows if r[0] not in args.skip]

    bandwidth = print_workload(args, device, w)
    results = time_rows(rows, w, args.repeats, bandwidth)
    if "fused op" in results and "torch chain" in results:
        diff = (fused(w).float() - torch_chain(w).float()).abs().max().item()
        print(f"max |fused op - torch chain| in {args.dtype}: {diff:.3g}")


if __name__ == "__main__":
    main()
