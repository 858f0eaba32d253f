"""What a torchvision-style training script needs from the loader: batches that unpack, any callable as
``transform=`` (decided once, at construction), and sizes that hold still during an epoch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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


SEED_KW = dict(batch_size=2, frames_per_clip=4, num_workers=0, sampling="random", clips_per_video=2)


def starts(loader: vl.VideoLoader, epoch: int = 0) -> list[tuple[int, int]]:
    return [(c.video_index, c.frame_indices[0]) for c in loader.clip_plan(epoch)]


def test_seed_none_is_drawn_from_torchs_initial_seed(dataset: vl.VideoDataset) -> None:
    torch.manual_seed(123)
    rng = torch.random.get_rng_state()
    first = vl.VideoLoader(dataset, **SEED_KW)
    assert first.seed == 123 and first.config.seed_drawn
    assert torch.equal(torch.random.get_rng_state(), rng), "the caller's random numbers are not moved"
    torch.manual_seed(2**64 - 1)  # torch's seeds are 64-bit; the loader's are 63-bit
    second = vl.VideoLoader(dataset, **SEED_KW)
    assert second.seed == 2**63 - 1 and starts(second) != starts(first), "another run, other clips"
    given = vl.VideoLoader(dataset, seed=123, **SEED_KW)
    assert not given.config.seed_drawn and starts(given) == starts(first)
    with pytest.raises(vl.ConfigError, match="seed must be >= 0, got -1"):
        vl.VideoLoader(dataset, seed=-1, **SEED_KW)


def test_resume_takes_the_saved_seed_in_place_of_a_drawn_one(dataset: vl.VideoDataset) -> None:
    torch.manual_seed(11)
    saved = vl.VideoLoader(dataset, **SEED_KW)
    full = [b.frame_index.tolist() for b in saved]
    saved.set_epoch(0)
    it = iter(saved)
    next(it)
    state = saved.state_dict()
    assert state["config"]["seed"] == 11
    torch.manual_seed(12)  # a new process draws another seed
    resumed = vl.VideoLoader(dataset, **SEED_KW)
    resumed.load_state_dict(state)
    assert resumed.seed == 11 and resumed.config.seed_drawn
    assert [b.frame_index.tolist() for b in resumed] == full[1:]
    assert starts(resumed, 1) == starts(saved, 1), "later epochs too"
    given = vl.VideoLoader(dataset, seed=12, **SEED_KW)  # a seed given is kept, and so refused here
    with pytest.raises(vl.StateMismatchError, match="cannot resume: seed was 11 when the state was saved"):
        given.load_state_dict(state)
    assert given.seed == 12


def test_seed_none_with_ranks_outside_torch_distributed_says_to_pass_one(
    dataset: vl.VideoDataset, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(5)
    with caplog.at_level("WARNING", logger="vidloader"):
        loader = vl.VideoLoader(dataset, rank=1, world_size=2, **SEED_KW)
    assert loader.seed == 5
    assert "seed=None with world_size=2 outside torch.distributed" in caplog.text
    assert "pass the same seed= on every rank" in caplog.text


RANK_SCRIPT = """
import sys, torch, torch.distributed as dist
import vidloader as vl
dist.init_process_group("gloo")
torch.manual_seed(1000 + dist.get_rank())  # ranks seeded differently: the loader's seed is rank 0's
ds = vl.VideoDataset.from_folder(sys.argv[1], cache_dir=sys.argv[2], progress=False)
loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=0)
print("SEED", dist.get_rank(), loader.seed, loader.world_size, flush=True)
dist.destroy_process_group()
"""


def run_ranks(script: str, *args: str) -> list[subprocess.CompletedProcess]:
    """``script`` on two ranks under a real gloo process group (the environment torchrun sets)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).resolve().parent.parent / "src")
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        cmd = [sys.executable, "-c", script, *args]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    outs = [p.communicate(timeout=300)[0] for p in procs]
    return [
        subprocess.CompletedProcess(p.args, p.returncode, out) for p, out in zip(procs, outs, strict=True)
    ]


@pytest.mark.slow
def test_seed_none_is_rank_zeros_under_torch_distributed(dataset: vl.VideoDataset) -> None:
    root = Path(dataset.samples[0][0]).parent.parent
    done = run_ranks(RANK_SCRIPT, str(root), str(root / ".cache"))
    outs = [d.stdout for d in done]
    assert all(d.returncode == 0 for d in done), outs
    seen = sorted(line.split()[1:] for out in outs for line in out.splitlines() if line.startswith("SEED"))
    assert seen == [["0", "1000", "2"], ["1", "1000", "2"]]


RANK_ZERO_BUILDS_NONE = """
import sys, time, torch, torch.distributed as dist
import vidloader as vl
import vidloader._seed
vidloader._seed.SEED_WAIT_S = 3.0
dist.init_process_group("gloo")
ds = vl.VideoDataset.from_folder(sys.argv[1], cache_dir=sys.argv[2], progress=False)
if dist.get_rank() == 1:  # only rank 1 builds this loader: it must not wait for rank 0 for good
    t0 = time.monotonic()
    try:
        vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=0)
    except vl.ConfigError as exc:
        print("REFUSED", round(time.monotonic() - t0), exc, flush=True)
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_seed_none_on_a_rank_whose_rank_zero_builds_no_loader_is_refused_not_hung(
    dataset: vl.VideoDataset,
) -> None:
    root = Path(dataset.samples[0][0]).parent.parent
    done = run_ranks(RANK_ZERO_BUILDS_NONE, str(root), str(root / ".cache"))
    assert all(d.returncode == 0 for d in done), [d.stdout for d in done]
    refused = [line for line in done[1].stdout.splitlines() if line.startswith("REFUSED")]
    assert refused, done[1].stdout
    seconds = int(refused[0].split()[1])
    assert seconds < 30, refused[0]
    assert "rank 0 did not build this loader" in refused[0] and "pass the same seed=" in refused[0]
