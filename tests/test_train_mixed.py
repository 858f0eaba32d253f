"""train_example.py on the mixed-resolution demo (configs/demo_mixed_cpu.yaml): no resize chosen by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import vidloader as vl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import train_example  # noqa: E402
from train_config import load_config  # noqa: E402

from test_train import TINY  # noqa: E402


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "probe-cache"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_mixed_demo_config_validates() -> None:
    cfg = load_config(ROOT / "configs" / "demo_mixed_cpu.yaml")
    assert cfg["data"]["demo_mixed"] is True and "resize" not in cfg["loader"]
    train_tf, eval_tf = train_example.build_transforms(cfg, torch.float32)
    assert train_tf.size == eval_tf.size == (32, 32)


def test_one_epoch_on_the_mixed_demo(tmp_path: Path) -> None:
    root = tmp_path / "mixed_demo"
    vl.make_demo_dataset(
        root, train_per_class=2, val_per_class=2, size=24, frames=12, mixed=True, progress=False
    )
    train = vl.VideoDataset.from_folder(root / "train", progress=False)
    val = vl.VideoDataset.from_folder(root / "val", progress=False)
    sizes = {(v.height, v.width) for v in [*train, *val]}
    assert len(sizes) >= 4 and any(h > w for h, w in sizes) and any(h < w for h, w in sizes)
    assert len({round(v.fps) for v in [*train, *val]}) >= 2
    # Every seventh clip is short (4 of 12 frames): shorter than a 6-frame clip at stride 2.
    assert sum(v.num_frames == 4 for v in [*train, *val]) == 3
    out = tmp_path / "run"
    args = [*TINY, f"data.root={root}", f"train.out={out}", "loader.frames_per_clip=6"]
    assert train_example.main(args) == 0
    row = next(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines())
    assert row["train_clips"] == 12 and row["val_videos"] == 12
    assert 0 <= row["val_top1"] <= 1
