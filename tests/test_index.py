"""The portable index: Parquet round trip (segments included), paths that travel with the data, another
process opening it without probing, files changed since indexing reported (or an error with strict), schema
versions (an index of version 1 still opens), incremental re-indexing, the process and Ray probe engines,
damage recorded and reported on every run, the CLI (``--verify``, ``--full``, ``--strict``), and a loader on
an index."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import vidloader as vl
from media import (
    MediaLibrary,
    media_fixture,  # noqa: F401  (fixture `media`)
    probe_cache_env,  # noqa: F401  (autouse fixture)
)
from vidloader.cli import main
from vidloader.dataset import INDEX_VERSION, IndexRows, textured_frames, write_video
from vidloader.dataset._location import resolve
from zoo import Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)

LENGTHS = [14, 18, 23, 16]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i, n in enumerate(LENGTHS):
        write_video(
            root / ("cat" if i % 2 else "dog") / f"v{i}.mp4", textured_frames(n, 32, 48, seed=i), gop=6
        )
    (root / "dog" / "broken.mp4").write_bytes(b"not a video at all")
    return root


def test_round_trip_keeps_every_field_and_stores_relative_paths(folder: Path, tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    index = ds.to_index(folder / "vidloader-index.parquet")
    table = pq.read_table(index)
    assert table.column("path").to_pylist() == ["cat/v1.mp4", "cat/v3.mp4", "dog/v0.mp4", "dog/v2.mp4"]
    meta = json.loads(table.schema.metadata[b"vidloader.index"])
    assert meta["version"] == INDEX_VERSION and meta["classes"] == ["cat", "dog"]
    opened = vl.VideoDataset.from_index(index)
    assert opened.rows is not None and len(opened) == len(ds) == 4
    assert list(opened) == list(ds)  # every field, frame and keyframe pts included
    assert [s.path for s in opened.skipped] == [s.path for s in ds.skipped] and "broken" in ds.skipped[0].path
    assert opened.summary() == ds.summary()
    assert opened.fingerprint_items() == ds.fingerprint_items()


def test_vfr_keeps_every_pts_and_cfr_stores_a_step(media: MediaLibrary, tmp_path: Path) -> None:
    paths = [media.path(n) for n in ("vfr", "audio", "short", "rotated")]
    ds = vl.VideoDataset.from_paths(paths, labels=[0, 1, 2, 3])
    index = ds.to_index(tmp_path / "mixed.parquet")
    table = pq.read_table(index)
    steps = table.column("pts_step").to_pylist()
    stored = [len(p) for p in table.column("frame_pts").to_pylist()]
    assert steps[0] == 0 and stored[0] == ds[0].num_frames  # irregular gaps: every pts stored
    assert all(s > 0 for s in steps[1:]) and stored[1:] == [0, 0, 0]
    opened = vl.VideoDataset.from_index(index)
    assert list(opened) == list(ds)
    assert opened[1].frame_pts == ds[1].frame_pts and opened[3].rotation == 90 and opened[1].has_audio


def test_manifest_segments_survive_the_index(folder: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"path,label,start_sec,end_sec\n{folder}/cat/v1.mp4,a,0.1,0.5\n{folder}/dog/v2.mp4,b,,\n"
    )
    ds = vl.VideoDataset.from_manifest(manifest, progress=False)
    opened = vl.VideoDataset.from_index(ds.to_index(tmp_path / "m-index.parquet"))
    assert list(opened) == list(ds)
    assert opened[0].first_frame > 0 and opened[0].start == 0.1 and opened[1].start is None


def test_moved_dataset_opens_in_another_process_without_probing(folder: Path, tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    ds.to_index(folder / "vidloader-index.parquet")
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(folder, moved)  # copy2: keeps modification times, as rsync -a does
    shutil.rmtree(folder)
    code = (
        "import json, sys, vidloader.dataset._probe_file as p\n"
        "p.probe_video = None  # any probe would fail\n"
        "import vidloader as vl\n"
        "ds = vl.VideoDataset.from_index(sys.argv[1], strict=True)\n"
        "print(json.dumps([v.path for v in ds] + [ds[0].num_frames]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(moved / "vidloader-index.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out[:4] == [str(moved / p) for p in ("cat/v1.mp4", "cat/v3.mp4", "dog/v0.mp4", "dog/v2.mp4")]
    assert out[4] == LENGTHS[1]


def test_changed_files_are_reported_not_used(folder: Path, capsys) -> None:
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    index = ds.to_index(folder / "vidloader-index.parquet")
    with (folder / "cat" / "v3.mp4").open("ab") as f:
        f.write(b"\0" * 10)
    (folder / "dog" / "v0.mp4").unlink()
    opened = vl.VideoDataset.from_index(index)
    assert [v.path.rsplit("/", 1)[1] for v in opened] == ["v1.mp4", "v2.mp4"]
    reasons = {Path(s.path).name: s.reason for s in opened.skipped}
    assert "changed since indexed (size" in reasons["v3.mp4"] and reasons["v0.mp4"] == "file no longer exists"
    with pytest.raises(vl.ConfigError, match=r"does not match 2 of its 4 files"):
        vl.VideoDataset.from_index(index, strict=True)
    assert len(vl.VideoDataset.from_index(index, check_files="none")) == 4
    # --strict exits 1 on files changed since indexing, as on unreadable ones (its --help says so); they
    # are listed with the reason.
    assert main(["index", "--index", str(index), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "unreadable:  3" in out and "v3.mp4: changed since indexed (size" in out
    assert main(["index", "--index", str(index)]) == 0


def test_not_an_index_and_other_versions_are_errors(folder: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"path": ["a.mp4"]}), plain)
    with pytest.raises(vl.ConfigError, match="is not a vidloader index"):
        vl.VideoDataset.from_index(plain)
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    table = pq.read_table(ds.to_index(tmp_path / "i.parquet"))
    meta = json.loads(table.schema.metadata[b"vidloader.index"])
    meta["version"] = INDEX_VERSION + 1
    future = tmp_path / "future.parquet"
    pq.write_table(table.replace_schema_metadata({b"vidloader.index": json.dumps(meta).encode()}), future)
    with pytest.raises(vl.ConfigError, match=rf"index schema version {INDEX_VERSION + 1} is not supported"):
        vl.VideoDataset.from_index(future)
    with pytest.raises(vl.ConfigError, match=r"must end in '\.parquet'"):
        ds.to_index(tmp_path / "i.arrow")
    with pytest.raises(vl.ConfigError, match="check_files='some' is not allowed"):
        vl.VideoDataset.from_index(tmp_path / "i.parquet", check_files="some")  # type: ignore[arg-type]


def test_reindexing_probes_only_new_and_changed_files(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidloader.dataset._probe_many as probing

    index = folder / "vidloader-index.parquet"
    kw = dict(on_error="skip", progress=False, use_cache=False)
    vl.VideoDataset.from_folder(folder, **kw).to_index(index)  # type: ignore[arg-type]
    write_video(folder / "cat" / "new.mp4", textured_frames(12, 32, 48, seed=9), gop=6)
    write_video(folder / "dog" / "v2.mp4", textured_frames(30, 32, 48, seed=5), gop=6)  # changed
    probed: list[str] = []
    real = probing.probe_video

    def counting(path, **kw):
        probed.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(probing, "probe_video", counting)
    ds = vl.VideoDataset.from_folder(folder, reuse_index=index, **kw)  # type: ignore[arg-type]
    assert sorted(probed) == ["broken.mp4", "new.mp4", "v2.mp4"]  # a failed file is tried again
    assert len(ds) == 5 and ds[[v.path for v in ds].index(str(folder / "dog" / "v2.mp4"))].num_frames == 30


def test_process_engine_matches_threads(folder: Path) -> None:
    kw = dict(on_error="skip", progress=False, use_cache=False)
    threads = vl.VideoDataset.from_folder(folder, **kw)  # type: ignore[arg-type]
    procs = vl.VideoDataset.from_folder(folder, engine="process", num_workers=2, **kw)  # type: ignore[arg-type]
    assert list(procs) == list(threads)
    assert [(s.path, s.reason) for s in procs.skipped] == [(s.path, s.reason) for s in threads.skipped]
    with pytest.raises(vl.ConfigError, match="engine='spark' is not allowed"):
        vl.VideoDataset.from_folder(folder, engine="spark")  # type: ignore[arg-type]


@pytest.mark.slow
def test_ray_engine_matches_threads(folder: Path) -> None:
    ray = pytest.importorskip("ray")
    kw = dict(on_error="skip", progress=False, use_cache=False)
    threads = vl.VideoDataset.from_folder(folder, **kw)  # type: ignore[arg-type]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = vl.VideoDataset.from_folder(folder, engine="ray", **kw)  # type: ignore[arg-type]
    finally:
        ray.shutdown()
    assert list(on_ray) == list(threads)
    assert [(s.path, s.reason) for s in on_ray.skipped] == [(s.path, s.reason) for s in threads.skipped]


def test_cli_writes_the_index_where_out_says(folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "idx" / "train.parquet"
    assert main(["index", str(folder), "--out", str(out), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert f"index:       {out}" in text and "broken.mp4" in text
    ds = vl.VideoDataset.from_index(out)
    assert len(ds) == 4 and pq.read_table(out).column("path")[0].as_py() == "../data/cat/v1.mp4"
    assert main(["index", str(folder)]) == 0
    assert (folder / "vidloader-index.parquet").is_file()


def test_loader_on_an_index_gives_the_same_batches(folder: Path) -> None:
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    opened = vl.VideoDataset.from_index(ds.to_index(folder / "vidloader-index.parquet"))
    kw = dict(batch_size=2, frames_per_clip=4, frame_stride=2, num_workers=0, backend="pyav", seed=3)
    a = [(b.video_index.tolist(), b.video.numpy().tobytes()) for b in vl.VideoLoader(ds, **kw)]  # type: ignore[arg-type]
    b = [(b.video_index.tolist(), b.video.numpy().tobytes()) for b in vl.VideoLoader(opened, **kw)]  # type: ignore[arg-type]
    assert a == b and len(a) == 2


def test_rows_travel_to_workers_as_row_ids(media: MediaLibrary, tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_paths([media.path("vfr"), media.path("audio")], labels=[0, 1])
    opened = vl.VideoDataset.from_index(ds.to_index(tmp_path / "w.parquet"))
    for i in range(2):
        blob = pickle.dumps(opened[i], protocol=pickle.HIGHEST_PROTOCOL)
        assert pickle.loads(blob) == ds[i]
        # (Arrow file, folder, row): not the 90 irregular pts of the VFR file.
        assert len(blob) < 400 < len(pickle.dumps(ds[0], protocol=pickle.HIGHEST_PROTOCOL))
    kw = dict(batch_size=2, frames_per_clip=4, frame_stride=3, backend="pyav", seed=1, num_workers=1)
    threads = [b.video.numpy().tobytes() for b in vl.VideoLoader(opened, **kw)]  # type: ignore[arg-type]
    procs = vl.VideoLoader(opened, worker_type="process", **kw)  # type: ignore[arg-type]
    try:
        assert [b.video.numpy().tobytes() for b in procs] == threads
    finally:
        procs.close()


def test_an_index_at_a_url_opens_without_probing(folder: Path, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    ds = vl.VideoDataset.from_folder(folder, on_error="skip", progress=False)
    index = ds.to_index(folder / "vidloader-index.parquet")
    url = "memory://bucket/data/vidloader-index.parquet"
    with fsspec.open(url, "wb") as f:
        f.write(index.read_bytes())
    # The objects sit next to the index, as in a bucket: the open checks that they exist (docs/scale.md).
    for video in folder.rglob("*.mp4"):
        fsspec.filesystem("memory").pipe(
            f"/bucket/data/{video.relative_to(folder).as_posix()}", video.read_bytes()
        )
    opened = vl.VideoDataset.from_index(url, cache_dir=tmp_path / "cache")
    assert [v.path for v in opened] == [
        f"memory://bucket/data/{p}" for p in ("cat/v1.mp4", "cat/v3.mp4", "dog/v0.mp4", "dog/v2.mp4")
    ]
    assert [replace(v, path="") for v in opened] == [replace(v, path="") for v in ds]
    assert [s.path for s in opened.skipped] == ["memory://bucket/data/dog/broken.mp4"]
    fsspec.filesystem("memory").rm("/bucket", recursive=True)
    with pytest.raises(vl.ConfigError, match="cannot be read"):
        vl.VideoDataset.from_index(url)


def test_a_row_backed_info_owns_its_pickling(media: MediaLibrary, tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_paths([media.path("vfr")], labels=[3])
    row = vl.VideoDataset.from_index(ds.to_index(tmp_path / "r.parquet"))[0]
    assert row.index_row is not None and row == ds[0] and row.to_json() == ds[0].to_json()
    # A changed copy is no longer the row: it travels in full, with its change.
    relabelled = replace(row, label=7)
    assert relabelled.index_row is None
    blob = pickle.dumps(relabelled, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(blob).label == 7 and len(blob) > len(pickle.dumps(row, pickle.HIGHEST_PROTOCOL))
    cut = row.with_segment(label=3, start=0.5, end=1.5)
    assert pickle.loads(pickle.dumps(cut)) == cut != row


@pytest.mark.parametrize(
    "base", ["/data/idx", "/", "rel/idx", "", "s3://b/idx", "file:///data", "tar://d::s3://b/s.tar"]
)
def test_bulk_paths_resolve_like_one_path(base: str) -> None:
    import pyarrow as pa

    stored = ["a.mp4", "sub/b.mp4", "../up/c.mp4", "./d.mp4", "e//f.mp4", "g/", "/abs/h.mp4"]
    stored += ["s3://other/i.mp4", "C:/win/j.mp4", "c://k", "tar://m.mp4::/data/s.tar", "q.mp4?sig=a/../b"]
    stored += ["../../two/up.mp4", "../../../../../../far.mp4", "../x/./y.mp4", "../", "..", "../z.mp4?s=1"]
    rows = IndexRows(pa.table({"path": stored}), base_dir=base)
    assert rows.paths() == [rows.path(i) for i in range(len(stored))] == [resolve(base, p) for p in stored]
    kept = rows.without([0, 5])
    assert kept.paths() == [resolve(base, p) for i, p in enumerate(stored) if i not in (0, 5)]
    local = [p for p in stored if ":" not in p]  # no URL or drive path among them: the cheaper test of /
    assert IndexRows(pa.table({"path": local}), base_dir=base).paths() == [resolve(base, p) for p in local]


# ---- damage -------------------------------------------------------------------------------------------


@pytest.fixture
def damaged_folder(zoo: Zoo, tmp_path: Path) -> Path:
    """One healthy file, one cut off (the probe sees it), one whose damage only a decoder sees."""
    root = tmp_path / "damaged" / "cls"
    root.mkdir(parents=True)
    for name in ("mp4_faststart", "truncated_faststart", "corrupt_gop"):
        shutil.copy(zoo.path(name), root / zoo.path(name).name)
    return root.parent


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files probed (not found in the probe cache or an earlier index)."""
    import vidloader.dataset._probe_many as probing

    names: list[str] = []
    real = probing.probe_video

    def counting(path, **kw):
        names.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(probing, "probe_video", counting)
    return names


