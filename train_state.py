"""What train_example.py's training updates (``Trainer``: the model, optimizer, schedule, scaler, loaders and
where it stands), how it is saved to a checkpoint and resumed from one, and the running sums of an epoch
(loss, clips, seconds waiting for data, seconds per step) that a mid-epoch checkpoint carries, so a resumed
epoch reports the whole epoch."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from train_build import amp_dtype_of, build_optim
from train_session import Session

import vidloader as vl


def save_checkpoint(path: Path, **state: Any) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically: a crash never leaves a half-written checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint ``save_checkpoint`` wrote, on the CPU (it holds the config and loader state too)."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under DDP and/or torch.compile wrappers (its state dict has no wrapper prefixes)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


@dataclass
class EpochSums:
    """Running sums of the current epoch: loss x clips, clips, seconds waiting for data, step seconds."""

    loss: float = 0.0
    clips: float = 0.0
    wait_s: float = 0.0
    step_s: float = 0.0

    def as_list(self) -> list[float]:
        """The four sums in order: a checkpoint's ``epoch_sums``."""
        return list(astuple(self))

    @classmethod
    def from_list(cls, values: list[float]) -> EpochSums:
        return cls(*values)

    def fold(self, loss_acc: torch.Tensor, timer: StepTimer) -> EpochSums:
        """These sums plus the device-side loss sum (then zeroed) and the timer's readings since its last take."""
        wait_s, step_s = timer.take()
        out = EpochSums(self.loss + loss_acc.item(), self.clips, self.wait_s + wait_s, self.step_s + step_s)
        loss_acc.zero_()
        return out


def sum_over_ranks(sums: EpochSums, device: torch.device) -> EpochSums:
    """The sums of every rank (the same sums when there is no process group). A collective: every rank calls."""
    values = torch.tensor(sums.as_list(), dtype=torch.float64)
    if dist.is_initialized():
        values = values.to(device)
        dist.all_reduce(values)
    return EpochSums.from_list(values.tolist())


