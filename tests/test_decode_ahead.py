"""Decoding ahead: a batch's shared decode pass also serves clips of the same video in the next batches
(loader/_inflight.py). The batches never change (clips, order, frames); a claim whose pass fails is decoded by
its own batch; resuming mid-epoch gives the same batches."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

import vidloader as vl
from vidloader.backends import AudioSpec, PyAVBackend
from vidloader.dataset import textured_frames, write_video
from vidloader.loader._inflight import AheadClaims, ClaimLost, deliver
from vidloader.sampling import ClipSpec

# 3 videos of 90 frames, one keyframe each; 3 uniform clips of 4 frames per video, 2 clips per batch:
# every video straddles a batch boundary.
KW: dict[str, Any] = dict(
    batch_size=2, frames_per_clip=4, sampling="uniform", clips_per_video=3, shuffle=False, backend="pyav"
)


@pytest.fixture(scope="module")
def one_gop(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("ahead")
    paths = [
        write_video(root / f"v{i}.mp4", textured_frames(90, 36, 52, seed=i), gop=90, bframes=2)
        for i in range(3)
    ]
    return vl.VideoDataset.from_paths(paths)


class CountingPyAV(PyAVBackend):
    """Counts decode passes (one per decode_clip call: a shared pass is one call on the union)."""

    def __init__(self, fail_unions: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail_unions = fail_unions

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        self.calls.append(len(frame_indices))
        if self.fail_unions and len(frame_indices) > KW["frames_per_clip"]:
            raise vl.DecodeError(info.path, "test: a shared pass fails")
        return super().decode_clip(info, frame_indices, **kw)


def _rows(batches: list[vl.ClipBatch]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return [(b.video, b.video_index, b.frame_index) for b in batches]


def _same(a: list[vl.ClipBatch], b: list[vl.ClipBatch]) -> bool:
    return len(a) == len(b) and all(
        all(torch.equal(x, y) for x, y in zip(ra, rb, strict=True))
        for ra, rb in zip(_rows(a), _rows(b), strict=True)
    )


@pytest.mark.parametrize(
    ("num_workers", "worker_type"),
    [(0, "thread"), (2, "thread"), pytest.param(2, "process", marks=pytest.mark.slow)],
)
def test_one_pass_per_video_across_batches_and_frames_unchanged(
    one_gop: vl.VideoDataset, num_workers: int, worker_type: str
) -> None:
    kw = dict(KW, num_workers=num_workers, worker_type=worker_type) if num_workers else KW
    reference = list(vl.VideoLoader(one_gop, shared_decode=False, **kw))
    loader = vl.VideoLoader(one_gop, **kw)
    if worker_type == "thread":
        loader.backend = counting = CountingPyAV()
    batches = list(loader)
    assert len(batches) == 5 and _same(batches, reference)
    # Batch 0 claims v0's third clip (batch 1), batch 1 both later clips of v1 (batch 2), batch 3 v2's last.
    assert loader.stats["clips_decoded_ahead"] == 4
    if worker_type == "thread":
        assert len(counting.calls) == 3, counting.calls  # one pass per video (9 clips)


def test_a_lost_claim_is_decoded_by_its_own_batch(one_gop: vl.VideoDataset) -> None:
    reference = list(vl.VideoLoader(one_gop, shared_decode=False, **KW))
    loader = vl.VideoLoader(one_gop, num_workers=2, **KW)
    loader.backend = counting = CountingPyAV(fail_unions=True)
    batches = list(loader)
    assert _same(batches, reference)
    assert loader.stats["clips_decoded_ahead"] == 0 and loader.stats["skipped_clips"] == 0
    assert any(n > KW["frames_per_clip"] for n in counting.calls)  # shared passes were tried, and failed
    assert sorted(n for n in counting.calls if n == KW["frames_per_clip"]) == [4] * 9  # each clip alone once


def test_resume_mid_epoch_gives_the_same_batches(one_gop: vl.VideoDataset) -> None:
    kw = dict(KW, num_workers=2, prefetch=2)
    expected = list(vl.VideoLoader(one_gop, **kw))
    loader = vl.VideoLoader(one_gop, **kw)
    it = iter(loader)
    taken = [next(it) for _ in range(2)]  # batch 1's claim on batch 2 is in flight
    state = json.loads(json.dumps(loader.state_dict()))
    it.close()
    fresh = vl.VideoLoader(one_gop, **kw)
    fresh.load_state_dict(state)
    assert _same(taken + list(fresh), expected)


def test_clips_decoded_ahead_keep_their_audio(tmp_path: Any) -> None:
    rate = 16000
    audio = np.sin(np.arange(4 * rate) * 2 * np.pi * 440 / rate)[None].astype(np.float32)
    path = write_video(
        tmp_path / "a.mp4", textured_frames(100, 36, 52), fps=25, gop=100, audio=audio, audio_rate=rate
    )
    ds = vl.VideoDataset.from_paths([path, path])
    kw = dict(KW, num_workers=2, audio=AudioSpec(sample_rate=rate))
    reference = list(vl.VideoLoader(ds, shared_decode=False, **kw))
    loader = vl.VideoLoader(ds, **kw)
    batches = list(loader)
    assert loader.stats["clips_decoded_ahead"] > 0 and _same(batches, reference)
    for a, b in zip(batches, reference, strict=True):
        assert a.audio is not None and b.audio is not None and torch.equal(a.audio, b.audio)


def test_dali_batches_with_decoding_ahead_on_are_unchanged(tmp_path: Any) -> None:
    # DALI cuts one clip per task and decodes the batch in one call: nothing is claimed, nothing changes.
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    paths = [
        write_video(tmp_path / f"v{i}.webm", textured_frames(60, 36, 52, seed=i), codec="libvpx-vp9", gop=60)
        for i in range(2)
    ]
    ds = vl.VideoDataset.from_paths(paths)
    kw = dict(KW, backend="dali", num_workers=2, output_layout="NTHWC")
    reference = list(vl.VideoLoader(ds, shared_decode=False, **kw))
    loader = vl.VideoLoader(ds, **kw)
    batches = list(loader)
    assert loader.stats["clips_decoded_ahead"] == 0 and _same(batches, reference)


def _spec(video: int) -> ClipSpec:
    return ClipSpec(video_index=video, frame_indices=(0, 1), clip_index=0, padded=0)


def test_offers_stay_in_the_window_and_are_claimed_once() -> None:
    batches = [[_spec(0), _spec(1)], [_spec(0), _spec(2)], [_spec(1), _spec(0)], [_spec(0)]]
    claims = AheadClaims(batches, window=2)
    offers = claims.offers(0)
    assert [(o.batch, o.position) for o in offers] == [(1, 0), (2, 0), (2, 1)]  # not batch 3: past the window
    futures = [claims.claim(o) for o in offers[:2]]
    assert [(o.batch, o.position) for o in claims.offers(1)] == [(2, 1), (3, 0)]  # (2, 0) is claimed
    assert AheadClaims(batches, window=0).offers(0) == []
    deliver(futures, ["a", "b"])
    assert claims.claimed(1) == {0: futures[0]} and claims.claimed(1) == {}  # handed over once
    lost = claims.claim(offers[2])
    deliver([lost], None)
    with pytest.raises(ClaimLost):
        lost.result()
