"""The opt-in decode timing hook (VIDLOADER_PROFILE): off by default, on it charges every stage and
leaves the frames unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import vidloader as vl
from vidloader.backends import PROFILE_ENV, STAGES, PyAVBackend, profile_totals, reset_profile
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(scope="module")
def info(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoInfo:
    root = tmp_path_factory.mktemp("prof")
    write_video(root / "c" / "v.mp4", textured_frames(40, 48, 64, seed=3), gop=20)
    return vl.VideoDataset.from_folder(root)[0]


def test_profile_is_off_by_default_and_counts_when_on(info: vl.VideoInfo, monkeypatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    reset_profile()
    idx = [25, 27, 29, 31]
    plain = PyAVBackend().decode_clip(info, idx).frames
    assert profile_totals()["clips"] == 0
    monkeypatch.setenv(PROFILE_ENV, "1")
    timed = PyAVBackend().decode_clip(info, idx, resize=(24, 32))
    timed_full = PyAVBackend().decode_clip(info, idx).frames
    np.testing.assert_array_equal(plain, timed_full)
    tot = profile_totals()
    assert tot["clips"] == 2 and tot["frames_kept"] == 8
    # Frames out of the decoder: from the keyframe at 20 to 31, less the non-reference ones it skipped.
    assert 8 <= tot["frames_decoded"] <= 2 * (31 - 20 + 2)
    assert set(tot["seconds"]) == set(STAGES) == set(tot["cpu_seconds"])
    for stage in ("open", "seek", "demux", "decode_preroll", "decode_clip", "convert", "copy"):
        assert tot["seconds"][stage] > 0, stage
    assert timed.frames.shape == (4, 24, 32, 3)
    reset_profile()
    assert profile_totals()["clips"] == 0 and sum(profile_totals()["seconds"].values()) == 0
