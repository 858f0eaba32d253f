"""The decode floor as a figure: `profiling()` turns the backend's profile on for a block, `floor_figures`
divides it per clip, `bench --profile` records it in the report, and the ratio to the best peer counts
only the peers whose frames checked exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vidloader as vl
from vidloader import ConfigError
from vidloader.backends import (
    FLOOR_STAGES,
    PROFILE_ENV,
    STAGES,
    PyAVBackend,
    profile_totals,
    profiling,
    reset_profile,
)
from vidloader.cli import main
from vidloader.cli._bench_profile import floor_figures, format_profile, profile_loader
from vidloader.cli._vs_peers import not_counted, ratios
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "probe-cache"))
    monkeypatch.delenv(PROFILE_ENV, raising=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("floor")
    for i in range(2):
        write_video(root / "c" / f"v{i}.mp4", textured_frames(40, 48, 64, seed=i), gop=20)
    return vl.VideoDataset.from_folder(root)


def test_profiling_block_counts_clips_without_the_env_and_keeps_frames(dataset: vl.VideoDataset) -> None:
    reset_profile()
    idx = [25, 27, 29, 31]
    plain = PyAVBackend().decode_clip(dataset[0], idx).frames
    assert profile_totals()["clips"] == 0
    with profiling():
        with profiling():  # nested blocks: on until the outer one ends
            pass
        timed = PyAVBackend().decode_clip(dataset[0], idx).frames
    np.testing.assert_array_equal(plain, timed)
    tot = profile_totals()
    assert tot["clips"] == 1 and tot["frames_kept"] == 4
    assert all(tot["cpu_seconds"][s] > 0 for s in FLOOR_STAGES)
    PyAVBackend().decode_clip(dataset[0], idx)  # after the block: off again
    assert profile_totals()["clips"] == 1
    reset_profile()


def test_floor_figures_divide_per_clip() -> None:
    cpu = dict.fromkeys(STAGES, 0.001)
    cpu["decode_preroll"], cpu["decode_clip"] = 0.004, 0.012
    wall = {s: 2 * v for s, v in cpu.items()}
    totals = {"clips": 4, "frames_decoded": 40, "frames_kept": 16, "seconds": wall, "cpu_seconds": cpu}
    fig = floor_figures(totals, cpu_seconds=0.1, wall_seconds=0.05, workers=2)
    assert fig["clips"] == 4 and fig["workers"] == 2
    assert fig["cpu_ms_per_clip"] == pytest.approx(25.0)
    assert fig["floor_ms_per_clip"] == pytest.approx(4.0)  # (4 + 12) ms over 4 clips
    assert fig["floor_share"] == pytest.approx(4.0 / 25.0)
    assert fig["in_clips_ms_per_clip"] == pytest.approx(1000 * sum(cpu.values()) / 4)
    assert fig["stages_wall_ms_per_clip"]["decode_clip"] == pytest.approx(6.0)
    # 2 workers x 50 ms of wall over 4 clips = 25 ms per clip of worker time, less the stages' wall.
    assert fig["waiting_ms_per_clip"] == pytest.approx(25.0 - 2000 * sum(cpu.values()) / 4)
    assert (fig["frames_decoded_per_clip"], fig["frames_kept_per_clip"]) == (10.0, 4.0)
    text = format_profile("w", fig)
    assert "| decode_clip | 6.00 | 3.00 |" in text and "4.00 (16% of process CPU)" in text


def test_profile_loader_counts_the_profiled_batches_only(dataset: vl.VideoDataset) -> None:
    loader = vl.VideoLoader(
        dataset,
        frames_per_clip=4,
        frame_stride=2,
        clips_per_video=3,
        shared_decode=False,  # one profiled clip per clip (a shared pass is one profiled decode)
        batch_size=2,
        backend="pyav",
        num_workers=0,
        device="cpu",
    )
    try:
        fig = profile_loader(loader, batches=2, warmup=1)
    finally:
        loader.close()
    assert fig["clips"] == 4 and fig["frames_kept_per_clip"] == 4
    assert 0 < fig["floor_ms_per_clip"] <= fig["in_clips_ms_per_clip"]
    assert 0 < fig["floor_share"] <= 1.5 and fig["cpu_ms_per_clip"] > 0
    procs = vl.VideoLoader(
        dataset, frames_per_clip=4, batch_size=2, num_workers=1, worker_type="process", device="cpu"
    )
    with pytest.raises(ConfigError, match="worker_type='thread'"):
        profile_loader(procs, batches=1, warmup=0)
    procs.close()


def test_bench_profile_records_the_floor_share(tmp_path: Path, capsys) -> None:
    out_json = tmp_path / "p.json"
    rc = main(
        ["bench", "--synthetic", "tiny", "--data-root", str(tmp_path / "bench"), "--backends",
         "vidloader-pyav,pyav-seek", "--clips", "8", "--batch-size", "2", "--frames", "4", "--repeats", "1",
         "--profile", "--json", str(out_json)]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(out_json.read_text())
    assert len(report["machine"]["load_average"]) == 3 and min(report["machine"]["load_average"]) >= 0
    prof = report["profile"]
    assert prof["clips"] >= 2 and set(prof["stages_cpu_ms_per_clip"]) == set(STAGES)
    floor = sum(prof["stages_cpu_ms_per_clip"][s] for s in FLOOR_STAGES)
    assert prof["floor_ms_per_clip"] == pytest.approx(floor) and floor > 0
    assert prof["floor_share"] == pytest.approx(floor / prof["cpu_ms_per_clip"])
    timed = report["backends"]["vidloader-pyav"]["cpu_s_per_clip"]
    assert prof["floor_share_of_timed_cpu"] == pytest.approx(floor / (1000 * timed))
    assert "decode floor (vidloader-pyav, profiled run)" in capsys.readouterr().out
    rc = main(
        ["bench", "--synthetic", "tiny", "--data-root", str(tmp_path / "bench"), "--backends", "vidloader-pyav",
         "--clips", "4", "--batch-size", "2", "--frames", "4", "--repeats", "1", "--json", str(out_json)]
    )  # fmt: skip
    assert rc == 0 and json.loads(out_json.read_text())["profile"] is None


def _round(cps: float, cpu: float, check: str = "exact") -> dict:
    return {"clips_per_s": cps, "cpu_s_per_clip": cpu, "cpu_s_per_clip_steady": cpu, "check": check}


def test_best_peer_ratio_leaves_out_peers_with_wrong_frames() -> None:
    rounds = {
        "vidloader-pyav": [_round(10.0, 0.1), _round(12.0, 0.1)],
        "opencv": [_round(5.0, 0.2), _round(6.0, 0.3)],
        "torchcodec": [_round(50.0, 0.01, "DIFFERS"), _round(50.0, 0.01, "DIFFERS")],
    }
    vs = ratios(rounds)
    assert vs is not None
    assert vs["per_round"] == [2.0, 2.0] and vs["best_peer_per_round"] == ["opencv", "opencv"]
    assert vs["cpu_per_round"] == pytest.approx([2.0, 3.0])
    assert list(not_counted({n: rs[0] for n, rs in rounds.items()})) == ["torchcodec"]
    assert ratios({"vidloader-pyav": rounds["vidloader-pyav"], "torchcodec": rounds["torchcodec"]}) is None
