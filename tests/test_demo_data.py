"""The demo dataset's label lives only in time: a classifier that sees one frame stays near chance, the same
classifier seeing two frames a few steps apart learns the classes. (This is why the demo proves that
temporal order reaches the model.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from vidloader.dataset import DEMO_CLASSES


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("demo_probe")
    vl.make_demo_dataset(root, train_per_class=24, val_per_class=10, size=32, frames=6, progress=False)
    out = []
    for split in ("train", "val"):
        ds = vl.VideoDataset.from_folder(root / split, use_cache=False, progress=False)
        loader = vl.VideoLoader(
            ds,
            batch_size=64,
            frames_per_clip=6,
            sampling="uniform",
            shuffle=False,
            output_layout="NTHWC",
            num_workers=2,
        )
        video = torch.cat([b.video for b in loader]).float() / 255  # [N, T, H, W, C]
        labels = torch.tensor([v.label for v in ds])
        out += [video, labels]
    return out[0], out[1], out[2], out[3]


def fit_and_score(
    x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor
) -> float:
    torch.manual_seed(0)
    c = x_train.shape[1]
    net = torch.nn.Sequential(
        torch.nn.Conv2d(c, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 16, len(DEMO_CLASSES)),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(400):
        idx = torch.randint(0, len(x_train), (48,))
        loss = torch.nn.functional.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((net(x_val).argmax(-1) == y_val).float().mean())


@pytest.mark.slow
def test_label_is_invisible_in_one_frame_and_visible_in_two(clips) -> None:
    xt, yt, xv, yv = clips
    torch.set_num_threads(2)

    def single(x: torch.Tensor) -> torch.Tensor:  # every frame as its own sample
        return x.permute(0, 1, 4, 2, 3).reshape(-1, 3, x.shape[2], x.shape[3])

    def pair(x: torch.Tensor) -> torch.Tensor:  # frames t and t+3 and their difference, on channels
        a, b = x[:, :3], x[:, 3:6]
        return torch.cat([a, b, b - a], dim=-1).permute(0, 1, 4, 2, 3).reshape(-1, 9, x.shape[2], x.shape[3])

    t = xt.shape[1]
    acc_single = fit_and_score(single(xt), yt.repeat_interleave(t), single(xv), yv.repeat_interleave(t))
    acc_pair = fit_and_score(pair(xt), yt.repeat_interleave(3), pair(xv), yv.repeat_interleave(3))
    chance = 1 / len(DEMO_CLASSES)
    assert acc_single < chance + 0.15, f"one frame should not reveal the class (got {acc_single:.2f})"
    assert acc_pair > acc_single + 0.25, f"two frames should (single {acc_single:.2f}, pair {acc_pair:.2f})"


def test_demo_is_deterministic(tmp_path: Path) -> None:
    a = vl.make_demo_dataset(
        tmp_path / "a", train_per_class=1, val_per_class=1, size=16, frames=4, progress=False
    )
    b = vl.make_demo_dataset(
        tmp_path / "b", train_per_class=1, val_per_class=1, size=16, frames=4, progress=False
    )
    files = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(files) == 2 * len(DEMO_CLASSES)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
