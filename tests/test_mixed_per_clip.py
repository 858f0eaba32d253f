"""A per-clip (torchvision) transform on a mixed-resolution folder: each clip reaches it at its own decoded
size, as torchvision's video transforms expect, so a torchvision recipe needs no resize= on mixed data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

import vidloader as vl
from vidloader.backends import PyAVBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mixed import MIXED, _write


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("mixed-per-clip")
    for i, (name, spec) in enumerate(MIXED.items()):
        _write(root, name, spec, seed=i, audio=False)
    return vl.VideoDataset.from_folder(root, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_torchvision_transform_gets_each_clip_at_its_own_size(dataset: vl.VideoDataset) -> None:
    seen: list[tuple[int, int]] = []

    def recipe(clip: torch.Tensor) -> torch.Tensor:
        assert clip.dtype == torch.uint8 and clip.ndim == 4 and clip.shape[1] == 3  # [T, C, H, W]
        seen.append((int(clip.shape[2]), int(clip.shape[3])))
        return v2.Compose([v2.Resize(24, antialias=False), v2.CenterCrop(20)])(clip)

    loader = vl.VideoLoader(
        dataset, batch_size=4, frames_per_clip=4, transform=recipe, num_workers=2, shuffle=False, seed=3
    )
    pyav = PyAVBackend()
    rows = 0
    for batch in loader:
        video, _, video_index = batch
        assert video.shape[1:] == (4, 3, 20, 20)
        for i in range(len(batch)):
            info = dataset[int(video_index[i])]
            frames = pyav.decode_clip(info, batch.frame_index[i].tolist()).frames
            clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
            want = v2.Compose([v2.Resize(24, antialias=False), v2.CenterCrop(20)])(clip)
            assert torch.equal(video[i], want), info.path
        rows += len(batch)
    assert rows == loader.num_clips
    # Native sizes, not one size for the batch: every file's own (H, W) reached the transform.
    assert set(seen) == {(h, w) for h, w, *_ in MIXED.values()}
