"""vidloader.compat.torchvision: torchvision's Kinetics / clip samplers / DataLoader signatures over
VideoLoader, as the 5-line port of torchvision's video classification reference uses them."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from torch.utils.data.dataloader import default_collate
from torchvision.transforms import v2

import vidloader as vl
from vidloader.compat import _dataloader
from vidloader.compat._pinned import pinned
from vidloader.compat.torchvision import (
    DataLoader,
    DistributedSampler,
    Kinetics,
    RandomClipSampler,
    UniformClipSampler,
)
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kinetics")
    for split in ("train", "val"):
        for c in range(2):
            for i in range(2):
                n = 20 + 10 * i  # 20 and 30 frames at 25 fps
                write_video(
                    root / split / f"c{c}" / f"v{i}.mp4", textured_frames(n, 32, 48, seed=c + 2 * i), gop=5
                )
    return root


def kinetics(root: Path, **kw: object) -> Kinetics:
    args = dict(
        frames_per_clip=4, split="train", step_between_clips=2, frame_rate=None, cache_dir=root / ".c"
    )
    return Kinetics(root, **{**args, **kw})  # type: ignore[arg-type]


def test_kinetics_indexes_the_split_like_torchvision(root: Path) -> None:
    ds = kinetics(root)
    assert ds.classes == ["c0", "c1"] and ds.class_to_idx == {"c0": 0, "c1": 1}
    assert [(Path(p).relative_to(root).as_posix(), y) for p, y in ds.samples] == [
        ("train/c0/v0.mp4", 0),
        ("train/c0/v1.mp4", 0),
        ("train/c1/v0.mp4", 1),
        ("train/c1/v1.mp4", 1),
    ]
    # Windows of 4 frames every 2: (20 - 4) // 2 + 1 = 9 and (30 - 4) // 2 + 1 = 14, twice.
    assert len(ds) == 2 * (9 + 14)


def test_random_clip_sampler_is_a_maximum_without_replacement(root: Path) -> None:
    ds = kinetics(root)
    loader = DataLoader(ds, batch_size=5, sampler=RandomClipSampler(ds.video_clips, 10), seed=3)
    assert len(loader.sampler) == loader.num_clips == 2 * (9 + 10)  # min(10, windows) per video
    starts = [
        (int(v), int(f)) for b in loader for v, f in zip(b.video_index, b.frame_index[:, 0], strict=True)
    ]
    assert len(starts) == len(set(starts)) == 38, "no clip twice in an epoch"
    assert all(f % 2 == 0 for _, f in starts), "on the window grid"


def test_uniform_sampler_collate_fn_and_per_clip_transform(root: Path) -> None:
    ds = kinetics(
        root, split="val", transform=v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.CenterCrop(16)])
    )
    sampler = UniformClipSampler(ds.video_clips, 3)

    def collate_fn(batch: list) -> object:
        assert all(len(item) == 4 and item[1].shape == (1, 0) for item in batch)  # video, audio, label, idx
        return default_collate([(d[0], d[2], d[3]) for d in batch])

    loader = DataLoader(
        ds, batch_size=4, sampler=sampler, num_workers=1, pin_memory=True, collate_fn=collate_fn
    )
    seen = []
    for video, target, video_idx in loader:
        assert video.shape[1:] == (4, 3, 16, 16) and video.dtype == torch.float32  # TCHW per clip
        seen += [(int(i), int(t)) for i, t in zip(video_idx, target, strict=True)]
    assert seen == [(v, v // 2) for v in range(4) for _ in range(3)], "video order, 3 clips each"
    assert len(sampler) == 12 and len(loader) == 3


def test_distributed_sampler_deals_clips_like_torchvision(root: Path) -> None:
    ds = kinetics(root)
    counts, clips = [], []
    for rank in range(2):
        sampler = DistributedSampler(UniformClipSampler(ds.video_clips, 2), num_replicas=2, rank=rank)
        loader = DataLoader(ds, batch_size=2, sampler=sampler)
        assert (loader.rank, loader.world_size) == (rank, 2)
        # torchvision's lengths: the inner sampler's whole epoch (4 videos x 2 clips), a rank's half of it.
        assert len(sampler.dataset) == 8 and len(sampler) == loader.num_clips
        counts.append(loader.num_clips)
        clips.append([(c.video_index, c.clip_index) for c in loader.clip_plan()])
        sampler.set_epoch(4)
        assert loader.epoch == 4
    assert counts == [4, 4]
    # Clip by clip, every other clip of the uniform order: each video's two clips go to both ranks.
    assert clips == [[(0, 0), (1, 0), (2, 0), (3, 0)], [(0, 8), (1, 13), (2, 8), (3, 13)]]


def test_without_a_sampler_every_window_is_a_clip(root: Path) -> None:
    ds = kinetics(root, output_format="THWC")
    loader = DataLoader(ds, batch_size=8, shuffle=False)
    assert loader.num_clips == len(ds) == 46
    assert next(iter(loader)).video.shape == (8, 4, 32, 48, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(batch_sampler=[[0]]), "batch_sampler= has no vidloader equivalent"),
        (dict(worker_init_fn=print), "worker_init_fn= has no vidloader equivalent"),
        (dict(shuffle=True, sampler="s"), "sampler option is mutually exclusive with shuffle"),
        (dict(sampler=[0, 1]), r"sampler must be a vidloader\.compat\.torchvision clip sampler, got list"),
    ],
)
def test_dataloader_refuses_what_has_no_meaning(root: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(vl.ConfigError, match=message):
        DataLoader(kinetics(root), **kwargs)


def test_dataloader_refuses_a_sampler_of_another_dataset(root: Path) -> None:
    train, val = kinetics(root), kinetics(root, split="val")
    with pytest.raises(vl.ConfigError, match="sampler was made over another dataset's video_clips"):
        DataLoader(val, sampler=UniformClipSampler(train.video_clips, 2))


def test_kinetics_errors(root: Path) -> None:
    with pytest.raises(vl.ConfigError, match="download=True is not supported"):
        kinetics(root, download=True)
    with pytest.raises(vl.ConfigError, match="num_classes='500' is not allowed"):
        kinetics(root, num_classes="500")
    with pytest.raises(vl.ConfigError, match="a transform receives clips as TCHW"):
        kinetics(root, output_format="THWC", transform=lambda clip: clip)
    with pytest.raises(vl.ConfigError, match=r"expected a vidloader\.compat\.torchvision VideoClips"):
        RandomClipSampler(object(), 2)  # type: ignore[arg-type]


def test_pin_memory_without_cuda_is_said_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(_dataloader, "_warned_pin", False)
    ds = kinetics(root)
    with pytest.warns(UserWarning, match="pin_memory=True has no effect: there is no CUDA device") as seen:
        loaders = [DataLoader(ds, batch_size=4, pin_memory=True) for _ in range(2)]
    assert sum("pin_memory" in str(w.message) for w in seen) == 1
    assert not loaders[0].pin_memory and not next(iter(loaders[0])).video.is_pinned()


def test_pinned_copies_every_tensor_of_what_the_loop_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pinning needs CUDA; a marked copy stands in for it, to check which tensors the walk reaches.
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: t.clone().fill_(7))
    Pair = collections.namedtuple("Pair", "a b")
    batch = vl.ClipBatch(*(torch.zeros(2, 1) for _ in range(6)))
    out = pinned([batch, Pair(torch.zeros(1), "x"), {"k": (torch.zeros(1), 3)}])
    assert isinstance(out[0], vl.ClipBatch) and all(
        bool((getattr(out[0], f) == 7).all()) for f in ("video", "label", "timestamp")
    )
    assert out[0].audio is None and isinstance(out[1], Pair) and out[1].b == "x" and out[1].a.item() == 7
    assert out[2]["k"][0].item() == 7 and out[2]["k"][1] == 3


@pytest.mark.cuda
def test_pin_memory_pins_cpu_batches_on_a_cuda_machine(root: Path) -> None:
    ds = kinetics(root)
    loader = DataLoader(ds, batch_size=4, sampler=UniformClipSampler(ds.video_clips, 2), pin_memory=True)
    batch = next(iter(loader))
    assert loader.pin_memory and batch.video.is_pinned() and batch.label.is_pinned()
    collated = DataLoader(ds, batch_size=4, pin_memory=True, collate_fn=lambda items: [i[0] for i in items])
    assert all(v.is_pinned() for v in next(iter(collated)))
    on_gpu = DataLoader(ds, batch_size=4, pin_memory=True, device="cuda")  # staged through pinned buffers
    assert not on_gpu.pin_memory and next(iter(on_gpu)).video.is_cuda
