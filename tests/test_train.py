"""train_example.py on tiny demo data: configs validate their keys, the loss falls, an epoch writes its metrics,
resume is exact, eval-only writes predictions, DDP (gloo, torchrun) shards by video and reduces metrics, and a
trained model needs the frames' order (one repeated frame per clip leaves it near chance).

Most runs use a tiny 3D CNN through ``model.name=test_train:tiny_video_net`` (the script's "module:factory"
hook) so they take seconds; one test runs a torchvision r3d_18."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import vidloader as vl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import train_example  # noqa: E402
from train_config import load_config, loader_keys  # noqa: E402

TINY_MODEL = f"model.name={Path(__file__).stem}:tiny_video_net"
TINY = [
    "data.demo=false",
    "loader.batch_size=4",
    "loader.frames_per_clip=4",
    "loader.frame_stride=2",
    "loader.num_workers=1",
    "transform.size=16",
    "transform.flip=false",
    "val_loader.clips_per_video=1",
    "train.epochs=1",
    "train.threads=1",
    "optim.warmup_epochs=0",
    TINY_MODEL,
]


def tiny_video_net(num_classes: int, width: int = 16) -> torch.nn.Module:
    """Two 3x3x3 conv layers: fast on a CPU, and its pooled 4x4 grid keeps where the motion is (orbits)."""
    return torch.nn.Sequential(
        torch.nn.Conv3d(3, width, 3, padding=1),
        torch.nn.BatchNorm3d(width),
        torch.nn.ReLU(),
        torch.nn.MaxPool3d((1, 2, 2)),
        torch.nn.Conv3d(width, 2 * width, 3, padding=1),
        torch.nn.BatchNorm3d(2 * width),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d((1, 4, 4)),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * width * 16, num_classes),
    )


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_demo")
    vl.make_demo_dataset(root, train_per_class=2, val_per_class=1, size=24, frames=12, progress=False)
    return root


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(tmp_path / "probe-cache"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train.threads=1 must not slow down the rest of the session


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


# ---- configuration ---------------------------------------------------------------------------------------


def test_config_overrides_and_unknown_keys(tmp_path: Path) -> None:
    cfg = load_config(
        ROOT / "configs" / "demo_cpu.yaml",
        ["loader.batch_size=3", "transform.scale=[0.2, 0.9]", "optim.lr=1e-3", "model.name=mc3_18"],
    )
    assert cfg["loader"]["batch_size"] == 3 and cfg["transform"]["scale"] == [0.2, 0.9]
    assert cfg["optim"]["lr"] == 0.001  # YAML 1.1 reads 1e-3 as text; the config makes it a number
    assert cfg["model"]["name"] == "mc3_18" and cfg["name"] == "demo_cpu"
    with pytest.raises(
        vl.ConfigError, match=r"unknown key loader\.bacth_size; allowed in 'loader': \[.*'batch_size'"
    ):
        load_config(None, ["loader.bacth_size=3"])
    with pytest.raises(vl.ConfigError, match="unknown section 'trian'"):
        load_config(None, ["trian.epochs=3"])
    with pytest.raises(vl.ConfigError, match=r"section\.key=value"):
        load_config(None, ["epochs=3"])
    with pytest.raises(vl.ConfigError, match=r"optim\.lr='fast' should be of type float"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(vl.ConfigError, match=r"loader\.device is set by the training script"):
        load_config(None, ["loader.device=cuda"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("loader:\n  batchsize: 4\n")
    with pytest.raises(vl.ConfigError, match=r"bad\.yaml: unknown key loader\.batchsize"):
        load_config(bad)


def test_loader_section_is_videoloaders_signature() -> None:
    import inspect

    params = inspect.signature(vl.VideoLoader).parameters
    keyword = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    # Exactly VideoLoader's keywords, less the few the script sets itself (and config=, the whole set at once).
    owned = {"config", "transform", "transform_kind", "device", "rank", "world_size", "dtype"}
    assert loader_keys() == keyword - owned
    assert {"batch_size", "frames_per_clip", "frame_stride", "sampling", "backend", "num_workers"} <= (
        loader_keys()
    )


@pytest.mark.parametrize("name", ["demo_cpu", "demo_gpu", "kinetics400_r2plus1d", "ucf101_r3d18"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg["model"]["name"] in train_example.VIDEO_MODELS
    train_tf, eval_tf = train_example.build_transforms(cfg, torch.float32)  # their values are valid too
    assert train_tf.size == eval_tf.size
    assert eval_tf.num_views == cfg["transform"]["eval_crops"]


def test_demo_folder_guard(tmp_path: Path) -> None:
    # data.demo=true never rebuilds (deletes) a folder the demo generator did not finish.
    (tmp_path / "mine" / "train" / "a").mkdir(parents=True)
    cfg = load_config(None, [f"data.root={tmp_path / 'mine'}"])
    with pytest.raises(vl.ConfigError, match=r"no demo \.complete marker"):
        train_example.build_datasets(cfg, 0)


def test_validation_labels_follow_training_class_names(tiny_data: Path) -> None:
    train = vl.VideoDataset.from_folder(tiny_data / "train", progress=False)
    val = vl.VideoDataset.from_folder(tiny_data / "val", progress=False)
    assert train_example.align_labels(train, val) is val  # same classes: unchanged
    # A validation set without the first class: its own labels start at 0 again, the aligned ones do not.
    short = vl.VideoDataset(
        videos=[replace(v, label=v.label - 1) for v in val if v.label > 0], classes=val.classes[1:]
    )
    aligned = train_example.align_labels(train, short)
    assert [train.classes[v.label] for v in aligned] == [short.classes[v.label] for v in short]
    assert [v.label for v in aligned] == [1, 2, 3, 4, 5]


# ---- training --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_loss_falls_on_a_fixed_batch_r3d18(tiny_data: Path) -> None:
    """The script's torchvision model, optimizer and input pipeline: a few steps on one batch fit it."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = load_config(None, [*TINY, f"data.root={tiny_data}", "model.name=r3d_18"])
    train_ds, val_ds = train_example.build_datasets(cfg, 0)
    model = train_example.build_model(cfg, len(train_ds.classes), torch.device("cpu"))
    loader, _ = train_example.build_loaders(cfg, train_ds, val_ds, torch.device("cpu"), 0, 1)
    batch = next(iter(loader))
    assert batch.video.shape == (4, 3, 4, 16, 16) and batch.video.dtype == torch.float32
    opt, sched = train_example.build_optim(cfg, model, steps_per_epoch=10)
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(batch.video), batch.label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses


