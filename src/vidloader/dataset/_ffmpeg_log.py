"""FFmpeg's log lines: captured per thread while vidloader works on a file, then handed to Python
``logging`` once per file and message (logger ``vidloader.ffmpeg``), instead of reaching stderr on every
clip through PyAV's default handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

ffmpeg_log = logging.getLogger("vidloader.ffmpeg")

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()
_SEEN_LIMIT = 100_000  # a long run over millions of damaged files must not grow without bound


def ffmpeg_reason(exc: BaseException) -> str:
    """An FFmpeg error's message as PyAV raised it, less the "last error log" PyAV appends from a
    process-wide record: another thread's or an earlier file's message (``Codec (h264) not on whitelist``
    from some open's stream-info pass), which would make one fault read as two reasons.

    Args:
        exc: the exception PyAV (or the OS, on open) raised.

    Returns:
        Its message, without that suffix.
    """
    return str(exc).split("; last error log:")[0]


def enable_ffmpeg_log() -> None:
    """Route FFmpeg's warnings and errors through PyAV (once per process), so damage FFmpeg only logs can
    be caught by ``av.logging.Capture``; idempotent."""
    import av.logging

    # PyAV installs no FFmpeg log callback by default; without one, damage that FFmpeg only logs (a
    # truncated WebM) would go unnoticed. Captures are per thread, so parallel probes do not mix.
    level = av.logging.get_level()
    if level is None or level < av.logging.WARNING:
        av.logging.set_level(av.logging.WARNING)
    # PyAV's de-duplication of repeated messages is global across threads and files: a message equal to
    # the previous one (a second truncated WebM) is swallowed, and the held-back "(repeated N times)" tally
    # lands in whichever capture logs next, so one file's damage would be blamed on another.
    if av.logging.get_skip_repeated():
        av.logging.set_skip_repeated(False)


def ffmpeg_errors(logs: Iterable[tuple]) -> list[str]:
    """The ERROR-or-worse lines of an ``av.logging.Capture``.

    Args:
        logs: the captured records ``(level, source, message)``.

    Returns:
        Their messages, stripped, in order.
    """
    import av.logging

    return [str(m[2]).strip() for m in logs if m[0] is not None and m[0] <= av.logging.ERROR]


def forward_ffmpeg_log(path: str, logs: Iterable[tuple]) -> None:
    """Log what FFmpeg said about ``path`` (captured records ``(level, source, message)``) to the
    ``vidloader.ffmpeg`` logger, each message once per file: FFmpeg's errors and warnings at DEBUG, since
    vidloader acts on the ones that matter (a DecodeError, a skipped clip, a partial index) and says so.

    Args:
        path: the file the records are about.
        logs: the captured records.
    """
    if not ffmpeg_log.isEnabledFor(logging.DEBUG):
        return
    for level, source, message in logs:
        text = str(message).strip()
        key = (path, text)
        with _seen_lock:
            if key in _seen:
                continue
            if len(_seen) >= _SEEN_LIMIT:
                _seen.clear()
            _seen.add(key)
        ffmpeg_log.debug("FFmpeg [%s, level %s] %s: %s", source, level, path, text)
