#!/usr/bin/env python3
"""Train and evaluate a torchvision video model on vidloader clips (CPU, one GPU, or torchrun DDP).

    python train_example.py --config configs/demo_cpu.yaml
    python train_example.py --config configs/kinetics400_r2plus1d.yaml data.root=/data/k400 loader.batch_size=16
    torchrun --nproc_per_node=8 train_example.py --config configs/kinetics400_r2plus1d.yaml
    python train_example.py --config configs/demo_cpu.yaml --resume            # continue mid-epoch
    python train_example.py --config configs/demo_cpu.yaml --eval-only --checkpoint runs/demo_cpu/last.pt

Every epoch appends one JSON line to <out>/metrics.jsonl: epoch, train_loss, val_top1, val_top5 (video-level,
fractions), clips_per_s and stall_pct (share of step time spent waiting for the loader).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from train_build import (
    VIDEO_MODELS,
    align_labels,
    amp_dtype_of,
    build_datasets,
    build_loaders,
    build_model,
    build_optim,
    build_transforms,
    num_classes_of,
)
from train_config import load_config
from train_eval import autocast, evaluate, write_metrics, write_predictions
from train_session import Session, shutdown_distributed, start_session
from train_state import (
    EpochRecord,
    EpochSums,
    Trainer,
    checkpoint,
    load_checkpoint,
    log_videos,
    prepare_training,
    resume,
    sum_over_ranks,
)

import vidloader as vl

# The run, top to bottom: `run` sets up the process (train_session.py), builds the data, model and loaders
# (train_build.py), then evaluates a checkpoint or trains: `train` runs the epochs, each `train_epoch` (its
# steps and checkpoints, train_state.py) then the evaluation and the epoch's metrics line (train_eval.py).

# The builders stay importable from here, as before (the tests and your own scripts use them).
__all__ = [
    "VIDEO_MODELS",
    "align_labels",
    "build_datasets",
    "build_loaders",
    "build_model",
    "build_optim",
    "build_transforms",
    "evaluate",
    "main",
    "run",
]


# ---- command line ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML config (configs/*.yaml)")
    ap.add_argument("overrides", nargs="*", help="section.key=value, e.g. loader.batch_size=4 optim.lr=0.01")
    ap.add_argument("--data", help="shortcut for data.root=DIR")
    ap.add_argument("--train-manifest")
    ap.add_argument("--val-manifest")
    ap.add_argument("--out", help="output folder (default runs/<config name>)")
    ap.add_argument(
        "--resume", nargs="?", const="last", help="continue from a checkpoint (default <out>/last.pt)"
    )
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--checkpoint", help="checkpoint for --eval-only")
    ap.add_argument("--single-frame", action="store_true", help="evaluate on one repeated frame per clip")
    ap.add_argument("--weights", help="local state dict to start from")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument(
        "--stop-after",
        type=int,
        default=0,
        metavar="STEPS",
        help="exit right after global step STEPS (and its checkpoint): simulates an interruption",
    )
    return ap.parse_args(argv)


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The positional ``section.key=value`` overrides, then the shortcut flags as overrides."""
    overrides = list(args.overrides)
    for flag, key in (
        (args.data, "data.root"),
        (args.train_manifest, "data.train_manifest"),
        (args.val_manifest, "data.val_manifest"),
        (args.out, "train.out"),
        (args.weights, "model.weights"),
    ):
        if flag:
            overrides.append(f"{key}={flag}")
    if args.data:
        overrides.append("data.demo=false")  # your own folder: never (re)built as the demo
    if args.compile:
        overrides.append("model.compile=true")
    return overrides


def main(argv: list[str] | None = None) -> int:
    code = run(argv)
    shutdown_distributed()
    return code


# ---- the run ---------------------------------------------------------------------------------------------


def run(argv: list[str] | None = None) -> int:
    """One run: set up, build the data, model and loaders, then evaluate a checkpoint or train."""
    args = parse_args(argv)
    cfg = load_config(args.config, config_overrides(args))
    session = start_session(cfg, write_config=not args.eval_only)
    train_ds, val_ds = build_datasets(cfg, session.rank)
    val_ds = align_labels(train_ds, val_ds)
    num_classes = num_classes_of(train_ds)
    model = build_model(cfg, num_classes, session.device)
    train_loader, val_loader = build_loaders(
        cfg, train_ds, val_ds, session.device, session.rank, session.world
    )
    if args.eval_only:
        return evaluate_checkpoint(args, cfg, session, model, val_loader, num_classes)
    trainer = prepare_training(cfg, session, model, train_loader, val_loader, num_classes)
    if args.resume:
        resume(trainer, session.out / "last.pt" if args.resume == "last" else Path(args.resume))
    return train(trainer, stop_after=args.stop_after)


