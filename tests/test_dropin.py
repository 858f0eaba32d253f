"""What a torchvision-style training script needs from the loader: batches that unpack, any callable as
``transform=`` (decided once, at construction), and sizes that hold still during an epoch."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.models.video import R3D_18_Weights
from torchvision.transforms import v2

import vidloader as vl
from vidloader.dataset import textured_frames, write_video
from vidloader.transforms import PerClipTransform, as_clip_transform, transform_kind


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("dropin")
    for c in range(2):
        for i in range(3):
            n = 16 + 8 * i  # different lengths, so without_replacement gives different counts per video
            write_video(root / f"class{c}" / f"v{i}.mp4", textured_frames(n, 48, 64, seed=10 * c + i), gop=8)
    return vl.VideoDataset.from_folder(root, cache_dir=root / ".cache", progress=False)


def test_batch_unpacks_like_torchvision_and_keeps_named_fields(dataset: vl.VideoDataset) -> None:
    loader = vl.VideoLoader(dataset, batch_size=4, frames_per_clip=4, num_workers=0, shuffle=False)
    batch = next(iter(loader))
    video, label, video_index = batch
    assert video is batch.video and label is batch.label and video_index is batch.video_index
    assert video_index.tolist() == [0, 1, 2, 3] and label.tolist() == [0, 0, 0, 1]
    assert len(batch) == 4 and batch.frame_index.shape == (4, 4)
    seen = [int(v) for video, target, idx in loader for v in idx]
    assert sorted(seen) == list(range(len(dataset)))


class Batched:
    num_views = 1

    def __call__(self, video: torch.Tensor, *, seeds: list[int]) -> torch.Tensor:
        return video.float()


class Marked:
    __vidloader_batched__ = True
    num_views = 1

    def __call__(self, *args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("not called here")


def test_transform_kind_is_read_from_marker_or_signature() -> None:
    assert transform_kind(vl.transforms.TrainClipTransform(size=8)) == "batched"
    assert transform_kind(vl.transforms.EvalClipTransform(size=8)) == "batched"
    assert transform_kind(Batched()) == "batched"
    assert transform_kind(Marked()) == "batched"
    assert transform_kind(lambda video, *, seeds: video) == "batched"
    assert transform_kind(lambda clip: clip) == "per_clip"
    assert transform_kind(v2.Compose([v2.RandomHorizontalFlip(), v2.CenterCrop(8)])) == "per_clip"
    assert transform_kind(R3D_18_Weights.KINETICS400_V1.transforms()) == "per_clip"
    with pytest.raises(
        vl.ConfigError, match=r"fits neither contract.*batched.*seeds.*per clip.*\[T, C, H, W\]"
    ):
        transform_kind(lambda a, b: a)
    with pytest.raises(vl.ConfigError, match="fits neither contract"):
        transform_kind(lambda clip, *, size: clip)


def test_as_clip_transform_wraps_once_and_honours_an_explicit_kind() -> None:
    batched = Batched()
    assert as_clip_transform(batched) is batched
    wrapped = as_clip_transform(lambda clip: clip)
    assert isinstance(wrapped, PerClipTransform) and wrapped.num_views == 1
    assert isinstance(as_clip_transform(batched, "per_clip"), PerClipTransform)
    assert as_clip_transform(None) is None
    with pytest.raises(vl.ConfigError, match="transform_kind='clip' is not allowed; choose one of 'auto'"):
        as_clip_transform(batched, "clip")
    with pytest.raises(vl.ConfigError, match="transform must be callable, got int"):
        as_clip_transform(3)  # type: ignore[arg-type]


def test_per_clip_transform_sees_torchvision_clips_and_is_seeded_per_clip() -> None:
    seen: list[torch.Tensor] = []

    def record(clip: torch.Tensor) -> torch.Tensor:
        seen.append(clip)
        return v2.RandomCrop(6)(clip)

    video = torch.from_numpy(textured_frames(3, 12, 16, seed=1)).unsqueeze(0).repeat(4, 1, 1, 1, 1)
    tf = PerClipTransform(record)
    state = torch.random.get_rng_state()
    out = tf(video, seeds=[5, 6, 7, 5])
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's RNG is left alone"
    assert type(out) is torch.Tensor and out.shape == (4, 3, 3, 6, 6) and out.dtype == torch.uint8
    assert all(isinstance(c, tv_tensors.Video) and c.shape == (3, 3, 12, 16) for c in seen)
    assert torch.equal(seen[0].as_subclass(torch.Tensor), video[0].permute(0, 3, 1, 2))
    assert torch.equal(out[0], out[3]), "same seed, same crop"
    assert not all(torch.equal(out[0], out[i]) for i in (1, 2)), "other seeds, other crops"
    # Alone in a batch, the clip gets the same crop.
    assert torch.equal(tf(video[:1], seeds=[6])[0], out[1])


def test_per_clip_transform_errors() -> None:
    video = torch.zeros(2, 2, 8, 8, 3, dtype=torch.uint8)
    sizes = iter([4, 6])
    with pytest.raises(vl.ConfigError, match=r"clips of different shapes .*must match"):
        PerClipTransform(lambda clip: clip[..., : next(sizes)])(video, seeds=[0, 1])
    with pytest.raises(vl.ConfigError, match="returned list; it must return a tensor"):
        PerClipTransform(lambda clip: [clip])(video, seeds=[0, 1])  # type: ignore[arg-type,return-value]


def test_loader_runs_weights_transforms_per_clip(dataset: vl.VideoDataset) -> None:
    weights_tf = R3D_18_Weights.KINETICS400_V1.transforms()
    kw = dict(batch_size=3, frames_per_clip=4, num_workers=0, shuffle=False, sampling="uniform")
    loader = vl.VideoLoader(dataset, transform=weights_tf, **kw)
    raw = vl.VideoLoader(dataset, output_layout="NTCHW", **kw)
    for (video, label, idx), plain in zip(loader, raw, strict=True):
        assert video.shape == (3, 3, 4, 112, 112) and video.dtype == torch.float32
        expected = torch.stack([weights_tf(clip) for clip in plain.video])
        torch.testing.assert_close(video, expected, atol=0, rtol=0)
        assert torch.equal(idx, plain.video_index) and torch.equal(label, plain.label)


def test_len_and_num_clips_hold_still_during_an_epoch(dataset: vl.VideoDataset) -> None:
    loader = vl.VideoLoader(
        dataset,
        batch_size=2,
        frames_per_clip=4,
        clip_step=4,
        sampling="random",
        clips_per_video=3,
        clips_per_video_mode="without_replacement",
        num_workers=0,
    )
    # Videos of 16, 24, 32 frames: 4, 6, 8 windows of 4 frames every 4 -> min(3, windows) = 3 each.
    assert loader.num_clips == 18 and len(loader) == 9
    lengths, clips = [], 0
    for batch in loader:
        lengths.append((len(loader), loader.num_clips))
        clips += len(batch)
    assert set(lengths) == {(9, 18)} and clips == 18
    assert len(loader) == 9  # the next epoch, after the pass ended
    loader.set_epoch(5)
    assert loader.num_clips == len(loader.clip_plan(5)) == 18


def test_len_during_a_pass_is_this_epochs_even_when_the_next_differs(dataset: vl.VideoDataset) -> None:
    # Sliding windows on rank 0 of 2: the window count depends on which videos the epoch's shuffle gives
    # this rank, so consecutive epochs differ in length.
    loader = vl.VideoLoader(
        dataset, batch_size=1, frames_per_clip=4, sampling="sliding", num_workers=0, rank=0, world_size=2
    )
    sizes = [len(loader.clip_plan(e)) for e in range(12)]
    epoch = next(e for e in range(11) if sizes[e] != sizes[e + 1])
    loader.set_epoch(epoch)
    assert len(loader) == sizes[epoch]
    during = {(len(loader), loader.num_clips) for _ in loader}
    assert during == {(sizes[epoch], sizes[epoch])}
    assert len(loader) == sizes[epoch + 1]


def test_per_clip_transform_runs_on_the_videos_device(device: str) -> None:
    video = torch.from_numpy(textured_frames(2, 20, 24, seed=2)).unsqueeze(0).repeat(2, 1, 1, 1, 1).to(device)
    devices: list[str] = []

    def fn(clip: torch.Tensor) -> torch.Tensor:
        devices.append(clip.device.type)
        return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.RandomCrop(8)])(clip)

    out = PerClipTransform(fn)(video, seeds=[1, 2])
    assert devices == [device, device] and out.device.type == device and out.shape == (2, 2, 3, 8, 8)
    cpu = PerClipTransform(fn)(video.cpu(), seeds=[1, 2])
    torch.testing.assert_close(out.cpu(), cpu, atol=0, rtol=0)  # same seeded crops on every device
