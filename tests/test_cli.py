"""The `vidloader` command: bench (schema, plot, wrong-peer detection), inspect (sheet geometry), index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vidloader as vl
from vidloader.cli import PEERS, main, sheet_size
from vidloader.cli._ceiling import measure_ceiling
from vidloader.cli._peers import DALIReader, PeerUnavailable, PyAVNaive
from vidloader.cli._workloads import ensure_workload
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "probe-cache"))


class ShiftedByOne(PyAVNaive):
    """A broken peer: returns the frame after the one asked for."""

    name = "shifted"

    def decode(self, info, indices, resize):
        return super().decode(info, [min(i + 1, info.num_frames - 1) for i in indices], resize)


class Raises(PyAVNaive):
    """A peer that fails on every clip, as decord2 3.4.0 does on the tiny workload: a row, not a crash."""

    name = "raises"

    def decode(self, info, indices, resize):
        raise RuntimeError(f"peer gave up on {Path(info.path).name}")


def _peer_ran_or_said_why(row: dict) -> bool:
    """Peers outside the project may skip (not installed, no FFmpeg), fail (a row with an error) or run;
    what they do is their release's business. When they run, what they return must be right."""
    if "skipped" in row or "error" in row:
        return bool(row.get("skipped") or row.get("error"))
    return row["check"] in ("exact", "close")


