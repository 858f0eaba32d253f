"""Trouble is loud (issue #24): on_error="skip" has a budget per pass (a share of the planned clips, and
files failing in a row) past which the pass raises SkipBudgetError with counts, reasons and the first files;
a pass that ran to its end logs one line of what it lost; loader.stats counts the clips the caller received;
a loader resize under a transform's own size is refused; len(loader) is the whole epoch after any resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader._budget import SkipBudget, reason_kind, top_reasons
from vidloader.dataset import textured_frames, write_video
from vidloader.transforms import EvalClipTransform, TrainClipTransform

ROOT = Path(__file__).resolve().parent.parent
KW = dict(batch_size=2, frames_per_clip=4, num_workers=2, backend="pyav", decode_timeout=60)
OPEN = dict(max_skip_fraction=1.0, max_consecutive_failures=None)  # the budget out of the way


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("budget_src")
    paths = [
        write_video(root / f"v{i:02d}.mp4", textured_frames(16, 32, 48, seed=i), gop=8) for i in range(24)
    ]
    paths.append(write_video(root / "long.mp4", textured_frames(64, 32, 48, seed=99), gop=8))
    paths.append(write_video(root / "short.mp4", textured_frames(3, 32, 48, seed=98), gop=3))
    return paths


def copies(paths: list[Path], tmp_path: Path) -> list[Path]:
    """Fresh copies, so a test can delete some after indexing."""
    out = []
    for p in paths:
        shutil.copyfile(p, tmp_path / p.name)
        out.append(tmp_path / p.name)
    return out


def epoch_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if re.match(r"vidloader: epoch \d+: ", r.getMessage())]


# ---- the budget --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_workers", [0, 2])
def test_three_of_four_files_deleted_after_indexing_raise_past_the_budget(
    sources: list[Path], tmp_path: Path, num_workers: int
) -> None:
    paths = copies(sources[:4], tmp_path)
    index = vl.VideoDataset.from_paths(paths, use_cache=False).to_index(tmp_path / "index.parquet")
    ds = vl.VideoDataset.from_index(index)
    for p in paths[1:]:  # while the dataset is open: the loader finds them gone
        p.unlink()
    loader = vl.VideoLoader(ds, **{**KW, "num_workers": num_workers}, on_error="skip")  # type: ignore[arg-type]
    delivered: list[int] = []
    with pytest.raises(vl.SkipBudgetError) as err:
        for batch in loader:
            delivered += batch.video_index.tolist()
    e = err.value
    assert isinstance(e, vl.VidloaderError)
    assert (e.epoch, e.planned, e.unit) == (0, 4, "clips") and 1 <= e.lost <= 3
    deleted = {str(p) for p in paths[1:]}
    assert set(e.files) <= deleted and len(e.files) == e.lost  # one clip per file
    (reason,) = e.reasons  # the same fault in every file: one reason, its path taken out
    assert "No such file or directory" in reason and "<file>" in reason and e.reasons[reason] == e.lost
    msg = str(e)
    assert f"epoch 0: under on_error='skip' {e.lost} of 4 planned clips failed" in msg
    assert "more than max_skip_fraction=0.05 allows (0 clips)" in msg
    assert f"by reason: {e.lost} x {reason}" in msg and all(f in msg for f in e.files)
    assert "raise max_skip_fraction" in msg
    assert set(delivered) <= {0} and len(delivered) < 4  # never a quarter of the epoch in silence
    assert loader.stats["skipped_clips"] == e.lost and loader.stats["clips"] == len(delivered)


def test_files_the_dataset_left_out_count_against_the_budget(sources: list[Path], tmp_path: Path) -> None:
    paths = copies(sources[:4], tmp_path)
    index = vl.VideoDataset.from_paths(paths, use_cache=False).to_index(tmp_path / "index.parquet")
    for p in paths[1:]:  # before the index is opened: it leaves them out, with a warning
        p.unlink()
    ds = vl.VideoDataset.from_index(index)
    assert len(ds) == 1 and len(ds.skipped) == 3
    loader = vl.VideoLoader(ds, **KW, on_error="skip")  # type: ignore[arg-type]
    with pytest.raises(vl.SkipBudgetError) as err:
        next(iter(loader))
    e = err.value
    assert (e.epoch, e.lost, e.planned, e.unit) == (0, 3, 4, "files")
    assert e.files == [str(p) for p in paths[1:]] and e.reasons == {"file no longer exists": 3}
    assert "the dataset left out 3 of the 4 files it was given (75.0%" in str(e)
    assert "more than max_skip_fraction=0.05 allows (0 files)" in str(e)
    # Within a budget that allows it, the rest of the dataset trains; under on_error="raise" the dataset's
    # own policy (from_index(strict=...)) decides, as before.
    assert sum(len(b) for b in vl.VideoLoader(ds, **KW, on_error="skip", max_skip_fraction=0.75)) == 1  # type: ignore[arg-type]
    assert sum(len(b) for b in vl.VideoLoader(ds, **KW)) == 1  # type: ignore[arg-type]


def test_the_share_bound_allows_exactly_its_clips(sources: list[Path], tmp_path: Path) -> None:
    paths = copies(sources[:20], tmp_path)
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    paths[3].unlink()
    loader = vl.VideoLoader(ds, **KW, on_error="skip")  # type: ignore[arg-type]
    # 5% of 20 planned clips is 1: losing one is within the budget.
    assert sum(len(b) for b in loader) == 19
    assert loader.stats["skip_budget"] == {"epoch": 0, "planned": 20, "lost": 1, "allowed": 1}
    paths[7].unlink()
    with pytest.raises(vl.SkipBudgetError, match=r"epoch 1: .* 2 of 20 planned clips failed \(10\.0%\)"):
        list(loader)
    strict = vl.VideoLoader(ds, **KW, on_error="skip", max_skip_fraction=0.0)  # type: ignore[arg-type]
    with pytest.raises(vl.SkipBudgetError, match=r"max_skip_fraction=0\.0 allows \(0 clips\)"):
        list(strict)


def test_files_failing_in_a_row_name_an_outage_before_the_share(sources: list[Path], tmp_path: Path) -> None:
    paths = copies(sources[:24], tmp_path)
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    for p in paths[8:14]:  # six files in a row, as a mount that went away
        p.unlink()
    kw = dict(KW, shuffle=False, max_skip_fraction=1.0)
    loader = vl.VideoLoader(ds, **kw, on_error="skip", max_consecutive_failures=3)  # type: ignore[arg-type]
    delivered = 0
    with pytest.raises(vl.SkipBudgetError) as err:
        for batch in loader:
            delivered += len(batch)
    # Batches of 2 in plan order: [8, 9] fail (2 in a row), [10, 11] make it 4 > 3.
    assert delivered == 8 and err.value.lost == 4
    assert err.value.files == [str(p) for p in paths[8:12]]
    assert "4 files failed in a row with no clip decoded between them" in str(err.value)
    assert "max_consecutive_failures=3" in str(err.value) and "4 of 24 planned clips failed so far" in str(
        err.value
    )
    tolerant = vl.VideoLoader(ds, **kw, on_error="skip", max_consecutive_failures=6)  # type: ignore[arg-type]
    assert sum(len(b) for b in tolerant) == 18 and tolerant.stats["skipped_clips"] == 6


def test_the_clips_of_one_file_fail_in_a_row_once(sources: list[Path], tmp_path: Path) -> None:
    first, long, last = copies([sources[0], sources[24], sources[1]], tmp_path)
    ds = vl.VideoDataset.from_paths([first, long, last], use_cache=False)
    long.unlink()  # 16 sliding windows of one file fail one after another
    kw = dict(KW, sampling="sliding", shuffle=False, max_skip_fraction=1.0)
    loader = vl.VideoLoader(ds, **kw, on_error="skip", max_consecutive_failures=1)  # type: ignore[arg-type]
    assert sum(len(b) for b in loader) == 8 and loader.stats["skipped_clips"] == 16
    none_in_a_row = vl.VideoLoader(ds, **kw, on_error="skip", max_consecutive_failures=0)  # type: ignore[arg-type]
    with pytest.raises(vl.SkipBudgetError, match=r"1 files failed in a row .* max_consecutive_failures=0"):
        list(none_in_a_row)


def test_the_budget_counts_per_pass_from_the_resume_point(sources: list[Path], tmp_path: Path) -> None:
    paths = copies(sources[:20], tmp_path)
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    kw = dict(KW, shuffle=False, num_workers=0)
    before = vl.VideoLoader(ds, **kw, on_error="skip")  # type: ignore[arg-type]
    it = iter(before)
    for _ in range(5):
        next(it)
    state = before.state_dict()
    paths[12].unlink()
    after = vl.VideoLoader(ds, **kw, on_error="skip", max_skip_fraction=0.1)  # type: ignore[arg-type]
    after.load_state_dict(state)
    # The rest of the epoch is 10 clips: 10% of them is 1, so one lost clip is within this pass's budget.
    assert sum(len(b) for b in after) == 9
    assert after.stats["skip_budget"] == {"epoch": 0, "planned": 10, "lost": 1, "allowed": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            dict(max_skip_fraction=0.2),
            r"max_skip_fraction=0\.2 has no effect here: it applies only with on_error='skip'",
        ),
        (dict(max_consecutive_failures=None), r"max_consecutive_failures=None has no effect here"),
        (
            dict(on_error="skip", max_skip_fraction=1.5),
            r"max_skip_fraction must be a fraction in \[0, 1\], got 1\.5",
        ),
        (dict(on_error="skip", max_skip_fraction=-0.1), r"max_skip_fraction must be a fraction in \[0, 1\]"),
        (
            dict(on_error="skip", max_skip_fraction=True),
            r"max_skip_fraction must be a fraction in \[0, 1\], got True",
        ),
        (dict(on_error="skip", max_skip_fraction=float("nan")), r"max_skip_fraction must be a fraction"),
        (dict(on_error="skip", max_skip_fraction="5%"), r"max_skip_fraction must be a fraction .* got '5%'"),
        (
            dict(on_error="skip", max_consecutive_failures=-1),
            r"max_consecutive_failures must be >= 0, got -1",
        ),
        (dict(on_error="skip", max_consecutive_failures=2.0), r"max_consecutive_failures must be an int"),
    ],
)
def test_budget_options_are_checked_and_refused_where_ignored(options: dict, message: str) -> None:
    with pytest.raises(vl.ConfigError, match=message):
        vl.LoaderConfig(batch_size=2, frames_per_clip=4, **options)  # type: ignore[arg-type]


def test_budget_options_are_loader_options(sources: list[Path]) -> None:
    cfg = vl.LoaderConfig(
        batch_size=2,
        frames_per_clip=4,
        on_error="skip",
        max_skip_fraction=1,
        **{"max_consecutive_failures": 0},
    )
    assert cfg.max_skip_fraction == 1.0 and isinstance(cfg.max_skip_fraction, float)
    assert cfg.max_consecutive_failures == 0
    defaults = vl.LoaderConfig(batch_size=2, frames_per_clip=4)
    assert (defaults.max_skip_fraction, defaults.max_consecutive_failures) == (0.05, 16)
    assert "max_skip_fraction" not in defaults.state_fields()  # a state resumes under another budget
    loader = vl.VideoLoader(vl.VideoDataset.from_paths(sources[:2], use_cache=False), config=cfg)
    assert loader.max_skip_fraction == 1.0 and "SkipBudgetError" in (
        vl.VideoLoader.max_skip_fraction.__doc__ or ""
    )


def test_skip_budget_arithmetic() -> None:
    def budget(planned: int, fraction: float) -> SkipBudget:
        return SkipBudget(epoch=0, planned=planned, max_fraction=fraction, max_consecutive=None)

    # 0.29 * 100 is 28.999999999999996 in floating point; the budget is 29 clips all the same.
    assert [budget(100, 0.29).allowed, budget(20, 0.05).allowed, budget(7, 1.0).allowed] == [29, 1, 7]
    assert [budget(19, 0.05).allowed, budget(0, 0.05).allowed, budget(5, 0.0).allowed] == [0, 0, 0]
    assert reason_kind("/d/a.mp4", "cannot open ([Errno 2] No such file: '/d/a.mp4')") == (
        "cannot open ([Errno 2] No such file: '<file>')"
    )
    reasons = Counter({"a": 5, "b": 3, "c": 2, "d": 1, "e": 1})
    assert top_reasons(reasons) == "5 x a; 3 x b; 2 x c; 2 other reasons"
    b = budget(10, 1.0)
    for i in range(8):
        b.lose(f"/d/{i}.mp4", "gone")
    assert b.files == [f"/d/{i}.mp4" for i in range(5)] and b.lost == 8
    b.check()  # within a budget of 10


# ---- the end-of-epoch report and the counters --------------------------------------------------------------


def test_the_loss_report_names_counts_and_reasons(
    sources: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = copies(sources[:4], tmp_path)
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    for p in paths[1:]:
        p.unlink()
    loader = vl.VideoLoader(ds, **KW, on_error="skip", **OPEN)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="vidloader"):
        assert sum(len(b) for b in loader) == 1
    (line,) = epoch_lines(caplog)
    msg = line.getMessage()
    assert line.levelno == logging.WARNING
    assert msg.startswith("vidloader: epoch 0: clips skipped: 3 of 4 planned (75.0%)")
    assert "top reasons: 3 x cannot open" in msg and "No such file or directory" in msg and "<file>" in msg
    s = loader.stats
    assert (s["clips"], s["batches"], s["skipped_clips"]) == (1, 1, 3)
    assert s["skip_budget"] == {"epoch": 0, "planned": 4, "lost": 3, "allowed": 4}
    json.dumps(s)


def test_a_clean_epoch_logs_nothing_and_padding_is_info(
    sources: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    clean = vl.VideoLoader(vl.VideoDataset.from_paths(sources[:4], use_cache=False), **KW)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="vidloader"):
        list(clean)
    assert epoch_lines(caplog) == []
    padded = vl.VideoLoader(vl.VideoDataset.from_paths([sources[0], sources[25]], use_cache=False), **KW)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="vidloader"):
        list(padded)
    (line,) = epoch_lines(caplog)
    assert line.levelno == logging.INFO
    assert line.getMessage() == "vidloader: epoch 0: clips padded: 1 (1 frames)"


def test_a_pass_left_early_reports_nothing(
    sources: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = copies(sources[:4], tmp_path)
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    paths[0].unlink()
    loader = vl.VideoLoader(ds, **KW, on_error="skip", shuffle=False, **OPEN)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="vidloader"):
        for _ in loader:
            break
    assert epoch_lines(caplog) == []  # the epoch did not end


def test_stats_count_the_clips_the_caller_received(sources: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths([*sources[:23], sources[25]], use_cache=False)
    loader = vl.VideoLoader(ds, **{**KW, "batch_size": 4, "prefetch": 3}, clips_per_video=2)  # type: ignore[arg-type]
    padded = {(c.video_index, c.clip_index): c.padded for c in loader.clip_plan(0)}
    assert len(padded) == 48 and sum(p > 0 for p in padded.values()) == 2
    got: list[tuple[int, int]] = []
    for i, batch in enumerate(loader):
        got += list(zip(batch.video_index.tolist(), batch.clip_index.tolist(), strict=True))
        s = loader.stats
        # With 3 batches made ahead, the counters still say what this caller has: 10 batches of 4 are 40.
        assert (s["batches"], s["clips"]) == (i + 1, 4 * (i + 1))
        assert s["padded_clips"] == sum(padded[k] > 0 for k in got)
        assert s["padded_frames"] == sum(padded[k] for k in got)
    assert loader.stats["clips"] == 48 and loader.stats["batches"] == 12


# ---- stacked resizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", [TrainClipTransform(size=112), EvalClipTransform(size=112, crops=3)])
def test_a_loader_resize_under_a_transform_size_is_refused(transform: object) -> None:
    name = type(transform).__name__
    with pytest.raises(vl.ConfigError) as err:
        vl.LoaderConfig(batch_size=2, frames_per_clip=4, resize=64, transform=transform)
    msg = str(err.value)
    assert f"resize=64 stacks with transform={name}, which resizes to its own size (112, 112)" in msg
    assert f"Give the resize to the transform ({name}(size=..., resize=64)" in msg
    assert "leave VideoLoader's resize at None" in msg
    ok = vl.LoaderConfig(batch_size=2, frames_per_clip=4, transform=type(transform)(size=112, resize=64))
    with pytest.raises(vl.ConfigError, match=r"resize=\(64, 80\) stacks with transform"):
        dataclasses.replace(ok, resize=(64, 80))  # a variant is checked again


def test_a_resize_without_a_sized_transform_is_kept(sources: list[Path]) -> None:
    def per_clip(clip):  # type: ignore[no-untyped-def]
        return clip.float()

    assert vl.LoaderConfig(batch_size=2, frames_per_clip=4, resize=24).resize == 24
    cfg = vl.LoaderConfig(batch_size=2, frames_per_clip=4, resize=(24, 32), transform=per_clip)
    loader = vl.VideoLoader(vl.VideoDataset.from_paths(sources[:2], use_cache=False), config=cfg)
    assert next(iter(loader)).video.shape[-2:] == (24, 32)


def _readme_train_transform() -> TrainClipTransform:
    readme = (ROOT / "README.md").read_text()
    use = readme[readme.index("## Use") : readme.index("### Semantics")]
    (call,) = re.findall(r"vl\.transforms\.TrainClipTransform\([^)]*\)", use)
    return eval(call, {"vl": vl})  # the example exactly as the README writes it


@pytest.mark.parametrize(("height", "width"), [(1920, 1080), (1080, 1920), (240, 320), (64, 64)])
def test_the_readme_example_never_stretches(height: int, width: int) -> None:
    tf = _readme_train_transform()
    boxes, _, _ = tf.draw_params(height, width, seeds=list(range(16)))
    out_h, out_w = tf.size
    for _, _, h, w in boxes.tolist():
        stretch = (h / out_h) / (w / out_w)
        assert abs(stretch - 1) < 0.02, f"{height}x{width}: a box of {h}x{w} -> {out_h}x{out_w}"


def test_the_shipped_configs_do_not_stack_resizes() -> None:
    sys.path.insert(0, str(ROOT))
    from train_build import build_transforms
    from train_config import load_config

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        train_tf, eval_tf = build_transforms(cfg, vl.transforms.TrainClipTransform(size=8).out_dtype)
        for section, tf in (({}, train_tf), (cfg["val_loader"], eval_tf)):
            kw = {**cfg["loader"], **section}
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
            kw.pop("backend", None)  # "auto" picks DALI on CUDA: not what this checks
            vl.LoaderConfig(**kw, transform=tf)  # raises on a stacked resize


# ---- len(loader) after a resume ----------------------------------------------------------------------------


def _taken(loader: vl.VideoLoader, n: int) -> None:
    it = iter(loader)
    for _ in range(n):
        next(it)


@pytest.mark.parametrize(("saved_world", "world"), [(1, 1), (2, 2), (2, 1), (1, 3)])
def test_len_is_the_whole_epoch_after_any_resume(sources: list[Path], saved_world: int, world: int) -> None:
    ds = vl.VideoDataset.from_paths(sources[:10], use_cache=False)
    kw = dict(KW, num_workers=0, clips_per_video=2)

    def make(rank: int, w: int) -> vl.VideoLoader:
        return vl.VideoLoader(ds, **kw, rank=rank, world_size=w)  # type: ignore[arg-type]

    saved = [make(r, saved_world) for r in range(saved_world)]
    for ld in saved:
        _taken(ld, 2)
    state = saved[0].state_dict()
    for rank in range(world):
        fresh, resumed = make(rank, world), make(rank, world)
        resumed.load_state_dict(state)
        whole = len(fresh)
        assert (len(resumed), resumed.num_clips) == (whole, fresh.num_clips)
        lengths, n = set(), 0
        for _ in resumed:
            lengths.add((len(resumed), resumed.num_clips))
            n += 1
        assert lengths == {(whole, fresh.num_clips)}  # stable while the pass runs
        if saved_world == world:
            assert n == whole - 2  # the rest of the epoch, in the same batches
        else:
            # Elastic: the clips no rank had consumed (20 planned, 2 batches of 2 taken on every saved
            # rank), dealt round-robin to the new ranks: fewer batches than the whole epoch.
            left = 20 - saved_world * 2 * 2
            per_rank = math.ceil(left / world)
            assert n == math.ceil(per_rank / 2) and n < whole
