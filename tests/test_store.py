"""Videos and manifests in stores: S3 (moto's server on loopback), HTTP range reads, tar shard members.

Every remote read goes through a real server over TCP; the same clips must come back bit-exact from local
files, ``s3://``, ``http://`` and tar members, with retries for transient faults and clear, redacted errors
for missing or denied objects."""

from __future__ import annotations

import errno
import logging
import os
import tarfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

import vidloader as vl
from media import CODEC_MEDIA, media_fixture, probe_cache_env  # noqa: F401
from stores import FlakyFileSystem, RangeHTTPServer, s3_server
from vidloader._redact import redact
from vidloader.backends import PyAVBackend, decode_audio_span, remux_segment
from vidloader.backends._audio import AudioSpec
from vidloader.cli import main as cli_main
from vidloader.dataset import (
    clear_store_cache,
    configure_store,
    is_remote,
    open_source,
    reset_store_stats,
    store_config,
    store_stats,
    tar_member_url,
    textured_frames,
    write_video,
)

NAMES = ("h264", "vp9", "audio")
BUCKET = "media"


@pytest.fixture(scope="module")
def local_set(media) -> dict[str, Path]:
    return {n: media.path(n) for n in NAMES}


@pytest.fixture(scope="module")
def shard(local_set: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shard") / "shard-000.tar"
    with tarfile.open(path, "w") as tar:
        for n, p in local_set.items():
            tar.add(p, arcname=f"videos/{n}{p.suffix}")
    return path


@pytest.fixture(scope="module")
def s3(local_set: dict[str, Path], shard: Path) -> Iterator[str]:
    with s3_server() as server:
        fs = fsspec.filesystem("s3")
        fs.mkdir(BUCKET)
        for n, p in local_set.items():
            fs.put_file(str(p), f"{BUCKET}/videos/{n}{p.suffix}")
        fs.put_file(str(shard), f"{BUCKET}/shards/shard-000.tar")
        yield server.endpoint


@pytest.fixture(scope="module")
def http(local_set: dict[str, Path], shard: Path) -> Iterator[RangeHTTPServer]:
    root = shard.parent
    (root / "videos").mkdir(exist_ok=True)
    for n, p in local_set.items():
        (root / "videos" / f"{n}{p.suffix}").write_bytes(p.read_bytes())
    with RangeHTTPServer(root) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_stats() -> Iterator[None]:
    before = store_config()
    reset_store_stats()
    FlakyFileSystem.queued.clear()
    yield
    configure_store(**asdict(before))


def urls(kind: str, local_set: dict[str, Path], shard: Path, http: RangeHTTPServer | None) -> list[str]:
    out = []
    for n, p in local_set.items():
        member = f"videos/{n}{p.suffix}"
        out.append(
            {
                "local": str(p),
                "s3": f"s3://{BUCKET}/{member}",
                "http": f"{http.url if http else ''}/{member}",
                "tar-s3": tar_member_url(f"s3://{BUCKET}/shards/shard-000.tar", member),
                "tar-local": tar_member_url(str(shard), member),
            }[kind]
        )
    return out


def batches(paths: list[str], **kw) -> list[torch.Tensor]:
    ds = vl.VideoDataset.from_paths(paths, labels=list(range(len(paths))), use_cache=False)
    loader = vl.VideoLoader(
        ds, batch_size=2, frames_per_clip=4, frame_stride=3, clips_per_video=3, seed=5, backend="pyav", **kw
    )
    try:
        return [b.video.clone() for b in loader]
    finally:
        loader.close()


@pytest.mark.parametrize("kind", ["s3", "http", "tar-s3", "tar-local"])
@pytest.mark.parametrize("workers", [0, 2])
def test_same_clips_from_every_store(kind, workers, local_set, shard, s3, http) -> None:
    want = batches(urls("local", local_set, shard, http), num_workers=workers)
    got = batches(urls(kind, local_set, shard, http), num_workers=workers)
    assert len(got) == len(want) == 5
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)
    stats = store_stats()
    assert stats["requests"] > 0 and stats["retries"] == 0 and stats["failures"] == 0


def test_same_clips_in_process_workers(local_set, shard, s3, http) -> None:
    want = batches(urls("local", local_set, shard, http), num_workers=0)
    got = batches(urls("s3", local_set, shard, http), num_workers=2, worker_type="process")
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True)) and len(got) == len(want)


