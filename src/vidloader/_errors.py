"""The one exception hierarchy of vidloader: every error a user can catch derives from VidloaderError."""

from __future__ import annotations

from pathlib import Path

from ._redact import redact

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "DecodeError",
    "ProbeError",
    "SkipBudgetError",
    "StateMismatchError",
    "StoreError",
    "StoreUnavailableError",
    "VideoError",
    "VidloaderError",
    "WorkerPoolError",
]


class VidloaderError(Exception):
    """Base class of every error raised by vidloader. Its message never shows a URL's signature or
    password (see ``vidloader._redact``)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(VidloaderError, ValueError):
    """A constructor or function argument has a value that is not allowed."""


class VideoError(VidloaderError):
    """A problem with one media file; carries the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        # A signed URL's signature or a user:password@ must never reach a log line or a skip report.
        self.path = redact(str(path))
        self.reason = redact(reason)
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Exceptions travel back from spawned worker processes by pickling; keep both fields.
        return (type(self), (self.path, self.reason))


class ProbeError(VideoError):
    """A file could not be indexed (missing, empty, not a video, no video stream, unreadable)."""


class DecodeError(VideoError):
    """Frames of a clip could not be decoded from a file that probed fine."""


class StoreError(VideoError, OSError):
    """Reading a file from its store failed: the object is missing, the read was denied, or transient
    errors (5xx, timeouts, resets) outlasted the retries. An OSError too, so code that treats unreadable
    files as OSError (the probe, a decoder's open) handles it as one."""


class StoreUnavailableError(VidloaderError, RuntimeError):
    """The store itself cannot be reached (connection refused, DNS, connect timeouts, or every request
    failing): not a property of any one file, so ``on_error="skip"`` never swallows it. It ends the pass.

    Not an OSError on purpose: code that turns an unreadable file (an OSError) into that file's
    ``ProbeError`` or ``DecodeError`` lets it through.

    Args:
        endpoint: the store's endpoint as vidloader reaches it (redacted).
        reason: what failed, with the store library's error.
    """

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = redact(endpoint)
        self.reason = redact(reason)
        super().__init__(f"the store at {self.endpoint} is unreachable: {self.reason}")

    def __reduce__(self):
        # Raised in spawned decode workers too: it must reach the main process whole, by pickling.
        return (type(self), (self.endpoint, self.reason))


class WorkerPoolError(VidloaderError, RuntimeError):
    """The decode worker processes cannot run: they die while starting, before decoding anything (the
    message gives their exit codes); not a property of any clip, so ``on_error="skip"`` never swallows it."""


class BackendUnavailableError(VidloaderError, RuntimeError):
    """A decode backend was asked for explicitly but cannot run here; the message says what is missing."""


class StateMismatchError(VidloaderError, ValueError):
    """A loader state_dict was made under a different configuration; the message names the field."""


class SkipBudgetError(VidloaderError, RuntimeError):
    """``on_error="skip"`` lost more than the loader's skip budget allows: more than ``max_skip_fraction``
    of a pass's planned clips, or of the files given to its dataset (left out as unreadable, changed or
    gone), or more than ``max_consecutive_failures`` files failing in a row. The message gives the counts,
    the failures by reason and the first files; the same facts are attributes.

    Attributes:
        epoch: the epoch the pass was running.
        lost: what failed (``unit``: clips of the pass so far, or files the dataset left out).
        planned: what there was (clips the pass set out to deliver, or files given to the dataset).
        unit: "clips" or "files".
        reasons: failures per reason (the file's path taken out of the reason), most frequent first.
        files: the first files that failed.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        lost: int,
        planned: int,
        unit: str,
        reasons: dict[str, int],
        files: list[str],
    ) -> None:
        super().__init__(message)
        self.epoch, self.lost, self.planned, self.unit = epoch, lost, planned, unit
        self.reasons, self.files = reasons, files
