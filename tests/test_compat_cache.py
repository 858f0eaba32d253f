"""The reference scripts' ``--cache-dataset`` file, which torchvision and the port write under one name: a file
left by one, read by the other, fails saying it is the other's cache, not on a type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision import datasets as tv_datasets
from torchvision.datasets.video_utils import VideoClips as TvVideoClips

import vidloader as vl
from vidloader.compat.torchvision import DataLoader, Kinetics, RandomClipSampler, UniformClipSampler
from vidloader.dataset import textured_frames, write_video

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    for c in range(2):
        write_video(root / "val" / f"c{c}" / "v.mp4", textured_frames(24, 16, 24, seed=c), gop=6)
    return root


def torchvision_cache(root: Path, path: Path) -> None:
    """What torchvision's train.py saves with --cache-dataset: (its Kinetics, the split folder). Built from
    known frame counts and rates, as decoding needs FFmpeg libraries torchvision finds by name."""
    paths = [str(root / "val" / f"c{c}" / "v.mp4") for c in range(2)]
    meta = {"video_paths": paths, "video_pts": [torch.arange(24)] * 2, "video_fps": [25.0] * 2}
    dataset = tv_datasets.Kinetics.__new__(tv_datasets.Kinetics)
    dataset.video_clips = TvVideoClips(paths, 4, 1, 15, _precomputed_metadata=meta)
    dataset.transform = None
    torch.save((dataset, str(root / "val")), path)


def test_the_port_names_a_cache_torchvision_wrote(root: Path, tmp_path: Path) -> None:
    torchvision_cache(root, tmp_path / "0123456789.pt")
    dataset, _ = torch.load(tmp_path / "0123456789.pt", weights_only=False)  # as train.py reads it
    with pytest.raises(vl.ConfigError, match=r"video_clips is torchvision's own VideoClips.*dataset cache.*"):
        RandomClipSampler(dataset.video_clips, 5)
    with pytest.raises(vl.ConfigError, match=r"--cache-dataset.*Delete that file"):
        UniformClipSampler(dataset.video_clips, 5)
    with pytest.raises(vl.ConfigError, match=r"dataset is torchvision's own Kinetics.*dataset cache"):
        DataLoader(dataset)
    # Anything else foreign is named as what it is.
    with pytest.raises(
        vl.ConfigError, match=r"expected a vidloader\.compat\.torchvision VideoClips .* got list"
    ):
        RandomClipSampler([], 5)  # type: ignore[arg-type]


def test_a_port_cache_reads_back_in_the_port_and_is_refused_by_torchvision(
    root: Path, tmp_path: Path
) -> None:
    port = Kinetics(root, 4, split="val", frame_rate=15, cache_dir=root / ".c")
    cache = tmp_path / "0123456789.pt"
    torch.save((port, str(root / "val")), cache)
    dataset, folder = torch.load(cache, weights_only=False)  # this process uses the port
    assert isinstance(dataset, Kinetics) and folder == str(root / "val")
    assert (len(dataset), dataset.samples, dataset.classes) == (len(port), port.samples, port.classes)
    loader = DataLoader(dataset, batch_size=2, sampler=UniformClipSampler(dataset.video_clips, 2))
    assert [c.frame_indices for c in loader.clip_plan()] == [
        c.frame_indices
        for c in DataLoader(port, batch_size=2, sampler=UniformClipSampler(port.video_clips, 2)).clip_plan()
    ]
    # torchvision's own script imports torchvision's samplers, never the port: it reads the file so.
    script = f"import torch\ntorch.load({str(cache)!r}, weights_only=False)\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "ConfigError: this is a dataset cache written by vidloader's torchvision port" in run.stderr
    assert "Delete the file" in run.stderr and "--cache-dataset" in run.stderr
