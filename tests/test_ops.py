"""vidloader.ops: the reference against a plain torch chain, the Triton kernel against the reference (under the
Triton interpreter in a subprocess on CPU, for real on CUDA), op registration (opcheck, torch.compile) and
argument validation.

Run as a script (``TRITON_INTERPRET=1 python tests/test_ops.py``) this file is the child process of
the interpreter tests: TRITON_INTERPRET must be set before triton is imported, so it cannot run in-process.
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
    backend_for,
    clip_color_jitter,
    clip_resized_crop_normalize,
    resized_crop_normalize_reference,
    tube_mask,
)

# torch's inductor import warns about its own use of torch.jit.script_method; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ["NCTHW", "NTHWC"]
_MANTISSA_BITS = {torch.float16: 10, torch.bfloat16: 7}


def random_video(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), dtype=torch.uint8, generator=g)


def plain_chain(
    video: torch.Tensor,
    boxes: torch.Tensor,
    size: tuple[int, int],
    flip: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    layout: str,
    jitter: torch.Tensor | None = None,
    views: int = 1,
) -> torch.Tensor:
    """The unfused definition, in float32: crop -> F.interpolate -> flip -> /255 -> jitter -> normalise -> permute."""
    video = video.cpu()
    outs = []
    for n, (y0, x0, h, w) in enumerate(boxes.tolist()):
        clip = video[n // views, :, y0 : y0 + h, x0 : x0 + w, :].float().permute(0, 3, 1, 2)
        x = F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=False)
        if bool(flip[n]):
            x = x.flip(-1)
        x = x / 255
        if jitter is not None:
            from torchvision.transforms.v2 import functional as TF  # lazy: 2 s of import for the child

            b, c, s = jitter[n].tolist()
            x = TF.adjust_brightness(x, b)
            # torchvision's adjust_contrast, except the mean grey is over the whole clip, not per frame.
            x = (c * x + (1.0 - c) * TF.rgb_to_grayscale(x).mean()).clamp(0, 1)
            x = TF.adjust_saturation(x, s)
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        outs.append(x.permute(1, 0, 2, 3) if layout == "NCTHW" else x.permute(0, 2, 3, 1))
    return torch.stack(outs)


# Any float32 evaluation of the normalised values (magnitudes up to ~5) carries absolute rounding noise of a few
# 1e-7: the chain's own result is that far from the exact value. An ulp of float16 is smaller than this for
# |x| < ~1e-3, so "one ulp" is measured against max(ulp, this floor) there.
_ULP_FLOOR = 1e-6


def max_error(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    """Max abs error for float32; for float16/bfloat16 the max error in ulps of ``dtype`` at that value
    (an ulp no smaller than ``_ULP_FLOOR``)."""
    a, e = actual.detach().cpu().float(), expected.detach().cpu().float()
    if dtype == torch.float32:
        return float((a - e).abs().max())
    mag = torch.maximum(a.abs(), e.abs()).clamp_min(torch.finfo(dtype).smallest_normal)
    _, exponent = torch.frexp(mag)
    ulp = torch.ldexp(torch.ones_like(mag), exponent - 1 - _MANTISSA_BITS[dtype]).clamp_min(_ULP_FLOOR)
    return float(((a - e).abs() / ulp).max())


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> float:
    """float32 within 1e-5 absolute; float16/bfloat16 within one ulp of the output type (see _ULP_FLOOR)."""
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    err = max_error(actual, expected, dtype)
    limit = 1e-5 if dtype == torch.float32 else 1.0
    assert err <= limit, f"max error {err:.3g} > {limit} ({'abs' if dtype == torch.float32 else 'ulp'})"
    return err


# B=3, T=7, 37x53 frames; boxes: the full frame, one touching the top and right borders, one touching the bottom
# and left. The output (24, 31) is smaller than the first box and larger than the other two.
ODD_SHAPE = (3, 7, 37, 53)
ODD_BOXES = torch.tensor([[0, 0, 37, 53], [0, 33, 15, 20], [28, 0, 9, 30]])
ODD_FLIP = torch.tensor([False, True, True])
ODD_JITTER = torch.tensor([[1.3, 0.6, 1.5], [0.7, 1.4, 0.3], [1.0, 2.0, 0.0]])
ODD_SIZE = (24, 31)


@pytest.mark.parametrize("with_jitter", [False, True], ids=["plain", "jitter"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("out_dtype", DTYPES, ids=str)
def test_op_matches_plain_chain(device: str, out_dtype: torch.dtype, layout: str, with_jitter: bool) -> None:
    # On CPU the op runs the reference; on CUDA the Triton kernel. Both must match the unfused chain.
    video = random_video(*ODD_SHAPE, seed=1)
    jitter = ODD_JITTER if with_jitter else None
    out = clip_resized_crop_normalize(
        video.to(device),
        ODD_BOXES,
        ODD_SIZE,
        ODD_FLIP,
        MEAN,
        STD,
        out_dtype=out_dtype,
        layout=layout,
        jitter=jitter,
    )
    expected = plain_chain(video, ODD_BOXES, ODD_SIZE, ODD_FLIP, MEAN, STD, layout, jitter)
    assert out.device.type == device
    assert_matches(out, expected, out_dtype)
    # Guard against a vacuous pass: the output really varies and is not all clamped.
    assert float(out.float().std()) > 0.3


def test_reference_matches_plain_chain_directly() -> None:
    video = random_video(*ODD_SHAPE, seed=2)
    for layout in LAYOUTS:
        out = resized_crop_normalize_reference(
            video,
            ODD_BOXES,
            list(ODD_SIZE),
            ODD_FLIP,
            list(MEAN),
            list(STD),
            torch.float32,
            layout,
            ODD_JITTER,
            1,
        )
        assert_matches(
            out,
            plain_chain(video, ODD_BOXES, ODD_SIZE, ODD_FLIP, MEAN, STD, layout, ODD_JITTER),
            torch.float32,
        )


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_reference_matches_chain_random_geometry(data: st.DataObject) -> None:
    # Any box (1-pixel ones and full frames included) and any output size, up- or downsampling.
    h_img, w_img = data.draw(st.integers(1, 19)), data.draw(st.integers(1, 19))
    bh, bw = data.draw(st.integers(1, h_img)), data.draw(st.integers(1, w_img))
    y0, x0 = data.draw(st.integers(0, h_img - bh)), data.draw(st.integers(0, w_img - bw))
    size = (data.draw(st.integers(1, 25)), data.draw(st.integers(1, 25)))
    flip = torch.tensor([data.draw(st.booleans())])
    boxes = torch.tensor([[y0, x0, bh, bw]])
    video = random_video(1, 2, h_img, w_img, seed=data.draw(st.integers(0, 1000)))
    out = clip_resized_crop_normalize(video, boxes, size, flip, MEAN, STD, layout="NCTHW")
    assert_matches(out, plain_chain(video, boxes, size, flip, MEAN, STD, "NCTHW"), torch.float32)


def test_views_share_one_clip(device: str) -> None:
    # views=3: output row n comes from clip n // 3, each with its own box and flip, no copy of the video.
    video = random_video(2, 3, 20, 30, seed=3)
    boxes = torch.tensor(
        [[0, 0, 20, 20], [0, 5, 20, 20], [0, 10, 20, 20], [2, 3, 10, 12], [0, 0, 20, 30], [19, 29, 1, 1]]
    )
    flip = torch.tensor([False, True, False, True, False, True])
    out = clip_resized_crop_normalize(
        video.to(device), boxes, (9, 14), flip, MEAN, STD, out_dtype=torch.float32, layout="NTHWC", views=3
    )
    assert out.shape == (6, 3, 9, 14, 3)
    assert_matches(out, plain_chain(video, boxes, (9, 14), flip, MEAN, STD, "NTHWC", views=3), torch.float32)


def test_identity_geometry_and_exact_flip(device: str) -> None:
    # The full frame at its own size is a copy: out == video / 255 with mean 0, std 1.
    video = random_video(2, 4, 11, 17, seed=4)
    boxes = torch.tensor([[0, 0, 11, 17]] * 2)
    out = clip_resized_crop_normalize(video.to(device), boxes, (11, 17), None, (0, 0, 0), (1, 1, 1))
    expected = video.permute(0, 4, 1, 2, 3).float() / 255
    torch.testing.assert_close(out.cpu(), expected, atol=1e-7, rtol=0)
    # A flip is an exact mirror of the unflipped result, also when resampling.
    boxes = torch.tensor([[1, 2, 7, 9], [0, 0, 11, 17]])
    plain = clip_resized_crop_normalize(
        video.to(device), boxes, (13, 10), torch.tensor([False, False]), MEAN, STD
    )
    flipped = clip_resized_crop_normalize(
        video.to(device), boxes, (13, 10), torch.tensor([True, False]), MEAN, STD
    )
    assert torch.equal(flipped[0], plain[0].flip(-1))
    assert torch.equal(flipped[1], plain[1])
    assert not torch.equal(flipped[0], plain[0])


def test_cpu_backend_is_the_reference() -> None:
    assert os.environ.get("TRITON_INTERPRET") != "1"
    assert backend_for(torch.device("cpu")) == "reference"
    assert backend_for(torch.device("cuda")) == "triton"


# ---------------------------------------------------------------------------------------------------------------
# The Triton kernel under the interpreter (child process) and on CUDA.


def _interpreter_cases() -> list[dict[str, Any]]:
    """Tiny cases: an 8x64 output tile is one kernel program, and the interpreter pays ~0.1 s per program.

    Every dtype x layout x jitter on a batch whose boxes touch the borders and are up- and downsampled, plus
    two views per clip, and an output spanning 2x2 tiles (partial tiles masked in both directions).
    """
    border = {
        "shape": (2, 2, 9, 13),
        "boxes": [[0, 0, 9, 13], [4, 9, 5, 4]],
        "flip": [False, True],
        "size": (7, 13),
    }
    views = {
        "shape": (1, 2, 9, 13),
        "boxes": [[0, 0, 9, 9], [0, 4, 9, 9]],
        "flip": [True, False],
        "size": (5, 11),
        "views": 2,
    }
    tiles = {"shape": (1, 1, 6, 9), "boxes": [[1, 1, 5, 8]], "flip": [True], "size": (10, 70)}
    jitter = {"jitter": [[1.3, 0.6, 1.5], [0.7, 1.4, 0.3]]}
    cases = [
        {**border, "dtype": d, "layout": lay, **(jitter if j else {})}
        for d in ("float32", "float16", "bfloat16")
        for lay in LAYOUTS
        for j in (False, True)
    ]
    return [
        *cases,
        {**views, "dtype": "float16", "layout": "NTHWC", **jitter},
        {**tiles, "dtype": "bfloat16", "layout": "NCTHW"},
    ]


def _run_interpreter_cases() -> list[dict[str, Any]]:
    """Child-process body: every case through the interpreted kernel, checked against reference and chain."""
    assert backend_for(torch.device("cpu")) == "triton", "TRITON_INTERPRET=1 must route CPU tensors to Triton"
    results = []
    for i, case in enumerate(_interpreter_cases()):
        dtype = getattr(torch, case["dtype"])
        video = random_video(*case["shape"], seed=10 + i)
        boxes, flip = torch.tensor(case["boxes"]), torch.tensor(case["flip"])
        jitter = torch.tensor(case["jitter"], dtype=torch.float32) if "jitter" in case else None
        views = case.get("views", 1)
        args = (list(case["size"]), list(MEAN), list(STD), dtype, case["layout"], jitter, views)
        out = clip_resized_crop_normalize(
            video,
            boxes,
            case["size"],
            flip,
            MEAN,
            STD,
            out_dtype=dtype,
            layout=case["layout"],
            jitter=jitter,
            views=views,
        )
        ref = resized_crop_normalize_reference(video, boxes, args[0], flip, *args[1:])
        # The jittered chain needs torchvision (2 s to import); the in-process tests cover reference == chain.
        chain = (
            None
            if jitter is not None
            else plain_chain(video, boxes, case["size"], flip, MEAN, STD, case["layout"])
        )
        results.append(
            {
                "case": i,
                "vs_reference": assert_matches(out, ref, dtype),
                "vs_chain": None if chain is None else assert_matches(out, chain, dtype),
                "fraction_not_bitwise_equal": float((out != ref).float().mean()),
            }
        )
    assert "vidloader.ops._kernels" in sys.modules, "the Triton kernel module was never used"
    return results


@pytest.mark.slow
def test_kernel_matches_reference_under_triton_interpreter() -> None:
    # ~10 s: interpreter start-up and one program at a time; runs this file as a script with TRITON_INTERPRET=1.
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"interpreter child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(_interpreter_cases())
    # The reference resizes with torch's own interpolate, the kernel re-derives its index and weight arithmetic;
    # in float32 they agree to rounding noise (~1e-6), far inside the 1e-5 tolerance.
    assert (
        max(
            r["vs_reference"]
            for r, c in zip(results, _interpreter_cases(), strict=True)
            if c["dtype"] == "float32"
        )
        < 3e-6
    )


@pytest.mark.cuda
@pytest.mark.parametrize("with_jitter", [False, True], ids=["plain", "jitter"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("out_dtype", DTYPES, ids=str)
def test_kernel_matches_reference_on_cuda(out_dtype: torch.dtype, layout: str, with_jitter: bool) -> None:
    video = random_video(4, 8, 120, 161, seed=5).cuda()
    boxes = torch.tensor([[0, 0, 120, 161], [7, 100, 113, 61], [60, 0, 60, 60], [119, 160, 1, 1]])
    flip = torch.tensor([True, False, True, False])
    jitter = (
        torch.tensor([[1.2, 0.8, 1.3], [0.9, 1.1, 0.5], [1.0, 1.6, 0.0], [0.5, 0.5, 2.0]])
        if with_jitter
        else None
    )
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # the inputs were made on the default stream
    with torch.cuda.stream(stream):  # the kernels must follow the current stream
        out = clip_resized_crop_normalize(
            video, boxes, (64, 96), flip, MEAN, STD, out_dtype=out_dtype, layout=layout, jitter=jitter
        )
    stream.synchronize()
    ref = resized_crop_normalize_reference(
        video,
        boxes.cuda(),
        [64, 96],
        flip.cuda(),
        list(MEAN),
        list(STD),
        out_dtype,
        layout,
        None if jitter is None else jitter.cuda(),
        1,
    )
    assert backend_for(video.device) == "triton"
    assert_matches(out, ref, out_dtype)


# ---------------------------------------------------------------------------------------------------------------
# Registration: opcheck and torch.compile.


@pytest.mark.parametrize("variant", ["fp16-NTHWC", "bf16-NCTHW-jitter-views"])
def test_opcheck(device: str, variant: str) -> None:
    video = random_video(2, 2, 9, 12, seed=6).to(device)
    if variant == "fp16-NTHWC":
        boxes, flip = torch.tensor([[0, 0, 9, 12], [2, 3, 4, 5]]), torch.tensor([True, False])
        args = (
            video,
            boxes.to(device),
            [5, 7],
            flip.to(device),
            list(MEAN),
            list(STD),
            torch.float16,
            "NTHWC",
            None,
            1,
        )
    else:
        boxes = torch.tensor([[0, 0, 9, 9], [0, 3, 9, 9], [1, 1, 3, 3], [0, 0, 9, 12]])
        flip = torch.tensor([True, False, True, False])
        jitter = torch.tensor([[1.2, 0.8, 1.3], [0.9, 1.1, 0.5], [1.0, 1.6, 0.0], [0.5, 0.5, 2.0]])
        args = (
            video,
            boxes.to(device),
            [6, 4],
            flip.to(device),
            list(MEAN),
            list(STD),
            torch.bfloat16,
            "NCTHW",
            jitter.to(device),
            2,
        )
    torch.library.opcheck(torch.ops.vidloader.clip_resized_crop_normalize.default, args)


@pytest.mark.slow
def test_torch_compile_fullgraph() -> None:
    # Inductor, the default backend: the wrapper's validation traces, the op is one opaque node with its fake.
    video = random_video(2, 2, 10, 12, seed=7)
    boxes = torch.tensor([[0, 0, 10, 12], [3, 4, 5, 6]])
    flip = torch.tensor([False, True])
    jitter = torch.tensor([[1.2, 0.8, 1.3], [0.9, 1.1, 0.5]])

    def fn(v: torch.Tensor, b: torch.Tensor, f: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return clip_resized_crop_normalize(
            v, b, (6, 8), f, MEAN, STD, out_dtype=torch.float16, layout="NCTHW", jitter=j
        )

    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)
    got = compiled(video, boxes, flip, jitter)
    assert torch.equal(got, fn(video, boxes, flip, jitter))


# ---------------------------------------------------------------------------------------------------------------
# Validation.


def _call(**overrides: Any) -> torch.Tensor:
    kwargs: dict[str, Any] = {
        "video_u8": random_video(2, 3, 10, 12),
        "boxes": torch.tensor([[0, 0, 10, 12], [1, 1, 5, 5]]),
        "size": (4, 6),
        "flip": torch.tensor([False, True]),
        "mean": MEAN,
        "std": STD,
        "out_dtype": torch.float32,
        "layout": "NCTHW",
        "jitter": None,
    }
    kwargs.update(overrides)
    return clip_resized_crop_normalize(**kwargs)


BAD_ARGUMENTS = [
    ({"video_u8": torch.rand(2, 3, 10, 12, 3)}, r"dtype torch\.float32.*uint8"),
    ({"video_u8": torch.zeros(2, 10, 12, 3, dtype=torch.uint8)}, r"rank 4.*\[B, T, H, W, C\]"),
    ({"video_u8": torch.zeros(2, 3, 10, 12, 4, dtype=torch.uint8)}, r"C=4.*only C=3"),
    ({"video_u8": [1, 2, 3]}, r"must be a torch\.Tensor, got list"),
    (
        {"boxes": torch.tensor([[0, 0, 10, 12], [6, 1, 5, 5]])},
        r"boxes\[1\]=\(y0=6, x0=1, h=5, w=5\).*10x12.*y0 \+ h <= 10",
    ),
    ({"boxes": torch.tensor([[0, -1, 10, 12], [1, 1, 5, 5]])}, r"boxes\[0\].*x0=-1.*0 <= x0"),
    ({"boxes": torch.tensor([[0, 0, 0, 12], [1, 1, 5, 5]])}, r"boxes\[0\].*h=0.*h >= 1"),
    ({"boxes": torch.tensor([[0, 0, 10, 12], [1, 1, 5, 0]])}, r"boxes\[1\].*w=0.*w >= 1"),
    ({"boxes": torch.tensor([[0, 0, 10, 12], [1, 8, 5, 5]])}, r"boxes\[1\].*x0 \+ w <= 12"),
    (
        {"boxes": torch.tensor([[0, 0, 10, 12], [1, 1, 5, 5]], dtype=torch.int32)},
        r"dtype torch\.int32.*int64",
    ),
    ({"boxes": torch.tensor([[0, 0, 10], [1, 1, 5]])}, r"shape \(2, 3\).*\[B, 4\]"),
    ({"boxes": torch.tensor([[0, 0, 10, 12]])}, r"1 rows but the batch needs 2"),
    ({"flip": torch.tensor([0, 1])}, r"flip has dtype torch\.int64.*torch\.bool"),
    ({"flip": torch.tensor([True])}, r"flip has shape \(1,\).*\[2\]"),
    ({"layout": "NCHW"}, r"layout='NCHW'.*'NCTHW', 'NTHWC'"),
    (
        {"out_dtype": torch.float64},
        r"out_dtype=torch\.float64.*torch\.float32, torch\.float16, torch\.bfloat16",
    ),
    ({"out_dtype": "float16"}, r"out_dtype='float16' is not allowed"),
    ({"mean": (0.5, 0.5)}, r"mean=\(0\.5, 0\.5\).*3 numbers"),
    ({"std": (0.2, 0.0, 0.2)}, r"std=\(0\.2, 0\.0, 0\.2\).*non-zero"),
    ({"std": (0.2, float("nan"), 0.2)}, r"std=.*finite"),
    ({"size": 0}, r"size=0 is not allowed.*>= 1"),
    ({"size": (4,)}, r"size=\(4,\) is not allowed"),
    ({"jitter": torch.ones(2, 2)}, r"jitter has shape \(2, 2\).*\[2, 3\]"),
    ({"jitter": torch.ones(2, 3, dtype=torch.float64)}, r"jitter has dtype torch\.float64.*float32"),
    (
        {"jitter": torch.tensor([[1.0, 1.0, 1.0], [1.0, -0.5, 1.0]])},
        r"jitter\[1\]=\(1\.0, -0\.5, 1\.0\).*>= 0",
    ),
    ({"views": 0}, r"views=0 is not allowed"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_ARGUMENTS, ids=[m[:24] for _, m in BAD_ARGUMENTS])
def test_bad_arguments_raise_config_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _call(**overrides)
    assert isinstance(info.value, ValueError)


def test_valid_call_of_the_validation_fixture() -> None:
    assert _call().shape == (2, 3, 3, 4, 6)


# ---------------------------------------------------------------------------------------------------------------
# Colour jitter.


def test_color_jitter_single_frame_is_torchvision(device: str) -> None:
    # With T=1 the clip mean is the frame mean, so each clip must equal torchvision's adjust_* chain exactly.
    from torchvision.transforms.v2 import functional as TF

    video = random_video(3, 1, 13, 17, seed=8)
    b, c, s = [1.4, 0.6, 1.0], [0.5, 1.7, 1.0], [2.0, 0.3, 0.0]
    out = clip_color_jitter(video.to(device), torch.tensor(b), c, s, layout="NTHWC")
    assert out.shape == (3, 1, 13, 17, 3)
    for n in range(3):
        x = video[n].permute(0, 3, 1, 2).float() / 255
        x = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x, b[n]), c[n]), s[n])
        assert_matches(out[n].permute(0, 3, 1, 2), x, torch.float32)


def test_color_jitter_uses_clip_mean_and_identity(device: str) -> None:
    video = random_video(2, 5, 8, 9, seed=9)
    same = clip_color_jitter(video.to(device), 1.0, 1.0, 1.0, layout="NCTHW")
    torch.testing.assert_close(same.cpu(), video.permute(0, 4, 1, 2, 3).float() / 255, atol=1e-7, rtol=0)
    out = clip_color_jitter(video.to(device), [0.8, 1.2], [1.5, 0.5], [0.7, 1.3], out_dtype=torch.float16)
    boxes = torch.tensor([[0, 0, 8, 9]] * 2)
    jitter = torch.tensor([[0.8, 1.5, 0.7], [1.2, 0.5, 1.3]])
    expected = plain_chain(
        video, boxes, (8, 9), torch.tensor([False, False]), (0, 0, 0), (1, 1, 1), "NTHWC", jitter
    )
    assert_matches(out, expected, torch.float16)


def test_color_jitter_bad_factors() -> None:
    video = random_video(2, 1, 4, 4)
    with pytest.raises(ConfigError, match=r"brightness has shape \(3,\).*\[2\]"):
        clip_color_jitter(video, [1.0, 1.0, 1.0], 1.0, 1.0)
    with pytest.raises(ConfigError, match=r"saturation='x' is not allowed"):
        clip_color_jitter(video, 1.0, 1.0, "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"jitter\[0\].*>= 0"):
        clip_color_jitter(video, 1.0, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Tube masking.


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.9, 1.0])
def test_tube_mask_ratio_and_tubes(device: str, ratio: float) -> None:
    mask = tube_mask(4, 8, 7, 9, ratio, generator=torch.Generator().manual_seed(0), device=device)
    assert mask.dtype == torch.bool and mask.shape == (4, 8, 7, 9) and mask.device.type == device
    per_frame = mask.flatten(2).sum(-1)
    assert bool((per_frame == round(ratio * 63)).all())
    assert bool((mask == mask[:, :1]).all()), "every frame must mask the same patches"


def test_tube_mask_deterministic_per_generator() -> None:
    a = tube_mask(3, 2, 6, 6, 0.5, generator=torch.Generator().manual_seed(42))
    b = tube_mask(3, 2, 6, 6, 0.5, generator=torch.Generator().manual_seed(42))
    c = tube_mask(3, 2, 6, 6, 0.5, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1]), "samples of a batch draw their own patches"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.5}, r"ratio=1\.5 is not allowed.*\[0, 1\]"),
        ({"ratio": float("nan")}, r"ratio=nan"),
        ({"T": 0}, r"T=0 is not allowed"),
        ({"H": 2.0}, r"H=2\.0 is not allowed"),
        ({"generator": 3}, r"generator must be a torch\.Generator"),
    ],
)
def test_tube_mask_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"batch": 2, "T": 2, "H": 3, "W": 3, "ratio": 0.5, **kwargs}
    with pytest.raises(ConfigError, match=message):
        tube_mask(**args)


if __name__ == "__main__":
    print(json.dumps(_run_interpreter_cases()))