class StepTimer:
    """Per-step (data wait, step) seconds: wall clock on CPU; on GPU CUDA events, read back lazily, so the
    timing never synchronises the step (the wait is the time the GPU sat idle between steps for the batch)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._pending: list[tuple[Any, Any, Any]] = []
        self._wait = 0.0
        self._step = 0.0

    def mark(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def add(self, t0: Any, t1: Any, t2: Any) -> None:
        if not self.cuda:
            self._wait += t1 - t0
            self._step += t2 - t0
            return
        self._pending.append((t0, t1, t2))
        while self._pending and self._pending[0][2].query():  # finished steps: read without waiting
            self._read(*self._pending.pop(0))

    def _read(self, t0: Any, t1: Any, t2: Any) -> None:
        self._wait += t0.elapsed_time(t1) / 1000.0
        self._step += t0.elapsed_time(t2) / 1000.0

    def take(self) -> tuple[float, float]:
        """Seconds (waiting, stepping) since the last take; waits for the steps still running on the GPU."""
        for ev in self._pending:
            ev[2].synchronize()
            self._read(*ev)
        self._pending.clear()
        out = (self._wait, self._step)
        self._wait = self._step = 0.0
        return out


# ---- what training updates -------------------------------------------------------------------------------


@dataclass
class Trainer:
    """What training updates and reads: the model and its optimizer state, the loaders, and where it is."""

    cfg: dict[str, Any]
    session: Session
    model: torch.nn.Module  # what steps: compiled and/or DDP-wrapped
    eval_model: torch.nn.Module  # the same weights without DDP: no collectives per forward
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    train_loader: vl.VideoLoader
    val_loader: vl.VideoLoader
    num_classes: int
    amp_dtype: torch.dtype | None
    steps_per_epoch: int
    accum: int  # batches per optimizer step
    timer: StepTimer
    epoch: int = 0  # the epoch to run next
    step: int = 0  # batches trained on, all epochs
    resumed: EpochSums = field(default_factory=EpochSums)  # the interrupted epoch's sums, from a checkpoint

    @property
    def channels_last(self) -> bool:
        return bool(self.cfg["model"]["channels_last"]) and self.session.device.type == "cuda"


def prepare_training(
    cfg: dict[str, Any],
    session: Session,
    model: torch.nn.Module,
    train_loader: vl.VideoLoader,
    val_loader: vl.VideoLoader,
    num_classes: int,
) -> Trainer:
    """The model compiled and DDP-wrapped as configured, its optimizer, schedule and loss scaler."""
    if cfg["model"]["compile"]:
        model = torch.compile(model)
    eval_model = model
    if session.world > 1:
        device = session.device
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    tr = cfg["train"]
    steps_per_epoch = len(train_loader)
    if tr["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, int(tr["max_steps_per_epoch"]))
    accum = max(1, int(tr["accum_steps"]))
    opt, sched = build_optim(cfg, model, math.ceil(steps_per_epoch / accum))
    amp_dtype = amp_dtype_of(cfg, session.device)
    scaler = torch.amp.GradScaler(session.device.type, enabled=amp_dtype == torch.float16)
    return Trainer(
        cfg=cfg,
        session=session,
        model=model,
        eval_model=eval_model,
        opt=opt,
        sched=sched,
        scaler=scaler,
        train_loader=train_loader,
        val_loader=val_loader,
        num_classes=num_classes,
        amp_dtype=amp_dtype,
        steps_per_epoch=steps_per_epoch,
        accum=accum,
        timer=StepTimer(session.device),
    )


def resume(t: Trainer, path: Path) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule, scaler, the loader's place in its epoch.

    Raises:
        vl.ConfigError: no checkpoint at ``path``.
    """
    if not path.is_file():
        raise vl.ConfigError(f"--resume: no checkpoint at {path}")
    state = load_checkpoint(path)
    unwrap(t.model).load_state_dict(state["model"])
    t.opt.load_state_dict(state["optimizer"])
    t.sched.load_state_dict(state["scheduler"])
    t.scaler.load_state_dict(state["scaler"])
    t.epoch, t.step = state["epoch"], state["step"]
    t.train_loader.load_state_dict(state["loader"])
    if t.session.is_main and state["loader"]["epoch"] == t.epoch:
        # Rank 0 alone carries the interrupted epoch's sums (they were reduced over ranks when saved).
        t.resumed = EpochSums.from_list(state.get("epoch_sums", t.resumed.as_list()))
    if t.session.is_main:
        print(f"resumed from {path}: epoch {t.epoch}, {state['loader']['batches_yielded']} batches done")


def checkpoint(t: Trainer, epoch: int, sums: EpochSums) -> None:
    """<out>/last.pt: called on every rank at the same step (the sums are reduced); only rank 0 writes."""
    reduced = sum_over_ranks(sums, t.session.device)
    if t.session.is_main:
        save_checkpoint(
            t.session.out / "last.pt",
            model=unwrap(t.model).state_dict(),
            optimizer=t.opt.state_dict(),
            scheduler=t.sched.state_dict(),
            scaler=t.scaler.state_dict(),
            epoch=epoch,
            step=t.step,
            loader=t.train_loader.state_dict(),
            epoch_sums=reduced.as_list(),
            config=t.cfg,
        )


@dataclass
class EpochRecord:
    """What one epoch's training left: its running sums and, with train.log_videos, what it trained on."""

    sums: EpochSums
    video_index: list[int] = field(default_factory=list)  # of every clip, in order
    losses: list[float] = field(default_factory=list)  # of every step
    interrupted: bool = False  # stopped by --stop-after


def log_videos(t: Trainer, epoch: int, done: EpochRecord) -> None:
    """train.log_videos: the clips' video indices (and losses) each rank trained on; the tests read it."""
    if t.cfg["train"]["log_videos"]:
        with (t.session.out / f"videos_rank{t.session.rank}.jsonl").open("a") as f:
            row = {"epoch": epoch, "video_index": done.video_index, "losses": done.losses}
            f.write(json.dumps(row) + "\n")
