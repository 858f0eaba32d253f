"""VideoLoader on the CPU: batch shapes, layouts and dtypes, drop_last and len, worker kinds giving identical
batches, epochs, resumable state (exactly the remaining batches, also with prefetching workers), state
mismatches, mixed frame sizes, stats and rank sharding."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.dataset import textured_frames, write_video

LENGTHS = [20, 26, 31, 24, 40, 22, 35]  # 7 videos: batches of 3 leave a remainder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("loader_ds")
    for i, n in enumerate(LENGTHS):
        cls = "even" if i % 2 == 0 else "odd"
        write_video(root / cls / f"v{i}.mp4", textured_frames(n, 32, 48, seed=i), gop=10, bframes=2)
    return vl.VideoDataset.from_folder(root, cache_dir=root / ".cache", progress=False)


def make(ds: vl.VideoDataset, **kw) -> vl.VideoLoader:
    base = dict(batch_size=3, frames_per_clip=4, frame_stride=2, seed=7, num_workers=0, backend="pyav")
    base.update(kw)
    return vl.VideoLoader(ds, **base)  # type: ignore[arg-type]


def rows(batches: list[vl.ClipBatch]) -> list[tuple]:
    """Everything that identifies a batch's rows, pixels included."""
    return [
        (
            b.video_index.tolist(),
            b.clip_index.tolist(),
            b.frame_index.tolist(),
            b.timestamp.tolist(),
            b.label.tolist(),
            b.video.numpy().tobytes(),
        )
        for b in batches
    ]


def test_layouts_dtypes_and_metadata(dataset: vl.VideoDataset) -> None:
    kw = dict(sampling="uniform", shuffle=False, batch_size=4)
    ref = next(iter(make(dataset, output_layout="NTHWC", **kw)))
    assert ref.video.shape == (4, 4, 32, 48, 3) and ref.video.dtype == torch.uint8
    nc = next(iter(make(dataset, **kw)))  # default NCTHW
    assert nc.video.shape == (4, 3, 4, 32, 48)
    assert torch.equal(nc.video, ref.video.permute(0, 4, 1, 2, 3))
    ntc = next(iter(make(dataset, output_layout="NTCHW", num_workers=2, **kw)))
    assert ntc.video.shape == (4, 4, 3, 32, 48)
    assert torch.equal(ntc.video, ref.video.permute(0, 1, 4, 2, 3))
    for layout in ("NCTHW", "NTCHW", "NTHWC"):
        assert next(iter(make(dataset, output_layout=layout, **kw))).video.is_contiguous()
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        fl = next(iter(make(dataset, output_layout="NTHWC", dtype=dtype, **kw)))
        assert fl.video.dtype == dtype
        assert torch.equal(fl.video, ref.video.to(dtype) / 255)
        assert float(fl.video.min()) >= 0.0 and float(fl.video.max()) <= 1.0
    assert ref.label.dtype == ref.video_index.dtype == ref.clip_index.dtype == torch.int64
    assert ref.frame_index.dtype == torch.int64 and ref.frame_index.shape == (4, 4)
    assert ref.timestamp.dtype == torch.float64 and ref.timestamp.shape == (4, 4)
    assert ref.video_index.tolist() == [0, 1, 2, 3]
    assert ref.label.tolist() == [dataset[i].label for i in range(4)]
    assert ref.view_index is None and len(ref) == 4
    # Stride 2, timestamps at 25 fps.
    assert torch.equal(ref.frame_index[:, 1:] - ref.frame_index[:, :-1], torch.full((4, 3), 2))
    assert torch.allclose(ref.timestamp, ref.frame_index.double() / 25, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("drop_last", "sizes"), [(False, [3, 3, 1]), (True, [3, 3])])
def test_drop_last_and_len(dataset: vl.VideoDataset, drop_last: bool, sizes: list[int]) -> None:
    loader = make(dataset, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(b) for b in loader] == sizes
    loader = make(dataset, drop_last=drop_last, clips_per_video=2)  # 14 clips
    assert len(loader) == (4 if drop_last else 5) and len(list(loader)) == len(loader)


def test_thread_workers_match_inline(dataset: vl.VideoDataset) -> None:
    inline = rows(list(make(dataset, clips_per_video=2)))
    threads = rows(list(make(dataset, clips_per_video=2, num_workers=2, prefetch=1)))
    assert inline == threads and len(inline) == 5


@pytest.mark.slow  # spawning workers takes 3-5 s here
def test_process_workers_match_threads(dataset: vl.VideoDataset) -> None:
    kw = dict(batch_size=4, frames_per_clip=3, output_layout="NTCHW")
    threads = rows(list(make(dataset, num_workers=2, **kw)))
    loader = make(dataset, num_workers=2, worker_type="process", decode_timeout=120, **kw)
    try:
        procs = rows(list(loader))
    finally:
        loader.close()
    assert procs == threads


