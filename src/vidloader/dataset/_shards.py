"""Packing a dataset into uncompressed tar shards plus a manifest of (shard, member, label, offsets, info).

Millions of small clips become a few thousand objects; the manifest's byte offsets and probed VideoInfo
let the loader read any member by range without scanning tar headers or probing again. A constant-rate
stream's frame timestamps are written as the index stores them, ``pts_start``, ``pts_step`` and
``total_frames`` (an empty ``frame_pts``), not one number per frame."""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigError
from .._validate import check_int
from ._dataset import VideoDataset
from ._files import read_bytes, source_size
from ._index_writer import constant_step
from ._info import VideoInfo
from ._location import is_remote


@dataclass(frozen=True)
class ShardReport:
    """What ``write_shards`` wrote."""

    manifest: str
    shards: tuple[str, ...]
    members: int
    rows: int
    bytes: int


def _member_names(dataset: VideoDataset) -> dict[str, str]:
    """One member name per source file: its path under the dataset folder, else a numbered base name."""
    names: dict[str, str] = {}
    used: set[str] = set()
    root = dataset.root if dataset.root and os.path.isdir(dataset.root) else None
    for v in dataset:
        if v.path in names:
            continue
        if (
            root
            and not is_remote(v.path)
            and os.path.abspath(v.path).startswith(os.path.abspath(root) + os.sep)
        ):
            name = os.path.relpath(v.path, root).replace(os.sep, "/")
        else:
            name = f"{len(names):08d}-{os.path.basename(v.path.split('?', 1)[0].split('::', 1)[0])}"
        # "::" would read as fsspec URL chaining in tar://member::shard.
        name = name.replace("::", "__")
        if name in used:
            name = f"{len(names):08d}-{name.replace('/', '_')}"
        used.add(name)
        names[v.path] = name
    return names


def _label_text(dataset: VideoDataset) -> dict[int, str]:
    labels = sorted({v.label for v in dataset})
    if dataset.classes == tuple(str(i) for i in labels) or not dataset.classes:
        return {i: str(i) for i in labels}  # integer labels stay integers
    return {i: dataset.classes[i] for i in labels}


def _add(tar: tarfile.TarFile, name: str, path: str) -> int:
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime = 0o644, 0  # identical inputs give identical shards
    if is_remote(path):
        data = read_bytes(path)
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    else:
        ti.size = os.path.getsize(path)
        with open(path, "rb") as f:
            tar.addfile(ti, f)
    return ti.size


def _offsets(shard: Path) -> dict[str, tuple[int, int]]:
    with tarfile.open(shard, mode="r:") as tar:
        return {ti.name: (ti.offset_data, ti.size) for ti in tar if ti.isfile()}


def write_shards(
    dataset: VideoDataset, out_dir: str | Path, *, shard_bytes: int, prefix: str = "shard"
) -> ShardReport:
    """Pack every file of ``dataset`` into ``out_dir/<prefix>-NNNNNN.tar`` (uncompressed, at most
    ``shard_bytes`` each unless one file is larger) and write ``out_dir/manifest.jsonl``, which
    ``VideoDataset.from_manifest`` reads wherever the folder is uploaded (shards are named relative to it).

    Args:
        dataset: what to pack; each segment of a file becomes a row, the file one member.
        out_dir: a local folder (created); upload it as a whole to a store afterwards.
        shard_bytes: target shard size in bytes.
        prefix: shard file name prefix.

    Returns:
        A ShardReport (manifest path, shard paths, counts).

    Raises:
        ConfigError: a bad size or prefix, or ``out_dir`` already holds a manifest.
    """
    check_int("shard_bytes", shard_bytes, minimum=1)
    if not prefix or "/" in prefix or "::" in prefix:
        raise ConfigError(f"prefix={prefix!r} is not allowed; give a plain file name prefix")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    if manifest.exists():
        raise ConfigError(f"{manifest} already exists; give an empty --out folder")
    names = _member_names(dataset)
    groups: list[list[str]] = []
    filled = 0
    for path in names:
        size = source_size(path) + 1024  # with its header and padding
        if not groups or (filled and filled + size > shard_bytes):
            groups.append([])
            filled = 0
        groups[-1].append(path)
        filled += size
    where: dict[str, str] = {}  # source path -> shard file name
    shards: list[Path] = []
    total = 0
    for group in groups:
        shards.append(out / f"{prefix}-{len(shards):06d}.tar")
        with tarfile.open(shards[-1], mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in group:
                total += _add(tar, names[path], path)
                where[path] = shards[-1].name
    offsets = {s.name: _offsets(s) for s in shards}
    labels = _label_text(dataset)
    with manifest.open("w") as f:
        for v in dataset:
            f.write(json.dumps(_row(v, where[v.path], names[v.path], labels, offsets)) + "\n")
    return ShardReport(
        manifest=str(manifest),
        shards=tuple(str(s) for s in shards),
        members=len(names),
        rows=len(dataset),
        bytes=total,
    )


def _row(
    v: VideoInfo, shard: str, member: str, labels: dict[int, str], offsets: dict[str, dict]
) -> dict[str, object]:
    offset, size = offsets[shard][member]
    info = v.to_json()
    for k in ("path", "label"):
        info.pop(k)
    step = constant_step(v.frame_pts)
    if step:  # a constant frame rate: the timestamps as the index stores them, three numbers
        info.update(frame_pts=[], pts_start=v.frame_pts[0], pts_step=step, total_frames=len(v.frame_pts))
    return {
        "shard": shard,
        "member": member,
        "label": labels[v.label],
        "offset": offset,
        "size": size,
        "info": info,
    }
