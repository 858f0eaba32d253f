"""HostBuffers: batch memory is taken again only once nothing refers to it (a tensor, a view, a slice, a
NumPy array, a storage or a DLPack capsule of it), and the loader reuses the memory of batches the caller
dropped."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.dataset import textured_frames, write_video
from vidloader.loader._host_memory import HostBuffers


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_buffer_comes_back_only_when_every_reference_is_gone() -> None:
    pool = HostBuffers(keep=2)
    a = pool.take((2, 3, 4))
    ptr = a.data_ptr()
    keepers = {
        "view": a[1:].permute(2, 1, 0),
        "numpy": a[0].numpy(),
        "storage": a.untyped_storage(),
        "typed storage": a.storage(),
        "dlpack": torch.utils.dlpack.to_dlpack(a[1]),
        "flat": a.view(-1)[5:],
    }
    del a
    for name in list(keepers):
        b = pool.take((2, 3, 4))
        assert b.data_ptr() != ptr, f"memory still seen through a {name} was handed out again"
        del b, keepers[name]
    gc.collect()
    again = pool.take((2, 3, 4))
    assert again.data_ptr() == ptr and pool.reused >= 1


def test_sizes_must_match_and_idle_buffers_are_bounded() -> None:
    pool = HostBuffers(keep=1)
    first = pool.take((10,))
    ptr = first.data_ptr()
    del first
    assert pool.take((11,)).data_ptr() != ptr  # another size: new memory
    taken = [pool.take((10,)) for _ in range(4)]  # the idle 10-byte buffer is reused once, then new ones
    assert sum(t.data_ptr() == ptr for t in taken) == 1
    del taken
    pool.take((12,))  # an allocation trims the idle ones down to ``keep``
    assert pool.idle() <= 1 + 1  # kept idle buffer(s) plus the 12-byte one just dropped


def test_pinned_requests_are_not_pooled_and_keep_is_checked() -> None:
    with pytest.raises(ValueError, match="keep must be an int >= 0, got -1"):
        HostBuffers(keep=-1)
    if not torch.cuda.is_available():
        pytest.skip("pinned memory needs CUDA")
    pool = HostBuffers(keep=1)
    assert pool.take((4,), pin=True).is_pinned() and pool.allocated == 0


def test_loader_reuses_dropped_batches_and_never_rewrites_held_ones(tmp_path: Path) -> None:
    paths = [
        write_video(tmp_path / f"v{i}.mp4", textured_frames(24, 32, 48, seed=i), gop=8) for i in range(6)
    ]
    ds = vl.VideoDataset.from_paths(paths)
    kw = dict(batch_size=2, frames_per_clip=3, clips_per_video=4, num_workers=2, prefetch=2)
    loader = vl.VideoLoader(ds, output_layout="NTHWC", **kw)  # type: ignore[arg-type]
    held: list[tuple[int, np.ndarray | torch.Tensor, np.ndarray]] = []
    ptrs = []
    for k, batch in enumerate(loader):
        ptrs.append(batch.video.data_ptr())
        # Keep every third batch alive only through a view or a NumPy array of one clip, with a copy.
        if k % 3 == 0:
            kept = batch.video[1].numpy() if k % 2 else batch.video[:, 1:]
            held.append((k, kept, np.array(kept, copy=True)))
    assert len(held) == 4
    for k, kept, copy in held:
        assert np.array_equal(np.asarray(kept), copy), f"batch {k} was written after hand-over"
    assert len(set(ptrs)) < len(ptrs), "memory of dropped batches is reused"
    assert loader._host.reused > 0
    loader.close()
    assert loader._host.idle() == 0