def test_probe_matches_local(local_set, shard, s3, http) -> None:
    for kind in ("s3", "http", "tar-s3"):
        for remote, local in zip(
            urls(kind, local_set, shard, http), urls("local", local_set, shard, http), strict=True
        ):
            a, b = vl.probe_video(remote).to_json(), vl.probe_video(local).to_json()
            assert a.pop("path") == remote and b.pop("path") == local
            assert a == b


def test_audio_and_dali_cut_match_local(local_set, shard, s3, http) -> None:
    local = vl.probe_video(local_set["audio"])
    remote = vl.probe_video(urls("s3", local_set, shard, http)[2])
    spec = AudioSpec(sample_rate=16000)
    a = decode_audio_span(local, 0.4, 1.2, spec)
    b = decode_audio_span(remote, 0.4, 1.2, spec)
    assert a.present and b.present and np.array_equal(a.samples, b.samples)
    h = vl.probe_video(local_set["h264"])
    rh = vl.probe_video(urls("tar-s3", local_set, shard, http)[0])
    (a_bytes, a_idx), (b_bytes, b_idx) = remux_segment(h, [60, 62, 64]), remux_segment(rh, [60, 62, 64])
    # Matroska segments carry a random UID: compare what DALI decodes, the packets and frame positions.
    assert a_idx == b_idx and packets(a_bytes) == packets(b_bytes) and len(packets(a_bytes)) > 3


def packets(data: bytes) -> list[tuple[int | None, bytes]]:
    import io

    import av

    with av.open(io.BytesIO(data)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.video[0]) if p.size]


def test_clip_reads_its_gops_not_the_file(s3, tmp_path) -> None:
    # Four GOPs of 40 frames: a clip in the last GOP needs the container header and that GOP's packets.
    path = write_video(tmp_path / "gops.mp4", textured_frames(160, 144, 192), gop=40, bframes=2)
    fsspec.filesystem("s3").put_file(str(path), f"{BUCKET}/videos/gops.mp4")
    configure_store(block_size=16384)  # the file is small; real files get GOP-sized blocks
    info = vl.probe_video(f"s3://{BUCKET}/videos/gops.mp4")
    local = vl.probe_video(path)
    reset_store_stats()
    clip = PyAVBackend().decode_clip(info, [124, 128, 132])
    first = store_stats()
    # The header, the first packets (the stream-info pass) and the last GOP: about half of this small file.
    assert 0 < first["bytes"] < info.size_bytes * 0.6, (first, info.size_bytes)
    assert np.array_equal(clip.frames, PyAVBackend().decode_clip(local, [124, 128, 132]).frames)
    # A second clip of the same GOP in this process reuses the cached header and GOP blocks.
    PyAVBackend().decode_clip(info, [125, 129, 133])
    assert store_stats()["requests"] == first["requests"]


@pytest.mark.parametrize("name", CODEC_MEDIA)
def test_every_codec_decodes_the_same_remotely(name, media, s3) -> None:
    path = media.path(name)
    fsspec.filesystem("s3").put_file(str(path), f"{BUCKET}/codecs/{path.name}")
    local = media.probe(name)
    remote = vl.probe_video(f"s3://{BUCKET}/codecs/{path.name}")
    frames = list(range(0, local.num_frames, 3))
    a = PyAVBackend().decode_clip(local, frames, apply_rotation=True)
    b = PyAVBackend().decode_clip(remote, frames, apply_rotation=True)
    assert np.array_equal(a.frames, b.frames) and a.pts == b.pts


def test_transient_faults_are_retried_and_counted(local_set, shard, s3, http) -> None:
    configure_store(backoff=0.01)
    url = f"flaky://{BUCKET}/videos/h264.mp4"
    FlakyFileSystem.queued[:] = [ConnectionResetError("reset by peer"), TimeoutError("read timed out")]
    info = vl.probe_video(url)
    assert info.num_frames == 120
    assert store_stats()["retries"] == 2 and store_stats()["failures"] == 0
    # An HTTP 503 from a real server is transient too.
    http.fail_next = 2
    ds = vl.VideoDataset.from_paths([f"{http.url}/videos/vp9.webm"], use_cache=False)
    assert ds[0].num_frames == 60 and store_stats()["retries"] == 4


def test_retries_run_out_with_a_clear_error(local_set, shard, s3, http) -> None:
    configure_store(backoff=0.01, retries=1)
    url = f"flaky://{BUCKET}/videos/vp9.webm"
    FlakyFileSystem.queued[:] = [OSError(errno.EIO, "503 SlowDown")] * 3
    with pytest.raises(vl.ProbeError, match=r"flaky://media/videos/vp9\.webm: .*after 2 attempts.*SlowDown"):
        vl.probe_video(url)
    assert store_stats()["retries"] == 1 and store_stats()["failures"] == 1


