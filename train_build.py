"""What train_example.py builds a run from, each from its config section: the datasets (``data``), the model
(``model``), the clip transforms (``transform``), the loaders (``loader``, ``val_loader``) and the optimizer
with its schedule (``optim``). Kept beside the script, like train_config.py: copy the three together.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torchvision

import vidloader as vl

VIDEO_MODELS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t")


# ---- data ------------------------------------------------------------------------------------------------


def build_datasets(cfg: dict[str, Any], rank: int) -> tuple[vl.VideoDataset, vl.VideoDataset]:
    """The training and validation sets: two manifests, or ``data.root``'s train/ and val/ folders.

    Args:
        cfg: the run's config.
        rank: this process's rank; only rank 0 builds the demo data and shows progress.

    Returns:
        (training set, validation set), each with its own labels (see ``align_labels``).

    Raises:
        vl.ConfigError: one manifest without the other, or a root that is not a dataset folder.
    """
    d = cfg["data"]
    if bool(d["train_manifest"]) != bool(d["val_manifest"]):
        raise vl.ConfigError(
            "give both data.train_manifest and data.val_manifest (or neither, for data.root)"
        )
    kw = dict(on_error=d["on_error"], progress=rank == 0)
    if d["train_manifest"]:
        return (
            vl.VideoDataset.from_manifest(d["train_manifest"], **kw),
            vl.VideoDataset.from_manifest(d["val_manifest"], **kw),
        )
    root = Path(d["root"])
    if d["demo"]:
        _ensure_demo(root, d, rank)
    if not (root / "train").is_dir():
        raise vl.ConfigError(
            f"data.root={str(root)!r} has no train/ folder (expected <root>/train/<class>/<video>)"
        )
    return vl.VideoDataset.from_folder(root / "train", **kw), vl.VideoDataset.from_folder(root / "val", **kw)


def _ensure_demo(root: Path, d: dict[str, Any], rank: int) -> None:
    """Build (or refresh) the demo dataset at ``root`` on rank 0; the other ranks wait for it."""
    if (root / "train").is_dir() and not (root / ".complete").exists():
        # Only a folder the demo generator finished is rebuilt: never touch someone's own videos.
        raise vl.ConfigError(
            f"data.root={str(root)!r} has a train/ folder but no demo .complete marker: set data.demo=false "
            "to train on it (or --data DIR), or delete it to rebuild the demo dataset"
        )
    if rank == 0:
        # Returns at once when the demo is there and current; rebuilds it when the generator changed.
        vl.make_demo_dataset(root, seed=d["demo_seed"], mixed=d["demo_mixed"], progress=True)
    if dist.is_initialized():
        dist.barrier()


def align_labels(train_ds: vl.VideoDataset, val_ds: vl.VideoDataset) -> vl.VideoDataset:
    """Validation labels as the training set's class indices.

    Labels are positions in each dataset's own sorted class names, so a validation set that lacks a class
    (or has its folders in another set) would shift them; class names are matched instead. Integer labels
    from manifests are the same numbers everywhere and stay as they are.

    Raises:
        vl.ConfigError: a validation class the training set does not have.
    """

    def integer_labels(ds: vl.VideoDataset) -> bool:
        return ds.classes == tuple(str(i) for i in sorted({v.label for v in ds}))

    def names(ds: vl.VideoDataset) -> list[str]:
        return [str(v.label) for v in ds] if integer_labels(ds) else [ds.classes[v.label] for v in ds]

    index = (
        {str(v.label): v.label for v in train_ds}
        if integer_labels(train_ds)
        else {c: i for i, c in enumerate(train_ds.classes)}
    )
    val_names = names(val_ds)
    unknown = sorted(set(val_names) - set(index))
    if unknown:
        raise vl.ConfigError(f"validation classes {unknown} do not occur in the training set")
    videos = [replace(v, label=index[n]) for v, n in zip(val_ds, val_names, strict=True)]
    if all(a.label == b.label for a, b in zip(videos, val_ds, strict=True)):
        return val_ds
    return vl.VideoDataset(videos=videos, classes=train_ds.classes, skipped=val_ds.skipped, root=val_ds.root)


def num_classes_of(train_ds: vl.VideoDataset) -> int:
    """Class names, or the largest integer label + 1 when a manifest's labels skip some numbers."""
    return max(len(train_ds.classes), 1 + max(v.label for v in train_ds))


# ---- model -----------------------------------------------------------------------------------------------


