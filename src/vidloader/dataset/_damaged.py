"""Damaged files: kept in a dataset with the frames that decode, and named wherever the dataset is summed up
(``VideoDataset.damaged``, ``vidloader index``, ``loader.stats``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._redact import redact
from ._info import VideoInfo

log = logging.getLogger("vidloader")


@dataclass(frozen=True)
class DamagedFile:
    """A file indexing found damaged (signed URLs redacted): ``frames_decoded`` of its
    ``frames_in_container`` frames decode (-1: not decoded whole), ``damage`` is FFmpeg's first error."""

    path: str
    damage: str
    frames_decoded: int
    frames_in_container: int

    @classmethod
    def of(cls, info: VideoInfo) -> DamagedFile:
        """The record of a damaged video.

        Args:
            info: the video (``info.damaged``).

        Returns:
            Its record.
        """
        listed = info.frames_in_container or info.total_frames
        return cls(redact(info.path), redact(info.damage), info.frames_decoded, listed)

    @property
    def reason(self) -> str:
        """How many frames decode and what FFmpeg said, in words."""
        if self.frames_decoded < 0:
            return f"damaged (FFmpeg: {self.damage})"
        return f"{self.frames_decoded} of {self.frames_in_container} frames decode (FFmpeg: {self.damage})"

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-safe dict (with ``reason``)."""
        return {
            "path": self.path,
            "reason": self.reason,
            "damage": self.damage,
            "frames_decoded": self.frames_decoded,
            "frames_in_container": self.frames_in_container,
        }


def damaged_report(damaged: tuple[DamagedFile, ...], *, limit: int = 3) -> str:
    """The first ``limit`` damaged files and their reasons on one line (and how many more there are).

    Args:
        damaged: the records.
        limit: how many to name.

    Returns:
        ``"a.mp4: 28 of 60 frames decode (FFmpeg: ...); ..."``.
    """
    named = "; ".join(f"{d.path}: {d.reason}" for d in damaged[:limit])
    return named + (f"; and {len(damaged) - limit} more" if len(damaged) > limit else "")


def damaged_files(videos: Iterable[VideoInfo]) -> tuple[DamagedFile, ...]:
    """The records of the damaged videos among ``videos``, each file once (segments share their file's).

    Args:
        videos: videos, damaged or not.

    Returns:
        The records, in order.
    """
    found: dict[str, DamagedFile] = {}
    for v in videos:
        if v.damaged and v.path not in found:
            found[v.path] = DamagedFile.of(v)
    return tuple(found.values())


def warn_damaged(damaged: tuple[DamagedFile, ...]) -> None:
    """One warning naming the damaged files of a dataset, when there are any: logged every time a dataset
    is built or opened, also from the probe cache or an index, not only when the damage is first found.

    Args:
        damaged: the records.
    """
    if damaged:
        log.warning(
            "vidloader: %d damaged file(s) kept with the frames that decode (VideoDataset.damaged): %s",
            len(damaged),
            damaged_report(damaged),
        )