def test_missing_and_denied_objects_fail_or_skip_by_file(local_set, shard, s3, http, caplog) -> None:
    good = urls("s3", local_set, shard, http)[0]
    missing = f"s3://{BUCKET}/videos/nope.mp4"
    denied = f"{http.url}/denied/h264.mp4"
    with pytest.raises(vl.ProbeError, match=r"s3://media/videos/nope\.mp4: object not found"):
        vl.VideoDataset.from_paths([good, missing], use_cache=False)
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        ds = vl.VideoDataset.from_paths([good, missing, denied], on_error="skip", use_cache=False)
    assert len(ds) == 1
    reasons = {s.path: s.reason for s in ds.skipped}
    assert reasons[missing].startswith("object not found")
    assert reasons[denied].startswith("read denied") and "403" in reasons[denied]
    assert missing in caplog.text and denied in caplog.text
    assert store_stats()["retries"] == 0  # a missing or denied object is not retried


def test_tar_member_errors(local_set, shard, s3, http) -> None:
    with pytest.raises(vl.ProbeError, match=r"the tar shard has no member 'videos/nope\.mp4'"):
        vl.probe_video(tar_member_url(f"s3://{BUCKET}/shards/shard-000.tar", "videos/nope.mp4"))
    with pytest.raises(vl.ProbeError, match="not an uncompressed tar shard"):
        vl.probe_video(tar_member_url(f"s3://{BUCKET}/videos/h264.mp4", "x.mp4"))


def test_signed_urls_and_passwords_are_redacted(local_set, shard, s3, http, caplog) -> None:
    secret = "s3cr3tSIGNATURE"
    signed = f"{http.url}/videos/gone.mp4?X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F1&X-Amz-Signature={secret}"
    userinfo = f"http://alice:{secret}@127.0.0.1:{http.server_address[1]}/videos/gone.mp4"
    good = urls("http", local_set, shard, http)[0]
    with caplog.at_level(logging.DEBUG, logger="vidloader"):
        ds = vl.VideoDataset.from_paths([good, signed, userinfo], on_error="skip", use_cache=False)
        with pytest.raises(vl.ProbeError) as err:
            vl.probe_video(signed)
    text = " ".join([caplog.text, str(err.value), repr(err.value), str([s.to_json() for s in ds.skipped])])
    assert secret not in text and "AKIAABCDEFGHIJKLMNOP" not in text
    assert "X-Amz-Signature=***" in text and "alice" not in text
    assert len(ds.skipped) == 2


def test_manifest_in_a_store_and_the_shard_cli(local_set, shard, s3, http, tmp_path) -> None:
    # A folder dataset packed by `vidloader shard`, uploaded, read back from s3:// without probing.
    root = tmp_path / "data"
    for n, p in local_set.items():
        (root / f"class_{n}").mkdir(parents=True)
        (root / f"class_{n}" / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "shards"
    assert cli_main(["shard", "--data", str(root), "--out", str(out), "--shard-size", "40KB"]) == 0
    tars = sorted(out.glob("shard-*.tar"))
    assert len(tars) >= 2  # the size limit split the files over shards
    fs = fsspec.filesystem("s3")
    for f in [*tars, out / "manifest.jsonl"]:
        fs.put_file(str(f), f"{BUCKET}/ds/{f.name}")
    local = vl.VideoDataset.from_folder(root, progress=False, use_cache=False)
    reset_store_stats()
    remote = vl.VideoDataset.from_manifest(f"s3://{BUCKET}/ds/manifest.jsonl", use_cache=False)
    assert store_stats()["requests"] == 1  # the manifest itself: nothing was probed
    assert [v.label for v in remote] == [v.label for v in local] and remote.classes == local.classes
    assert all(v.path.startswith("tar://class_") and "::s3://media/ds/shard-" in v.path for v in remote)
    kw = dict(batch_size=3, frames_per_clip=4, clips_per_video=2, seed=1, backend="pyav", num_workers=2)
    for a, b in zip(vl.VideoLoader(remote, **kw), vl.VideoLoader(local, **kw), strict=True):
        assert torch.equal(a.video, b.video) and torch.equal(a.label, b.label)
    # The same manifest read locally finds the shards next to it.
    again = vl.VideoDataset.from_manifest(out / "manifest.jsonl", use_cache=False)
    assert [v.num_frames for v in again] == [v.num_frames for v in local]


def test_unsupported_protocols_say_what_to_install() -> None:
    with pytest.raises(vl.ConfigError, match="gcsfs"):
        vl.probe_video("gs://bucket/video.mp4")
    with pytest.raises(vl.ConfigError, match="nosuchproto"):
        open_source("nosuchproto://x/y.mp4")


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("/data/a.mp4", False),
        ("relative/a.mp4", False),
        ("C:/data/a.mp4", False),
        ("s3://b/a.mp4", True),
        ("https://h/a.mp4?x=1", True),
        ("tar://a.mp4::/data/s.tar", True),
    ],
)
def test_is_remote(path: str, remote: bool) -> None:
    assert is_remote(path) is remote


