"""The standard recipes on the fused op: torchvision's "resize to (128, 171), then random / centre crop 112",
flip probability and named normalisation presets, checked against torchvision's own transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.video import R3D_18_Weights
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from vidloader._errors import ConfigError
from vidloader.transforms import (
    EvalClipTransform,
    TrainClipTransform,
    normalization_stats,
    resized_size,
    source_box,
)

KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))


def smooth_video(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 [1, T, H, W, 3] of low-frequency content, like real footage (noise would magnify the
    sub-pixel rounding this file states tolerances for)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    frames = []
    for i in range(t):
        phase = rng.uniform(0, 6.28, size=3)
        chans = [127.5 + 127.5 * np.sin(6 * xx + 4 * yy * (c + 1) + phase[c] + i) for c in range(3)]
        frames.append(np.stack(chans, axis=-1))
    return torch.from_numpy(np.stack(frames).round().astype(np.uint8))[None]


def torchvision_train(
    clip_tchw: torch.Tensor, resize: tuple[int, int], top: int, left: int, size: int, flip: bool
) -> torch.Tensor:
    """torchvision's VideoClassificationPresetTrain with the crop / flip it drew given explicitly:
    ConvertImageDtype -> Resize(antialias=False) -> flip -> Normalize -> RandomCrop -> CTHW."""
    x = TF.resize(TF.to_dtype(clip_tchw, torch.float32, scale=True), list(resize), antialias=False)
    if flip:
        x = TF.horizontal_flip(x)
    x = TF.normalize(x, *KINETICS)
    return TF.crop(x, top, left, size, size).permute(1, 0, 2, 3)


def drawn_crop(seed: int, resized: tuple[int, int], size: int, p: float) -> tuple[int, int, bool]:
    """What TrainClipTransform(resize=...) draws for a seed: RandomCrop's top, left, then the flip coin."""
    g = torch.Generator().manual_seed(seed)
    top = int(torch.randint(0, resized[0] - size + 1, size=(1,), generator=g).item())
    left = int(torch.randint(0, resized[1] - size + 1, size=(1,), generator=g).item())
    return top, left, bool(torch.rand(1, generator=g).item() < p)


def test_resize_then_random_crop_is_torchvision_exactly_for_integral_scales() -> None:
    # 256x342 -> (128, 171) halves both sides, so the source box of every crop is whole pixels: exact.
    video = smooth_video(3, 256, 342)
    tf = TrainClipTransform(size=112, resize=(128, 171), preset="kinetics")
    seeds = list(range(6))
    out = tf(video.expand(6, -1, -1, -1, -1), seeds=seeds)
    flips = []
    for row, seed in enumerate(seeds):
        top, left, flip = drawn_crop(seed, (128, 171), 112, 0.5)
        flips.append(flip)
        # torchvision mirrors the whole resized frame before cropping; the fused op crops, then mirrors the
        # crop. Same pixels when torchvision's left edge is the mirrored one (the edge is uniform, so the
        # two orders draw the same distribution of views).
        tv_left = 171 - left - 112 if flip else left
        ref = torchvision_train(video[0].permute(0, 3, 1, 2), (128, 171), top, tv_left, 112, flip)
        torch.testing.assert_close(out[row], ref, atol=2e-5, rtol=0)
    assert 0 < sum(flips) < len(flips), "both flip outcomes are covered"


def test_resize_then_crop_is_within_stated_tolerance_for_other_scales() -> None:
    # 240x320 -> (128, 171): source boxes are rounded to whole pixels; on low-frequency content the result
    # stays within 0.02 (normalised units, about 1 grey level) on average of torchvision's two-step output.
    video = smooth_video(3, 240, 320, seed=1)
    resized = resized_size(240, 320, (128, 171))
    g = torch.Generator().manual_seed(0)
    diffs = []
    for _ in range(10):
        top = int(torch.randint(0, resized[0] - 112 + 1, (1,), generator=g))
        left = int(torch.randint(0, resized[1] - 112 + 1, (1,), generator=g))
        box = torch.tensor([source_box(240, 320, resized, (top, left, 112, 112))])
        from vidloader.ops import clip_resized_crop_normalize

        out = clip_resized_crop_normalize(video, box, 112, None, *KINETICS)[0]
        ref = torchvision_train(video[0].permute(0, 3, 1, 2), (128, 171), top, left, 112, False)
        diffs.append((out - ref).abs())
    mean_abs = torch.stack([d.mean() for d in diffs])
    assert float(mean_abs.max()) < 0.02, mean_abs
    assert float(torch.stack([d.max() for d in diffs]).max()) < 0.25


def test_eval_recipe_is_weights_transforms() -> None:
    # R3D_18_Weights.KINETICS400_V1.transforms(): Resize((128, 171)) -> CenterCrop(112) -> Normalize(kinetics).
    weights_tf = R3D_18_Weights.KINETICS400_V1.transforms()
    ours = EvalClipTransform(size=(112, 112), resize=(128, 171), preset="kinetics")
    video = smooth_video(4, 256, 342, seed=2)
    ref = weights_tf(video[0].permute(0, 3, 1, 2))  # [C, T, H, W]
    # transforms() resizes the uint8 frames and so rounds them to whole grey levels before normalising; the
    # fused op keeps the float: at most half a level apart, 0.5 / 255 / min(std) in normalised units.
    half_level = 0.5 / 255 / min(KINETICS[1]) + 1e-5
    torch.testing.assert_close(ours(video)[0], ref, atol=half_level, rtol=0)
    # Other sizes: within the same rounding tolerance as the train recipe.
    video = smooth_video(2, 180, 320, seed=3)
    diff = (ours(video)[0] - weights_tf(video[0].permute(0, 3, 1, 2))).abs()
    assert float(diff.mean()) < 0.02


