"""vidloader.ops with ``antialias=True``: the reference against ``F.interpolate(..., antialias=True)``, the
Triton kernel against the reference (under the Triton interpreter in a subprocess on CPU, for real on CUDA),
opcheck, torch.compile and validation, for the dense and the ragged op.

Run as a script (``TRITON_INTERPRET=1 python tests/test_ops_antialias.py``) this file is the child process of
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
from hypothesis import given, settings
from hypothesis import strategies as st

from vidloader._errors import ConfigError
from vidloader.ops import (
    RaggedClips,
    backend_for,
    clip_resized_crop_normalize,
    clip_resized_crop_normalize_ragged,
    ragged_resized_crop_normalize_reference,
    resized_crop_normalize_reference,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)
_MANTISSA_BITS = {torch.float16: 10, torch.bfloat16: 7}
_ULP_FLOOR = 1e-6  # as in test_ops.py: float32 evaluation noise of values up to ~5


def random_clips(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)


def interpolate_aa(clip: torch.Tensor, box: list[int], size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` cropped to ``box`` and resized by torch's antialiased bilinear: ``[T, 3, h, w]``."""
    y0, x0, h, w = box
    # Channels-last on purpose: from contiguous NCHW input torch 2.11's CPU kernel gets one-column outputs
    # wrong when the height changes (the GEOMETRY cases of width 1 check that the op does not).
    crop = clip[:, y0 : y0 + h, x0 : x0 + w, :].float().permute(0, 3, 1, 2)
    assert crop.is_contiguous(memory_format=torch.channels_last)
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=True)


