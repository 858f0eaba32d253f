"""How a dataset is built from its files: probe what no manifest or earlier index already describes, then
keep each file as a (segment of a) VideoInfo or list it as skipped with the reason."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from .._errors import ConfigError, ProbeError
from .._main_guard import refuse_while_importing_main
from .._redact import redact
from .._validate import check_choice
from ._damaged import DamagedFile, damaged_files, warn_damaged
from ._file_check import changed_rows
from ._index_reader import index_base, read_index_table
from ._index_rows import IndexRows
from ._index_schema import INDEX_VERSION
from ._info import VideoInfo, whole_stream
from ._probe_many import ProbeOptions, probe_many

log = logging.getLogger("vidloader")


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of a dataset, and why (signed URLs redacted)."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """The record as a JSON-safe dict."""
        return {"path": self.path, "reason": self.reason}


OnError = Literal["raise", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")


def build_videos(
    paths: Sequence[str],
    labels: Sequence[int],
    segments: Sequence[tuple[float | None, float | None]],
    *,
    on_error: OnError,
    probe: ProbeOptions,
    reuse_index: str | Path | None = None,
    known: Sequence[Any] | None = None,
) -> tuple[list[VideoInfo], list[SkippedFile]]:
    """The usable videos of ``paths`` (labelled, cut to their segments) and the files left out.

    A damaged file (``VideoInfo.damaged``: its container, or with ``verify`` its decoder, reported damage)
    is an error under ``on_error="raise"``; under "skip" it is kept with the frames that decode, and one
    warning names the damaged files.

    Args:
        paths: the files.
        labels: one integer label per file.
        segments: (start, end) seconds per file, None for the whole file.
        on_error: "raise" the first ProbeError/ConfigError (a damaged file's included), or "skip": leave
            unusable files out and list them, keep damaged ones.
        probe: ``probe_many`` options.
        reuse_index: an earlier index whose rows are kept for files unchanged since.
        known: per file, a VideoInfo a manifest already carried (or the error it raised), or None to probe.

    Returns:
        The videos and the skipped files.

    Raises:
        ProbeError, ConfigError: a file cannot be used and ``on_error="raise"``; a bad option.
    """
    check_choice("on_error", on_error, ON_ERROR_CHOICES)
    refuse_while_importing_main("a VideoDataset")  # before indexing: a spawned worker must not index
    reused = _reusable(reuse_index, probe)
    # Rows whose manifest carried their probed info (a shard manifest) are not probed again.
    infos: list[Any] = list(known) if known is not None else [None] * len(paths)
    todo = [i for i, k in enumerate(infos) if k is None]
    for i, found in zip(todo, probe_many([paths[i] for i in todo], known=reused, **probe), strict=True):
        infos[i] = found
    videos: list[VideoInfo] = []
    skipped: list[SkippedFile] = []
    for p, label, segment, res in zip(paths, labels, segments, infos, strict=True):
        try:
            videos.append(_usable(p, res, label, segment, on_error))
        except (ProbeError, ConfigError) as exc:
            if on_error == "raise":
                raise
            reason = exc.reason if isinstance(exc, ProbeError) else str(exc)
            # A signed URL's signature stays out of logs and skip reports.
            log.warning("vidloader: skipping %s: %s", redact(p), redact(reason))
            skipped.append(SkippedFile(redact(p), redact(reason)))
    warn_damaged(damaged_files(videos))
    return videos, skipped


def _usable(
    path: str, res: Any, label: int, segment: tuple[float | None, float | None], on_error: OnError
) -> VideoInfo:
    """The labelled (segment of the) video a probe result gives, or the error why it is not usable."""
    if not isinstance(res, VideoInfo):
        raise res or ConfigError(f"{redact(path)}: neither probed nor known")
    if res.damaged and on_error == "raise":
        reason = DamagedFile.of(res).reason
        raise ProbeError(path, f"damaged: {reason}; on_error='skip' keeps the frames that decode")
    if res.start is not None or res.end is not None:
        return replace(res, label=label)  # a known segment, as probed and cut
    return res.with_segment(label=label, start=segment[0], end=segment[1])


def _reusable(reuse_index: str | Path | None, probe: ProbeOptions) -> dict[str, VideoInfo] | None:
    """The rows of an earlier index still valid for these probe options, or None (no usable index)."""
    if reuse_index is None or not Path(reuse_index).is_file():
        return None
    try:
        return _still_valid(reuse_index, probe.get("video_stream"), probe.get("cache_dir"))
    except ConfigError as exc:  # another schema version, or not an index: probe everything
        log.warning("vidloader: not reusing %s: %s", reuse_index, exc)
        return None


def _still_valid(path: str | Path, video_stream: int | None, cache_dir: Any) -> dict[str, VideoInfo]:
    """absolute path -> whole-stream VideoInfo of the rows of an earlier index whose file is unchanged."""
    table, meta, _ = read_index_table(path, cache_dir=cache_dir)
    if meta.version < INDEX_VERSION:
        raise ConfigError(f"written by an older vidloader (index version {meta.version}, no damage records)")
    rows = IndexRows(table, base_dir=index_base(path))
    bad = {i for i, _ in changed_rows(rows, "all")}
    streams = rows.values("video_stream")
    return {
        os.path.abspath(rows.path(i)): whole_stream(rows[i])
        for i in range(len(rows))
        if i not in bad and streams[i] == video_stream
    }
