"""Elastic resume: a loader state saved at world size W resumes at W' != W, the rest of the epoch dealt to
the new ranks, none lost, none already consumed repeated (at most W'-1 padding clips dealt twice so ranks
stay in lockstep). In-process first (every rank a loader), then as torchrun starts ranks (gloo on CPU):
W=4 -> 3, W=2 -> 4, and a two-node run on one machine whose shards are disjoint and complete."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.dataset import textured_frames, write_video
from vidloader.sampling import deal, plan_epoch, remaining, resume_plan

ROOT = Path(__file__).resolve().parent.parent
KW = dict(batch_size=2, frames_per_clip=4, frame_stride=2, clips_per_video=3, seed=5, num_workers=0)
Clip = tuple[int, int, tuple[int, ...]]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("elastic")
    for i in range(8):
        write_video(root / f"c{i % 2}" / f"v{i}.mp4", textured_frames(14 + 2 * i, 16, 24, seed=i), gop=5)
    ds = vl.VideoDataset.from_folder(root, progress=False)
    return ds.to_index(root / "vidloader-index.parquet")


def loader(ds: vl.VideoDataset, rank: int, world: int) -> vl.VideoLoader:
    return vl.VideoLoader(ds, rank=rank, world_size=world, backend="pyav", **KW)  # type: ignore[arg-type]


def clips_of(batches: list[vl.ClipBatch]) -> list[Clip]:
    return [
        (v, c, tuple(f))
        for b in batches
        for v, c, f in zip(b.video_index.tolist(), b.clip_index.tolist(), b.frame_index.tolist(), strict=True)
    ]


def full_epoch(ds: vl.VideoDataset, world: int, epoch: int = 0) -> Counter[Clip]:
    cfg = loader(ds, 0, 1).config  # a LoaderConfig is the SamplingConfig plan_epoch takes
    plans = [plan_epoch(ds, cfg, seed=5, epoch=epoch, rank=r, world_size=world) for r in range(world)]
    return Counter((c.video_index, c.clip_index, c.frame_indices) for p in plans for c in p)


def check_split(expected: Counter[Clip], before: list[Clip], after: list[list[Clip]], new_world: int) -> None:
    consumed = Counter(before)
    assert consumed <= expected
    rest = expected - consumed
    got = Counter(c for a in after for c in a)
    assert not rest - got, f"clips lost: {rest - got}"
    extra = got - rest
    assert sum(extra.values()) <= new_world - 1 and set(extra) <= set(rest), "only padding may repeat"
    assert len({len(a) for a in after}) == 1, "ranks stay in lockstep"


def run_stage(ds, world: int, take: int | None, state: dict | None) -> tuple[list[list[Clip]], dict]:
    per_rank, states = [], []
    for r in range(world):
        ld = loader(ds, r, world)
        if state is not None:
            ld.load_state_dict(state)
        batches = []
        for b in ld:
            batches.append(b)
            if take is not None and len(batches) == take:
                break
        per_rank.append(clips_of(batches))
        states.append(json.loads(json.dumps(ld.state_dict())))
    assert all(s == states[0] for s in states), "the state does not depend on the rank"
    return per_rank, states[0]


@pytest.mark.parametrize(("w0", "w1", "take"), [(4, 3, 1), (2, 4, 2), (3, 3, 1), (4, 1, 2)])
def test_resume_at_another_world_size_loses_and_repeats_nothing(
    index: Path, w0: int, w1: int, take: int
) -> None:
    ds = vl.VideoDataset.from_index(index)
    before, state = run_stage(ds, w0, take, None)
    assert (state["world_size"], state["batches_yielded"], state["stages"]) == (w0, take, [])
    after, end = run_stage(ds, w1, None, state)
    check_split(full_epoch(ds, w0), [c for b in before for c in b], after, w1)
    assert (end["epoch"], end["batches_yielded"], end["stages"]) == (1, 0, [])
    # The next epoch is an ordinary one at the new world size.
    nxt = loader(ds, 0, w1)
    nxt.load_state_dict(end)
    assert Counter((c.video_index, c.clip_index, c.frame_indices) for c in nxt.clip_plan()) <= full_epoch(
        ds, w1, epoch=1
    )


def test_chained_restarts_and_same_size_resume_inside_a_stage(index: Path) -> None:
    ds = vl.VideoDataset.from_index(index)
    first, s1 = run_stage(ds, 2, 2, None)  # 2 ranks, 2 batches each
    second, s2 = run_stage(ds, 4, 1, s1)  # 4 ranks take 1 batch of the rest
    assert s2["stages"] == [[2, 4]] and s2["batches_yielded"] == 1
    # Saved and resumed at the same size inside the elastic stage: exactly the remaining batches.
    full_stage, _ = run_stage(ds, 4, None, {**s1})
    same, _ = run_stage(ds, 4, None, s2)
    assert [s + t for s, t in zip(second, same, strict=True)] == full_stage
    third, s3 = run_stage(ds, 3, None, s2)
    consumed = [c for r in first + second for c in r]
    check_split(full_epoch(ds, 2), consumed, third, 3)
    assert s3["epoch"] == 1 and s3["stages"] == []


def test_deal_and_remaining_are_exact() -> None:
    clips = [vl.sampling.ClipSpec(video_index=i, clip_index=0, frame_indices=(i,)) for i in range(7)]
    shares = [deal(clips, rank=r, world_size=3) for r in range(3)]
    assert [[c.video_index for c in s] for s in shares] == [[0, 3, 6], [1, 4, 0], [2, 5, 1]]
    assert [c.video_index for c in remaining(shares, 2)] == [6, 0, 1]
    assert [c.video_index for c in remaining(shares, 9)] == []
    plan = lambda r, w: deal(clips, rank=r, world_size=w)  # noqa: E731
    assert [c.video_index for c in resume_plan(plan, [(3, 1)], rank=1, world_size=2)] == [4, 6, 1]


def test_bad_states_are_named(index: Path) -> None:
    ds = vl.VideoDataset.from_index(index)
    state = loader(ds, 0, 2).state_dict()
    with pytest.raises(vl.StateMismatchError, match="bad stages"):
        loader(ds, 0, 2).load_state_dict({**state, "stages": [[0, 3]]})
    with pytest.raises(vl.StateMismatchError, match="bad world_size"):
        loader(ds, 0, 2).load_state_dict({**state, "world_size": "two"})
    with pytest.raises(vl.StateMismatchError, match="batch_size was 2"):
        vl.VideoLoader(ds, **{**KW, "batch_size": 3}).load_state_dict(state)  # type: ignore[arg-type]


# ---- torchrun (gloo, CPU) ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    src = str(ROOT / "src")
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
    }


def torchrun(nproc: int, *args: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--max-restarts=0"]
    cmd += [*extra, str(ROOT / "tests" / "elastic_worker.py"), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())


def single_node(nproc: int, *args: str) -> None:
    rdzv = ("--nnodes=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", "--rdzv-id=t")
    proc = torchrun(nproc, *args, extra=rdzv)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]


def recorded(out: Path, phase: str, world: int) -> list[list[Clip]]:
    per_rank = []
    for r in range(world):
        d = json.loads((out / f"{phase}-rank{r}.json").read_text())
        assert d["world_size"] == world
        per_rank.append([(v, c, tuple(f)) for v, c, f in d["clips"]])
    return per_rank


@pytest.mark.slow
@pytest.mark.parametrize(("w0", "w1", "take"), [(4, 3, 1), (2, 4, 2)])
def test_torchrun_elastic_restart(index: Path, tmp_path: Path, w0: int, w1: int, take: int) -> None:
    single_node(w0, str(index), str(tmp_path), "save", str(take))
    single_node(w1, str(index), str(tmp_path), "resume")
    ds = vl.VideoDataset.from_index(index)
    before = [c for r in recorded(tmp_path, "save", w0) for c in r]
    assert len(before) == w0 * take * KW["batch_size"]
    check_split(full_epoch(ds, w0), before, recorded(tmp_path, "resume", w1), w1)


@pytest.mark.slow
def test_torchrun_two_nodes_on_one_machine_shard_disjoint_and_complete(index: Path, tmp_path: Path) -> None:
    port = free_port()
    nodes = [
        torchrun(
            2,
            str(index),
            str(tmp_path),
            "full",
            extra=("--nnodes=2", f"--node-rank={n}", "--master-addr=127.0.0.1", f"--master-port={port}"),
        )
        for n in range(2)
    ]
    outs = [p.communicate(timeout=240)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    per_rank = recorded(tmp_path, "full", 4)
    videos = [{v for v, _, _ in r} for r in per_rank]
    assert all(not (videos[a] & videos[b]) for a in range(4) for b in range(a + 1, 4)), "shards overlap"
    assert set().union(*videos) == set(range(8)), "every video is in some shard"
    ds = vl.VideoDataset.from_index(index)
    assert Counter(c for r in per_rank for c in r) == full_epoch(ds, 4)
