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
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

import vidloader as vl
from vidloader._config import dump_config, load_config

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
    if d["train_manifest"]:
        kw = dict(on_error=d["on_error"], progress=rank == 0)
        return (
            vl.VideoDataset.from_manifest(d["train_manifest"], **kw),
            vl.VideoDataset.from_manifest(d["val_manifest"], **kw),
        )
    root = Path(d["root"])
    if not (root / "train").is_dir() and d["demo"]:
        if rank == 0:
            vl.make_demo_dataset(root, seed=d["demo_seed"])
        if dist.is_initialized():
            dist.barrier()
    if not (root / "train").is_dir():
        raise vl.ConfigError(
            f"data.root={str(root)!r} has no train/ folder (expected <root>/train/<class>/<video>)"
        )
    kw = dict(on_error=d["on_error"], progress=rank == 0)
    return vl.VideoDataset.from_folder(root / "train", **kw), vl.VideoDataset.from_folder(root / "val", **kw)


def build_model(cfg: dict[str, Any], num_classes: int, device: torch.device) -> torch.nn.Module:
    m = cfg["model"]
    if m["name"] not in VIDEO_MODELS:
        raise vl.ConfigError(f"model.name={m['name']!r} is not allowed; choose one of {list(VIDEO_MODELS)}")
    model = getattr(torchvision.models.video, m["name"])(weights=None, num_classes=num_classes)
    if m["weights"]:
        state = torch.load(m["weights"], map_location="cpu", weights_only=True)
        # A checkpoint trained on other classes: keep everything but the classifier.
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(state, strict=False)
    model = model.to(device)
    if m["channels_last"] and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def loader_kwargs(section: dict[str, Any]) -> dict[str, Any]:
    kw = dict(section)
    if isinstance(kw.get("resize"), list):
        kw["resize"] = tuple(kw["resize"])
    return kw


