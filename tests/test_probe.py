"""Probing: every fact in VideoInfo checked against a full sequential PyAV decode; stream choice; damage
found by the probe or by ``verify``, and recorded; the probe cache (hit, miss on change, lives outside the
data folder, degrades when unusable, keeps damage, refresh, verified results)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

import vidloader as vl
import vidloader.dataset._probe_many as dataset_module  # where probe_many calls probe_video
from media import (
    CODEC_MEDIA,
    MEDIA,
    SHARED,
    VFR_PTS_MS,
    MediaLibrary,
    media_fixture,  # noqa: F401  (fixture `media`)
    probe_cache_env,  # noqa: F401  (autouse fixture)
    reference,
    shared_media,
)
from vidloader.dataset import ProbeCache, default_cache_dir, textured_frames, write_video
from zoo import Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)


@pytest.mark.parametrize("name", [*CODEC_MEDIA, "short"])
def test_probe_matches_full_decode(media: MediaLibrary, name: str) -> None:
    spec = MEDIA[name]
    info = vl.probe_video(media.path(name))
    ref = reference(media.path(name), info.stream_index, rgb=False)
    # Exact: the count and the timestamps of the frames a full decode yields, not container estimates.
    assert info.num_frames == len(ref.pts) == spec.frames
    assert info.frame_pts == tuple(sorted(ref.pts)) == ref.pts
    assert info.time_base == ref.time_base
    assert [info.frame_pts.index(p) for p in info.keyframe_pts] == list(ref.keyframes) == list(spec.keyframes)
    assert (info.width, info.height) == (spec.width, spec.height)
    assert info.codec == spec.codec
    assert info.pix_fmt == spec.pix_fmt
    assert info.rotation == spec.rotation
    assert info.has_audio is spec.has_audio
    assert bool(info.audio_streams) is spec.has_audio
    assert (info.first_frame, info.start, info.end, info.label) == (0, None, None, -1)
    assert info.size_bytes == media.path(name).stat().st_size
    if spec.fps:
        assert info.fps == pytest.approx(spec.fps)
        assert info.duration == pytest.approx(spec.frames / spec.fps)


def test_vfr_timestamps_are_the_written_ones(media: MediaLibrary) -> None:
    info = vl.probe_video(media.path("vfr"))
    seconds = [p * info.time_base for p in info.frame_pts]
    assert seconds == [Fraction(ms, 1000) for ms in VFR_PTS_MS]
    gaps = {b - a for a, b in itertools.pairwise(seconds)}
    assert len(gaps) > 10, "the VFR file must have irregular frame gaps"
    # Duration: first to last pts plus one mean frame gap; fps is the average rate.
    span = float(seconds[-1] - seconds[0])
    assert info.duration == pytest.approx(span * len(seconds) / (len(seconds) - 1))
    assert info.fps == pytest.approx((len(seconds) - 1) / span, rel=0.05)
    for i in (0, 1, 17, 89):
        assert info.pts_seconds(i) == float(seconds[i])
        assert info.frame_at_time(seconds[i]) == i  # a frame exactly at t is the frame for t
        assert info.frame_at_time(seconds[i] - Fraction(1, 10**6)) == max(i - 1, 0)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_probe_shared_clips(name: str) -> None:
    path = shared_media(name)
    width, height, frames, pix_fmt, codec = SHARED[name]
    info = vl.probe_video(path)
    assert (info.width, info.height, info.num_frames, info.pix_fmt, info.codec) == (
        width,
        height,
        frames,
        pix_fmt,
        codec,
    )
    ref = reference(path, info.stream_index, rgb=False)
    assert info.frame_pts == ref.pts and info.num_frames == len(ref.pts)


def test_stream_choice_on_multi_stream_file() -> None:
    path = shared_media("nasa_13013.mp4")
    best = vl.probe_video(path)
    s3 = vl.probe_video(path, video_stream=3)
    s0 = vl.probe_video(path, video_stream=0)
    assert (s3.stream_index, s3.width, s3.height, s3.num_frames) == (3, 480, 270, 390)
    assert s3.duration == pytest.approx(13.013, abs=1e-3) and s3.fps == pytest.approx(30000 / 1001)
    assert (s0.stream_index, s0.width, s0.height, s0.num_frames, s0.fps) == (0, 320, 180, 325, 25.0)
    assert best == s3  # FFmpeg's best video stream is the larger one
    assert s0.has_audio and s0.audio_streams == (1, 4)
    assert s0.num_frames == len(reference(path, 0, rgb=False).pts)
    with pytest.raises(vl.ProbeError, match=r"video_stream=1 is not a video stream; video streams: \[0, 3\]"):
        vl.probe_video(path, video_stream=1)
    # The dataset constructors pass the choice through.
    ds = vl.VideoDataset.from_paths([path], video_stream=0, use_cache=False)
    assert ds[0].stream_index == 0 and ds[0].num_frames == 325


def test_info_json_round_trip(media: MediaLibrary) -> None:
    info = vl.probe_video(media.path("audio"))
    again = vl.VideoInfo.from_json(json.loads(json.dumps(info.to_json())))
    assert again == info and isinstance(again.frame_pts, tuple)


def test_from_folder_labels_classes_and_extensions(media: MediaLibrary, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for cls, names in {"zebra": ["h264", "vp9"], "apple": ["mjpeg"], ".hidden": ["vp8"]}.items():
        for n in names:
            (root / cls).mkdir(parents=True, exist_ok=True)
            shutil.copy(media.path(n), root / cls / media.path(n).name)
    (root / "apple" / "notes.txt").write_text("not a video")
    ds = vl.VideoDataset.from_folder(root, cache_dir=tmp_path / "cache", progress=False)
    assert ds.classes == ("apple", "zebra")
    assert [(Path(v.path).name, v.label) for v in ds] == [
        ("mjpeg.avi", 0),
        ("h264_bframes.mp4", 1),
        ("vp9.webm", 1),
    ]
    assert ds.skipped == ()
    with pytest.raises(vl.ConfigError, match="no class sub-folders"):
        vl.VideoDataset.from_folder(root / "apple")
    with pytest.raises(vl.ConfigError, match="on_error='ignore' is not allowed"):
        vl.VideoDataset.from_folder(root, on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (dict(progress="yes"), "progress must be True or False, got 'yes'"),
        (dict(use_cache=1), "use_cache must be True or False, got 1"),
        (dict(num_workers=-1), "num_workers must be >= 0, got -1"),
        (dict(video_stream=True), "video_stream must be an int, got True"),
        (dict(engine="spark"), "engine='spark' is not allowed"),
        (dict(verify="yes"), "verify must be True or False, got 'yes'"),
        (dict(refresh=1), "refresh must be True or False, got 1"),
    ],
)
def test_every_constructor_checks_the_probe_options(
    media: MediaLibrary, tmp_path: Path, option: dict, match: str
) -> None:
    """The options are declared once (ProbeOptions) and checked once (probe_many), for every constructor."""
    path = tmp_path / "data" / "a" / "v.mp4"
    path.parent.mkdir(parents=True)
    shutil.copy(media.path("h264"), path)
    manifest = tmp_path / "one.csv"
    manifest.write_text("path,label\ndata/a/v.mp4,a\n")
    for make in (
        lambda: vl.VideoDataset.from_paths([path], **option),
        lambda: vl.VideoDataset.from_folder(tmp_path / "data", **option),
        lambda: vl.VideoDataset.from_manifest(manifest, **option),
        lambda: vl.dataset.probe_many([str(path)], **option),
    ):
        with pytest.raises(vl.ConfigError, match=match):
            make()


# ---- probe cache --------------------------------------------------------------------------------------


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = dataset_module.probe_video

    def counting(path, **kw):
        calls.append(str(path))
        return real(path, **kw)

    monkeypatch.setattr(dataset_module, "probe_video", counting)
    return calls


def test_cache_hits_on_second_open_and_misses_after_change(
    media: MediaLibrary, tmp_path: Path, probe_calls: list[str]
) -> None:
    video = tmp_path / "v.mp4"
    shutil.copy(media.path("h264"), video)
    cache = tmp_path / "cache"
    first = vl.VideoDataset.from_paths([video], cache_dir=cache)
    assert probe_calls == [str(video)]
    second = vl.VideoDataset.from_paths([video], cache_dir=cache)
    assert probe_calls == [str(video)], "second open must come from the cache"
    assert second[0] == first[0]
    assert list(cache.glob("*.sqlite")), "the cache is an SQLite file in cache_dir"

    # Same size, new mtime: a miss.
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    vl.VideoDataset.from_paths([video], cache_dir=cache)
    assert len(probe_calls) == 2

    # Different content (and size): a miss, and the new facts.
    write_video(video, textured_frames(33, 32, 48), gop=11)
    changed = vl.VideoDataset.from_paths([video], cache_dir=cache)
    assert len(probe_calls) == 3
    assert (changed[0].num_frames, changed[0].width) == (33, 48)
    vl.VideoDataset.from_paths([video], cache_dir=cache)
    assert len(probe_calls) == 3

    # use_cache=False always probes.
    vl.VideoDataset.from_paths([video], cache_dir=cache, use_cache=False)
    assert len(probe_calls) == 4


def test_cache_keyed_by_stream_and_keeps_callers_path(tmp_path: Path, probe_calls: list[str]) -> None:
    path = shared_media("nasa_13013.mp4")
    cache = tmp_path / "cache"
    a = vl.VideoDataset.from_paths([path], video_stream=0, cache_dir=cache)[0]
    b = vl.VideoDataset.from_paths([path], video_stream=3, cache_dir=cache)[0]
    assert len(probe_calls) == 2 and (a.num_frames, b.num_frames) == (325, 390)
    # Same file through another spelling of its path: a hit, reported under the caller's spelling.
    other = os.path.relpath(path)
    c = vl.VideoDataset.from_paths([other], video_stream=0, cache_dir=cache)[0]
    assert len(probe_calls) == 2 and c.path == other and c.num_frames == 325


def test_read_only_data_folder(media: MediaLibrary, tmp_path: Path, probe_calls: list[str]) -> None:
    root = tmp_path / "ro"
    (root / "cls").mkdir(parents=True)
    shutil.copy(media.path("vp9"), root / "cls" / "a.webm")
    shutil.copy(media.path("h264"), root / "cls" / "b.mp4")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    modes = [(p, p.stat().st_mode) for p in [root, root / "cls", *(root / "cls").iterdir()]]
    try:
        for p, mode in modes:
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        cache = tmp_path / "cache"
        ds = vl.VideoDataset.from_folder(root, cache_dir=cache, progress=False)
        again = vl.VideoDataset.from_folder(root, cache_dir=cache, progress=False)
    finally:
        for p, mode in reversed(modes):
            p.chmod(mode)
    assert len(ds) == 2 and list(again) == list(ds)
    assert len(probe_calls) == 2, "the second index comes from the cache"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, "nothing written to the data"
    assert list((tmp_path / "cache").glob("*.sqlite"))


def test_unusable_cache_dir_degrades_to_no_cache(
    media: MediaLibrary, tmp_path: Path, probe_calls: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cache = ProbeCache(blocker / "cache")  # cannot be created, even by root
    assert cache.get_many(["k"]) == {}
    for _ in range(2):
        ds = vl.VideoDataset.from_paths([media.path("mjpeg")], cache_dir=blocker / "cache")
        assert ds[0].num_frames == MEDIA["mjpeg"].frames
    assert len(probe_calls) == 2


def test_default_cache_dir_follows_env(
    media: MediaLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe_calls: list[str]
) -> None:
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    vl.VideoDataset.from_paths([media.path("vp8")])
    vl.VideoDataset.from_paths([media.path("vp8")])
    assert len(probe_calls) == 1
    assert list((tmp_path / "envcache").glob("*.sqlite"))
    monkeypatch.delenv("VIDLOADER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "vidloader"


def test_probe_rejects_a_directory(tmp_path: Path) -> None:
    with pytest.raises(vl.ProbeError, match="is a directory"):
        vl.probe_video(tmp_path)


# ---- damage -------------------------------------------------------------------------------------------


def test_verify_finds_damage_only_the_decoder_sees(zoo: Zoo) -> None:
    path = zoo.path("corrupt_gop")
    plain = vl.probe_video(path)
    assert not plain.damaged and not plain.verified and plain.frames_in_container == plain.num_frames == 72
    checked = vl.probe_video(path, verify=True)
    # Every listed frame stays indexed (clips over the damage fail at decode time); the record says how many
    # decode: the GOP of the overwritten keyframe (24) and the leading frames of the next keyframe do not.
    assert checked.frame_pts == plain.frame_pts and checked.keyframe_pts == plain.keyframe_pts
    assert checked.damaged and checked.verified and checked.damage
    assert 24 <= checked.frames_decoded < 72 - 20 and checked.frames_in_container == 72
    healthy = vl.probe_video(zoo.path("mp4_bpyramid"), verify=True)
    assert healthy.verified and not healthy.damaged and healthy.damage == ""
    assert healthy.frames_decoded == healthy.frames_in_container == healthy.num_frames == 72
    # A verified probe differs from a plain one only in what the full decode adds.
    assert replace(healthy, frames_decoded=-1) == vl.probe_video(zoo.path("mp4_bpyramid"))


def test_truncated_file_is_recorded_damaged(zoo: Zoo) -> None:
    info = vl.probe_video(zoo.path("truncated_faststart"))
    # The MP4's index (at the front) lists the 60 frames the file had; fewer are left, fewer decode.
    assert info.damaged and "Packet corrupt" in info.damage
    assert info.frames_decoded == info.num_frames < 60 == info.frames_in_container
    assert vl.VideoInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_damage_is_reported_on_every_run_not_only_the_first(
    zoo: Zoo, tmp_path: Path, probe_calls: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    paths = [zoo.path("truncated_mkv"), zoo.path("mkv_cues")]
    cache = tmp_path / "cache"
    for run in range(2):
        caplog.clear()
        ds = vl.VideoDataset.from_paths(paths, on_error="skip", cache_dir=cache)
        assert len(probe_calls) == 2, "the second run reads the probe cache"
        assert [d.path for d in ds.damaged] == [str(paths[0])], run
        assert ds.damaged[0].damage == "File ended prematurely" and ds.summary()["damaged"][0]["path"]
        named = [r for r in caplog.records if "damaged file(s) kept" in r.getMessage()]
        assert len(named) == 1 and str(paths[0]) in named[0].getMessage(), run
        with pytest.raises(
            vl.ProbeError, match=r"truncated\.mkv: damaged: 32 of 32 frames decode \(FFmpeg: File"
        ):
            vl.VideoDataset.from_paths(paths, cache_dir=cache)


def test_verify_reuses_only_verified_results(zoo: Zoo, tmp_path: Path, probe_calls: list[str]) -> None:
    paths = [zoo.path("corrupt_gop"), zoo.path("mp4_faststart")]
    cache = tmp_path / "cache"
    plain = vl.VideoDataset.from_paths(paths, cache_dir=cache)
    assert plain.damaged == () and len(probe_calls) == 2
    checked = vl.VideoDataset.from_paths(paths, cache_dir=cache, verify=True, on_error="skip")
    assert len(probe_calls) == 4, "results that were not verified are probed again"
    assert [d.path for d in checked.damaged] == [str(paths[0])]
    # Verified results serve a later plain run too: the damage found stays known.
    again = vl.VideoDataset.from_paths(paths, cache_dir=cache, on_error="skip")
    assert len(probe_calls) == 4 and again.damaged == checked.damaged
    vl.VideoDataset.from_paths(paths, cache_dir=cache, verify=True, on_error="skip")
    assert len(probe_calls) == 4
    # refresh probes every file again, reading nothing cached, and caches what it finds.
    vl.VideoDataset.from_paths(paths, cache_dir=cache, refresh=True)
    assert len(probe_calls) == 6
    assert vl.VideoDataset.from_paths(paths, cache_dir=cache).damaged == ()
    assert len(probe_calls) == 6


def test_process_engine_verifies_like_threads(zoo: Zoo) -> None:
    paths = [zoo.path("corrupt_gop"), zoo.path("mpg_mpeg1")]
    kw = dict(on_error="skip", use_cache=False, verify=True)
    threads = vl.VideoDataset.from_paths(paths, **kw)  # type: ignore[arg-type]
    procs = vl.VideoDataset.from_paths(paths, engine="process", num_workers=2, **kw)  # type: ignore[arg-type]
    assert list(procs) == list(threads) and [v.verified for v in procs] == [True, True]
    assert [d.path for d in procs.damaged] == [str(paths[0])]
