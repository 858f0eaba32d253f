"""Clip transforms on ragged batches (clips of mixed resolutions and aspect ratios) and letterboxing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidloader._errors import ConfigError
from vidloader.ops import RaggedClips
from vidloader.transforms import EvalClipTransform, TrainClipTransform

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)
# Odd sizes, landscape, portrait, square, very wide.
SIZES = [(37, 53), (64, 27), (20, 20), (9, 61)]


def clips_of(sizes: list[tuple[int, int]], t: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=g) for h, w in sizes]


@pytest.mark.parametrize("jitter", [None, (0.4, 0.4, 0.4)])
def test_train_on_ragged_equals_each_clip_alone(jitter: tuple[float, float, float] | None) -> None:
    clips = clips_of(SIZES)
    t = TrainClipTransform(size=(16, 12), jitter=jitter, out_dtype=torch.float16, layout="NTHWC")
    seeds = [11, 22, 33, 44]
    got = t(RaggedClips.from_clips(clips), seeds=seeds)
    assert got.shape == (4, 3, 16, 12, 3) and got.dtype == torch.float16
    for i, clip in enumerate(clips):
        assert torch.equal(got[i], t(clip[None], seeds=[seeds[i]])[0])
    # Boxes come from each clip's own frame: the portrait clip's box can be taller than any landscape frame.
    boxes, _, _ = t.draw_params_per_clip(SIZES, seeds)
    for (y0, x0, h, w), (hi, wi) in zip(boxes.tolist(), SIZES, strict=True):
        assert y0 >= 0 and y0 + h <= hi and x0 >= 0 and x0 + w <= wi


@pytest.mark.parametrize(("crops", "resize_short"), [(1, None), (3, None), (1, 24), (3, 30)])
def test_eval_on_ragged_equals_each_clip_alone(crops: int, resize_short: int | None) -> None:
    clips = clips_of(SIZES, seed=1)
    t = EvalClipTransform(size=(8, 8), crops=crops, resize_short=resize_short)  # type: ignore[arg-type]
    got = t(RaggedClips.from_clips(clips), seeds=[0, 1, 2, 3])
    assert got.shape == (4 * crops, 3, 3, 8, 8)
    for i, clip in enumerate(clips):
        assert torch.equal(got[i * crops : (i + 1) * crops], t(clip[None]))


def test_eval_letterbox_keeps_the_whole_frame() -> None:
    clips = clips_of([(20, 40), (30, 10)], t=2, seed=2)
    t = EvalClipTransform(size=(16, 16), mean=(0, 0, 0), std=(1, 1, 1), letterbox=True)
    assert t.letterbox_rects([(20, 40), (30, 10)]).tolist() == [[4, 0, 8, 16], [0, 5, 16, 5]]
    got = t(RaggedClips.from_clips(clips))
    assert got.shape == (2, 3, 2, 16, 16)
    expected = F.interpolate(
        clips[0].permute(0, 3, 1, 2).float(), size=(8, 16), mode="bilinear", align_corners=False
    ).permute(1, 0, 2, 3)
    torch.testing.assert_close(got[0, :, :, 4:12], expected / 255, atol=1e-6, rtol=0)
    assert torch.all(got[0, :, :, :4] == 0) and torch.all(got[0, :, :, 12:] == 0)
    assert torch.all(got[1, :, :, :, :5] == 0) and torch.all(got[1, :, :, :, 10:] == 0)
    # A uniform tensor batch letterboxes the same way.
    assert torch.equal(t(clips[0][None])[0], got[0])


def test_letterbox_conflicts_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"letterbox=True keeps the whole frame.*crops=3"):
        EvalClipTransform(size=8, crops=3, letterbox=True)
    with pytest.raises(ConfigError, match=r"resize_short=16"):
        EvalClipTransform(size=8, resize_short=16, letterbox=True)
    with pytest.raises(ConfigError, match=r"letterbox=1 is not allowed"):
        EvalClipTransform(size=8, letterbox=1)  # type: ignore[arg-type]


def test_ragged_seed_count_is_checked() -> None:
    batch = RaggedClips.from_clips(clips_of(SIZES[:2]))
    with pytest.raises(ConfigError, match="got 1 seeds for a batch of 2"):
        TrainClipTransform(size=8)(batch, seeds=[1])
    with pytest.raises(ConfigError, match="got 3 seeds for a batch of 2"):
        EvalClipTransform(size=8)(batch, seeds=[1, 2, 3])
