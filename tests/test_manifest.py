"""Manifests: CSV and JSONL, relative paths, labels, segments [start_sec, end_sec), and the errors that name
the manifest line."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

import vidloader as vl
from media import (
    MediaLibrary,
    media_fixture,  # noqa: F401  (fixture `media`)
    probe_cache_env,  # noqa: F401  (autouse fixture)
)
from vidloader.dataset import read_manifest


@pytest.fixture
def folder(media: MediaLibrary, tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    for name in ("h264", "vp9", "vfr"):
        (tmp_path / "videos" / media.path(name).name).symlink_to(media.path(name))
    return tmp_path


def write_csv(path: Path, rows: list[str], header: str = "path,label,start_sec,end_sec") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_and_jsonl_give_the_same_dataset(folder: Path) -> None:
    csv = write_csv(
        folder / "m.csv",
        ["videos/h264_bframes.mp4,walk,,", "videos/vp9.webm,run,1.0,2.0", f"{folder}/videos/vfr.mp4,walk,,"],
    )
    jsonl = folder / "m.jsonl"
    lines = [
        json.dumps({"path": "videos/h264_bframes.mp4", "label": "walk"}),
        json.dumps({"path": "videos/vp9.webm", "label": "run", "start_sec": 1.0, "end_sec": 2.0}),
        "",  # blank lines are allowed
        json.dumps({"path": f"{folder}/videos/vfr.mp4", "label": "walk", "start_sec": None}),
    ]
    jsonl.write_text("\n".join(lines) + "\n")
    a = vl.VideoDataset.from_manifest(csv, progress=False)
    b = vl.VideoDataset.from_manifest(jsonl, progress=False)
    assert list(a) == list(b)
    # Relative paths resolve against the manifest's folder; names map to sorted class positions.
    assert [Path(v.path) for v in a] == [
        folder / "videos" / "h264_bframes.mp4",
        folder / "videos" / "vp9.webm",
        folder / "videos" / "vfr.mp4",
    ]
    assert a.classes == ("run", "walk") and [v.label for v in a] == [1, 0, 1]


def test_integer_labels_are_kept(folder: Path) -> None:
    m = write_csv(folder / "m.csv", ["videos/vp9.webm,7", "videos/h264_bframes.mp4,2"], header="path,label")
    ds = vl.VideoDataset.from_manifest(m, progress=False)
    assert [v.label for v in ds] == [7, 2] and ds.classes == ("2", "7")


def test_segment_holds_exactly_the_frames_in_range(folder: Path) -> None:
    m = write_csv(
        folder / "m.csv",
        ["videos/h264_bframes.mp4,a,1.0,2.0", "videos/vfr.mp4,a,0.5,1.25", "videos/vp9.webm,a,1.5,"],
    )
    ds = vl.VideoDataset.from_manifest(m, progress=False)
    for info, (start, end) in zip(ds, [(1.0, 2.0), (0.5, 1.25), (1.5, None)], strict=True):
        seconds = [p * info.time_base for p in info.frame_pts]
        inside = [
            i for i, t in enumerate(seconds) if t >= Fraction(start) and (end is None or t < Fraction(end))
        ]
        assert (info.first_frame, info.num_frames) == (inside[0], len(inside))
        assert (info.start, info.end) == (start, end)
        assert info.total_frames == len(seconds)
    h264 = ds[0]
    assert (h264.first_frame, h264.num_frames) == (25, 25)  # 25 fps: frames 25..49
    assert h264.duration == pytest.approx(1.0)
    # Segments are part of the dataset's identity (resume checks).
    assert ds.fingerprint_items()[0] == (h264.path, 25, 25)


@pytest.mark.parametrize(
    ("rows", "header", "match"),
    [
        (
            ["videos/vp9.webm,a,2.0,1.0"],
            "path,label,start_sec,end_sec",
            r"m\.csv:2: end_sec=1\.0 must be greater",
        ),
        (
            ["videos/vp9.webm,a,soon,"],
            "path,label,start_sec,end_sec",
            r"m\.csv:2: start_sec='soon' is not a number",
        ),
        (["videos/vp9.webm,a"], "file,class", "header must start with 'path,label'"),
        ([], "path,label", "has no rows"),
    ],
)
def test_bad_manifest_rows(folder: Path, rows: list[str], header: str, match: str) -> None:
    m = write_csv(folder / "m.csv", rows, header=header)
    with pytest.raises(vl.ConfigError, match=match):
        vl.VideoDataset.from_manifest(m)


def test_bad_manifest_files(folder: Path) -> None:
    with pytest.raises(vl.ConfigError, match="does not exist"):
        read_manifest(folder / "nope.csv")
    (folder / "m.txt").write_text("path,label\n")
    with pytest.raises(vl.ConfigError, match=r"suffix '\.txt' is not supported"):
        read_manifest(folder / "m.txt")
    (folder / "m.jsonl").write_text('{"path": "a.mp4", "label": 1}\n{not json}\n')
    with pytest.raises(vl.ConfigError, match=r"m\.jsonl:2: not valid JSON"):
        read_manifest(folder / "m.jsonl")
    (folder / "m.jsonl").write_text('{"path": "a.mp4"}\n')
    with pytest.raises(vl.ConfigError, match=r"m\.jsonl:1: each line needs keys 'path' and 'label'"):
        read_manifest(folder / "m.jsonl")


def test_segment_without_frames_follows_on_error(folder: Path) -> None:
    # The H.264 file lasts 4.8 s: a segment past its end holds no frame.
    m = write_csv(folder / "m.csv", ["videos/h264_bframes.mp4,a,10,11", "videos/vp9.webm,b,,"])
    with pytest.raises(vl.ConfigError, match=r"h264_bframes\.mp4: segment \[10\.0, 11\.0\) s holds no frame"):
        vl.VideoDataset.from_manifest(m)
    ds = vl.VideoDataset.from_manifest(m, on_error="skip", progress=False)
    assert len(ds) == 1 and ds[0].path.endswith("vp9.webm")
    assert [(Path(s.path).name, s.reason) for s in ds.skipped] == [
        ("h264_bframes.mp4", f"{folder}/videos/h264_bframes.mp4: segment [10.0, 11.0) s holds no frame")
    ]