def max_error(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    """Max abs error for float32; for float16/bfloat16 the max error in ulps of ``dtype`` at that value."""
    a, e = actual.detach().cpu().float(), expected.detach().cpu().float()
    if dtype == torch.float32:
        return float((a - e).abs().max())
    mag = torch.maximum(a.abs(), e.abs()).clamp_min(torch.finfo(dtype).smallest_normal)
    _, exponent = torch.frexp(mag)
    ulp = torch.ldexp(torch.ones_like(mag), exponent - 1 - _MANTISSA_BITS[dtype]).clamp_min(_ULP_FLOOR)
    return float(((a - e).abs() / ulp).max())


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    """float32 within 1e-5 absolute; float16/bfloat16 within one ulp of the output type."""
    assert actual.dtype == dtype and actual.shape == expected.shape
    err = max_error(actual, expected, dtype)
    limit = 1e-5 if dtype == torch.float32 else 1.0
    assert err <= limit, f"max error {err:.3g} > {limit}"
    return err


# Odd frames, crops touching the borders; downscale factors 37/11, 53/17, 4.3, 10.2 and 1.5 (non-integer),
# exactly 2, 1 (no change), upscaling, one axis down while the other goes up, and one-column outputs.
GEOMETRY = [
    ((37, 53), [0, 0, 37, 53], (11, 17)),
    ((37, 53), [3, 5, 30, 41], (7, 29)),
    ((64, 9), [1, 0, 61, 9], (6, 9)),
    ((31, 45), [1, 0, 30, 45], (15, 30)),
    ((20, 30), [0, 0, 20, 30], (40, 12)),
    ((9, 13), [0, 0, 9, 13], (9, 13)),
    ((9, 13), [2, 3, 5, 7], (13, 17)),
    ((9, 13), [0, 0, 9, 13], (4, 1)),
    ((9, 13), [2, 3, 5, 1], (7, 1)),
]


@pytest.mark.parametrize(("frame", "box", "size"), GEOMETRY, ids=[f"{g[1]}->{g[2]}" for g in GEOMETRY])
def test_reference_is_interpolate_antialias(
    device: str, frame: tuple[int, int], box: list[int], size: tuple[int, int]
) -> None:
    # mean 0, std 1: the output is the resized crop / 255. The contract is 1/255 (one uint8 level); the
    # measured error is float32 rounding, ~1e-7.
    video = random_clips((1, 3, *frame, 3), seed=sum(box))
    out = clip_resized_crop_normalize(
        video.to(device), torch.tensor([box]), size, None, (0, 0, 0), (1, 1, 1), antialias=True
    )
    expected = interpolate_aa(video[0], box, size).permute(1, 0, 2, 3) / 255
    err = float((out[0].cpu() - expected).abs().max())
    assert err <= 1 / 255
    assert err < 1e-6


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_reference_antialias_random_geometry(data: st.DataObject) -> None:
    # Any box (1-pixel ones and full frames included) and any output size, with flips and normalisation.
    h_img, w_img = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    bh, bw = data.draw(st.integers(1, h_img)), data.draw(st.integers(1, w_img))
    box = [data.draw(st.integers(0, h_img - bh)), data.draw(st.integers(0, w_img - bw)), bh, bw]
    size = (data.draw(st.integers(1, 25)), data.draw(st.integers(1, 25)))
    flip = data.draw(st.booleans())
    video = random_clips((1, 2, h_img, w_img, 3), seed=data.draw(st.integers(0, 1000)))
    out = clip_resized_crop_normalize(
        video, torch.tensor([box]), size, torch.tensor([flip]), MEAN, STD, antialias=True
    )
    x = interpolate_aa(video[0], box, size) / 255
    x = (x.flip(-1) if flip else x) - torch.tensor(MEAN).view(1, 3, 1, 1)
    assert_matches(out[0], (x / torch.tensor(STD).view(1, 3, 1, 1)).permute(1, 0, 2, 3), torch.float32)


def test_antialias_changes_downscaling_only(device: str) -> None:
    # Upscaling (box no larger than the output on either axis): antialias changes nothing.
    video = random_clips((2, 2, 12, 15, 3), seed=3).to(device)
    boxes = torch.tensor([[0, 0, 12, 15], [2, 3, 7, 9]])
    up = [
        clip_resized_crop_normalize(video, boxes, (17, 21), None, MEAN, STD, antialias=a)
        for a in (False, True)
    ]
    assert_matches(up[1], up[0], torch.float32)
    # Downscaling a 1-pixel checkerboard 3x: plain bilinear samples single pixels (aliasing: 0 or 255),
    # antialiasing averages it to mid-grey (0.5 +- 1/162).
    board = ((torch.arange(33)[:, None] + torch.arange(33)[None, :]) % 2 * 255).to(torch.uint8)
    video = board[None, None, :, :, None].expand(1, 1, 33, 33, 3).contiguous().to(device)
    box = torch.tensor([[0, 0, 33, 33]])
    plain, smooth = (
        clip_resized_crop_normalize(video, box, 11, None, (0, 0, 0), (1, 1, 1), antialias=a)
        for a in (False, True)
    )
    assert float((smooth - 0.5).abs().max()) < 0.01
    assert float((plain - 0.5).abs().min()) == 0.5
    # The default is antialias=False, bit for bit.
    default = clip_resized_crop_normalize(video, box, 11, None, (0, 0, 0), (1, 1, 1))
    assert torch.equal(default, plain)


def test_ragged_antialias_equals_dense_per_clip(device: str) -> None:
    # Each clip of a ragged batch, letterbox rectangle included, is the dense op on that clip alone.
    sizes = [(37, 53), (41, 18), (9, 9)]
    clips = [random_clips((2, h, w, 3), seed=i) for i, (h, w) in enumerate(sizes)]
    boxes = torch.tensor([[0, 0, 37, 53], [3, 1, 30, 17], [4, 4, 5, 5]])
    dest = torch.tensor([[0, 0, 10, 13], [0, 4, 10, 5], [2, 2, 6, 9]])
    flip = torch.tensor([False, True, True])
    batch = RaggedClips.from_clips(clips).to(device)
    out = clip_resized_crop_normalize_ragged(
        batch, boxes, (10, 13), flip, MEAN, STD, dest=dest, antialias=True, layout="NTHWC"
    )
    for n, (dy, dx, dh, dw) in enumerate(dest.tolist()):
        alone = clip_resized_crop_normalize(clips[n][None], boxes[n : n + 1], (dh, dw), None, MEAN, STD,
                                            antialias=True, layout="NTHWC")  # fmt: skip
        x0 = 13 - dx - dw if bool(flip[n]) else dx
        picture = out[n, :, dy : dy + dh, x0 : x0 + dw].cpu()
        assert_matches(picture.flip(-2) if bool(flip[n]) else picture, alone[0], torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# The Triton kernel under the interpreter (child process) and on CUDA.


def _interpreter_cases() -> list[dict[str, Any]]:
    """Tiny cases (the interpreter pays per program and per tap): dense and ragged, every dtype and layout,
    jitter, letterbox, views, down- and upscaling on each axis, a one-column output and one spanning two
    tiles."""
    dense = {"shape": (2, 2, 19, 23), "boxes": [[0, 0, 19, 23], [3, 9, 13, 14]], "flip": [False, True]}
    ragged = {
        "sizes": [(19, 23), (11, 5), (3, 3)],
        "boxes": [[0, 0, 19, 23], [2, 1, 9, 4], [1, 0, 2, 3]],
        "flip": [False, True, True],
        "dest": [[0, 0, 6, 11], [1, 3, 4, 6], [5, 10, 1, 1]],
    }
    jitter = [[1.3, 0.6, 1.5], [0.7, 1.4, 0.3], [1.0, 2.0, 0.0]]
    return [
        {**dense, "size": (6, 11), "dtype": "float32", "layout": "NCTHW"},
        {**dense, "size": (5, 1), "dtype": "float32", "layout": "NTHWC"},
        {**dense, "size": (7, 31), "dtype": "float16", "layout": "NTHWC", "jitter": jitter[:2]},
        {**dense, "size": (6, 70), "dtype": "bfloat16", "layout": "NCTHW", "views": 2,
         "boxes": [*dense["boxes"], [0, 0, 5, 23], [18, 22, 1, 1]], "flip": [True, False, False, True]},
        {**ragged, "size": (6, 11), "dtype": "float32", "layout": "NTHWC", "jitter": jitter},
        {**ragged, "size": (6, 11), "dtype": "bfloat16", "layout": "NCTHW", "dest": None},
    ]  # fmt: skip


def _run_case(case: dict[str, Any], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """One case through the op (the kernel under the interpreter) and the reference."""
    dtype = getattr(torch, case["dtype"])
    boxes, flip = torch.tensor(case["boxes"]), torch.tensor(case["flip"])
    jitter = torch.tensor(case["jitter"], dtype=torch.float32) if "jitter" in case else None
    views = case.get("views", 1)
    kw: dict[str, Any] = {"out_dtype": dtype, "layout": case["layout"], "jitter": jitter, "views": views}
    row_args = (list(case["size"]), flip, list(MEAN), list(STD), dtype, case["layout"], jitter, views)
    if "shape" in case:
        video = random_clips((*case["shape"], 3), seed)
        out = clip_resized_crop_normalize(video, boxes, case["size"], flip, MEAN, STD, antialias=True, **kw)
        return out, resized_crop_normalize_reference(video, boxes, *row_args, antialias=True), dtype
    batch = RaggedClips.from_clips(
        [random_clips((2, h, w, 3), seed + i) for i, (h, w) in enumerate(case["sizes"])]
    )
    dest = None if case["dest"] is None else torch.tensor(case["dest"])
    out = clip_resized_crop_normalize_ragged(
        batch, boxes, case["size"], flip, MEAN, STD, dest=dest, antialias=True, **kw
    )
    ref = ragged_resized_crop_normalize_reference(
        batch.data, batch.geometry(), batch.frames, boxes, *row_args, dest, antialias=True
    )
    return out, ref, dtype


def _run_interpreter_cases() -> list[dict[str, Any]]:
    """Child-process body: every case through the interpreted kernel, checked against the reference."""
    assert backend_for(torch.device("cpu")) == "triton", "TRITON_INTERPRET=1 must route CPU tensors to Triton"
    results = []
    for i, case in enumerate(_interpreter_cases()):
        out, ref, dtype = _run_case(case, seed=20 + i)
        results.append({"case": i, "vs_reference": assert_matches(out, ref, dtype)})
    assert "vidloader.ops._kernels" in sys.modules, "the Triton kernel module was never used"
    return results


@pytest.mark.slow
def test_antialias_kernel_matches_reference_under_triton_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"interpreter child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(_interpreter_cases())
    # The reference is torch's own kernel; the Triton one re-derives its weights and sums the taps in torch's
    # order, so in float32 they agree to rounding noise (a few 1e-7).
    float32 = [
        r["vs_reference"]
        for r, c in zip(results, _interpreter_cases(), strict=True)
        if c["dtype"] == "float32"
    ]
    assert max(float32) < 3e-6


@pytest.mark.cuda
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_antialias_kernel_matches_reference_on_cuda(out_dtype: torch.dtype) -> None:
    video = random_clips((4, 8, 240, 135, 3), seed=5).cuda()
    boxes = torch.tensor([[0, 0, 240, 135], [7, 20, 200, 100], [0, 0, 64, 64], [0, 0, 1, 9]])
    flip = torch.tensor([True, False, True, False])
    rows = ([56, 72], flip.cuda(), list(MEAN), list(STD), out_dtype, "NCTHW", None, 1)
    out = clip_resized_crop_normalize(
        video, boxes, (56, 72), flip, MEAN, STD, out_dtype=out_dtype, antialias=True
    )
    ref = resized_crop_normalize_reference(video, boxes.cuda(), *rows, antialias=True)
    assert backend_for(video.device) == "triton"
    assert_matches(out, ref, out_dtype)
    batch = RaggedClips.from_clips([video[0], video[1, :, :100, :61].contiguous(), video[2], video[3]])
    boxes[1] = torch.tensor([3, 2, 90, 50])
    dest = torch.tensor([[0, 0, 56, 72], [0, 20, 56, 31], [4, 4, 40, 60], [0, 0, 56, 72]])
    out = clip_resized_crop_normalize_ragged(
        batch, boxes, (56, 72), flip, MEAN, STD, out_dtype=out_dtype, dest=dest, antialias=True
    )
    ref = ragged_resized_crop_normalize_reference(
        batch.data, batch.geometry().cuda(), 8, boxes.cuda(), *rows, dest.cuda(), antialias=True
    )
    assert_matches(out, ref, out_dtype)


# ---------------------------------------------------------------------------------------------------------------
# Registration and validation.


def test_opcheck_antialias(device: str) -> None:
    video = random_clips((2, 2, 19, 12, 3), seed=6).to(device)
    boxes = torch.tensor([[0, 0, 19, 12], [2, 3, 14, 5]]).to(device)
    flip = torch.tensor([True, False]).to(device)
    rows = ([5, 7], flip, list(MEAN), list(STD), torch.float16, "NTHWC", None, 1)
    torch.library.opcheck(
        torch.ops.vidloader.clip_resized_crop_normalize.default, (video, boxes, *rows, True)
    )
    batch = RaggedClips.from_clips([video[0], video[1, :, :7, :5].contiguous()])
    boxes = torch.tensor([[0, 0, 19, 12], [2, 1, 4, 3]]).to(device)
    dest = torch.tensor([[0, 0, 5, 7], [1, 1, 3, 4]]).to(device)
    args = (batch.data, batch.geometry().to(device), 2, boxes, *rows, dest, True)
    torch.library.opcheck(torch.ops.vidloader.clip_resized_crop_normalize_ragged.default, args)


@pytest.mark.slow
def test_antialias_torch_compile_fullgraph() -> None:
    video = random_clips((2, 2, 20, 24, 3), seed=7)
    boxes = torch.tensor([[0, 0, 20, 24], [3, 4, 15, 16]])
    flip = torch.tensor([False, True])

    def fn(v: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return clip_resized_crop_normalize(
            v, b, (6, 8), f, MEAN, STD, out_dtype=torch.float16, antialias=True
        )

    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)
    assert torch.equal(compiled(video, boxes, flip), fn(video, boxes, flip))


def test_antialias_must_be_a_bool() -> None:
    video = random_clips((1, 1, 4, 4, 3), seed=0)
    box = torch.tensor([[0, 0, 4, 4]])
    with pytest.raises(ConfigError, match=r"antialias must be True or False, got 'yes'"):
        clip_resized_crop_normalize(video, box, 2, None, MEAN, STD, antialias="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"antialias must be True or False, got 1"):
        clip_resized_crop_normalize_ragged(
            RaggedClips.from_batch(video),
            box,
            2,
            None,
            MEAN,
            STD,
            antialias=1,  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    print(json.dumps(_run_interpreter_cases()))
