"""Reading manifests: CSV with a header `path,label[,start_sec,end_sec]` or JSONL with those keys."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigError


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label: str
    start: float | None
    end: float | None


def _opt_float(value: object, where: str, key: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}={value!r} is not a number") from None


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Rows with paths resolved against the manifest's folder; labels still as text.

    Args:
        path: a ``.csv`` (header ``path,label``) or ``.jsonl`` manifest.

    Returns:
        The rows, in order.

    Raises:
        ConfigError: the manifest is missing, empty, of another format or malformed (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"manifest {path}: suffix {suffix!r} is not supported; use '.csv' or '.jsonl'")
    records: list[tuple[str, dict]] = []
    if suffix == ".csv":
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = [h.strip() for h in (reader.fieldnames or [])]
            if "path" not in fields or "label" not in fields:
                raise ConfigError(f"manifest {path}: header must start with 'path,label', got {fields}")
            for n, row in enumerate(reader, start=2):
                records.append((f"{path}:{n}", {k.strip(): (v or "").strip() for k, v in row.items() if k}))
    else:
        with path.open() as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{n}: not valid JSON ({exc})") from None
                if not isinstance(obj, dict) or "path" not in obj or "label" not in obj:
                    raise ConfigError(f"{path}:{n}: each line needs keys 'path' and 'label'")
                records.append((f"{path}:{n}", obj))
    rows = []
    for where, rec in records:
        p = Path(str(rec["path"]))
        if not p.is_absolute():
            p = path.parent / p
        start = _opt_float(rec.get("start_sec"), where, "start_sec")
        end = _opt_float(rec.get("end_sec"), where, "end_sec")
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"{where}: end_sec={end} must be greater than start_sec={start}")
        rows.append(ManifestRow(path=str(p), label=str(rec["label"]).strip(), start=start, end=end))
    if not rows:
        raise ConfigError(f"manifest {path} has no rows")
    return rows


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