def test_redact() -> None:
    assert (
        redact("https://h/a.mp4?X-Amz-Signature=abc&X-Amz-Date=1")
        == "https://h/a.mp4?X-Amz-Signature=***&X-Amz-Date=1"
    )
    assert redact("https://u:p@h/a.mp4") == "https://***@h/a.mp4"
    assert redact("https://h/a.mp4?sig=zz&token=yy") == "https://h/a.mp4?sig=***&token=***"
    assert redact("s3://bucket/key.mp4") == "s3://bucket/key.mp4"
    with pytest.raises(vl.ConfigError, match="unknown field"):
        configure_store(block=1)
    with pytest.raises(vl.ConfigError, match="retries must be >= 0"):
        configure_store(retries=-1)


def test_object_gone_after_indexing_skips_its_clips(local_set, shard, s3, http, tmp_path) -> None:
    fs = fsspec.filesystem("s3")
    fs.put_file(str(local_set["vp9"]), f"{BUCKET}/gone/vp9.webm")
    paths = [urls("s3", local_set, shard, http)[0], f"s3://{BUCKET}/gone/vp9.webm"]
    ds = vl.VideoDataset.from_paths(paths, labels=[0, 1], use_cache=False)
    fs.rm(f"{BUCKET}/gone/vp9.webm")
    clear_store_cache()  # a fresh worker: nothing of the file is cached
    loader = vl.VideoLoader(
        ds,
        batch_size=2,
        frames_per_clip=4,
        clips_per_video=2,
        backend="pyav",
        num_workers=0,
        on_error="skip",
        max_skip_fraction=1.0,  # half the clips: what is skipped here, not the skip budget
    )
    labels = torch.cat([b.label for b in loader])
    assert labels.tolist() == [0, 0]
    failures = loader.stats["decode_failures"]
    assert {f["path"] for f in failures} == {paths[1]} and len(failures) == 2
    assert "object not found" in failures[0]["reason"]
    assert loader.stats["store"]["failures"] >= 1


def test_csv_manifest_with_shard_and_member_columns(local_set, shard, tmp_path) -> None:
    rel = os.path.relpath(shard, tmp_path)  # shards are named relative to the manifest
    members = {f"videos/{n}{p.suffix}": p for n, p in local_set.items()}
    lines = "".join(f"{rel},{m},{m.split('/')[1].split('.')[0]}\n" for m in members)
    (tmp_path / "m.csv").write_text("shard,member,label\n" + lines)
    ds = vl.VideoDataset.from_manifest(tmp_path / "m.csv", use_cache=False)
    assert ds.classes == ("audio", "h264", "vp9") and len(ds) == 3
    for v in ds:
        member, where = v.path[len("tar://") :].split("::")
        assert Path(where).resolve() == shard.resolve()
        assert v.frame_pts == vl.probe_video(members[member]).frame_pts
    (tmp_path / "m2.csv").write_text("shard,member,label\n,x.mp4,a\n")
    with pytest.raises(
        vl.ConfigError, match=r"m2\.csv:2: a row without 'path' needs both 'shard' and 'member'"
    ):
        vl.VideoDataset.from_manifest(tmp_path / "m2.csv")


def test_shard_cli_refuses_bad_sizes_and_used_folders(local_set, tmp_path, capsys) -> None:
    root = tmp_path / "data" / "a"
    root.mkdir(parents=True)
    (root / "v.mp4").write_bytes(local_set["h264"].read_bytes())
    out = tmp_path / "out"
    assert cli_main(["shard", "--data", str(root.parent), "--out", str(out), "--shard-size", "lots"]) == 2
    assert "--shard-size 'lots' is not allowed" in capsys.readouterr().err
    assert cli_main(["shard", "--data", str(root.parent), "--out", str(out), "--shard-size", "2MiB"]) == 0
    assert cli_main(["shard", "--data", str(root.parent), "--out", str(out)]) == 2
    assert "manifest.jsonl already exists" in capsys.readouterr().err
