"""train_example.py's evaluation: clip-level and video-level top-1/top-5 over the validation loader (each
video counted once, also under DDP), the predictions CSV, and each epoch's metrics.jsonl line."""

from __future__ import annotations

import csv
import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm
from train_session import Session
from train_state import EpochSums

import vidloader as vl


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    """Mixed precision in ``amp_dtype`` on ``device``; full precision when it is None."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: vl.VideoLoader,
    num_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    *,
    single_frame: bool = False,
    show: bool = True,
) -> dict[str, Any]:
    """Clip-level and video-level (softmax averaged over temporal views x spatial crops) top-1/top-5.

    Under DDP every rank evaluates its shard; the wrap-round that evens out the shards hands a few videos to
    two ranks, so each video is counted from one rank only (the lowest that saw it), and a clip seen twice on
    one rank counts once. Then per-video sums are all-reduced: the metrics cover each video exactly once.

    Args:
        model: the model, without a DDP wrapper (no collectives per forward).
        loader: the validation loader.
        num_classes: the classifier's outputs.
        device: where the model and the batches are.
        amp_dtype: autocast dtype, or None.
        single_frame: feed each clip's first frame repeated over time (what the model knows without motion).
        show: show a progress bar.

    Returns:
        video_top1/5, clip_top1/5 (fractions), videos, clips, and for the predictions CSV ``probs``
        [videos, classes] (averaged over each video's views) and ``video_ids`` (their dataset indices).
    """
    model.eval()
    n_videos = len(loader.dataset)
    prob_sum = torch.zeros(n_videos, num_classes, dtype=torch.float64, device=device)
    # Per video: clips, clip-level top-1 hits, clip-level top-5 hits.
    clip_stats = torch.zeros(n_videos, 3, dtype=torch.float64, device=device)
    seen_clips: set[tuple[int, int, int]] = set()
    amp = autocast(device, amp_dtype)
    for batch in tqdm(loader, desc="eval", leave=False, disable=not show):
        video = batch.video
        if single_frame:
            # One frame repeated over time: whatever the model gets right now, it gets without motion.
            video = video[:, :, :1].expand_as(video).contiguous()
        with amp:
            logits = model(video)
        logits, label, vidx = _first_sight(logits, batch, seen_clips, device)
        probs = logits.float().softmax(-1).double()
        prob_sum.index_add_(0, vidx, probs)
        clip_stats.index_add_(0, vidx, _clip_hits(probs, label, num_classes))
    if dist.is_initialized():
        _keep_lowest_rank_per_video(prob_sum, clip_stats)
    model.train()
    return _video_metrics(prob_sum, clip_stats, loader.dataset, num_classes)


def _first_sight(
    logits: torch.Tensor, batch: vl.ClipBatch, seen: set[tuple[int, int, int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, labels, video indices) of the batch's clips this rank has not evaluated yet; adds them to
    ``seen`` (a clip is its video, clip and spatial view)."""
    views = batch.view_index if batch.view_index is not None else torch.zeros_like(batch.video_index)
    keys = list(zip(batch.video_index.tolist(), batch.clip_index.tolist(), views.tolist(), strict=True))
    keep = [k not in seen for k in keys]
    seen.update(keys)
    if all(keep):
        return logits, batch.label.to(device), batch.video_index.to(device)
    rows = torch.tensor(keep, device=device)
    return logits[rows], batch.label.to(device)[rows], batch.video_index.to(device)[rows]


def _clip_hits(probs: torch.Tensor, label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per clip: [1, top-1 hit, top-5 hit] (float64), to sum per video."""
    top5 = probs.topk(min(5, num_classes), dim=-1).indices
    return torch.stack(
        [torch.ones_like(label), top5[:, 0] == label, (top5 == label[:, None]).any(-1)], dim=1
    ).double()


def _keep_lowest_rank_per_video(prob_sum: torch.Tensor, clip_stats: torch.Tensor) -> None:
    """Zero the videos a lower rank also saw, then sum over ranks (in place)."""
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


def _video_metrics(
    prob_sum: torch.Tensor, clip_stats: torch.Tensor, dataset: vl.VideoDataset, num_classes: int
) -> dict[str, Any]:
    """``evaluate``'s result from the per-video sums (videos no clip reached are left out)."""
    counts = clip_stats[:, 0]
    seen_v = counts > 0
    labels = torch.tensor([v.label for v in dataset], device=prob_sum.device)
    avg = prob_sum[seen_v] / counts[seen_v, None]
    top5 = avg.topk(min(5, num_classes), dim=-1).indices
    lab = labels[seen_v]
    totals = clip_stats.sum(0)
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
    """One CSV row per evaluated video: path, label, predicted class, its probability, the top 5."""
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


def write_metrics(session: Session, epoch: int, totals: EpochSums, res: dict[str, Any]) -> None:
    """The epoch's line of <out>/metrics.jsonl (also printed), from sums over every rank."""
    row = {
        "epoch": epoch,
        "train_loss": totals.loss / max(totals.clips, 1),
        "val_top1": res["video_top1"],
        "val_top5": res["video_top5"],
        "train_clips": int(totals.clips),
        "clip_top1": res["clip_top1"],
        "clip_top5": res["clip_top5"],
        "val_videos": res["videos"],
        "val_clips": res["clips"],
        # Step times summed over ranks: divide by world for the wall time the ranks ran side by side.
        "clips_per_s": totals.clips / max(totals.step_s / session.world, 1e-9),
        "stall_pct": 100.0 * totals.wait_s / max(totals.step_s, 1e-9),
    }
    tqdm.write(json.dumps(row))
    with (session.out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