def test_set_epoch_and_implicit_advance(dataset: vl.VideoDataset) -> None:
    loader = make(dataset, batch_size=7)
    assert loader.epoch == 0
    plan0, plan1, plan5 = loader.clip_plan(0), loader.clip_plan(1), loader.clip_plan(5)
    assert plan0 != plan1

    def keys(batch: vl.ClipBatch) -> list[tuple]:
        return [
            (v, c, tuple(f))
            for v, c, f in zip(
                batch.video_index.tolist(), batch.clip_index.tolist(), batch.frame_index.tolist(), strict=True
            )
        ]

    def plan_keys(plan: list[vl.ClipSpec]) -> list[tuple]:
        return [(c.video_index, c.clip_index, c.frame_indices) for c in plan]

    assert keys(next(iter(loader))) == plan_keys(plan0)
    assert loader.epoch == 1  # starting a pass advances the epoch, even one that is not finished
    assert keys(next(iter(loader))) == plan_keys(plan1)
    loader.set_epoch(5)
    assert loader.epoch == 5 and keys(next(iter(loader))) == plan_keys(plan5)
    with pytest.raises(vl.ConfigError, match="epoch must be >= 0"):
        loader.set_epoch(-1)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_gives_exactly_the_remaining_batches(dataset: vl.VideoDataset, num_workers: int) -> None:
    kw = dict(clips_per_video=2, batch_size=2, num_workers=num_workers)  # 7 batches
    if num_workers:
        kw["prefetch"] = 3  # prefetch applies only with workers (refused without)
    full = make(dataset, **kw)
    full.set_epoch(2)
    expected = rows(list(full))
    assert len(expected) == 7

    loader = make(dataset, **kw)
    loader.set_epoch(2)
    it = iter(loader)
    taken = [next(it) for _ in range(3)]
    time.sleep(0.3)  # let the prefetch queue fill: queued batches are not handed over yet
    state = json.loads(json.dumps(loader.state_dict()))
    assert (state["epoch"], state["batches_yielded"]) == (2, 3)
    assert rows(taken) == expected[:3]

    fresh = make(dataset, **kw)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    rest = list(fresh)
    assert rows(rest) == expected[3:]
    # Then training goes on with the next epoch.
    after = fresh.state_dict()
    assert (after["epoch"], after["batches_yielded"]) == (3, 0)
    nxt = make(dataset, **kw)
    nxt.set_epoch(3)
    assert rows([next(iter(fresh))]) == rows([next(iter(nxt))])


def test_state_points_where_the_caller_is(dataset: vl.VideoDataset) -> None:
    loader = make(dataset)

    def where(ld: vl.VideoLoader) -> tuple[int, int]:
        s = ld.state_dict()
        return s["epoch"], s["batches_yielded"]

    assert where(loader) == (0, 0)
    loader.set_epoch(4)
    assert where(loader) == (4, 0), "a checkpoint taken before the epoch starts must resume at that epoch"
    it = iter(loader)
    next(it)
    assert where(loader) == (4, 1)
    for _ in it:
        pass
    assert where(loader) == (5, 0), "a finished epoch resumes at the start of the next one"
    # The README's loop calls set_epoch(e) every epoch: after loading a mid-epoch state that must not
    # restart the epoch from the beginning.
    full = rows(list(make(dataset)))
    partial = make(dataset)
    it = iter(partial)
    next(it)
    state = partial.state_dict()
    resumed = make(dataset)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)
    assert rows(list(resumed)) == full[1:]
    other = make(dataset)
    other.load_state_dict(state)
    other.set_epoch(1)  # a different epoch: starts it from the beginning
    assert len(list(other)) == len(full)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(seed=8), "seed"),
        (dict(frames_per_clip=5), "frames_per_clip"),
        (dict(batch_size=4), "batch_size"),
        (dict(sampling="uniform"), "sampling"),
    ],
)
def test_state_mismatch_names_the_field(dataset: vl.VideoDataset, change: dict, field: str) -> None:
    loader = make(dataset)
    next(iter(loader))
    state = loader.state_dict()
    other = make(dataset, **change)
    with pytest.raises(
        vl.StateMismatchError, match=rf"cannot resume: {field} was .* when the state was saved"
    ):
        other.load_state_dict(state)


def test_state_mismatch_on_dataset_and_garbage(dataset: vl.VideoDataset) -> None:
    state = make(dataset).state_dict()
    smaller = vl.VideoDataset(videos=list(dataset)[:-1], classes=dataset.classes)
    with pytest.raises(vl.StateMismatchError, match="the dataset differs"):
        make(smaller).load_state_dict(state)
    with pytest.raises(vl.StateMismatchError, match="not a vidloader loader state"):
        make(dataset).load_state_dict({"epoch": 1})


def test_mixed_frame_sizes_need_resize(dataset: vl.VideoDataset, tmp_path: Path) -> None:
    big = write_video(tmp_path / "big.mp4", textured_frames(20, 40, 56), gop=10)
    small = dataset[0].path
    ds = vl.VideoDataset.from_paths([small, big], cache_dir=tmp_path / "cache")
    for workers in (0, 2):
        loader = make(ds, batch_size=2, shuffle=False, num_workers=workers)
        with pytest.raises(vl.ConfigError) as err:
            next(iter(loader))
        msg = str(err.value)
        assert "(32, 48)" in msg and "(40, 56)" in msg and "resize" in msg
        assert small in msg and str(big) in msg
    batch = next(iter(make(ds, batch_size=2, resize=(24, 30))))
    assert batch.video.shape == (2, 3, 4, 24, 30)


