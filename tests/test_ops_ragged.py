"""vidloader.ops ragged op: clips of mixed frame sizes in one launch, against the per-clip unfused chain and
the reference (the Triton kernel under the interpreter in a subprocess on CPU, for real on CUDA), letterbox
destinations, opcheck, torch.compile and validation.

Run as a script (``TRITON_INTERPRET=1 python tests/test_ops_ragged.py``) this file is the child process of
the interpreter test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vidloader._errors import ConfigError
from vidloader.ops import (
    RaggedClips,
    backend_for,
    clip_resized_crop_normalize_ragged,
    ragged_resized_crop_normalize_reference,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ["NCTHW", "NTHWC"]
_MANTISSA_BITS = {torch.float16: 10, torch.bfloat16: 7}
_ULP_FLOOR = 1e-6  # as in test_ops.py: float32 evaluation noise of values up to ~5

# Odd sizes, portrait and landscape and a square, one clip of 1 pixel height.
SIZES = [(37, 53), (41, 18), (9, 9), (1, 7)]
BOXES = torch.tensor([[0, 0, 37, 53], [3, 1, 30, 17], [4, 4, 5, 5], [0, 2, 1, 5]])
FLIP = torch.tensor([False, True, True, False])
JITTER = torch.tensor([[1.3, 0.6, 1.5], [0.7, 1.4, 0.3], [1.0, 2.0, 0.0], [1.1, 0.9, 1.2]])
OUT = (24, 31)
# Letterbox rectangles on the 24x31 canvas: full, centred narrow, top-left, a 1x1 dot.
DEST = torch.tensor([[0, 0, 24, 31], [0, 10, 24, 11], [0, 0, 5, 7], [23, 30, 1, 1]])


def ragged(sizes: list[tuple[int, int]], t: int, seed: int = 0) -> tuple[RaggedClips, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    clips = [torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=g) for h, w in sizes]
    return RaggedClips.from_clips(clips), clips


def plain_chain(
    clips: list[torch.Tensor],
    boxes: torch.Tensor,
    size: tuple[int, int],
    flip: torch.Tensor,
    layout: str,
    jitter: torch.Tensor | None = None,
    views: int = 1,
    dest: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per output row, unfused in float32: crop -> interpolate into the rectangle -> canvas -> flip -> ..."""
    outs = []
    for n, (y0, x0, h, w) in enumerate(boxes.tolist()):
        clip = clips[n // views][:, y0 : y0 + h, x0 : x0 + w, :].float().permute(0, 3, 1, 2)
        dy, dx, dh, dw = dest[n].tolist() if dest is not None else (0, 0, *size)
        x = F.interpolate(clip, size=(dh, dw), mode="bilinear", align_corners=False, antialias=False) / 255
        if jitter is not None:
            from torchvision.transforms.v2 import functional as TF

            b, c, s = jitter[n].tolist()
            x = TF.adjust_brightness(x, b)
            x = (c * x + (1.0 - c) * TF.rgb_to_grayscale(x).mean()).clamp(0, 1)
            x = TF.adjust_saturation(x, s)
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        canvas = torch.zeros((x.shape[0], 3, *size))
        canvas[:, :, dy : dy + dh, dx : dx + dw] = x
        if bool(flip[n]):
            canvas = canvas.flip(-1)
        outs.append(canvas.permute(1, 0, 2, 3) if layout == "NCTHW" else canvas.permute(0, 2, 3, 1))
    return torch.stack(outs)


def max_error(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    a, e = actual.detach().cpu().float(), expected.detach().cpu().float()
    if dtype == torch.float32:
        return float((a - e).abs().max())
    mag = torch.maximum(a.abs(), e.abs()).clamp_min(torch.finfo(dtype).smallest_normal)
    _, exponent = torch.frexp(mag)
    ulp = torch.ldexp(torch.ones_like(mag), exponent - 1 - _MANTISSA_BITS[dtype]).clamp_min(_ULP_FLOOR)
    return float(((a - e).abs() / ulp).max())


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    """float32 within 1e-5 absolute; float16/bfloat16 within one ulp of the output type."""
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    err = max_error(actual, expected, dtype)
    limit = 1e-5 if dtype == torch.float32 else 1.0
    assert err <= limit, f"max error {err:.3g} > {limit}"
    return err


@pytest.mark.parametrize("letterbox", [False, True], ids=["fill", "letterbox"])
@pytest.mark.parametrize("with_jitter", [False, True], ids=["plain", "jitter"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("out_dtype", DTYPES, ids=str)
def test_ragged_op_matches_per_clip_chain(
    device: str, out_dtype: torch.dtype, layout: str, with_jitter: bool, letterbox: bool
) -> None:
    batch, clips = ragged(SIZES, 5, seed=1)
    jitter = JITTER if with_jitter else None
    dest = DEST if letterbox else None
    out = clip_resized_crop_normalize_ragged(
        batch.to(device),
        BOXES,
        OUT,
        FLIP,
        MEAN,
        STD,
        out_dtype=out_dtype,
        layout=layout,
        jitter=jitter,
        dest=dest,
    )
    assert out.device.type == device
    assert_matches(out, plain_chain(clips, BOXES, OUT, FLIP, layout, jitter, dest=dest), out_dtype)
    assert float(out.float().std()) > 0.3


def test_ragged_equals_uniform_op_on_a_uniform_batch() -> None:
    # A uniform batch given as ragged clips must give the uniform op's result bit for bit.
    from vidloader.ops import clip_resized_crop_normalize

    g = torch.Generator().manual_seed(3)
    video = torch.randint(0, 256, (3, 4, 19, 23, 3), dtype=torch.uint8, generator=g)
    boxes = torch.tensor([[0, 0, 19, 23], [2, 3, 11, 17], [18, 0, 1, 23]])
    flip = torch.tensor([True, False, True])
    got = clip_resized_crop_normalize_ragged(RaggedClips.from_batch(video), boxes, (8, 9), flip, MEAN, STD)
    assert torch.equal(got, clip_resized_crop_normalize(video, boxes, (8, 9), flip, MEAN, STD))


def test_ragged_views_and_letterbox_bars(device: str) -> None:
    batch, clips = ragged([(20, 30), (31, 12)], 3, seed=4)
    boxes = torch.tensor([[0, 0, 20, 20], [0, 10, 20, 20], [0, 0, 12, 12], [19, 0, 12, 12]])
    dest = torch.tensor([[0, 0, 9, 14], [2, 0, 5, 14], [0, 3, 9, 8], [0, 0, 9, 14]])
    flip = torch.tensor([False, True, True, False])
    out = clip_resized_crop_normalize_ragged(
        batch.to(device), boxes, (9, 14), flip, MEAN, STD, layout="NTHWC", views=2, dest=dest
    )
    assert out.shape == (4, 3, 9, 14, 3)
    assert_matches(out, plain_chain(clips, boxes, (9, 14), flip, "NTHWC", views=2, dest=dest), torch.float32)
    # Bars are exactly 0 (the mean colour after normalising): rows 0-1 and 7-8 of output 1, and the columns
    # left of the picture of output 2 as mirrored by its flip (14 - 3 - 8 = 3 columns on each side).
    assert torch.all(out[1, :, :2] == 0) and torch.all(out[1, :, 7:] == 0)
    assert torch.all(out[2, :, :, :3] == 0) and torch.all(out[2, :, :, 11:] == 0)
    assert not torch.all(out[2, :, :, 3:11] == 0)


def test_cpu_backend_is_the_reference() -> None:
    assert os.environ.get("TRITON_INTERPRET") != "1"
    assert backend_for(torch.device("cpu")) == "reference"


# ---------------------------------------------------------------------------------------------------------------
# The Triton kernel under the interpreter (child process).


def _interpreter_cases() -> list[dict[str, Any]]:
    """Tiny cases (the interpreter pays ~0.1 s per 8x64 tile): every dtype x layout, jitter, letterbox,
    views, and a 2x2-tile output with partial tiles."""
    base = {
        "sizes": [(9, 13), (11, 5), (3, 3)],
        "boxes": [[0, 0, 9, 13], [2, 1, 9, 4], [1, 0, 2, 3]],
        "flip": [False, True, True],
        "size": (7, 13),
    }
    boxed = {"dest": [[0, 0, 7, 13], [1, 3, 5, 6], [6, 12, 1, 1]]}
    jitter = {"jitter": [[1.3, 0.6, 1.5], [0.7, 1.4, 0.3], [1.0, 2.0, 0.0]]}
    cases = [
        {**base, "dtype": d, "layout": lay, **(jitter if j else {}), **(boxed if b else {})}
        for d in ("float32", "float16", "bfloat16")
        for lay in LAYOUTS
        for j, b in ((False, False), (True, True))
    ]
    views = {
        "sizes": [(9, 13), (13, 9)],
        "boxes": [[0, 0, 9, 9], [0, 4, 9, 9], [0, 0, 9, 9], [4, 0, 9, 9]],
        "flip": [True, False, False, True],
        "size": (5, 11),
        "views": 2,
        "dest": [[0, 3, 5, 5], [0, 0, 5, 11], [0, 0, 5, 11], [0, 3, 5, 5]],
    }
    tiles = {"sizes": [(6, 9)], "boxes": [[1, 1, 5, 8]], "flip": [True], "size": (10, 70)}
    return [
        *cases,
        {**views, "dtype": "float16", "layout": "NTHWC", **{"jitter": jitter["jitter"] + [[0.9, 1.1, 1.2]]}},
        {**tiles, "dtype": "bfloat16", "layout": "NCTHW"},
    ]


def _run_interpreter_cases() -> list[dict[str, Any]]:
    assert backend_for(torch.device("cpu")) == "triton", "TRITON_INTERPRET=1 must route CPU tensors to Triton"
    results = []
    for i, case in enumerate(_interpreter_cases()):
        dtype = getattr(torch, case["dtype"])
        batch, _ = ragged(case["sizes"], 2, seed=10 + i)
        boxes, flip = torch.tensor(case["boxes"]), torch.tensor(case["flip"])
        jitter = torch.tensor(case["jitter"], dtype=torch.float32) if "jitter" in case else None
        dest = torch.tensor(case["dest"]) if "dest" in case else None
        views = case.get("views", 1)
        out = clip_resized_crop_normalize_ragged(
            batch, boxes, case["size"], flip, MEAN, STD, out_dtype=dtype, layout=case["layout"],
            jitter=jitter, views=views, dest=dest,
        )  # fmt: skip
        ref = ragged_resized_crop_normalize_reference(
            batch.data, batch.geometry(), batch.frames, boxes, list(case["size"]), flip, list(MEAN),
            list(STD), dtype, case["layout"], jitter, views, dest,
        )  # fmt: skip
        results.append({"case": i, "vs_reference": assert_matches(out, ref, dtype)})
    assert "vidloader.ops._kernels" in sys.modules, "the Triton kernel module was never used"
    return results


@pytest.mark.slow
def test_ragged_kernel_matches_reference_under_triton_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"interpreter child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(_interpreter_cases())
    float32 = [
        r["vs_reference"]
        for r, c in zip(results, _interpreter_cases(), strict=True)
        if c["dtype"] == "float32"
    ]
    assert max(float32) < 3e-6


@pytest.mark.cuda
@pytest.mark.parametrize("with_jitter", [False, True], ids=["plain", "jitter"])
@pytest.mark.parametrize("out_dtype", DTYPES, ids=str)
def test_ragged_kernel_matches_reference_on_cuda(out_dtype: torch.dtype, with_jitter: bool) -> None:
    batch, _ = ragged([(120, 161), (240, 135), (64, 64), (1, 9)], 8, seed=5)
    boxes = torch.tensor([[0, 0, 120, 161], [7, 20, 200, 100], [0, 0, 64, 64], [0, 0, 1, 9]])
    flip = torch.tensor([True, False, True, False])
    dest = torch.tensor([[0, 0, 64, 96], [0, 24, 64, 48], [4, 4, 56, 88], [0, 0, 64, 96]])
    jitter = JITTER if with_jitter else None
    cuda = batch.to("cuda")
    out = clip_resized_crop_normalize_ragged(
        cuda, boxes, (64, 96), flip, MEAN, STD, out_dtype=out_dtype, jitter=jitter, dest=dest
    )
    ref = ragged_resized_crop_normalize_reference(
        cuda.data, cuda.geometry().cuda(), 8, boxes.cuda(), [64, 96], flip.cuda(), list(MEAN), list(STD),
        out_dtype, "NCTHW", None if jitter is None else jitter.cuda(), 1, dest.cuda(),
    )  # fmt: skip
    assert backend_for(cuda.device) == "triton"
    assert_matches(out, ref, out_dtype)


# ---------------------------------------------------------------------------------------------------------------
# Registration.


@pytest.mark.parametrize("variant", ["fp16-NTHWC", "bf16-NCTHW-jitter-views-dest"])
def test_opcheck_ragged(device: str, variant: str) -> None:
    batch, _ = ragged([(9, 12), (7, 5)], 2, seed=6)
    batch = batch.to(device)
    geo = batch.geometry().to(device)
    if variant == "fp16-NTHWC":
        boxes, flip = torch.tensor([[0, 0, 9, 12], [2, 3, 4, 2]]), torch.tensor([True, False])
        args = (batch.data, geo, 2, boxes.to(device), [5, 7], flip.to(device), list(MEAN), list(STD),
                torch.float16, "NTHWC", None, 1, None)  # fmt: skip
    else:
        boxes = torch.tensor([[0, 0, 9, 9], [0, 3, 9, 9], [1, 1, 3, 3], [0, 0, 7, 5]])
        flip = torch.tensor([True, False, True, False])
        dest = torch.tensor([[0, 0, 6, 4], [1, 0, 4, 4], [0, 1, 6, 2], [0, 0, 6, 4]])
        args = (batch.data, geo, 2, boxes.to(device), [6, 4], flip.to(device), list(MEAN), list(STD),
                torch.bfloat16, "NCTHW", JITTER.to(device), 2, dest.to(device))  # fmt: skip
    torch.library.opcheck(torch.ops.vidloader.clip_resized_crop_normalize_ragged.default, args)


@pytest.mark.slow
def test_ragged_torch_compile_fullgraph() -> None:
    batch, _ = ragged([(10, 12), (13, 7)], 2, seed=7)
    boxes = torch.tensor([[0, 0, 10, 12], [3, 1, 5, 6]])
    flip = torch.tensor([False, True])
    geo = batch.geometry()

    def fn(data: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return (
            torch.ops.vidloader.clip_resized_crop_normalize_ragged(
                data, geo, 2, b, [6, 8], f, list(MEAN), list(STD), torch.float16, "NCTHW", None, 1, None
            )
            * 2
        )

    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)
    got = compiled(batch.data, boxes, flip)
    assert torch.equal(got, fn(batch.data, boxes, flip))


# ---------------------------------------------------------------------------------------------------------------
# Validation and the container.


def test_ragged_container() -> None:
    batch, clips = ragged([(3, 5), (4, 2)], 2)
    assert len(batch) == 2 and batch.heights == [3, 4] and batch.widths == [5, 2]
    assert batch.offsets == (0, 2 * 3 * 5 * 3)
    assert torch.equal(batch.clip(1), clips[1])
    assert torch.equal(batch.select([1]).clip(0), clips[1])
    assert batch.geometry().tolist() == [[0, 3, 5], [90, 4, 2]]
    assert "sizes=((3, 5), (4, 2))" in repr(batch)
    with pytest.raises(ConfigError, match="different frame counts"):
        RaggedClips.from_clips([clips[0], clips[1][:1]])
    with pytest.raises(ConfigError, match="need 138"):
        RaggedClips(data=torch.zeros(10, dtype=torch.uint8), sizes=((3, 5), (4, 2)), frames=2)
    with pytest.raises(ConfigError, match=r"sizes contains \(0, 5\)"):
        RaggedClips(data=torch.zeros(0, dtype=torch.uint8), sizes=((0, 5),), frames=2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"boxes": torch.tensor([[0, 0, 3, 5], [1, 0, 4, 2]])}, r"boxes\[1\]=\(y0=1.*4x2 area.*y0 \+ h <= 4"),
        ({"boxes": torch.tensor([[0, 0, 3, 5]])}, r"boxes has shape \(1, 4\); need \[2, 4\]"),
        ({"boxes": torch.tensor([[0, 0, 3, 5], [0, 0, 4, 2]], dtype=torch.int32)}, r"int64"),
        ({"dest": torch.tensor([[0, 0, 4, 6], [0, 1, 4, 6]])}, r"dest\[1\].*4x6 area.*x0 \+ w <= 6"),
        ({"clips": torch.zeros(2, 2, 3, 5, 3, dtype=torch.uint8)}, r"must be a vidloader\.ops\.RaggedClips"),
        ({"flip": torch.tensor([True])}, r"flip has shape \(1,\)"),
    ],
)
def test_ragged_bad_arguments(overrides: dict[str, Any], message: str) -> None:
    batch, _ = ragged([(3, 5), (4, 2)], 2)
    kwargs: dict[str, Any] = {
        "clips": batch,
        "boxes": torch.tensor([[0, 0, 3, 5], [0, 0, 4, 2]]),
        "size": (4, 6),
        "flip": None,
        "mean": MEAN,
        "std": STD,
    }
    kwargs.update(overrides)
    with pytest.raises(ConfigError, match=message):
        clip_resized_crop_normalize_ragged(**kwargs)


if __name__ == "__main__":
    print(json.dumps(_run_interpreter_cases()))
