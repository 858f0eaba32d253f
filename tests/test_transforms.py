"""vidloader.transforms: box helpers against torchvision / SlowFast, determinism per seed, eval views, validation."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

import vidloader.ops
import vidloader.transforms
from vidloader._errors import ConfigError
from vidloader.ops import clip_resized_crop_normalize
from vidloader.transforms import (
    EvalClipTransform,
    TrainClipTransform,
    center_crop_boxes,
    denormalize,
    random_resized_crop_boxes,
    three_crop_boxes,
)

MEAN = (0.45, 0.40, 0.50)
STD = (0.225, 0.25, 0.20)


def random_video(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), dtype=torch.uint8, generator=g)


def test_public_names_are_sorted() -> None:
    for module in (vidloader.ops, vidloader.transforms):
        assert list(module.__all__) == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


# ---------------------------------------------------------------------------------------------------------------
# Boxes.


@pytest.mark.parametrize(
    ("height", "width", "scale", "ratio"),
    [
        (256, 340, (0.08, 1.0), (3 / 4, 4 / 3)),
        (37, 53, (0.08, 1.0), (3 / 4, 4 / 3)),
        (
            10,
            200,
            (0.9, 1.0),
            (3 / 4, 4 / 3),
        ),  # wide frame: every try fails, central-crop fallback clamps ratio
        (200, 10, (0.9, 1.0), (3 / 4, 4 / 3)),  # tall frame: fallback on the other side
        (64, 64, (0.95, 1.0), (0.99, 1.01)),  # fallback keeping the whole frame
    ],
)
def test_random_resized_crop_boxes_are_torchvision_get_params(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> None:
    seeds = [0, 1, 7, 12345, 2**63 - 1, 987654321987]
    boxes = random_resized_crop_boxes(height, width, scale, ratio, seeds)
    assert boxes.dtype == torch.int64 and boxes.shape == (len(seeds), 4)
    with torch.random.fork_rng(devices=[]):
        for row, seed in zip(boxes.tolist(), seeds, strict=True):
            torch.manual_seed(seed)  # torchvision draws from the global RNG; same stream, same box
            assert tuple(row) == RandomResizedCrop.get_params(
                torch.empty(3, height, width), list(scale), list(ratio)
            )
    y0, x0, h, w = boxes.unbind(1)
    assert bool(((y0 >= 0) & (x0 >= 0) & (h >= 1) & (w >= 1) & (y0 + h <= height) & (x0 + w <= width)).all())


def test_random_resized_crop_boxes_per_clip_sizes() -> None:
    boxes = random_resized_crop_boxes([20, 300], [40, 100], (0.5, 1.0), (0.5, 2.0), [3, 3])
    assert tuple(boxes[0].tolist()) == tuple(
        random_resized_crop_boxes(20, 40, (0.5, 1.0), (0.5, 2.0), [3])[0].tolist()
    )
    assert int(boxes[1, 0] + boxes[1, 2]) <= 300 and int(boxes[1, 1] + boxes[1, 3]) <= 100


@pytest.mark.parametrize(("height", "width"), [(37, 53), (53, 37), (20, 20), (21, 30)])
@pytest.mark.parametrize("crop", [None, 7, (8, 13)])
def test_center_crop_boxes_are_torchvision_center_crop(height: int, width: int, crop: Any) -> None:
    frame = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    (y0, x0, h, w) = center_crop_boxes(height, width, crop)[0].tolist()
    size = (
        [min(height, width)] * 2 if crop is None else ([crop, crop] if isinstance(crop, int) else list(crop))
    )
    assert torch.equal(frame[:, y0 : y0 + h, x0 : x0 + w], TF.center_crop(frame, size))


def test_three_crop_boxes_follow_slowfast_uniform_crop() -> None:
    # Landscape 37x53: left / ceil-centre / right squares of 37. Portrait 53x37: top / centre / bottom.
    boxes = three_crop_boxes([37, 53], [53, 37])
    assert boxes.tolist() == [
        [0, 0, 37, 37],
        [0, 8, 37, 37],
        [0, 16, 37, 37],
        [0, 0, 37, 37],
        [8, 0, 37, 37],
        [16, 0, 37, 37],
    ]
    # With an explicit crop the short side is centred with ceil as in SlowFast (offset ceil(3/2) = 2).
    assert three_crop_boxes(10, 20, 7).tolist() == [[2, 0, 7, 7], [2, 7, 7, 7], [2, 13, 7, 7]]


def test_box_helpers_reject_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"crop=30 does not fit a 20x40 frame"):
        center_crop_boxes(20, 40, 30)
    with pytest.raises(ConfigError, match=r"different lengths \[2, 3\]"):
        three_crop_boxes([10, 10], [10, 10, 10])
    with pytest.raises(ConfigError, match=r"heights contains 0"):
        center_crop_boxes([10, 0], [10, 10])
    with pytest.raises(ConfigError, match=r"seeds contains -1"):
        random_resized_crop_boxes(10, 10, (0.5, 1.0), (1.0, 1.0), [-1])
    with pytest.raises(ConfigError, match=r"scale=\(1\.0, 0\.5\).*0 < min <= max"):
        random_resized_crop_boxes(10, 10, (1.0, 0.5), (1.0, 1.0), [1])


# ---------------------------------------------------------------------------------------------------------------
# TrainClipTransform.


def test_train_transform_is_deterministic_per_seed(device: str) -> None:
    transform = TrainClipTransform(size=(12, 16), mean=MEAN, std=STD, jitter=(0.4, 0.4, 0.4))
    video = random_video(4, 3, 30, 41, seed=1).to(device)
    seeds = [11, 2**62 + 5, 13, 14]
    first = transform(video, seeds=seeds)
    assert first.shape == (4, 3, 3, 12, 16) and first.dtype == torch.float32 and first.device.type == device
    assert torch.equal(first, transform(video, seeds=seeds))
    # A clip's result depends on its own seed only, not on its batch position or neighbours.
    alone = transform(video[2:3], seeds=seeds[2:3])
    assert torch.equal(alone[0], first[2])
    assert not torch.equal(transform(video, seeds=[21, 22, 23, 24]), first)


def test_train_transform_is_one_fused_call_with_drawn_params() -> None:
    transform = TrainClipTransform(
        size=9, scale=(0.3, 0.9), out_dtype=torch.float16, layout="NTHWC", jitter=(0.5, 0.2, 0.3)
    )
    video = random_video(5, 2, 21, 27, seed=2)
    seeds = list(range(100, 105))
    boxes, flips, jitter = transform.draw_params(21, 27, seeds)
    assert torch.equal(boxes, random_resized_crop_boxes(21, 27, (0.3, 0.9), (3 / 4, 4 / 3), seeds))
    assert jitter is not None and jitter.shape == (5, 3)
    lo = torch.tensor([0.5, 0.8, 0.7])
    hi = torch.tensor([1.5, 1.2, 1.3])
    assert bool(((jitter >= lo) & (jitter <= hi)).all())
    expected = clip_resized_crop_normalize(
        video,
        boxes,
        9,
        flips,
        (0.45,) * 3,
        (0.225,) * 3,
        out_dtype=torch.float16,
        layout="NTHWC",
        jitter=jitter,
    )
    assert torch.equal(transform(video, seeds=seeds), expected)


def test_train_transform_flip_coin() -> None:
    seeds = list(range(64))
    _, flips, jitter = TrainClipTransform(size=4).draw_params(10, 10, seeds)
    assert jitter is None
    assert 16 < int(flips.sum()) < 48  # a fair coin over 64 clips
    _, no_flips, _ = TrainClipTransform(size=4, flip=False).draw_params(10, 10, seeds)
    assert not bool(no_flips.any())
    # The coin is drawn either way, so the boxes do not depend on flip=.
    assert torch.equal(
        TrainClipTransform(size=4).draw_params(10, 10, seeds)[0],
        TrainClipTransform(size=4, flip=False).draw_params(10, 10, seeds)[0],
    )


@pytest.mark.cuda
def test_train_transform_same_params_on_cpu_and_cuda() -> None:
    transform = TrainClipTransform(size=(32, 48), jitter=(0.3, 0.3, 0.3))
    video = random_video(3, 4, 50, 70, seed=3)
    seeds = [5, 6, 7]
    cpu = transform(video, seeds=seeds)
    cuda = transform(video.cuda(), seeds=seeds)
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# EvalClipTransform.


def test_eval_three_crops_give_three_distinct_views(device: str) -> None:
    transform = EvalClipTransform(size=8, crops=3, mean=MEAN, std=STD)
    assert transform.num_views == 3
    video = random_video(2, 3, 20, 32, seed=4).to(device)
    out = transform(video, seeds=[1, 2])
    assert out.shape == (6, 3, 3, 8, 8)
    for clip in range(2):
        views = out[3 * clip : 3 * clip + 3]
        assert not torch.equal(views[0], views[1])
        assert not torch.equal(views[1], views[2])
        assert not torch.equal(views[0], views[2])
    # Clip-major rows: rows 3..5 are clip 1's left / centre / right squares.
    for view, (y0, x0, h, w) in enumerate([(0, 0, 20, 20), (0, 6, 20, 20), (0, 12, 20, 20)]):
        crop = video[1, :, y0 : y0 + h, x0 : x0 + w, :].cpu().float().permute(0, 3, 1, 2)
        x = F.interpolate(crop, size=(8, 8), mode="bilinear", align_corners=False) / 255
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        torch.testing.assert_close(out[3 + view].cpu(), x.permute(1, 0, 2, 3), atol=1e-5, rtol=0)


def test_eval_center_crop_and_resize_short() -> None:
    video = random_video(2, 2, 30, 40, seed=5)
    one = EvalClipTransform(size=10, layout="NTHWC", out_dtype=torch.bfloat16)
    assert one.num_views == 1
    assert one.boxes(2, 30, 40).tolist() == [[0, 5, 30, 30]] * 2
    out = one(video, seeds=[0, 1])
    assert out.shape == (2, 2, 10, 10, 3) and out.dtype == torch.bfloat16
    # Resize the short side to 60 then centre-crop 10 == the 5x5 source box in the middle.
    short = EvalClipTransform(size=10, resize_short=60)
    assert short.boxes(1, 30, 40).tolist() == [[12, 18, 5, 5]]
    assert torch.equal(
        short(video),
        clip_resized_crop_normalize(video, short.boxes(2, 30, 40), 10, None, (0.45,) * 3, (0.225,) * 3),
    )


def test_denormalize_round_trips_identity_geometry(device: str) -> None:
    video = random_video(2, 3, 16, 16, seed=6).to(device)
    for layout in ("NCTHW", "NTHWC"):
        for dtype, tol in ((torch.float32, 0), (torch.float16, 1)):
            out = EvalClipTransform(size=16, mean=MEAN, std=STD, out_dtype=dtype, layout=layout)(video)
            back = denormalize(out, MEAN, STD, layout)
            assert back.dtype == torch.uint8 and back.shape == video.shape
            assert int((back.int() - video.int()).abs().max()) <= tol


# ---------------------------------------------------------------------------------------------------------------
# Validation.


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, r"size=0 is not allowed"),
        ({"size": (224, "a")}, r"size=\(224, 'a'\) is not allowed"),
        ({"scale": (0.5, 0.1)}, r"scale=\(0\.5, 0\.1\).*0 < min <= max"),
        ({"ratio": (-1.0, 1.0)}, r"ratio=\(-1\.0, 1\.0\)"),
        ({"flip": "yes"}, r"flip='yes' is not allowed; choose True or False"),
        ({"mean": (0.5, 0.5)}, r"mean=\(0\.5, 0\.5\).*3 numbers"),
        ({"std": (0.2, 0, 0.2)}, r"std=.*non-zero"),
        ({"out_dtype": torch.float64}, r"out_dtype=torch\.float64.*torch\.float16"),
        ({"layout": "NCHW"}, r"layout='NCHW'.*'NCTHW', 'NTHWC'"),
        ({"jitter": (0.4, -0.1, 0.4)}, r"jitter=\(0\.4, -0\.1, 0\.4\).*>= 0"),
    ],
)
def test_train_transform_rejects_bad_config(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainClipTransform(**{"size": 8, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crops": 2}, r"crops=2 is not allowed; choose one of 1, 3"),
        ({"crops": True}, r"crops=True is not allowed"),
        ({"resize_short": 100}, r"resize_short=100.*>= max\(size\) = 112"),
        ({"layout": "NTCHW"}, r"layout='NTCHW'"),
    ],
)
def test_eval_transform_rejects_bad_config(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EvalClipTransform(**{"size": 112, **kwargs})


def test_transforms_are_keyword_only_and_check_calls() -> None:
    with pytest.raises(TypeError):
        TrainClipTransform(8)  # type: ignore[misc]
    with pytest.raises(TypeError):
        EvalClipTransform(8)  # type: ignore[misc]
    transform = TrainClipTransform(size=8)
    video = random_video(2, 1, 10, 10)
    with pytest.raises(ConfigError, match=r"got 1 seeds for a batch of 2"):
        transform(video, seeds=[1])
    with pytest.raises(ConfigError, match=r"seeds contains 2\.0"):
        transform(video, seeds=[1, 2.0])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"dtype torch\.float32"):
        transform(video.float(), seeds=[1, 2])
    with pytest.raises(ConfigError, match=r"got 3 seeds for a batch of 2"):
        EvalClipTransform(size=8)(video, seeds=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"need a NCTHW tensor with 3 channels"):
        denormalize(torch.zeros(1, 4, 1, 2, 2), MEAN, STD, "NCTHW")
    assert "TrainClipTransform(size=(8, 8)" in repr(transform)
    assert math.isclose(transform.ratio[1], 4 / 3)
