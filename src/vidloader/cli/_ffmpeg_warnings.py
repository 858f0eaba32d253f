"""FFmpeg warnings that repeat once per frame or clip while the benchmark runs, counted instead of printed.

The PyAV peers convert every frame with swscale outside vidloader's log capture; on full-range ``yuvj420p``
video swscale warns "deprecated pixel format used, make sure you did set range correctly" on each new
conversion context, and PyAV hands each warning to Python logging (logger ``libav.swscaler``), whose
last-resort handler prints it to stderr: dozens of identical lines per run. They are counted here, and the
report says once how many there were.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

# (PyAV logger, the start of a message that is said once per conversion, not once per problem)
REPEATED = (("libav.swscaler", "deprecated pixel format used"),)


class _Counting(logging.Filter):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__()
        self.counts = counts

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().strip()
        for _, start in REPEATED:
            if text.startswith(start):
                self.counts[text] += 1
                return False
        return True


@contextmanager
def counted_ffmpeg_warnings() -> Iterator[Counter[str]]:
    """While the block runs, FFmpeg's repeated warnings (``REPEATED``) are counted, not logged.

    Yields:
        message -> how many times FFmpeg said it (filled while the block runs).
    """
    counts: Counter[str] = Counter()
    flt = _Counting(counts)
    loggers = [logging.getLogger(name) for name, _ in REPEATED]
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield counts
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


def format_warnings(counts: dict[str, int]) -> list[str]:
    """One line per repeated warning: what FFmpeg said and how often.

    Args:
        counts: message -> times.

    Returns:
        The lines.
    """
    return [f"FFmpeg said {n} times (shown once): {text}" for text, n in counts.items()]
