"""The random numbers of sampling, all pure functions of integer keys: numpy generators seeded by a key, and
a counter-based hash that gives the same number for (seed, epoch, video, clip) whichever videos are planned
together. The tags keep the streams of different decisions apart."""

from __future__ import annotations

import numpy as np

# One tag per decision, the last element of its key: clip starts, the epoch's video order, the clip order,
# and the per-clip seed handed downstream (``clip_seed``).
TAG_CLIPS, TAG_ORDER, TAG_CLIP_SHUFFLE, TAG_CLIP_SEED = 1, 2, 3, 7

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


def uniform01(*keys: int | np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1), one per element of the broadcast keys, a pure function of the keys."""
    arrays = [np.asarray(k & _MASK if isinstance(k, int) else k).astype(np.uint64) for k in keys]
    h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)), np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            h = _mix(h ^ a)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
