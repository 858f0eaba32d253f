"""The random numbers of sampling, all pure functions of integer keys: numpy generators seeded by a key, and
a counter-based hash that gives the same number for (seed, epoch, video, clip) whichever videos are planned
together. The tags keep the streams of different decisions apart."""

from __future__ import annotations

import numpy as np

# One tag per decision, the last element of its key: clip starts, the epoch's video order, the clip order,
# the windows "without_replacement" takes, and the per-clip seed handed downstream (``clip_seed``).
TAG_CLIPS, TAG_ORDER, TAG_CLIP_SHUFFLE, TAG_WINDOWS, TAG_CLIP_SEED = 1, 2, 3, 4, 7
# Videos whose candidate windows are ranked at once by ``choose_windows`` (bounds its memory).
_CHOOSE_CHUNK = 65536

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


def rng(*key: int) -> np.random.Generator:
    """A numpy generator seeded by a tuple of ints (a pure function of the key)."""
    return np.random.default_rng([int(k) for k in key])


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: a bijection of uint64 whose output bits each depend on every input bit.
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hash(*keys: int | np.ndarray) -> np.ndarray:
    """Uniform uint64, one per element of the broadcast keys, a pure function of the keys."""
    arrays = [np.asarray(k & _MASK if isinstance(k, int) else k).astype(np.uint64) for k in keys]
    h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)), np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            h = _mix(h ^ a)
    return h


def uniform01(*keys: int | np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1), one per element of the broadcast keys, a pure function of the keys."""
    return (_hash(*keys) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def choose_windows(
    seed: int, epoch: int, videos: np.ndarray, windows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each video, ``min(k, windows[i])`` distinct windows out of its ``windows[i]``, at random: the ones
    whose keys (seed, epoch, video, window) hash lowest, so the choice of a video never depends on which
    other videos are chosen for with it.

    Args:
        seed, epoch: the random key.
        videos: dataset indices of the videos.
        windows: candidate windows per video.
        k: windows wanted per video.

    Returns:
        (position in ``videos``, window index) of every chosen window, video by video, windows ascending.
    """
    owners, chosen = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for s in range(0, len(videos), _CHOOSE_CHUNK):
        counts = np.asarray(windows[s : s + _CHOOSE_CHUNK], np.int64)
        owner = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts
        window = np.arange(len(owner)) - np.repeat(first, counts)
        h = _hash(seed, epoch, np.asarray(videos[s : s + _CHOOSE_CHUNK])[owner], window, TAG_WINDOWS)
        # Each video's windows, lowest hash first: one sort of (video, top 40 bits of the hash); a tie keeps
        # window order (a stable sort), the same for one video alone as among many.
        key = (owner.astype(np.uint64) << np.uint64(40)) | (h >> np.uint64(24))
        order = np.argsort(key, kind="stable")
        take = np.sort(order[(np.arange(len(order)) - np.repeat(first, counts)) < k])
        owners.append(owner[take] + s)
        chosen.append(window[take])
    return np.concatenate(owners), np.concatenate(chosen)
