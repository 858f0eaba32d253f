"""Reading manifests: CSV with a header `path,label[,start_sec,end_sec]` or JSONL with those keys.

A manifest may live in a store (any fsspec URL) and may name videos by URL. A row can instead name a member
of an uncompressed tar shard (`shard,member,label`, as `vidloader shard` writes), optionally with the
member's byte `offset` and `size` in the shard and its probed `info` (a VideoInfo record; a constant-rate
stream's timestamps as `pts_start`, `pts_step`, `total_frames`), which spare the loader the shard's tar
headers and the probe."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigError, StoreError
from .._redact import redact
from ._files import read_bytes, register_tar_members
from ._info import VideoInfo
from ._location import is_remote, join_location, tar_member_url


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label: str
    start: float | None
    end: float | None
    # A tar member's (shard URL, member name, data offset, size), when the row gave them.
    member: tuple[str, str, int, int] | None = None
    info: dict[str, Any] | None = field(default=None, repr=False)


def _opt_float(value: object, where: str, key: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}={value!r} is not a number") from None


def _read_text(location: str) -> str:
    if is_remote(location):
        try:
            return read_bytes(location).decode()
        except StoreError as exc:
            raise ConfigError(f"manifest {exc.path}: {exc.reason}") from exc
    if not Path(location).is_file():
        raise ConfigError(f"manifest {location} does not exist")
    return Path(location).read_text()


def _records(location: str, suffix: str) -> list[tuple[str, dict]]:
    text = _read_text(location)
    name = redact(location)
    records: list[tuple[str, dict]] = []
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = [h.strip() for h in (reader.fieldnames or [])]
        if "label" not in fields or ("path" not in fields and not {"shard", "member"} <= set(fields)):
            raise ConfigError(
                f"manifest {name}: header must start with 'path,label' (or hold 'shard,member,label'), got {fields}"
            )
        for n, row in enumerate(reader, start=2):
            records.append((f"{name}:{n}", {k.strip(): (v or "").strip() for k, v in row.items() if k}))
        return records
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}:{n}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict) or "label" not in obj or ("path" not in obj and "member" not in obj):
            raise ConfigError(
                f"{name}:{n}: each line needs keys 'path' and 'label' (or 'shard', 'member' and 'label')"
            )
        records.append((f"{name}:{n}", obj))
    return records


def _row(location: str, where: str, rec: dict) -> ManifestRow:
    member = None
    if rec.get("path") not in (None, ""):
        path = join_location(location, str(rec["path"]))
    else:
        if not rec.get("shard") or not rec.get("member"):
            raise ConfigError(f"{where}: a row without 'path' needs both 'shard' and 'member'")
        shard = join_location(location, str(rec["shard"]))
        path = tar_member_url(shard, str(rec["member"]))
        if rec.get("offset") not in (None, "") and rec.get("size") not in (None, ""):
            try:
                member = (shard, str(rec["member"]), int(rec["offset"]), int(rec["size"]))
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: offset/size must be integers") from None
    start = _opt_float(rec.get("start_sec"), where, "start_sec")
    end = _opt_float(rec.get("end_sec"), where, "end_sec")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"{where}: end_sec={end} must be greater than start_sec={start}")
    info = rec.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info) if info else None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: info is not valid JSON ({exc})") from None
    if info is not None and not isinstance(info, dict):
        raise ConfigError(f"{where}: info must be a VideoInfo record (a JSON object)")
    return ManifestRow(
        path=path, label=str(rec["label"]).strip(), start=start, end=end, member=member, info=info
    )


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Rows with paths resolved against the manifest's folder (or URL); labels still as text.

    Args:
        path: a ``.csv`` (header ``path,label`` or ``shard,member,label``) or ``.jsonl`` manifest, local or
            remote.

    Returns:
        The rows, in order.

    Raises:
        ConfigError: the manifest is missing or unreadable, or a row is malformed (named by line).
    """
    location = str(path)
    suffix = Path(location.split("?", 1)[0]).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(
            f"manifest {redact(location)}: suffix {suffix!r} is not supported; use '.csv' or '.jsonl'"
        )
    rows = [_row(location, where, rec) for where, rec in _records(location, suffix)]
    if not rows:
        raise ConfigError(f"manifest {redact(location)} has no rows")
    return rows


def known_info(row: ManifestRow) -> VideoInfo | ConfigError | None:
    """The VideoInfo a manifest row carries (label set later), registering a tar member's offsets."""
    if row.member is not None:
        shard, member, offset, size = row.member
        register_tar_members(shard, {member: (offset, size)})
    if row.info is None:
        return None
    info = {**row.info, "path": row.path, "label": -1}
    try:
        if "pts_step" in info:  # a constant rate's timestamps, as `vidloader shard` writes them
            start, step, total = (info.pop(k) for k in ("pts_start", "pts_step", "total_frames"))
            if step:
                info["frame_pts"] = range(start, start + step * total, step)
        return VideoInfo.from_json(info)
    except (TypeError, ValueError, KeyError) as exc:  # missing or extra keys, or values VideoInfo refuses
        return ConfigError(f"{redact(row.path)}: the manifest's info is not a VideoInfo record ({exc})")


def labels_to_ints(labels: list[str]) -> tuple[list[int], tuple[str, ...]]:
    """Integer labels stay as they are; otherwise names map to their position in sorted order.

    Args:
        labels: one label per file, as text.

    Returns:
        The integer labels and the class names (empty for integer labels).
    """
    try:
        ints = [int(label) for label in labels]
        return ints, tuple(str(i) for i in sorted(set(ints)))
    except ValueError:
        classes = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(classes)}
        return [index[label] for label in labels], classes
