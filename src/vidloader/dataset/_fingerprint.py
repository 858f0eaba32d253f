"""A dataset's resume fingerprint over Arrow columns: a million paths hashed without a Python string each."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["arrow_fingerprint"]


def arrow_fingerprint(paths: Any, first: np.ndarray, num: np.ndarray) -> str:
    """What identifies a dataset for resume checks: the sha256 (16 hex digits) of ``path\\0first\\0count\\n``
    per video (its path, first frame and frame count), built in Arrow a chunk at a time.

    Args:
        paths: every video's path, an Arrow string array (chunked or not).
        first: every video's first frame.
        num: every video's frame count.

    Returns:
        The digest.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    h = hashlib.sha256()
    chunks = paths.chunks if isinstance(paths, pa.ChunkedArray) else [paths]
    at = 0
    for chunk in chunks:
        n = len(chunk)
        counts = pc.binary_join_element_wise(pa.array(num[at : at + n]).cast(pa.string()), "\n", "")
        lines = pc.binary_join_element_wise(
            chunk, pa.array(first[at : at + n]).cast(pa.string()), counts, "\0"
        )
        if n:
            _, offsets, data = lines.buffers()
            ends = np.frombuffer(offsets, np.int32)[[lines.offset, lines.offset + n]]
            h.update(memoryview(data)[int(ends[0]) : int(ends[1])])
        at += n
    # Arrow's allocator keeps the freed lines for reuse; nothing this size is built again soon.
    pa.default_memory_pool().release_unused()
    return h.hexdigest()[:16]