def test_damage_survives_the_index_and_reaches_the_loader(damaged_folder: Path, tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_folder(damaged_folder, on_error="skip", verify=True, progress=False)
    assert sorted(Path(d.path).name for d in ds.damaged) == ["corrupt_gop.mp4", "truncated_faststart.mp4"]
    index = ds.to_index(tmp_path / "d.parquet")
    table = pq.read_table(index)
    assert table.column("frames_in_container").to_pylist() == [72, 60, 60]
    assert [bool(d) for d in table.column("damage").to_pylist()] == [True, False, True]
    opened = vl.VideoDataset.from_index(index)
    assert opened.damaged == ds.damaged and list(opened) == list(ds)
    # A clip in the damaged GOP fails: one of three, past the default skip budget, which is not tested here.
    loader = vl.VideoLoader(
        opened, batch_size=2, frames_per_clip=4, num_workers=0, on_error="skip", max_skip_fraction=1.0
    )
    list(loader)
    named = {Path(d["path"]).name: d for d in loader.stats["damaged_files"]}
    assert named.keys() == {"corrupt_gop.mp4", "truncated_faststart.mp4"}
    assert named["corrupt_gop.mp4"]["frames_in_container"] == 72
    assert named["corrupt_gop.mp4"]["reason"].startswith(
        f"{named['corrupt_gop.mp4']['frames_decoded']} of 72"
    )


def _as_version_1(index: Path, dst: Path) -> Path:
    """The index as vidloader wrote it before the damage columns: without them, and version 1."""
    table = pq.read_table(index).drop_columns(["frames_in_container", "frames_decoded", "damage"])
    meta = json.loads(table.schema.metadata[b"vidloader.index"])
    meta["version"] = 1
    pq.write_table(table.replace_schema_metadata({b"vidloader.index": json.dumps(meta).encode()}), dst)
    return dst


def test_an_index_of_version_1_opens_and_is_not_reused(
    damaged_folder: Path, tmp_path: Path, probed: list[str]
) -> None:
    ds = vl.VideoDataset.from_folder(damaged_folder, on_error="skip", verify=True, progress=False)
    old = _as_version_1(ds.to_index(damaged_folder / "new.parquet"), damaged_folder / "old.parquet")
    opened = vl.VideoDataset.from_index(old, cache_dir=tmp_path / "map")
    # Nothing is known of damage in a version 1 row: read as such, not as an error.
    assert [(v.frames_in_container, v.frames_decoded, v.damage) for v in opened] == [(0, -1, "")] * 3
    assert [v.frame_pts for v in opened] == [v.frame_pts for v in ds] and opened.damaged == ()
    probed.clear()
    again = vl.VideoDataset.from_folder(
        damaged_folder, on_error="skip", reuse_index=old, use_cache=False, progress=False
    )
    assert len(probed) == 3, "rows without damage records are probed again"
    assert [Path(d.path).name for d in again.damaged] == ["truncated_faststart.mp4"]


def test_cli_verify_strict_and_full(damaged_folder: Path, probed: list[str], capsys) -> None:
    index = damaged_folder / "vidloader-index.parquet"
    assert main(["index", str(damaged_folder), "--verify", "--strict"]) == 1
    out, err = capsys.readouterr()
    assert "damaged:     2" in out and "corrupt_gop.mp4: " in out and " of 72 frames decode (FFmpeg: " in out
    assert "truncated_faststart.mp4: 29 of 60 frames decode (FFmpeg: Packet corrupt" in out
    assert "verified:    3 of 3 videos decoded whole" in out and "2 damaged files" in err
    assert len(probed) == 3
    # A later run reads the index and the cache: the damage is still reported, and --strict still fails.
    assert main(["index", str(damaged_folder), "--strict"]) == 1
    assert "damaged:     2" in capsys.readouterr().out and len(probed) == 3
    assert main(["index", "--index", str(index), "--strict"]) == 1
    assert "damaged:     2" in capsys.readouterr().out
    assert main(["index", str(damaged_folder)]) == 0
    # --full reads neither the index nor the probe cache: every file is probed again (without --verify,
    # only the damage the container shows is found).
    assert main(["index", str(damaged_folder), "--full"]) == 0
    out = capsys.readouterr().out
    assert len(probed) == 6 and "damaged:     1" in out and "verified:    1 of 3" in out


def test_cli_help_says_what_strict_does() -> None:
    from vidloader.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["index"]  # type: ignore[union-attr]
    text = " ".join(sub.format_help().split())
    assert "exit with status 1 when any file is unreadable or damaged" in text
    assert "with --index: or changed since indexing" in text and "--verify" in text
