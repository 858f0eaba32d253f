"""The fused transform wired into the loader: applied on the batch's device in the prefetch stage,
deterministic per (seed, epoch, video, clip) whatever the batch composition or worker count."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidloader as vl
from vidloader.dataset import textured_frames, write_video
from vidloader.sampling import clip_seed


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("tf")
    for c in range(2):
        for i in range(3):
            write_video(root / f"class{c}" / f"v{i}.mp4", textured_frames(24, 40, 56, seed=10 * c + i), gop=8)
    return vl.VideoDataset.from_folder(root, cache_dir=root / ".cache", progress=False)


def test_train_transform_deterministic_per_clip(dataset: vl.VideoDataset) -> None:
    tf = vl.transforms.TrainClipTransform(size=24, scale=(0.3, 1.0), flip=True)
    kw = dict(frames_per_clip=4, frame_stride=2, seed=5, transform=tf)
    a = list(vl.VideoLoader(dataset, batch_size=2, num_workers=0, **kw))
    b = list(vl.VideoLoader(dataset, batch_size=3, num_workers=2, **kw))
    rows_a = {(int(x.video_index[i]), int(x.clip_index[i])): x.video[i] for x in a for i in range(len(x))}
    rows_b = {(int(x.video_index[i]), int(x.clip_index[i])): x.video[i] for x in b for i in range(len(x))}
    assert rows_a.keys() == rows_b.keys() and len(rows_a) == len(dataset)
    for k in rows_a:
        assert torch.equal(rows_a[k], rows_b[k]), k
    first = a[0]
    assert first.video.shape == (2, 3, 4, 24, 24) and first.video.dtype == torch.float32
    # The loader's rows are the transform applied to the raw clip with the clip's seed.
    raw = vl.VideoLoader(
        dataset, batch_size=2, num_workers=0, output_layout="NTHWC", frames_per_clip=4, frame_stride=2, seed=5
    )
    raw_batch = next(iter(raw))
    seeds = [
        clip_seed(5, 0, int(v), int(c))
        for v, c in zip(raw_batch.video_index, raw_batch.clip_index, strict=True)
    ]
    assert torch.equal(tf(raw_batch.video, seeds=seeds), first.video)


def test_train_transform_changes_with_epoch(dataset: vl.VideoDataset) -> None:
    tf = vl.transforms.TrainClipTransform(size=24, scale=(0.2, 0.5), flip=True)
    loader = vl.VideoLoader(
        dataset,
        batch_size=6,
        frames_per_clip=2,
        sampling="uniform",
        shuffle=False,
        transform=tf,
        num_workers=0,
    )
    loader.set_epoch(0)
    e0 = next(iter(loader)).video
    loader.set_epoch(1)
    e1 = next(iter(loader)).video
    assert not torch.equal(e0, e1)  # same frames (uniform sampling), different crops/flips


def test_eval_three_crops_repeat_metadata(dataset: vl.VideoDataset) -> None:
    tf = vl.transforms.EvalClipTransform(size=24, crops=3)
    loader = vl.VideoLoader(
        dataset,
        batch_size=2,
        frames_per_clip=4,
        sampling="uniform",
        clips_per_video=2,
        shuffle=False,
        transform=tf,
        num_workers=0,
    )
    batch = next(iter(loader))
    assert batch.video.shape[0] == 6 and batch.view_index is not None
    assert batch.view_index.tolist() == [0, 1, 2, 0, 1, 2]
    assert batch.video_index.tolist() == [0, 0, 0, 0, 0, 0]
    assert batch.clip_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.frame_index.shape == (6, 4)
    assert not torch.equal(batch.video[0], batch.video[1])


def test_repr_prints_shapes_not_values(dataset: vl.VideoDataset, tmp_path: Path) -> None:
    batch = next(iter(vl.VideoLoader(dataset, batch_size=2, frames_per_clip=3, num_workers=0)))
    text = repr(batch)
    assert "video=(2, 3, 3, 40, 56) uint8 cpu" in text and "tensor(" not in text
