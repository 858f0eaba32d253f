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
import csv
import importlib
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from tqdm import tqdm
from train_config import dump_config, load_config

import vidloader as vl

VIDEO_MODELS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t")


# ---- setup -----------------------------------------------------------------------------------------------


def setup_distributed(device_pref: str) -> tuple[int, int, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPU, gloo on CPU."""
    use_cuda = torch.cuda.is_available() if device_pref == "auto" else device_pref == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def build_datasets(cfg: dict[str, Any], rank: int) -> tuple[vl.VideoDataset, vl.VideoDataset]:
    d = cfg["data"]
    if bool(d["train_manifest"]) != bool(d["val_manifest"]):
        raise vl.ConfigError(
            "give both data.train_manifest and data.val_manifest (or neither, for data.root)"
        )
    if d["train_manifest"]:
        kw = dict(on_error=d["on_error"], progress=rank == 0)
        return (
            vl.VideoDataset.from_manifest(d["train_manifest"], **kw),
            vl.VideoDataset.from_manifest(d["val_manifest"], **kw),
        )
    root = Path(d["root"])
    if d["demo"]:
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
    if not (root / "train").is_dir():
        raise vl.ConfigError(
            f"data.root={str(root)!r} has no train/ folder (expected <root>/train/<class>/<video>)"
        )
    kw = dict(on_error=d["on_error"], progress=rank == 0)
    return vl.VideoDataset.from_folder(root / "train", **kw), vl.VideoDataset.from_folder(root / "val", **kw)


def align_labels(train_ds: vl.VideoDataset, val_ds: vl.VideoDataset) -> vl.VideoDataset:
    """Validation labels as the training set's class indices.

    Labels are positions in each dataset's own sorted class names, so a validation set that lacks a class
    (or has its folders in another set) would shift them; class names are matched instead. Integer labels
    from manifests are the same numbers everywhere and stay as they are."""

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


def build_model(cfg: dict[str, Any], num_classes: int, device: torch.device) -> torch.nn.Module:
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
        state = torch.load(m["weights"], map_location="cpu", weights_only=True)
        if isinstance(state.get("model"), dict):  # one of our checkpoints
            state = state["model"]
        # Weights trained on other classes: keep everything whose shape fits (all but the classifier).
        own = model.state_dict()
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(fits, strict=False)
        left = sorted(set(own) - set(fits))
        print(f"--weights {m['weights']}: loaded {len(fits)}/{len(own)} tensors; left as initialised: {left}")
    model = model.to(device)
    if m["channels_last"] and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def loader_kwargs(section: dict[str, Any]) -> dict[str, Any]:
    kw = dict(section)
    if isinstance(kw.get("resize"), list):
        kw["resize"] = tuple(kw["resize"])
    return kw


def build_transforms(cfg: dict[str, Any], out_dtype: torch.dtype):
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


def build_loaders(cfg: dict[str, Any], train_ds, val_ds, device: torch.device, rank: int, world: int):
    """Random clips for training; the val_loader section (over the loader one) for evaluation."""
    amp_dtype = amp_dtype_of(cfg, device)
    train_tf, eval_tf = build_transforms(cfg, amp_dtype if amp_dtype is not None else torch.float32)
    base = loader_kwargs(cfg["loader"])
    train = vl.VideoLoader(train_ds, **base, transform=train_tf, device=device, rank=rank, world_size=world)
    val_kw = {**base, **loader_kwargs(cfg["val_loader"])}
    val = vl.VideoLoader(val_ds, **val_kw, transform=eval_tf, device=device, rank=rank, world_size=world)
    return train, val


def amp_dtype_of(cfg: dict[str, Any], device: torch.device) -> torch.dtype | None:
    amp = cfg["train"]["amp"]
    choices = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp not in choices:
        raise vl.ConfigError(
            f"train.amp={amp!r} is not allowed; choose one of ['auto', 'bf16', 'fp16', 'off']"
        )
    return choices[amp]


def build_optim(cfg: dict[str, Any], model: torch.nn.Module, steps_per_epoch: int):
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


# ---- checkpoints -----------------------------------------------------------------------------------------


def save_checkpoint(path: Path, **state: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under DDP and/or torch.compile wrappers (its state dict has no wrapper prefixes)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


# ---- evaluation ------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model,
    loader,
    num_classes: int,
    device: torch.device,
    amp_dtype,
    *,
    single_frame: bool = False,
    show: bool = True,
) -> dict[str, Any]:
    """Clip-level and video-level (softmax averaged over temporal views x spatial crops) top-1/top-5.

    Under DDP every rank evaluates its shard; the wrap-round that evens out the shards hands a few videos to
    two ranks, so each video is counted from one rank only (the lowest that saw it), and a clip seen twice on
    one rank counts once. Then per-video sums are all-reduced: the metrics cover each video exactly once.
    """
    model.eval()
    n_videos = len(loader.dataset)
    prob_sum = torch.zeros(n_videos, num_classes, dtype=torch.float64, device=device)
    # Per video: clips, clip-level top-1 hits, clip-level top-5 hits.
    clip_stats = torch.zeros(n_videos, 3, dtype=torch.float64, device=device)
    seen_clips: set[tuple[int, int, int]] = set()
    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    for batch in tqdm(loader, desc="eval", leave=False, disable=not show):
        video = batch.video
        if single_frame:
            # One frame repeated over time: whatever the model gets right now, it gets without motion.
            video = video[:, :, :1].expand_as(video).contiguous()
        with amp:
            logits = model(video)
        views = batch.view_index if batch.view_index is not None else torch.zeros_like(batch.video_index)
        keys = list(zip(batch.video_index.tolist(), batch.clip_index.tolist(), views.tolist(), strict=True))
        keep = [k not in seen_clips for k in keys]
        seen_clips.update(keys)
        if not all(keep):
            rows = torch.tensor(keep, device=device)
            logits, label, vidx = (
                logits[rows],
                batch.label.to(device)[rows],
                batch.video_index.to(device)[rows],
            )
        else:
            label, vidx = batch.label.to(device), batch.video_index.to(device)
        probs = logits.float().softmax(-1).double()
        top5 = probs.topk(min(5, num_classes), dim=-1).indices
        hits = torch.stack(
            [torch.ones_like(label), top5[:, 0] == label, (top5 == label[:, None]).any(-1)], dim=1
        ).double()
        prob_sum.index_add_(0, vidx, probs)
        clip_stats.index_add_(0, vidx, hits)
    if dist.is_initialized():
        seen = (clip_stats[:, 0] > 0).to(torch.uint8)
        everyone = [torch.empty_like(seen) for _ in range(dist.get_world_size())]
        dist.all_gather(everyone, seen)
        stacked = torch.stack(everyone).int()  # [world, videos]
        owner = torch.where(stacked.any(0), stacked.argmax(0), -1)  # lowest rank that saw each video
        mine = owner == dist.get_rank()
        prob_sum *= mine[:, None]
        clip_stats *= mine[:, None]
        dist.all_reduce(prob_sum)
        dist.all_reduce(clip_stats)
    counts = clip_stats[:, 0]
    seen_v = counts > 0
    labels = torch.tensor([v.label for v in loader.dataset], device=device)
    avg = prob_sum[seen_v] / counts[seen_v, None]
    top5 = avg.topk(min(5, num_classes), dim=-1).indices
    lab = labels[seen_v]
    totals = clip_stats.sum(0)
    model.train()
    return {
        "video_top1": float((top5[:, 0] == lab).double().mean()),
        "video_top5": float((top5 == lab[:, None]).any(-1).double().mean()),
        "clip_top1": float(totals[1] / totals[0].clamp(min=1)),
        "clip_top5": float(totals[2] / totals[0].clamp(min=1)),
        "videos": int(seen_v.sum()),
        "clips": int(totals[0]),
        "probs": avg.cpu(),
        "video_ids": torch.nonzero(seen_v).flatten().cpu(),
    }


def write_predictions(path: Path, result: dict[str, Any], dataset: vl.VideoDataset) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "predicted", "prob_top1", "top5"])
        for vid, probs in zip(result["video_ids"].tolist(), result["probs"], strict=True):
            top = probs.topk(min(5, probs.numel()))
            w.writerow(
                [
                    dataset[vid].path,
                    dataset[vid].label,
                    int(top.indices[0]),
                    f"{float(top.values[0]):.4f}",
                    " ".join(str(int(i)) for i in top.indices),
                ]
            )


# ---- main ------------------------------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    code = run(argv)
    shutdown_distributed()
    return code


def shutdown_distributed() -> None:
    """Leave the process group once ``run``'s locals (the DDP model) are gone.

    Gloo's worker threads drop finished work, whose tensors need the GIL, a moment after the caller moved
    on, and a process group's destructor joins those threads while holding the GIL. Destroying the group
    inside ``run`` left DDP's reducer holding the last reference, so freeing the model at return could
    deadlock the process at exit (seen here: 1 run in ~10 of the 2-rank test hung; pytorch/pytorch#56297).
    Here the reducer is already gone, the barrier plus a short sleep (GIL released) let the threads finish
    their last work, and the registry drops the last reference."""
    if not dist.is_initialized():
        return
    dist.barrier()
    time.sleep(0.2)
    dist.destroy_process_group()


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    cfg = load_config(args.config, overrides)
    tr = cfg["train"]
    if tr["threads"]:
        torch.set_num_threads(int(tr["threads"]))
    rank, world, device = setup_distributed(tr["device"])
    main_rank = rank == 0
    out = Path(tr["out"] or f"runs/{cfg['name']}")
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
        if not args.eval_only:  # the training run's config.yaml stays the one its checkpoints were made with
            dump_config(cfg, out / "config.yaml")
    torch.manual_seed(cfg["loader"].get("seed", 0))

    train_ds, val_ds = build_datasets(cfg, rank)
    val_ds = align_labels(train_ds, val_ds)
    num_classes = max(len(train_ds.classes), 1 + max(v.label for v in train_ds))
    model = build_model(cfg, num_classes, device)
    amp_dtype = amp_dtype_of(cfg, device)
    train_loader, val_loader = build_loaders(cfg, train_ds, val_ds, device, rank, world)

    if args.eval_only:
        ckpt_path = Path(args.checkpoint or out / "last.pt")
        if not ckpt_path.is_file():
            raise vl.ConfigError(f"--eval-only: no checkpoint at {ckpt_path} (pass --checkpoint PATH)")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        res = evaluate(
            model, val_loader, num_classes, device, amp_dtype, single_frame=args.single_frame, show=main_rank
        )
        if main_rank:
            name = "predictions_single_frame.csv" if args.single_frame else "predictions.csv"
            write_predictions(out / name, res, val_ds)
            print(json.dumps({k: v for k, v in res.items() if not isinstance(v, torch.Tensor)}))
        return 0

    if cfg["model"]["compile"]:
        model = torch.compile(model)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    # Evaluation runs the model without the DDP wrapper: no collectives per forward, buffers are in sync.
    eval_model = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    steps_per_epoch = len(train_loader)
    if tr["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, int(tr["max_steps_per_epoch"]))
    accum = max(1, int(tr["accum_steps"]))
    opt, sched = build_optim(cfg, model, math.ceil(steps_per_epoch / accum))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    start_epoch, step = 0, 0
    # Running sums of the current epoch (loss x clips, clips, seconds waiting for data, step seconds), all
    # ranks together; a mid-epoch checkpoint keeps them so a resumed epoch reports the whole epoch.
    resumed_sums = [0.0, 0.0, 0.0, 0.0]
    if args.resume:
        path = out / "last.pt" if args.resume == "last" else Path(args.resume)
        if not path.is_file():
            raise vl.ConfigError(f"--resume: no checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"], state["step"]
        train_loader.load_state_dict(state["loader"])
        if main_rank and state["loader"]["epoch"] == start_epoch:
            resumed_sums = list(state.get("epoch_sums", resumed_sums))
        if main_rank:
            print(
                f"resumed from {path}: epoch {start_epoch}, {state['loader']['batches_yielded']} batches done"
            )

    def checkpoint(epoch: int, sums: list[float]) -> None:
        # Called on every rank at the same step (the sums are reduced); only rank 0 writes.
        reduced = torch.tensor(sums, dtype=torch.float64)
        if dist.is_initialized():
            reduced = reduced.to(device)
            dist.all_reduce(reduced)
        if main_rank:
            save_checkpoint(
                out / "last.pt",
                model=unwrap(model).state_dict(),
                optimizer=opt.state_dict(),
                scheduler=sched.state_dict(),
                scaler=scaler.state_dict(),
                epoch=epoch,
                step=step,
                loader=train_loader.state_dict(),
                epoch_sums=reduced.tolist(),
                config=cfg,
            )

    def log_videos(epoch: int, seen: list[int], losses: list[float]) -> None:
        if tr["log_videos"]:  # the clips' video indices (and losses) each rank trained on: the tests read it
            with (out / f"videos_rank{rank}.jsonl").open("a") as f:
                f.write(json.dumps({"epoch": epoch, "video_index": seen, "losses": losses}) + "\n")

    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    channels_last = cfg["model"]["channels_last"] and device.type == "cuda"
    timer = StepTimer(device)
    res: dict[str, Any] | None = None
    for epoch in range(start_epoch, tr["epochs"]):
        train_loader.set_epoch(epoch)  # keeps a loaded resume point for this epoch
        model.train()
        done_before = train_loader.state_dict()["batches_yielded"]
        sums, resumed_sums = resumed_sums, [0.0, 0.0, 0.0, 0.0]
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync
        losses: list[float] = []
        seen_videos: list[int] = []
        bar = tqdm(
            total=steps_per_epoch,
            initial=min(done_before, steps_per_epoch),
            desc=f"epoch {epoch}",
            disable=not main_rank,
        )
        it = iter(train_loader)
        i = done_before
        while i < steps_per_epoch:
            t0 = timer.mark()
            try:
                batch = next(it)
            except StopIteration:
                break
            t1 = timer.mark()
            video = (
                batch.video.contiguous(memory_format=torch.channels_last_3d) if channels_last else batch.video
            )
            last_micro = (i + 1) % accum == 0 or i + 1 == steps_per_epoch
            sync = nullcontext() if last_micro or world == 1 else model.no_sync()  # DDP: reduce once per step
            with sync:
                with amp:
                    logits = model(video)
                    loss = F.cross_entropy(
                        logits.float(), batch.label, label_smoothing=cfg["optim"]["label_smoothing"]
                    )
                scaler.scale(loss / accum).backward()
            if last_micro:
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                sched.step()
            step += 1
            i += 1
            timer.add(t0, t1, timer.mark())
            loss_acc += loss.detach() * len(batch)
            sums[1] += len(batch)
            if tr["log_videos"]:
                seen_videos += batch.video_index.tolist()
                losses.append(loss.item())
            bar.update(1)
            if i % 10 == 0 or i == steps_per_epoch:
                bar.set_postfix(loss=f"{loss.item():.3f}")  # one sync every 10 steps
            ckpt_now = tr["ckpt_every"] and step % int(tr["ckpt_every"]) == 0
            stop_now = args.stop_after and step >= args.stop_after
            if ckpt_now or stop_now:
                sums = fold(sums, loss_acc, timer)
                checkpoint(epoch, sums)
            if stop_now:  # --stop-after: a simulated interruption right after a checkpoint
                bar.close()
                log_videos(epoch, seen_videos, losses)
                return 0
        bar.close()
        del it
        sums = fold(sums, loss_acc, timer)
        totals = torch.tensor(sums, dtype=torch.float64, device=device)
        if dist.is_initialized():
            dist.all_reduce(totals)
        res = evaluate(eval_model, val_loader, num_classes, device, amp_dtype, show=main_rank)
        checkpoint(epoch + 1, [0.0, 0.0, 0.0, 0.0])  # the next epoch starts from nothing
        log_videos(epoch, seen_videos, losses)
        if main_rank:
            loss_sum, n, wait_total, step_total = totals.tolist()
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(n, 1),
                "val_top1": res["video_top1"],
                "val_top5": res["video_top5"],
                "train_clips": int(n),
                "clip_top1": res["clip_top1"],
                "clip_top5": res["clip_top5"],
                "val_videos": res["videos"],
                "val_clips": res["clips"],
                # Step times summed over ranks: divide by world for the wall time the ranks ran side by side.
                "clips_per_s": n / max(step_total / world, 1e-9),
                "stall_pct": 100.0 * wait_total / max(step_total, 1e-9),
            }
            bar.write(json.dumps(row))
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
    if main_rank and res is not None:
        write_predictions(out / "predictions.csv", res, val_ds)
    return 0


def fold(sums: list[float], loss_acc: torch.Tensor, timer: StepTimer) -> list[float]:
    """Move the device-side loss sum and the timer's readings into the epoch's running sums."""
    wait_s, step_s = timer.take()
    out = [sums[0] + loss_acc.item(), sums[1], sums[2] + wait_s, sums[3] + step_s]
    loss_acc.zero_()
    return out


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


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vl.ConfigError as exc:  # a wrong key or value: the message says which, no traceback needed
        print(f"train_example.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