def evaluate_checkpoint(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    session: Session,
    model: torch.nn.Module,
    val_loader: vl.VideoLoader,
    num_classes: int,
) -> int:
    """--eval-only: the checkpoint's model on the validation set; rank 0 writes the predictions CSV.

    Raises:
        vl.ConfigError: no checkpoint at the path.
    """
    path = Path(args.checkpoint or session.out / "last.pt")
    if not path.is_file():
        raise vl.ConfigError(f"--eval-only: no checkpoint at {path} (pass --checkpoint PATH)")
    model.load_state_dict(load_checkpoint(path)["model"])
    amp_dtype = amp_dtype_of(cfg, session.device)
    res = evaluate(
        model,
        val_loader,
        num_classes,
        session.device,
        amp_dtype,
        single_frame=args.single_frame,
        show=session.is_main,
    )
    if session.is_main:
        name = "predictions_single_frame.csv" if args.single_frame else "predictions.csv"
        write_predictions(session.out / name, res, val_loader.dataset)
        print(json.dumps({k: v for k, v in res.items() if not isinstance(v, torch.Tensor)}))
    return 0


# ---- training --------------------------------------------------------------------------------------------


def train(t: Trainer, *, stop_after: int = 0) -> int:
    """The epochs: train, evaluate, checkpoint, one metrics line each; then the last evaluation's CSV."""
    res: dict[str, Any] | None = None
    for epoch in range(t.epoch, t.cfg["train"]["epochs"]):
        done = train_epoch(t, epoch, stop_after=stop_after)
        if done.interrupted:  # --stop-after: a simulated interruption right after a checkpoint
            log_videos(t, epoch, done)
            return 0
        totals = sum_over_ranks(done.sums, t.session.device)
        res = evaluate(
            t.eval_model, t.val_loader, t.num_classes, t.session.device, t.amp_dtype, show=t.session.is_main
        )
        checkpoint(t, epoch + 1, EpochSums())  # the next epoch starts from nothing
        log_videos(t, epoch, done)
        if t.session.is_main:
            write_metrics(t.session, epoch, totals, res)
    if t.session.is_main and res is not None:
        write_predictions(t.session.out / "predictions.csv", res, t.val_loader.dataset)
    return 0


def train_epoch(t: Trainer, epoch: int, *, stop_after: int = 0) -> EpochRecord:
    """The epoch's steps from where its loader stands (mid-epoch after a resume), checkpoints included."""
    t.train_loader.set_epoch(epoch)  # keeps a loaded resume point for this epoch
    t.model.train()
    i = t.train_loader.state_dict()["batches_yielded"]
    record, t.resumed = EpochRecord(sums=t.resumed), EpochSums()
    loss_acc = torch.zeros((), dtype=torch.float64, device=t.session.device)  # summed on the device: no sync
    bar = tqdm(
        total=t.steps_per_epoch,
        initial=min(i, t.steps_per_epoch),
        desc=f"epoch {epoch}",
        disable=not t.session.is_main,
    )
    batches = iter(t.train_loader)
    while i < t.steps_per_epoch:
        t0 = t.timer.mark()
        batch = next(batches, None)
        if batch is None:
            break
        t1 = t.timer.mark()
        loss = train_step(t, batch, last_micro=(i + 1) % t.accum == 0 or i + 1 == t.steps_per_epoch)
        t.step += 1
        i += 1
        t.timer.add(t0, t1, t.timer.mark())
        loss_acc += loss.detach() * len(batch)
        record.sums.clips += len(batch)
        if t.cfg["train"]["log_videos"]:
            record.video_index += batch.video_index.tolist()
            record.losses.append(loss.item())
        bar.update(1)
        if i % 10 == 0 or i == t.steps_per_epoch:
            bar.set_postfix(loss=f"{loss.item():.3f}")  # one sync every 10 steps
        every = int(t.cfg["train"]["ckpt_every"])
        record.interrupted = bool(stop_after) and t.step >= stop_after
        if (every and t.step % every == 0) or record.interrupted:
            record.sums = record.sums.fold(loss_acc, t.timer)
            checkpoint(t, epoch, record.sums)
        if record.interrupted:
            break
    bar.close()
    record.sums = record.sums.fold(loss_acc, t.timer)
    return record


def train_step(t: Trainer, batch: vl.ClipBatch, *, last_micro: bool) -> torch.Tensor:
    """Forward and backward of one batch; the optimizer steps on the last micro-batch of each step."""
    video = batch.video.contiguous(memory_format=torch.channels_last_3d) if t.channels_last else batch.video
    # DDP: gradients are reduced once per optimizer step, not per micro-batch.
    sync = nullcontext() if last_micro or t.session.world == 1 else t.model.no_sync()
    with sync:
        with autocast(t.session.device, t.amp_dtype):
            logits = t.model(video)
            loss = F.cross_entropy(
                logits.float(), batch.label, label_smoothing=t.cfg["optim"]["label_smoothing"]
            )
        t.scaler.scale(loss / t.accum).backward()
    if last_micro:
        t.scaler.step(t.opt)
        t.scaler.update()
        t.opt.zero_grad(set_to_none=True)
        t.sched.step()
    return loss


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vl.ConfigError as exc:  # a wrong key or value: the message says which, no traceback needed
        print(f"train_example.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