def build_model(cfg: dict[str, Any], num_classes: int, device: torch.device) -> torch.nn.Module:
    """``model.name`` (a torchvision video model or "module:factory") on ``device``, from ``model.weights``.

    Raises:
        vl.ConfigError: a model name that is neither.
    """
    m = cfg["model"]
    if ":" in m["name"]:
        # Your own model: "package.module:factory", called with num_classes= (the tests use a tiny one).
        module, _, attr = m["name"].partition(":")
        model = getattr(importlib.import_module(module), attr)(num_classes=num_classes)
    elif m["name"] in VIDEO_MODELS:
        # weights=None: no download; --weights PATH loads a local state dict below.
        model = getattr(torchvision.models.video, m["name"])(weights=None, num_classes=num_classes)
    else:
        raise vl.ConfigError(
            f"model.name={m['name']!r} is not allowed; choose one of {list(VIDEO_MODELS)} "
            "or 'module:factory' (called with num_classes=)"
        )
    if m["weights"]:
        _load_fitting_weights(model, m["weights"])
    model = model.to(device)
    if m["channels_last"] and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def _load_fitting_weights(model: torch.nn.Module, path: str) -> None:
    """Weights trained on other classes: keep everything whose shape fits (all but the classifier)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state.get("model"), dict):  # one of our checkpoints
        state = state["model"]
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fits, strict=False)
    left = sorted(set(own) - set(fits))
    print(f"--weights {path}: loaded {len(fits)}/{len(own)} tensors; left as initialised: {left}")


def amp_dtype_of(cfg: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """``train.amp`` as the autocast dtype (None: full precision).

    Raises:
        vl.ConfigError: a value that is not one of the choices.
    """
    amp = cfg["train"]["amp"]
    choices = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp not in choices:
        raise vl.ConfigError(
            f"train.amp={amp!r} is not allowed; choose one of ['auto', 'bf16', 'fp16', 'off']"
        )
    return choices[amp]


# ---- clips -----------------------------------------------------------------------------------------------


def build_transforms(
    cfg: dict[str, Any], out_dtype: torch.dtype
) -> tuple[vl.transforms.TrainClipTransform, vl.transforms.EvalClipTransform]:
    """Training: random resized crop (+ flip, jitter); evaluation: 1 or 3 crops. Both normalise to out_dtype."""
    t = cfg["transform"]
    size = tuple(t["size"]) if isinstance(t["size"], list) else t["size"]
    train_tf = vl.transforms.TrainClipTransform(
        size=size,
        scale=tuple(t["scale"]),
        ratio=tuple(t["ratio"]),
        flip=t["flip"],
        mean=tuple(t["mean"]),
        std=tuple(t["std"]),
        out_dtype=out_dtype,
        jitter=tuple(t["jitter"]) if t["jitter"] else None,
    )
    eval_tf = vl.transforms.EvalClipTransform(
        size=size,
        crops=t["eval_crops"],
        resize_short=t["eval_resize_short"],
        mean=tuple(t["mean"]),
        std=tuple(t["std"]),
        out_dtype=out_dtype,
    )
    return train_tf, eval_tf


def _loader_kwargs(section: dict[str, Any]) -> dict[str, Any]:
    kw = dict(section)
    if isinstance(kw.get("resize"), list):
        kw["resize"] = tuple(kw["resize"])
    return kw


def build_loaders(
    cfg: dict[str, Any],
    train_ds: vl.VideoDataset,
    val_ds: vl.VideoDataset,
    device: torch.device,
    rank: int,
    world: int,
) -> tuple[vl.VideoLoader, vl.VideoLoader]:
    """Random clips for training; the val_loader section (over the loader one) for evaluation."""
    amp_dtype = amp_dtype_of(cfg, device)
    train_tf, eval_tf = build_transforms(cfg, amp_dtype if amp_dtype is not None else torch.float32)
    base = _loader_kwargs(cfg["loader"])
    train = vl.VideoLoader(train_ds, **base, transform=train_tf, device=device, rank=rank, world_size=world)
    val_kw = {**base, **_loader_kwargs(cfg["val_loader"])}
    val = vl.VideoLoader(val_ds, **val_kw, transform=eval_tf, device=device, rank=rank, world_size=world)
    return train, val


# ---- optimizer -------------------------------------------------------------------------------------------


def build_optim(
    cfg: dict[str, Any], model: torch.nn.Module, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """``optim.name`` with a linear warm-up then a cosine decay over ``train.epochs``, per optimizer step.

    Raises:
        vl.ConfigError: an optimizer name that is not one of the choices.
    """
    o = cfg["optim"]
    if o["name"] == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"]
        )
    elif o["name"] == "sgd":
        opt = torch.optim.SGD(
            model.parameters(),
            lr=o["lr"],
            momentum=o["momentum"],
            weight_decay=o["weight_decay"],
            nesterov=True,
        )
    else:
        raise vl.ConfigError(f"optim.name={o['name']!r} is not allowed; choose one of ['adamw', 'sgd']")
    total = max(1, steps_per_epoch * cfg["train"]["epochs"])
    warm = min(total - 1, int(o["warmup_epochs"] * steps_per_epoch))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