def test_one_epoch_writes_metrics_and_eval_only_csv(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_example.main([*TINY, f"data.root={tiny_data}", f"train.out={out}"]) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    assert len(rows) == 1
    row = rows[0]
    assert {"epoch", "train_loss", "val_top1", "val_top5", "clips_per_s", "stall_pct"} <= row.keys()
    assert 0 <= row["val_top1"] <= row["val_top5"] <= 1 and row["val_videos"] == 6
    assert row["clips_per_s"] > 0 and 0 <= row["stall_pct"] <= 100 and row["train_clips"] == 12
    saved = load_config(out / "config.yaml")  # the resolved config loads back as a config
    assert saved["loader"]["batch_size"] == 4 and saved["model"]["name"] == TINY_MODEL.split("=")[1]
    ckpt = torch.load(out / "last.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "step", "loader"} <= ckpt.keys()
    assert ckpt["epoch"] == 1 and ckpt["step"] == 3 and json.dumps(ckpt["loader"])

    (out / "predictions.csv").unlink()
    assert train_example.main([*TINY, f"data.root={tiny_data}", f"train.out={out}", "--eval-only"]) == 0
    preds = read_csv(out / "predictions.csv")
    assert len(preds) == 6 and list(preds[0]) == ["path", "label", "predicted", "prob_top1", "top5"]
    assert all(Path(p["path"]).exists() and len(p["top5"].split()) == 5 for p in preds)
    assert all(0 < float(p["prob_top1"]) <= 1 for p in preds)
    # The predictions are the evaluation's: their accuracy is the metrics line's video-level top-1.
    acc = sum(p["label"] == p["predicted"] for p in preds) / len(preds)
    assert acc == pytest.approx(row["val_top1"])


def test_resume_mid_epoch_reproduces_the_uninterrupted_run(tiny_data: Path, tmp_path: Path) -> None:
    common = [
        *TINY,
        f"data.root={tiny_data}",
        "train.log_videos=true",
        "train.ckpt_every=1",
        "train.epochs=2",
    ]
    full, part = tmp_path / "full", tmp_path / "part"
    assert train_example.main([*common, f"train.out={full}"]) == 0
    assert train_example.main([*common, f"train.out={part}", "--stop-after", "2"]) == 0
    assert not (part / "metrics.jsonl").exists()
    assert train_example.main([*common, f"train.out={part}", "--resume"]) == 0
    ref = read_jsonl(full / "videos_rank0.jsonl")
    got = read_jsonl(part / "videos_rank0.jsonl")
    # Epoch 0 ran 2 steps, was interrupted, and the resumed run did the 1 step left: the same batches.
    assert [len(r["losses"]) for r in got] == [2, 1, 3]
    assert got[0]["video_index"] + got[1]["video_index"] == ref[0]["video_index"]
    assert got[2]["video_index"] == ref[1]["video_index"]
    # Same optimizer and schedule state: the same losses, step for step.
    assert got[0]["losses"] + got[1]["losses"] == pytest.approx(ref[0]["losses"], rel=1e-5, abs=1e-6)
    assert got[2]["losses"] == pytest.approx(ref[1]["losses"], rel=1e-5, abs=1e-6)
    # And the same metrics, the interrupted epoch's included (its running sums travel in the checkpoint).
    m_ref, m_got = read_jsonl(full / "metrics.jsonl"), read_jsonl(part / "metrics.jsonl")
    assert [m["epoch"] for m in m_got] == [0, 1]
    for a, b in zip(m_ref, m_got, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert (b["val_top1"], b["val_top5"], b["train_clips"]) == (
            a["val_top1"],
            a["val_top5"],
            a["train_clips"],
        )


@pytest.mark.slow
def test_torchrun_two_ranks_gloo_shard_by_video_and_reduce_metrics(tiny_data: Path, tmp_path: Path) -> None:
    # Manifests, and a validation set of 5 videos: 2 ranks get 3 each, one video twice (wrap-round).
    def manifest(name: str, files: list[Path]) -> Path:
        path = tmp_path / name
        path.write_text("path,label\n" + "".join(f"{f},{f.parent.name}\n" for f in files))
        return path

    train_m = manifest("train.csv", sorted((tiny_data / "train").rglob("*.mp4")))
    val_m = manifest("val.csv", sorted((tiny_data / "val").rglob("*.mp4"))[1:])
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(ROOT / "train_example.py"),
        *TINY,
        f"train.out={out}",
        "train.log_videos=true",
        "loader.batch_size=2",
        "--train-manifest",
        str(train_m),
        "--val-manifest",
        str(val_m),
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = read_jsonl(out / "videos_rank0.jsonl")[0]["video_index"]
    r1 = read_jsonl(out / "videos_rank1.jsonl")[0]["video_index"]
    assert len(r0) == len(r1) == 6 and not set(r0) & set(r1) and set(r0) | set(r1) == set(range(12))
    rows = read_jsonl(out / "metrics.jsonl")  # written once, by rank 0, from totals reduced over ranks
    assert len(rows) == 1 and rows[0]["epoch"] == 0 and 0 <= rows[0]["val_top1"] <= 1
    assert rows[0]["train_clips"] == 12
    # Evaluation counted every validation video once, the wrapped-round duplicate not twice.
    assert rows[0]["val_videos"] == 5 and rows[0]["val_clips"] == 5
    assert len(read_csv(out / "predictions.csv")) == 5


# ---- temporal order --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("motion_demo")
    vl.make_demo_dataset(root, train_per_class=24, val_per_class=8, size=32, frames=16, progress=False)
    return root


@pytest.mark.slow
def test_a_trained_model_needs_the_frame_order(motion_data: Path, tmp_path: Path) -> None:
    """Trained on the demo (whose label exists only over time), the model is far above chance on held-out
    videos, and back near chance when every clip is one frame repeated (--single-frame)."""
    out = tmp_path / "motion"
    args = [
        *TINY,
        f"data.root={motion_data}",
        f"train.out={out}",
        "transform.size=32",
        "transform.scale=[0.8, 1.0]",
        "loader.batch_size=16",
        "loader.clips_per_video=2",  # two random clips of every video per epoch
        "train.epochs=8",
        "optim.lr=0.01",
        "optim.warmup_epochs=1",
    ]
    assert train_example.main(args) == 0
    top1 = read_jsonl(out / "metrics.jsonl")[-1]["val_top1"]
    assert train_example.main([*args, "--eval-only", "--single-frame"]) == 0
    preds = read_csv(out / "predictions_single_frame.csv")
    single = sum(p["label"] == p["predicted"] for p in preds) / len(preds)
    chance = 1 / 6
    assert len(preds) == 48
    assert top1 >= 0.55, f"the model did not learn the motion classes (video top-1 {top1:.2f})"
    assert single <= chance + 0.15, f"one repeated frame should leave it near chance, got {single:.2f}"
