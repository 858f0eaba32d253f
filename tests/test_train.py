"""train_example.py on a tiny demo dataset: an epoch runs and learns, resume is exact, DDP (gloo) shards by
video, eval-only writes predictions, configs validate their keys."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidloader as vl
from vidloader._config import load_config, loader_keys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import train_example  # noqa: E402

TINY = [
    "loader.batch_size=4",
    "loader.frames_per_clip=4",
    "loader.frame_stride=2",
    "loader.num_workers=1",
    "transform.size=16",
    "val_loader.clips_per_video=1",
    "train.epochs=1",
    "train.threads=1",
    "optim.warmup_epochs=0",
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_demo")
    vl.make_demo_dataset(root, train_per_class=2, val_per_class=1, size=24, frames=12, progress=False)
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "probe-cache"))


def run_main(*args: str) -> int:
    return train_example.main([*args])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_config_overrides_and_unknown_key(tmp_path: Path) -> None:
    cfg = load_config(
        ROOT / "configs" / "demo_cpu.yaml", ["loader.batch_size=3", "transform.scale=[0.2, 0.9]"]
    )
    assert cfg["loader"]["batch_size"] == 3 and cfg["transform"]["scale"] == [0.2, 0.9]
    assert cfg["name"] == "demo_cpu"
    with pytest.raises(vl.ConfigError, match=r"loader\.bacth_size"):
        load_config(None, ["loader.bacth_size=3"])
    with pytest.raises(vl.ConfigError, match="unknown section 'trian'"):
        load_config(None, ["trian.epochs=3"])
    with pytest.raises(vl.ConfigError, match=r"section\.key=value"):
        load_config(None, ["epochs=3"])
    # The loader sections speak VideoLoader's own keyword names, nothing else.
    assert {
        "batch_size",
        "frames_per_clip",
        "frame_stride",
        "sampling",
        "backend",
        "num_workers",
    } <= loader_keys()
    bad = tmp_path / "bad.yaml"
    bad.write_text("loader:\n  batchsize: 4\n")
    with pytest.raises(vl.ConfigError, match=r"bad\.yaml: unknown key loader\.batchsize"):
        load_config(bad)


@pytest.mark.parametrize("name", ["demo_cpu", "demo_gpu", "kinetics400_r2plus1d", "ucf101_r3d18"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg["model"]["name"] in train_example.VIDEO_MODELS


def test_loss_falls_on_a_fixed_batch(tiny_data: Path) -> None:
    torch.manual_seed(0)
    cfg = load_config(None, [*TINY, f"data.root={tiny_data}", "transform.flip=false"])
    train_ds, val_ds = train_example.build_datasets(cfg, 0)
    model = train_example.build_model(cfg, len(train_ds.classes), torch.device("cpu"))
    loader, _ = train_example.build_loaders(cfg, train_ds, val_ds, torch.device("cpu"), 0, 1)
    batch = next(iter(loader))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(model(batch.video), batch.label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses


def test_one_epoch_writes_metrics_and_eval_only_csv(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_main(*TINY, f"data.root={tiny_data}", f"train.out={out}") == 0
    rows = read_jsonl(out / "metrics.jsonl")
    assert len(rows) == 1
    row = rows[0]
    assert {"epoch", "train_loss", "val_top1", "val_top5", "clips_per_s", "stall_pct"} <= row.keys()
    assert (
        0 <= row["val_top1"] <= row["val_top5"] <= 1
        and row["clips_per_s"] > 0
        and 0 <= row["stall_pct"] <= 100
    )
    assert (out / "config.yaml").exists() and (out / "last.pt").exists()
    assert run_main(*TINY, f"data.root={tiny_data}", f"train.out={out}", "--eval-only") == 0
    with (out / "predictions.csv").open() as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 6 and set(preds[0]) == {"path", "label", "predicted", "prob_top1", "top5"}
    assert all(Path(p["path"]).exists() for p in preds)


def test_resume_mid_epoch_reproduces_the_uninterrupted_run(tiny_data: Path, tmp_path: Path) -> None:
    common = [
        *TINY,
        f"data.root={tiny_data}",
        "train.log_videos=true",
        "train.ckpt_every=1",
        "train.epochs=2",
    ]
    full = tmp_path / "full"
    assert run_main(*common, f"train.out={full}") == 0
    part = tmp_path / "part"
    assert run_main(*common, f"train.out={part}", "--stop-after", "2") == 0
    assert run_main(*common, f"train.out={part}", "--resume") == 0
    ref = read_jsonl(full / "videos_rank0.jsonl")
    got = read_jsonl(part / "videos_rank0.jsonl")
    # Epoch 0 was split 2 + 1 steps across the interruption; together they are the uninterrupted epoch.
    assert got[0]["video_index"] + got[1]["video_index"] == ref[0]["video_index"]
    assert got[0]["losses"] + got[1]["losses"] == pytest.approx(ref[0]["losses"], rel=1e-5, abs=1e-6)
    assert got[2]["losses"] == pytest.approx(ref[1]["losses"], rel=1e-5, abs=1e-6)
    m_ref, m_got = read_jsonl(full / "metrics.jsonl"), read_jsonl(part / "metrics.jsonl")
    assert m_got[-1]["val_top1"] == m_ref[-1]["val_top1"]
    assert m_got[-1]["train_loss"] == pytest.approx(m_ref[-1]["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_torchrun_two_ranks_gloo_disjoint_videos(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        str(ROOT / "train_example.py"),
        *TINY,
        f"data.root={tiny_data}",
        f"train.out={out}",
        "train.log_videos=true",
        "loader.batch_size=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = read_jsonl(out / "videos_rank0.jsonl")[0]["video_index"]
    r1 = read_jsonl(out / "videos_rank1.jsonl")[0]["video_index"]
    assert len(r0) == len(r1) == 6 and not set(r0) & set(r1) and set(r0) | set(r1) == set(range(12))
    rows = read_jsonl(out / "metrics.jsonl")  # written once, by rank 0, from reduced totals
    assert len(rows) == 1 and rows[0]["epoch"] == 0 and 0 <= rows[0]["val_top1"] <= 1
