"""What a loader counts, and the on_error policy: a failed clip either raises or is recorded and left out."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from .._errors import VideoError
from ..sampling import ClipSpec

log = logging.getLogger("vidloader")

COUNTERS = (
    "clips",
    "batches",
    "fallbacks",
    "shared_decode_clips",
    "skipped_clips",
    "skipped_batches",
    "clips_without_audio",
    "abandoned_decodes",
    "padded_clips",
    "padded_frames",
)
_MAX_FAILURES = 1000  # listed with reasons; the counter keeps counting past it


class LoaderStats:
    """Counters plus the first decode failures with their reasons; one warning per file."""

    def __init__(self, *, on_error: str) -> None:
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self.failures: list[dict[str, str]] = []
        self._warned_failed: set[str] = set()
        self._warned_fallback: set[str] = set()

    def fail(self, clip: ClipSpec, err: VideoError) -> None:
        """Apply on_error to a clip that failed: raise ``err`` ("raise") or record it ("skip")."""
        if self.on_error == "raise":
            raise err
        self.counts["skipped_clips"] += 1
        if err.path not in self._warned_failed:
            self._warned_failed.add(err.path)
            log.warning("vidloader: skipping clip of %s: %s", err.path, err.reason)
        if len(self.failures) < _MAX_FAILURES:
            self.failures.append(
                {"path": err.path, "reason": err.reason, "frame_index": str(clip.frame_indices[0])}
            )

    def fallback(self, path: str, reason: str) -> None:
        """A clip of ``path`` decodes with PyAV instead of DALI."""
        self.counts["fallbacks"] += 1
        if path not in self._warned_fallback:
            self._warned_fallback.add(path)
            log.warning("vidloader: %s decodes on the CPU (PyAV) instead of DALI: %s", path, reason)

    def to_json(
        self, *, backend: str, skipped_files: list[dict[str, Any]], short: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The counters, failures and skipped files as a JSON-safe dict (``short``: the short-video facts)."""
        out: dict[str, Any] = {"backend": backend}
        out.update({k: self.counts[k] for k in COUNTERS})
        out.update(short or {})
        out["decode_failures"] = list(self.failures)
        out["skipped_files"] = skipped_files
        return out
