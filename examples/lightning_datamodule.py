"""A LightningDataModule over vidloader whose loader position is saved in and restored from Lightning
checkpoints, so a run resumed from a mid-epoch checkpoint trains on exactly the rest of that epoch.

    python examples/lightning_datamodule.py /path/to/root      # root/<class>/<video>.mp4; trains 2 epochs

Lightning's protocol for resumable loaders: if the object ``train_dataloader()`` returns has
``state_dict()`` / ``load_state_dict()``, the fit loop stores its state in every checkpoint (key
``loops.fit_loop.state_dict.combined_loader``) and hands it back before iterating when fitting with
``ckpt_path=``. ``ResumableClipLoader`` is that object. One detail it takes care of: when a loader has no
length, Lightning fetches one batch ahead of the training step (to know which batch is last), and the loader
has then handed over one batch more than the model has trained on. The wrapper counts the batches the step
actually received (``on_before_batch_transfer`` of the DataModule, called right before each training step)
and saves that position, never a prefetched one. (A VideoLoader has a length, so Lightning does not
prefetch it; tests/test_lightning_example.py checks both cases.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

import vidloader as vl


class ResumableClipLoader:
    """A VideoLoader as a Lightning-resumable train dataloader.

    Args:
        loader: the VideoLoader.
        epoch: returns the epoch the next pass is (Lightning's ``trainer.current_epoch``).

    ``len()`` is the loader's batches per epoch; ``state_dict()`` is the loader's state at the last batch the
    training step received (see the module docstring); ``load_state_dict()`` resumes there.
    """

    def __init__(self, loader: vl.VideoLoader, epoch: Callable[[], int]) -> None:
        self.loader = loader
        self._epoch = epoch
        self._handed = 0  # batches handed to Lightning in this pass
        self._trained = 0  # of those, batches the training step received

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[vl.ClipBatch]:
        self.loader.set_epoch(self._epoch())
        self._handed = self._trained = 0
        for batch in self.loader:
            self._handed += 1
            yield batch

    def mark_trained(self) -> None:
        """The training step received one more batch."""
        self._trained += 1

    def state_dict(self) -> dict[str, Any]:
        state = self.loader.state_dict()
        ahead = self._handed - self._trained  # fetched by Lightning, not trained on yet
        if ahead:
            if state["epoch"] != self._epoch():
                # The pass already ended (Lightning saw its end while prefetching): back into this epoch.
                state = {**state, "epoch": self._epoch(), "batches_yielded": len(self.loader)}
            state = {**state, "batches_yielded": state["batches_yielded"] - ahead}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


class ClipDataModule(L.LightningDataModule):
    """Train batches of ``root/<class>/<video>`` clips from vidloader, resumable mid-epoch.

    Args:
        root: the dataset folder.
        batch_size, frames_per_clip, num_workers, seed: VideoLoader arguments.
        size: crop size of ``TrainClipTransform`` (the frames are resized to ``resize`` first).
        resize: the short side the frames are resized to before the random crop (aspect kept; an
            ``(h, w)`` pair would stretch every frame to that shape).
        cache_dir: where the dataset index is cached.
    """

    def __init__(
        self,
        root: str,
        *,
        batch_size: int = 4,
        frames_per_clip: int = 4,
        size: int = 16,
        resize: int | tuple[int, int] = 20,
        num_workers: int = 2,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.root, self.cache_dir = root, cache_dir
        self.kw = dict(
            batch_size=batch_size, frames_per_clip=frames_per_clip, num_workers=num_workers, seed=seed
        )
        self.transform = vl.transforms.TrainClipTransform(size=size, resize=resize, preset="kinetics")
        self.train_loader: ResumableClipLoader | None = None
        self.loader_class = ResumableClipLoader

    def setup(self, stage: str) -> None:
        if self.train_loader is None:
            ds = vl.VideoDataset.from_folder(self.root, cache_dir=self.cache_dir, progress=False)
            loader = vl.VideoLoader(ds, transform=self.transform, **self.kw)  # type: ignore[arg-type]
            self.train_loader = self.loader_class(loader, epoch=lambda: self.trainer.current_epoch)

    def train_dataloader(self) -> ResumableClipLoader:
        assert self.train_loader is not None
        return self.train_loader

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer.training and self.train_loader is not None:
            self.train_loader.mark_trained()
        return batch

    def teardown(self, stage: str) -> None:
        if self.train_loader is not None:
            self.train_loader.loader.close()


class TinyVideoNet(L.LightningModule):
    """A very small 3D CNN (for the example and its test, not for accuracy)."""

    def __init__(self, num_classes: int, lr: float = 0.05) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=3, padding=1)
        self.head = torch.nn.Linear(8, num_classes)
        self.lr = lr

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.conv(video)).mean(dim=(2, 3, 4)))

    def training_step(self, batch: vl.ClipBatch, batch_idx: int) -> torch.Tensor:
        video, label, _ = batch
        loss = F.cross_entropy(self(video), label)
        self.log("train_loss", loss, batch_size=len(batch))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def main(root: str) -> None:
    dm = ClipDataModule(root)
    dm.setup("fit")
    assert dm.train_loader is not None
    model = TinyVideoNet(num_classes=len(dm.train_loader.loader.dataset.classes))
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=True)
    trainer.fit(model, datamodule=dm)


if __name__ == "__main__":
    main(sys.argv[1])
