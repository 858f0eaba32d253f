"""examples/lightning_datamodule.py: a run resumed from a mid-epoch Lightning checkpoint trains on exactly
the rest of that epoch, then on the same next epoch as an uninterrupted run."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from vidloader.dataset import textured_frames, write_video

L = pytest.importorskip("lightning")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_datamodule.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lightning_datamodule", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Record(L.Callback):
    """Every trained batch as (epoch, [(video, clip, first frame), ...])."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[tuple[int, int, int]]]] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        clips = zip(
            batch.video_index.tolist(),
            batch.clip_index.tolist(),
            batch.frame_index[:, 0].tolist(),
            strict=True,
        )
        self.batches.append((trainer.current_epoch, list(clips)))


def unsized(ex: ModuleType) -> type:
    """The wrapper without a length: Lightning then fetches one batch ahead of the training step."""

    class Unsized(ex.ResumableClipLoader):  # type: ignore[name-defined,misc]
        def __len__(self) -> int:
            raise TypeError("no length")

    return Unsized


def fit(ex: ModuleType, root: Path, out: Path, sized: bool, ckpt_path: str | None = None) -> Record:
    torch.manual_seed(0)
    dm = ex.ClipDataModule(str(root), batch_size=2, num_workers=2, seed=3, cache_dir=str(root / ".cache"))
    if not sized:
        dm.loader_class = unsized(ex)
    model = ex.TinyVideoNet(num_classes=2)
    record = Record()
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=out, every_n_train_steps=3, save_top_k=-1, filename="{epoch}-{step}"
    )
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record, checkpoints],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return record


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "prefetched"])
def test_resume_from_a_mid_epoch_checkpoint_trains_on_the_rest_of_the_epoch(
    tmp_path: Path, sized: bool
) -> None:
    root = tmp_path / "videos"
    for c in range(2):
        for i in range(5):
            write_video(root / f"class{c}" / f"v{i}.mp4", textured_frames(12, 24, 32, seed=10 * c + i), gop=4)
    ex = load_example()

    full = fit(ex, root, tmp_path / "a", sized)
    per_epoch = [[clips for e, clips in full.batches if e == epoch] for epoch in (0, 1)]
    assert [len(b) for b in per_epoch] == [5, 5], "10 clips in batches of 2, two epochs"
    assert sorted(v for b in per_epoch[0] for v, _, _ in b) == list(range(10)), "every video once in epoch 0"
    assert per_epoch[0] != per_epoch[1], "epoch 1 is a new shuffle"

    # Step 3 is mid-epoch 0: three batches trained, two to go.
    mid = tmp_path / "a" / "epoch=0-step=3.ckpt"
    state = torch.load(mid, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert [(s["epoch"], s["batches_yielded"]) for s in state] == [(0, 3)]
    resumed = fit(ex, root, tmp_path / "b", sized, ckpt_path=str(mid))
    assert resumed.batches == full.batches[3:], "exactly the rest of epoch 0, then the same epoch 1"