def build_loaders(cfg: dict[str, Any], train_ds, val_ds, device: torch.device, rank: int, world: int):
    t = cfg["transform"]
    amp_dtype = amp_dtype_of(cfg, device)
    out_dtype = amp_dtype if amp_dtype is not None else torch.float32
    train_tf = vl.transforms.TrainClipTransform(
        size=t["size"],
        scale=tuple(t["scale"]),
        ratio=tuple(t["ratio"]),
        flip=t["flip"],
        mean=tuple(t["mean"]),
        std=tuple(t["std"]),
        out_dtype=out_dtype,
    )
    eval_tf = vl.transforms.EvalClipTransform(
        size=t["size"], crops=t["eval_crops"], mean=tuple(t["mean"]), std=tuple(t["std"]), out_dtype=out_dtype
    )
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
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


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
    """Clip-level and video-level (softmax averaged over temporal views x spatial crops) top-1/top-5."""
    model.eval()
    n_videos = len(loader.dataset)
    prob_sum = torch.zeros(n_videos, num_classes, dtype=torch.float64, device=device)
    counts = torch.zeros(n_videos, dtype=torch.float64, device=device)
    clip_hits = torch.zeros(3, dtype=torch.float64, device=device)  # top1, top5, clips
    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    for batch in tqdm(loader, desc="eval", leave=False, disable=not show):
        video = batch.video
        if single_frame:
            # One frame repeated over time: whatever the model gets right now, it gets without motion.
            video = video[:, :, :1].expand_as(video).contiguous()
        with amp:
            logits = model(video)
        probs = logits.float().softmax(-1).double()
        vidx = batch.video_index.to(device)
        prob_sum.index_add_(0, vidx, probs)
        counts.index_add_(0, vidx, torch.ones_like(vidx, dtype=torch.float64))
        top5 = probs.topk(min(5, num_classes), dim=-1).indices
        label = batch.label.to(device)
        clip_hits[0] += (top5[:, 0] == label).sum()
        clip_hits[1] += (top5 == label[:, None]).any(-1).sum()
        clip_hits[2] += len(label)
    if dist.is_initialized():
        # Wrap-round duplicates add the same clips twice to one video: the average is unchanged.
        for t in (prob_sum, counts, clip_hits):
            dist.all_reduce(t)
    seen = counts > 0
    labels = torch.tensor([v.label for v in loader.dataset], device=device)
    avg = prob_sum[seen] / counts[seen, None]
    top5 = avg.topk(min(5, num_classes), dim=-1).indices
    lab = labels[seen]
    model.train()
    return {
        "video_top1": float((top5[:, 0] == lab).double().mean()),
        "video_top5": float((top5 == lab[:, None]).any(-1).double().mean()),
        "clip_top1": float(clip_hits[0] / clip_hits[2]),
        "clip_top5": float(clip_hits[1] / clip_hits[2]),
        "videos": int(seen.sum()),
        "probs": avg.cpu(),
        "video_ids": torch.nonzero(seen).flatten().cpu(),
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
        dump_config(cfg, out / "config.yaml")
    torch.manual_seed(cfg["loader"].get("seed", 0))

    train_ds, val_ds = build_datasets(cfg, rank)
    num_classes = max(len(train_ds.classes), 1 + max(v.label for v in train_ds))
    model = build_model(cfg, num_classes, device)
    amp_dtype = amp_dtype_of(cfg, device)
    train_loader, val_loader = build_loaders(cfg, train_ds, val_ds, device, rank, world)

    if args.eval_only:
        ckpt_path = Path(args.checkpoint or out / "last.pt")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        res = evaluate(
            model, val_loader, num_classes, device, amp_dtype, single_frame=args.single_frame, show=main_rank
        )
        if main_rank:
            write_predictions(out / "predictions.csv", res, val_ds)
            print(json.dumps({k: v for k, v in res.items() if not isinstance(v, torch.Tensor)}))
        return 0

    if cfg["model"]["compile"]:
        model = torch.compile(model)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    steps_per_epoch = len(train_loader)
    if tr["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, int(tr["max_steps_per_epoch"]))
    accum = max(1, int(tr["accum_steps"]))
    opt, sched = build_optim(cfg, model, max(1, steps_per_epoch // accum))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    start_epoch, step = 0, 0
    if args.resume:
        path = out / "last.pt" if args.resume == "last" else Path(args.resume)
        state = torch.load(path, map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"], state["step"]
        train_loader.load_state_dict(state["loader"])
        if main_rank:
            print(
                f"resumed from {path}: epoch {start_epoch}, {state['loader']['batches_yielded']} batches done"
            )

    def checkpoint(epoch: int, name: str = "last.pt") -> None:
        if main_rank:
            save_checkpoint(
                out / name,
                model=unwrap(model).state_dict(),
                optimizer=opt.state_dict(),
                scheduler=sched.state_dict(),
                scaler=scaler.state_dict(),
                epoch=epoch,
                step=step,
                loader=train_loader.state_dict(),
                config=cfg,
            )

    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    timer = CudaTimer(device)
    for epoch in range(start_epoch, tr["epochs"]):
        train_loader.set_epoch(epoch)  # keeps a loaded resume point for this epoch
        model.train()
        done_before = train_loader.state_dict()["batches_yielded"]
        loss_sum, clips, wait_s, step_s = 0.0, 0, 0.0, 0.0
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
            t0 = timer.now()
            try:
                batch = next(it)
            except StopIteration:
                break
            t1 = timer.now()
            with amp:
                logits = model(batch.video)
                loss = F.cross_entropy(
                    logits.float(), batch.label, label_smoothing=cfg["optim"]["label_smoothing"]
                )
            scaler.scale(loss / accum).backward()
            if (i + 1) % accum == 0:
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                sched.step()
            step += 1
            i += 1
            t2 = timer.now()
            w, s = timer.elapsed(t0, t1), timer.elapsed(t0, t2)
            wait_s += w
            step_s += s
            losses.append(loss.item())
            loss_sum += loss.item() * len(batch)
            clips += len(batch)
            if tr["log_videos"]:
                seen_videos += batch.video_index.tolist()
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if tr["ckpt_every"] and step % int(tr["ckpt_every"]) == 0:
                checkpoint(epoch)
            if args.stop_after and step >= args.stop_after:
                if tr["log_videos"]:
                    with (out / f"videos_rank{rank}.jsonl").open("a") as f:
                        f.write(
                            json.dumps({"epoch": epoch, "video_index": seen_videos, "losses": losses}) + "\n"
                        )
                return 0
        bar.close()
        del it
        totals = torch.tensor([loss_sum, clips, wait_s, step_s], dtype=torch.float64, device=device)
        if dist.is_initialized():
            dist.all_reduce(totals)
        res = evaluate(model, val_loader, num_classes, device, amp_dtype, show=main_rank)
        checkpoint(epoch + 1)
        if tr["log_videos"]:
            with (out / f"videos_rank{rank}.jsonl").open("a") as f:
                f.write(json.dumps({"epoch": epoch, "video_index": seen_videos, "losses": losses}) + "\n")
        if main_rank:
            n = max(totals[1].item(), 1)
            row = {
                "epoch": epoch,
                "train_loss": totals[0].item() / n,
                "val_top1": res["video_top1"],
                "val_top5": res["video_top5"],
                "clip_top1": res["clip_top1"],
                "clips_per_s": totals[1].item() / max(totals[3].item() / world, 1e-9),
                "stall_pct": 100.0 * totals[2].item() / max(totals[3].item(), 1e-9),
            }
            print(json.dumps(row), flush=True)
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
        # A new epoch starts after the checkpoint above; resuming from it begins the next epoch.
    if main_rank:
        write_predictions(out / "predictions.csv", res, val_ds) if tr["epochs"] > start_epoch else None
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


class CudaTimer:
    """Wall clock on CPU; CUDA events on GPU, so asynchronous kernels are charged to the step that ran them."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def elapsed(self, a: Any, b: Any) -> float:
        if self.cuda:
            b.synchronize()
            return a.elapsed_time(b) / 1000.0
        return b - a


if __name__ == "__main__":
    sys.exit(main())