def test_resize_short_side_matches_torchvision_resize_and_three_crops() -> None:
    for h, w in ((240, 320), (320, 240), (100, 100), (131, 197)):
        expected = v2.Resize(128)(torch.zeros(1, 3, h, w)).shape[-2:]
        assert resized_size(h, w, 128) == tuple(expected)
    three = EvalClipTransform(size=112, crops=3, resize=128)
    boxes = three.boxes(2, 256, 512)  # resized to 128x256: crops at y = 8, x = 0, 72, 144
    assert boxes.tolist() == [[16, 0, 224, 224], [16, 144, 224, 224], [16, 288, 224, 224]] * 2
    # resize=S is the same recipe as the older resize_short=S.
    assert EvalClipTransform(size=112, resize=128).boxes(1, 240, 320).tolist() == (
        EvalClipTransform(size=112, resize_short=128).boxes(1, 240, 320).tolist()
    )


def test_hflip_prob() -> None:
    video = smooth_video(2, 32, 40).expand(16, -1, -1, -1, -1)
    seeds = list(range(16))
    never = TrainClipTransform(size=16, hflip_prob=0.0).draw_params(32, 40, seeds)[1]
    always = TrainClipTransform(size=16, hflip_prob=1.0).draw_params(32, 40, seeds)[1]
    half = TrainClipTransform(size=16).draw_params(32, 40, seeds)
    assert not never.any() and always.all() and 0 < int(half[1].sum()) < 16
    # The coin is drawn whatever the probability, so boxes do not depend on it.
    assert torch.equal(TrainClipTransform(size=16, hflip_prob=0.0).draw_params(32, 40, seeds)[0], half[0])
    assert not TrainClipTransform(size=16, flip=False, hflip_prob=1.0).draw_params(32, 40, seeds)[1].any()
    assert TrainClipTransform(size=16, hflip_prob=1.0)(video, seeds=seeds).shape == (16, 3, 2, 16, 16)


def test_presets_and_their_defaults() -> None:
    assert normalization_stats("kinetics") == KINETICS
    assert normalization_stats("imagenet") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    default = TrainClipTransform(size=8)
    assert (default.mean, default.std) == normalization_stats("pytorchvideo") == ((0.45,) * 3, (0.225,) * 3)
    tf = EvalClipTransform(size=8, preset="imagenet")
    assert (tf.mean, tf.std) == normalization_stats("imagenet")


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (
            TrainClipTransform,
            {"preset": "k400"},
            r"preset='k400' is not allowed; choose one of 'kinetics', 'imagenet'",
        ),
        (
            TrainClipTransform,
            {"preset": "kinetics", "mean": (0.5,) * 3},
            r"either preset='kinetics' or mean/std",
        ),
        (
            TrainClipTransform,
            {"resize": (128, 171), "scale": (0.5, 1.0)},
            r"with resize=\(128, 171\) the crop is a plain random crop",
        ),
        (TrainClipTransform, {"resize": 0}, r"resize=0 is not allowed"),
        (
            TrainClipTransform,
            {"hflip_prob": 1.5},
            r"hflip_prob=1.5 is not allowed; give a probability in \[0, 1\]",
        ),
        (
            EvalClipTransform,
            {"resize": (128, 171), "resize_short": 128},
            r"either resize=\(128, 171\) or resize_short=128",
        ),
        (EvalClipTransform, {"resize": "big"}, r"resize='big' is not allowed"),
    ],
)
def test_recipe_errors_name_the_value(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(size=8, **kwargs)


def test_crop_larger_than_the_resized_frame_is_refused() -> None:
    video = smooth_video(1, 40, 40)
    with pytest.raises(
        ConfigError, match=r"crop size=\(32, 32\) does not fit the frame resized by resize=16"
    ):
        TrainClipTransform(size=32, resize=16)(video, seeds=[0])
    with pytest.raises(ConfigError, match=r"does not fit the frame resized by resize=\(20, 40\)"):
        EvalClipTransform(size=32, resize=(20, 40))(video)


def test_recipes_give_the_same_result_on_every_device(device: str) -> None:
    # The crop parameters come from CPU generators, so a CUDA batch gets the CPU batch's views; the fused op's
    # kernel and reference agree within float rounding.
    video = smooth_video(3, 240, 320, seed=4).expand(3, -1, -1, -1, -1)
    for tf in (
        TrainClipTransform(size=112, resize=(128, 171), preset="kinetics", hflip_prob=0.5),
        EvalClipTransform(size=112, crops=3, resize=128, preset="imagenet"),
    ):
        cpu = tf(video, seeds=[1, 2, 3])
        out = tf(video.to(device), seeds=[1, 2, 3])
        assert out.device.type == device
        torch.testing.assert_close(out.cpu(), cpu, atol=1e-4, rtol=0)