def test_stats_are_json(dataset: vl.VideoDataset) -> None:
    loader = make(dataset, num_workers=2)
    batches = list(loader)
    stats = json.loads(json.dumps(loader.stats))
    assert stats["backend"] == "pyav"
    assert stats["clips"] == len(dataset) and stats["batches"] == len(batches) == 3
    assert stats["skipped_clips"] == stats["skipped_batches"] == 0
    assert stats["decode_failures"] == [] and stats["skipped_files"] == []


@pytest.mark.parametrize("sampling", ["random", "sliding"])
def test_rank_sharding(dataset: vl.VideoDataset, sampling: str) -> None:
    per_rank = []
    for rank in range(3):
        step = {"clip_step": 5} if sampling == "sliding" else {}  # clip_step applies to windows only
        loader = make(dataset, rank=rank, world_size=3, batch_size=2, sampling=sampling, **step)
        expected = len(loader)  # the next epoch's length: read before the pass moves to the one after
        batches = list(loader)
        assert len(batches) == expected
        per_rank.append(batches)
        assert loader.clip_plan(0) == vl.plan_epoch(
            list(dataset), loader.config, seed=7, epoch=0, rank=rank, world_size=3
        )
    assert len({len(b) for b in per_rank}) == 1, "every rank yields as many batches"
    videos = [{v for b in batches for v in b.video_index.tolist()} for batches in per_rank]
    assert set().union(*videos) == set(range(len(dataset)))
    assert sum(len(v) for v in videos) - len(dataset) <= 2  # 7 videos over 3 ranks: 2 wrap round
    with pytest.raises(vl.ConfigError, match=r"rank=3 must be in \[0, world_size=3\)"):
        make(dataset, rank=3, world_size=3)


class SlowTransform:
    """Holds the prefetch thread inside the batch generator, where closing it from outside used to fail."""

    num_views = 1

    def __call__(self, video: torch.Tensor, *, seeds: list[int]) -> torch.Tensor:
        time.sleep(0.3)
        return video.float()


def test_abandoning_an_iteration_is_clean(dataset: vl.VideoDataset) -> None:
    loader = make(dataset, num_workers=2, prefetch=1, batch_size=1, transform=SlowTransform())
    it = iter(loader)
    next(it)
    time.sleep(0.1)  # the prefetch thread is now in the transform of a later batch
    it.close()  # what a `break` out of the loop does once the iterator is dropped: must not raise
    deadline = time.monotonic() + 10
    while any(t.name == "vidloader-prefetch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "vidloader-prefetch" for t in threading.enumerate())
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (0, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(output_layout="NHWC"), "output_layout='NHWC' is not allowed; choose one of 'NCTHW'"),
        (dict(dtype=torch.int32), "dtype=torch.int32 is not allowed"),
        (dict(device="tpu"), "device='tpu' is not allowed"),
        (dict(worker_type="fork"), "worker_type='fork' is not allowed"),
        (dict(on_error="ignore"), "on_error='ignore' is not allowed"),
        (dict(backend="ffmpeg"), "backend='ffmpeg' is not allowed"),
        (dict(resize=(0, 3)), r"resize=\(0, 3\) is not allowed"),
        (dict(decode_timeout=0), "decode_timeout must be positive"),
    ],
)
def test_config_errors(dataset: vl.VideoDataset, kwargs: dict, match: str) -> None:
    with pytest.raises(vl.ConfigError, match=match):
        make(dataset, **kwargs)


def test_frames_match_decode(dataset: vl.VideoDataset) -> None:
    # Thread workers write straight into the batch buffer in the output layout: still the right pixels.
    loader = make(dataset, num_workers=2, output_layout="NCTHW", clips_per_video=2)
    backend = vl.PyAVBackend()
    for batch in loader:
        for r in range(len(batch)):
            info = dataset[int(batch.video_index[r])]
            clip = backend.decode_clip(info, batch.frame_index[r].tolist())
            assert np.array_equal(batch.video[r].permute(1, 2, 3, 0).numpy(), clip.frames)


def test_batch_lives_on_the_device(dataset: vl.VideoDataset, device: str) -> None:
    kw = dict(sampling="uniform", shuffle=False, batch_size=4)
    cpu = next(iter(make(dataset, **kw)))
    for workers in (0, 2):
        batch = next(iter(make(dataset, device=device, num_workers=workers, **kw)))
        assert batch.video.device.type == device and batch.label.device.type == device
        # Bookkeeping stays on the CPU: reading it never waits for the GPU.
        assert batch.frame_index.device.type == "cpu" and batch.timestamp.device.type == "cpu"
        assert torch.equal(batch.video.cpu(), cpu.video)
        assert torch.equal(batch.frame_index, cpu.frame_index)
        fl = next(iter(make(dataset, device=device, num_workers=workers, dtype=torch.float32, **kw)))
        assert torch.allclose(fl.video.cpu(), cpu.video.float() / 255, rtol=0, atol=1e-6)