def test_bench_tiny_schema_plot_and_wrong_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(PEERS, "shifted", ShiftedByOne)
    monkeypatch.setitem(PEERS, "raises", Raises)
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    rc = main(
        [
            "bench",
            "--synthetic",
            "tiny",
            "--data-root",
            str(tmp_path / "bench"),
            "--backends",
            "vidloader-pyav,pyav-naive,pyav-seek,opencv,decord,shifted,raises,torchcodec,spdl,dali-reader",
            "--clips",
            "8",
            "--batch-size",
            "4",
            "--frames",
            "4",
            "--repeats",
            "1",
            "--seconds",
            "60",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert rc == 0
    report = json.loads(out_json.read_text())
    assert {"machine", "config", "backends", "ceiling"} <= report.keys()
    assert report["machine"]["cores"] >= 1 and report["config"]["clips"] == 8
    assert report["config"]["seconds"] == 60 and report["ceiling"] is None
    # A random plan of a tiny workload batches several clips of one file; a training epoch would not.
    assert report["config"]["sampling"] == "random" and report["config"]["shared_decode"] is False
    rows = report["backends"]
    for name in ["vidloader-pyav", "pyav-naive", "pyav-seek", "opencv"]:
        r = rows[name]
        assert r["check"] == "exact", (name, r)
        assert r["clips_per_s"] > 0 and r["frames_per_s"] == pytest.approx(4 * r["clips_per_s"])
        assert r["clips_per_s_min"] <= r["clips_per_s"] <= r["clips_per_s_max"]
        assert 0 < r["p50_batch_s"] <= r["p95_batch_s"] and r["first_batch_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["cpu_s_per_clip"] > 0 and r["cpu_s_per_clip_steady"] > 0 and r["rounds"] == 1
    vs = report["vs_best_peer"]  # one round: its ratios, against a peer that ran in it
    assert len(vs["per_round"]) == len(vs["cpu_per_round"]) == 1 and vs["median"] == vs["per_round"][0]
    assert vs["best_peer_per_round"][0] in rows and vs["cpu_median"] > 0
    assert rows["shifted"]["check"] == "DIFFERS" and rows["shifted"]["luma_mean_abs_diff"] > 5
    assert rows["raises"] == {"error": "RuntimeError: peer gave up on " + rows["raises"]["error"].split()[-1]}
    # The headline counts only peers that served every checked clip exactly, and names the others.
    counted = {n for n, r in rows.items() if r.get("check") == "exact" and not n.startswith("vidloader")}
    assert set(vs["best_peer_per_round"]) <= counted and set(vs["cheapest_peer_per_round"]) <= counted
    assert report["not_counted"]["shifted"].startswith("check DIFFERS")
    assert report["not_counted"]["raises"].startswith("error: RuntimeError: peer gave up on")
    assert not counted & report["not_counted"].keys()
    assert rows["raises"]["error"].endswith(".mp4")
    assert _peer_ran_or_said_why(rows["decord"]) and _peer_ran_or_said_why(rows["torchcodec"])
    assert _peer_ran_or_said_why(rows["spdl"])
    # Every row and the machine record versions; torchcodec and SPDL load PyAV's FFmpeg.
    assert report["machine"]["ffmpeg"] and {"torchcodec", "spdl", "decord"} <= report["machine"].keys()
    assert rows["vidloader-pyav"]["threads"] == rows["pyav-seek"]["threads"] == report["config"]["threads"]
    if not torch.cuda.is_available():  # H.264 media: DALI's reader needs NVDEC for it
        assert "h264" in rows["dali-reader"]["skipped"]
    text = capsys.readouterr().out
    assert "vidloader-pyav vs best peer:" in text and "DIFFERS" in text
    assert "peers not counted (only those that served every checked clip exactly are): " in text
    assert "shifted (check DIFFERS)" in text and "raises (error)" in text
    assert out_png.stat().st_size > 1000 and Image.open(out_png).size[0] > 100


def test_bench_rejects_unknown_backend(tmp_path: Path, capsys) -> None:
    args = [
        "bench",
        "--synthetic",
        "tiny",
        "--data-root",
        str(tmp_path),
        "--backends",
        "nope",
        "--clips",
        "8",
    ]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "unknown backend(s) ['nope']" in err and "vidloader-pyav" in err
    rc = main([*args[:-4], "--resize", "big"])
    assert rc == 2 and "--resize 'big'" in capsys.readouterr().err


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    for c in ("a", "b"):
        for i in range(2):
            write_video(tmp_path / "data" / c / f"{c}{i}.mp4", textured_frames(20, 24, 40, seed=i), gop=10)
    (tmp_path / "data" / "b" / "broken.mp4").write_text("not a video")
    return tmp_path / "data"


@pytest.mark.parametrize("transform", ["none", "train", "eval"])
def test_inspect_sheet_matches_grid(small_folder: Path, tmp_path: Path, transform: str) -> None:
    out = tmp_path / f"sheet_{transform}.png"
    args = [
        "inspect",
        "--data",
        str(small_folder),
        "--out",
        str(out),
        "--batches",
        "2",
        "--batch-size",
        "2",
        "--frames",
        "3",
        "--stride",
        "2",
        "--transform",
        transform,
        "--size",
        "16",
    ]
    assert main(args) == 0
    img = np.asarray(Image.open(out))
    views = 3 if transform == "eval" else 1
    h, w = (16, 16) if transform != "none" else (24, 40)
    assert (img.shape[1], img.shape[0]) == sheet_size(rows=2 * 2 * views, frames=3, height=h, width=w)
    assert img.std() > 5  # frames were drawn, not an empty canvas


def test_index_lists_unreadable_files(small_folder: Path, capsys) -> None:
    assert main(["index", str(small_folder)]) == 0
    out = capsys.readouterr().out
    assert "videos:      4" in out and "classes:     2" in out and "h264" in out
    assert "broken.mp4" in out and "not a readable media file" in out


def test_module_help() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "vidloader.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and "bench" in res.stdout and "inspect" in res.stdout


@pytest.fixture(scope="module")
def tiny_vp9(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = ensure_workload("tiny-vp9", tmp_path_factory.mktemp("bench"), progress=False)
    return vl.VideoDataset.from_folder(root)


@pytest.mark.dali
def test_dali_reader_peer_decodes_the_plan_like_vidloader_dali(tiny_vp9: vl.VideoDataset) -> None:
    """DALI's own reader, driven by our clip list, gives the frames our DALI backend gives (same decoder, so
    bit-exact), including clips that end in the file's last frames (the reader pads there; we check it
    returned real frames)."""
    loader = vl.VideoLoader(
        tiny_vp9,
        batch_size=4,
        frames_per_clip=5,
        frame_stride=3,
        clips_per_video=4,
        sampling="uniform",
        backend="dali",
        num_workers=0,
        output_layout="NTHWC",
    )
    plan = loader.clip_plan(0)[:8]
    assert any(c.frame_indices[-1] == tiny_vp9[c.video_index].num_frames - 1 for c in plan)
    got = list(DALIReader().batches(tiny_vp9, plan, batch_size=4, resize=None, workers=1))
    want = [b.video for b in loader][:2]
    assert len(got) == 2
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g.cpu(), w.cpu())


@pytest.mark.dali
def test_bench_vp9_dali_rows_and_ceiling(tmp_path: Path, tiny_vp9: vl.VideoDataset, capsys) -> None:
    out_json = tmp_path / "r.json"
    root = Path(tiny_vp9[0].path).parent.parent
    rc = main(
        ["bench", "--data", str(root), "--backends", "vidloader-pyav,vidloader-dali,dali-reader",
         "--clips", "8", "--batch-size", "4", "--frames", "4", "--repeats", "1",
         "--ceiling", "--ceiling-seconds", "0.5", "--json", str(out_json)]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(out_json.read_text())
    rows = report["backends"]
    for name in ("vidloader-dali", "dali-reader"):
        assert rows[name]["clips_per_s"] > 0, rows[name]
        # DALI interpolates chroma where PyAV's swscale does not: right frames, other colours.
        assert rows[name]["check"] == "close", rows[name]
    # Both DALI paths run the same decoder on the same clips, so the check sees the same frames.
    assert rows["vidloader-dali"]["mean_abs_diff"] == rows["dali-reader"]["mean_abs_diff"]
    ceiling = report["ceiling"]
    assert ceiling["frames_per_s"] > 0 and ceiling["engine"] in ("pyav", "dali")
    text = capsys.readouterr().out
    assert "raw decoded frames/s" in text and "%" in text


def test_ceiling_engines(tiny_vp9: vl.VideoDataset, small_folder: Path) -> None:
    pyav = measure_ceiling(tiny_vp9, engine="pyav", device="cpu", processes=1, seconds=0.3)
    assert pyav["frames_per_s"] > 0 and pyav["engine"] == "pyav"
    dali = measure_ceiling(tiny_vp9, engine="dali", device="cpu", processes=1, batch=2, seconds=0.3)
    assert dali["frames_per_s"] > 0 and "DALI" in dali["how"]
    h264 = vl.VideoDataset.from_folder(small_folder, on_error="skip")
    with pytest.raises(PeerUnavailable, match="h264"):
        measure_ceiling(h264, engine="dali", device="cpu", seconds=0.3)
    with pytest.raises(vl.ConfigError, match="engine"):
        measure_ceiling(h264, engine="nvdec", seconds=0.3)  # type: ignore[arg-type]


def test_bench_multiview_plan_shares_decode_passes(tmp_path: Path) -> None:
    out_json = tmp_path / "mv.json"
    rc = main(
        ["bench", "--synthetic", "tiny", "--data-root", str(tmp_path / "bench"), "--backends",
         "vidloader-pyav,pyav-naive", "--sampling", "multiview", "--clips-per-video", "2", "--clips", "6",
         "--batch-size", "2", "--frames", "4", "--repeats", "1", "--json", str(out_json)]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(out_json.read_text())
    cfg = report["config"]
    assert (cfg["sampling"], cfg["clips_per_video"], cfg["shared_decode"], cfg["clips"]) == (
        "multiview",
        2,
        True,
        6,
    )
    assert all(report["backends"][n]["check"] == "exact" for n in ("vidloader-pyav", "pyav-naive"))


def test_bench_with_process_workers_starts_them_first_and_checks_through_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "proc.json"
    args = ["bench", "--synthetic", "tiny", "--data-root", str(tmp_path / "bench"), "--backends",
            "vidloader-pyav,pyav-naive", "--workers", "2", "--worker-type", "process", "--clips", "16",
            "--batch-size", "4", "--frames", "4", "--repeats", "1"]  # fmt: skip
    assert main([*args, "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    row = report["backends"]["vidloader-pyav"]
    assert report["config"]["worker_type"] == row["worker_type"] == "process"
    assert row["check"] == report["backends"]["pyav-naive"]["check"] == "exact"
    # Spawning two interpreters that import torch is seconds of CPU, none of it in the timed runs.
    assert row["worker_start_cpu_s"] > 0.5 and row["worker_start_s"] > 0
    assert row["cpu_s_per_clip"] > 0
    assert "process workers, started before the timed runs" in capsys.readouterr().out
    # The decode profile's stage totals would stay in the workers: refused before anything runs.
    assert main([*args, "--profile"]) == 2
    assert "--profile needs thread workers" in capsys.readouterr().err


def test_process_cpu_counts_live_and_reaped_children() -> None:
    import subprocess
    import sys

    from vidloader.cli._measure import process_cpu_seconds

    burn = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\nprint(1, flush=True)\nsys.stdin.read()"
    before = process_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"
        live = process_cpu_seconds() - before  # the child is alive, waiting on its stdin
    finally:
        child.communicate(b"")
    reaped = process_cpu_seconds() - before
    assert live >= 0.35 and reaped >= live - 0.05  # /proc counts in 10 ms ticks


def test_steady_cpu_per_clip_is_the_second_half_of_the_run() -> None:
    from vidloader.cli._measure import steady_cpu_per_clip

    # CPU marks at the start and after each of 6 batches of 2 clips: the first batches cost more.
    marks = [0.0, 5.0, 7.0, 9.0, 10.0, 11.0, 12.0]
    assert steady_cpu_per_clip(marks, 2) == pytest.approx((12.0 - 9.0) / (3 * 2))
    # Under 4 batches: every batch after the first.
    assert steady_cpu_per_clip([0.0, 5.0, 6.0, 7.0], 1) == pytest.approx(1.0)
    assert steady_cpu_per_clip([0.0, 5.0], 1) == pytest.approx(5.0)


def test_a_run_is_charged_the_work_its_iterator_leaves_running() -> None:
    """A loader's worker finishes the clip it was decoding after the run closes the iterator; that CPU
    belongs to the run (measured after it), not to the next row in the round."""
    import threading
    import time

    from vidloader.cli._measure import measure

    burners: list[threading.Thread] = []

    def burn(cpu_s: float) -> None:
        t0 = time.thread_time()
        while time.thread_time() - t0 < cpu_s:
            pass

    class Batches:
        def __init__(self) -> None:
            self.n = 0

        def __iter__(self) -> Batches:
            return self

        def __next__(self) -> int:
            self.n += 1
            return self.n

        def close(self) -> None:
            burners.append(threading.Thread(target=burn, args=(0.3,)))
            burners[-1].start()

    row = measure(
        Batches, n_batches=3, batch_size=2, frames=1, repeats=1, seconds=None, desc="t", progress=False
    )
    assert len(burners) == 1 and not burners[0].is_alive()
    # 0.3 s of CPU over 6 clips, less what a busy machine's scheduler may leave uncounted.
    assert row["cpu_s_per_clip"] >= 0.3 / 6 * 0.9


# ---- the benchmark's headline and FFmpeg's repeated warnings ------------------------------------------


def _row(clips_per_s: float, check: str = "exact", **extra: object) -> dict:
    """A timed row as the benchmark makes it (the numbers only need to be consistent)."""
    return dict(
        check=check,
        mean_abs_diff=0.0 if check == "exact" else 9.0,
        psnr_db=99.0 if check == "exact" else 20.0,
        clips_per_s=clips_per_s,
        clips_per_s_min=clips_per_s,
        clips_per_s_max=clips_per_s,
        frames_per_s=4 * clips_per_s,
        p50_batch_s=0.1,
        p95_batch_s=0.2,
        first_batch_s=0.3,
        cpu_util=1.0,
        cpu_s_per_clip=1.0 / clips_per_s,
        cpu_s_per_clip_steady=1.0 / clips_per_s,
        peak_rss_mb=100.0,
        **extra,
    )


def test_best_peer_is_the_best_exact_one_and_the_others_are_named() -> None:
    from vidloader.cli import format_table
    from vidloader.cli._vs_peers import not_counted, ratios

    rounds = {
        "vidloader-pyav": [_row(10.0), _row(12.0)],
        "fast-wrong": [_row(40.0, "DIFFERS", why="shape (8, 180, 320, 3) vs (8, 270, 480, 3)")] * 2,
        "close-colours": [_row(30.0, "close", basis="luma", luma_mean_abs_diff=0.3)] * 2,
        "slow-exact": [_row(5.0), _row(6.0)],
        "broken": [{"error": "RuntimeError: repeated frame indices"}],
        "absent": [{"skipped": "not installed"}],
    }
    vs = ratios(rounds)
    assert vs is not None and vs["best_peer_per_round"] == ["slow-exact", "slow-exact"]
    assert vs["per_round"] == [2.0, 2.0] and vs["cheapest_peer_per_round"] == ["slow-exact"] * 2
    results = {n: rs[-1] for n, rs in rounds.items()}
    left_out = not_counted(results)
    assert left_out == {
        "fast-wrong": "check DIFFERS (shape (8, 180, 320, 3) vs (8, 270, 480, 3))",
        "close-colours": "check close (luma)",
        "broken": "error: RuntimeError: repeated frame indices",
        "absent": "skipped: not installed",
    }
    text = format_table({"backends": results, "vs_best_peer": vs, "not_counted": left_out})
    assert (
        "vidloader-pyav vs best peer: 2.00x (median of rounds: 2.00x (slow-exact), 2.00x (slow-exact))"
        in text
    )
    assert "fast-wrong (check DIFFERS), close-colours (check close), broken (error), absent (skipped)" in text
    # A row whose check failed on shape (no pixel difference to report) prints, with the reason.
    assert "DIFFERS (shape (8, 180, 320, 3) vs (8, 270, 480, 3))" in text
    # No exact peer at all: no ratio, said so.
    del rounds["slow-exact"]
    assert ratios(rounds) is None
    text = format_table({"backends": {n: rs[-1] for n, rs in rounds.items()}, "vs_best_peer": None})
    assert "vidloader-pyav vs best peer: no ratio (no peer served every checked clip exactly)" in text


def test_check_clips_cover_every_video_of_the_plan_up_to_a_bound() -> None:
    from vidloader.cli._bench_setup import check_clips_of

    plan = [vl.ClipSpec(video_index=v, clip_index=k, frame_indices=(0,)) for k in range(3) for v in (2, 0, 1)]
    got = check_clips_of(plan)
    assert got[:2] == plan[:2] and sorted({c.video_index for c in got}) == [0, 1, 2] and len(got) == 3
    many = [vl.ClipSpec(video_index=v, clip_index=0, frame_indices=(0,)) for v in range(20)]
    assert check_clips_of(many) == many[:6]


def test_repeated_ffmpeg_warnings_are_counted_not_printed() -> None:
    import logging

    from vidloader.cli._ffmpeg_warnings import counted_ffmpeg_warnings, format_warnings

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    swscale = logging.getLogger("libav.swscaler")
    handler = Keep()
    swscale.addHandler(handler)
    try:
        with counted_ffmpeg_warnings() as counts:
            for _ in range(3):
                swscale.warning("deprecated pixel format used, make sure you did set range correctly")
            swscale.warning("something else")
        swscale.warning("deprecated pixel format used, make sure you did set range correctly")
    finally:
        swscale.removeHandler(handler)
    assert counts == {"deprecated pixel format used, make sure you did set range correctly": 3}
    # Other messages pass, and after the block the filter is gone.
    assert seen == ["something else", "deprecated pixel format used, make sure you did set range correctly"]
    assert format_warnings(dict(counts)) == [
        "FFmpeg said 3 times (shown once): deprecated pixel format used, make sure you did set range correctly"
    ]


def test_bench_on_full_range_video_says_ffmpeg_warnings_once(tmp_path: Path, capfd) -> None:
    from media import shared_media

    root = tmp_path / "real" / "cls"
    root.mkdir(parents=True)
    (root / "full_range.mp4").symlink_to(shared_media("bt709_full_range.mp4"))  # yuvj420p
    out_json = tmp_path / "r.json"
    rc = main(
        ["bench", "--data", str(root.parent), "--backends", "vidloader-pyav,pyav-seek,pyav-naive",
         "--clips", "8", "--batch-size", "4", "--frames", "4", "--repeats", "1", "--resize", "64",
         "--json", str(out_json)]
    )  # fmt: skip
    assert rc == 0
    out, err = capfd.readouterr()
    assert "deprecated pixel format" not in err
    report = json.loads(out_json.read_text())
    (said,) = report["ffmpeg_warnings"].items()
    assert said[0].startswith("deprecated pixel format used") and said[1] > 1
    assert out.count("deprecated pixel format") == 1 and f"FFmpeg said {said[1]} times (shown once)" in out
    assert report["vs_best_peer"] is not None and report["not_counted"] == {}
