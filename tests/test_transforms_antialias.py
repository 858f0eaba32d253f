"""The clip transforms with ``antialias=``: the default stays False (outputs unchanged), True is the fused op's
antialiased resize (torchvision v2's ``Resize`` default), on uniform and ragged batches and letterboxed."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from vidloader._errors import ConfigError
from vidloader.ops import RaggedClips, clip_resized_crop_normalize
from vidloader.transforms import EvalClipTransform, TrainClipTransform

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)
SIZES = [(37, 53), (64, 27), (20, 20)]


def random_video(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("make", [TrainClipTransform, EvalClipTransform])
def test_default_is_no_antialias(make: Any) -> None:
    video = random_video((2, 2, 41, 57, 3), seed=1)
    default, plain = make(size=(9, 11)), make(size=(9, 11), antialias=False)
    smooth = make(size=(9, 11), antialias=True)
    assert default.antialias is False and smooth.antialias is True
    assert "antialias=True" in repr(smooth)
    assert torch.equal(default(video, seeds=[3, 4]), plain(video, seeds=[3, 4]))
    assert not torch.equal(smooth(video, seeds=[3, 4]), plain(video, seeds=[3, 4]))


def test_train_antialias_is_one_fused_call(device: str) -> None:
    transform = TrainClipTransform(size=(10, 12), jitter=(0.3, 0.3, 0.3), layout="NTHWC", antialias=True)
    video = random_video((3, 2, 45, 61, 3), seed=2).to(device)
    seeds = [7, 8, 9]
    boxes, flips, jitter = transform.draw_params(45, 61, seeds)
    expected = clip_resized_crop_normalize(
        video,
        boxes,
        (10, 12),
        flips,
        (0.45,) * 3,
        (0.225,) * 3,
        layout="NTHWC",
        jitter=jitter,
        antialias=True,
    )
    assert torch.equal(transform(video, seeds=seeds), expected)


def test_eval_antialias_is_torchvision_resized_crop(device: str) -> None:
    # crops=1: the centred short-side square resized to size, which torchvision v2 computes as
    # center_crop + resize(antialias=True) on the float clip.
    transform = EvalClipTransform(size=(13, 9), mean=MEAN, std=STD, antialias=True)
    video = random_video((2, 3, 50, 71, 3), seed=3)
    out = transform(video.to(device))
    for n in range(2):
        x = TF.center_crop(video[n].permute(0, 3, 1, 2).float(), [50, 50])
        x = TF.resize(x, [13, 9], antialias=True) / 255
        x = TF.normalize(x, list(MEAN), list(STD)).permute(1, 0, 2, 3)
        torch.testing.assert_close(out[n].cpu(), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("make", [TrainClipTransform, EvalClipTransform])
def test_antialias_on_ragged_equals_each_clip_alone(make: Any) -> None:
    clips = [random_video((2, h, w, 3), seed=i) for i, (h, w) in enumerate(SIZES)]
    transform = make(size=(8, 10), antialias=True)
    seeds = [11, 22, 33]
    got = transform(RaggedClips.from_clips(clips), seeds=seeds)
    for i, clip in enumerate(clips):
        assert torch.equal(got[i], transform(clip[None], seeds=[seeds[i]])[0])


def test_letterbox_antialias() -> None:
    clips = [random_video((2, 40, 80, 3), seed=4), random_video((2, 60, 20, 3), seed=5)]
    transform = EvalClipTransform(
        size=(16, 16), mean=(0, 0, 0), std=(1, 1, 1), letterbox=True, antialias=True
    )
    got = transform(RaggedClips.from_clips(clips))
    # The 40x80 clip fills an 8x16 band: a 5x downscale, antialiased.
    expected = TF.resize(clips[0].permute(0, 3, 1, 2).float(), [8, 16], antialias=True) / 255
    torch.testing.assert_close(got[0, :, :, 4:12], expected.permute(1, 0, 2, 3), atol=1e-6, rtol=0)
    assert torch.all(got[0, :, :, :4] == 0) and torch.all(got[0, :, :, 12:] == 0)
    assert torch.equal(transform(clips[0][None])[0], got[0])


@pytest.mark.parametrize("make", [TrainClipTransform, EvalClipTransform])
def test_antialias_must_be_a_bool(make: Any) -> None:
    with pytest.raises(ConfigError, match=r"antialias must be True or False, got 'yes'"):
        make(size=8, antialias="yes")
