"""Where a loader stands: each epoch's plan for this rank (and its videos shorter than one clip), the counters
and the on_error policy with each pass's skip budget, and the state that saves the position (JSON-safe, with
the configuration it was made under, checked field by field on load; the position itself is the hand-off's
``EpochCursor``).

The world size is recorded beside the configuration, not in it: a state saved at one world size resumes
at another (an elastic restart), the rest of the epoch dealt to the new ranks (``sampling.resume_plan``).
``stages`` lists, for an epoch that already changed world size, each earlier stage's world size and the
clips every rank consumed in it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._budget import SkipBudget, loss_report
from .._errors import ConfigError, StateMismatchError, VideoError
from ..dataset import VideoDataset
from ..sampling import (
    ClipPlan,
    ClipSpec,
    SamplingConfig,
    check_stages,
    resume_plan,
    short_mask,
)
from ._config import LoaderConfig

log = logging.getLogger("vidloader")

STATE_VERSION = 2
Stages = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ResumePoint:
    """Where a loaded state resumes: ``batches_yielded`` of the current stage of ``epoch``."""

    epoch: int
    batches_yielded: int
    stages: Stages


def make_state(
    *,
    epoch: int,
    batches_yielded: int,
    config: dict[str, Any],
    dataset: str,
    world_size: int,
    stages: Stages = (),
) -> dict[str, Any]:
    state = {
        "version": STATE_VERSION,
        "epoch": epoch,
        "batches_yielded": batches_yielded,
        "world_size": world_size,
        "stages": [list(s) for s in stages],
        "config": config,
        "dataset": dataset,
    }
    json.dumps(state)  # fail here, not in the user's checkpoint code, if something is not JSON-safe
    return state


def check_state(
    state: dict[str, Any], *, config: dict[str, Any], dataset: str, world_size: int
) -> ResumePoint:
    """Validate a state against this loader; where to resume at ``world_size``.

    At the saved world size the state resumes as saved. At another one the saved stage ends where the
    ranks were (``batches_yielded`` batches of ``config["batch_size"]`` clips each) and a new stage starts.
    """
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise StateMismatchError(
            f"not a vidloader loader state of version {STATE_VERSION} (got version {state.get('version') if isinstance(state, dict) else type(state).__name__})"
        )
    saved = state.get("config", {})
    for key in sorted(set(saved) | set(config)):
        a, b = saved.get(key), config.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            raise StateMismatchError(
                f"cannot resume: {key} was {a!r} when the state was saved but is {b!r} now"
            )
    if state.get("dataset") != dataset:
        raise StateMismatchError(
            "cannot resume: the dataset differs (its videos, segments or frame counts changed since the state was saved)"
        )
    epoch, done, saved_ws = state.get("epoch"), state.get("batches_yielded"), state.get("world_size")
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(done, int) or done < 0:
        raise StateMismatchError(f"state has a bad epoch/batches_yielded: {epoch!r}/{done!r}")
    if not isinstance(saved_ws, int) or saved_ws < 1:
        raise StateMismatchError(f"state has a bad world_size: {saved_ws!r}")
    try:
        stages = tuple(check_stages(state.get("stages")))
    except ConfigError as exc:
        raise StateMismatchError(f"state has bad stages: {exc}") from None
    if saved_ws == world_size or done == 0:
        # Nothing consumed in the saved stage: the epoch goes on from the earlier stages as they left it
        # (a fresh plan at this world size when there are none).
        return ResumePoint(epoch, done, stages)
    clips = done * int(config["batch_size"])
    return ResumePoint(epoch, 0, (*stages, (saved_ws, clips)))


def short_videos(dataset: VideoDataset, cfg: SamplingConfig) -> int:
    """How many videos are shorter than one clip (found on the dataset's columns); raises under
    ``short_video="error"``, logs otherwise.

    Raises:
        ConfigError: some video is short and ``cfg.short_video == "error"`` (refused at construction, not
            part-way through an epoch).
    """
    short = np.flatnonzero(short_mask(dataset, cfg))
    if not len(short):
        return 0
    listed = ", ".join(dataset.columns.paths_of(short[:5])) + (
        f" and {len(short) - 5} more" if len(short) > 5 else ""
    )
    if cfg.short_video == "error":
        raise ConfigError(
            f"{len(short)} videos are shorter than one clip of {cfg.frames_per_clip} frames ({listed}) and "
            "short_video='error'; choose short_video='pad', 'loop' or 'skip', or shorten the clip"
        )
    what = {
        "pad": "repeats their last frame (ClipBatch.frame_mask marks the padding)",
        "loop": "plays them again from the start",
        "skip": "gives them no clip",
    }[cfg.short_video]
    log.warning(
        "vidloader: %d videos are shorter than one clip (%s); short_video=%r %s",
        len(short),
        listed,
        cfg.short_video,
        what,
    )
    return len(short)


class EpochPlans:
    """The last epoch's plan, kept: the same epoch is asked for again and again, and planning a large
    dataset is not free. After an elastic resume that is two plans: the rest the pass yields and the whole
    epoch ``len(loader)`` counts.

    Args:
        config: the loader's options (its rank and world size, ``frames_per_clip``).
        planner: ``planner(epoch, rank, world_size)``, the clips a rank yields in an epoch as it starts
            (``VideoLoader.rank_plan``); an elastic resume deals the rest of an epoch from it.
    """

    def __init__(self, config: LoaderConfig, planner: Callable[[int, int, int], Sequence[ClipSpec]]) -> None:
        self._config = config
        self._planner = planner
        self._cache: dict[tuple[int, tuple], ClipPlan] = {}
        # Earlier world-size stages of the epoch a loaded state resumes (elastic restart), by epoch.
        self._stages: tuple[int, Stages] = (0, ())

    def stages_of(self, epoch: int) -> Stages:
        """The earlier stages of ``epoch`` when a loaded state resumes it, else none."""
        return self._stages[1] if self._stages[0] == epoch else ()

    def resume(self, epoch: int, stages: Stages) -> None:
        """Plan ``epoch`` as the rest of ``stages`` (from a loaded state)."""
        self._stages = (epoch, stages)

    def plan(self, epoch: int, *, whole: bool = False) -> ClipPlan:
        """``epoch``'s clips for this rank: the rest of its earlier stages when a loaded state resumes it
        at another world size, or with ``whole`` the epoch from its start at this world size."""
        key = (epoch, () if whole else self.stages_of(epoch))
        if key not in self._cache:
            cfg = self._config
            clips = resume_plan(
                partial(self._planner, epoch), key[1], rank=cfg.rank, world_size=cfg.world_size
            )
            # Another epoch's plans go: a plan of a large dataset is large.
            self._cache = {k: p for k, p in self._cache.items() if k[0] == epoch}
            self._cache[key] = ClipPlan.from_specs(clips, cfg.frames_per_clip)
        return self._cache[key]


COUNTERS = (
    "clips",
    "batches",
    "fallbacks",
    "shared_decode_clips",
    "clips_decoded_ahead",
    "skipped_clips",
    "skipped_batches",
    "clips_without_audio",
    "abandoned_decodes",
    "padded_clips",
    "padded_frames",
)
_MAX_FAILURES = 1000  # listed with reasons; the counter keeps counting past it


class LoaderStats:
    """Counters plus the first decode failures with their reasons; one warning per file; each pass's
    ``SkipBudget`` (checked batch by batch under on_error="skip") and its end-of-pass report. ``clips``,
    ``batches``, ``padded_*`` and ``clips_without_audio`` count what the caller received (``delivered``);
    failures, fallbacks and abandoned decodes count when they happen, up to ``prefetch`` batches ahead."""

    def __init__(self, config: LoaderConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self.failures: list[dict[str, str]] = []
        self.budget = SkipBudget(epoch=0, planned=0)  # each pass's, from begin_pass
        self._at_start: Counter[str] = Counter()  # the counts when the pass began
        self._warned_failed: set[str] = set()
        self._warned_fallback: set[str] = set()

    def begin_pass(self, epoch: int, planned: int, dataset: VideoDataset) -> None:
        """A pass of ``epoch`` over ``dataset`` sets out to deliver ``planned`` clips; under on_error="skip"
        it raises ``SkipBudgetError`` if the dataset left out more of its files than the budget allows."""
        cfg = self.config
        self.budget = SkipBudget(
            epoch=epoch,
            planned=planned,
            max_fraction=cfg.max_skip_fraction,
            max_consecutive=cfg.max_consecutive_failures,
            left_out=[(s.path, s.reason) for s in dataset.skipped],
            videos=len(dataset),
        )
        self._at_start = Counter(self.counts)
        if cfg.on_error == "skip":
            self.budget.check()

    def fail(self, clip: ClipSpec, err: VideoError) -> None:
        """Apply on_error to a clip that failed: raise ``err`` ("raise") or record it ("skip")."""
        if self.config.on_error == "raise":
            raise err
        self.counts["skipped_clips"] += 1
        self.budget.lose(err.path, err.reason)
        if err.path not in self._warned_failed:
            self._warned_failed.add(err.path)
            log.warning("vidloader: skipping clip of %s: %s", err.path, err.reason)
        if len(self.failures) < _MAX_FAILURES:
            self.failures.append(
                {"path": err.path, "reason": err.reason, "frame_index": str(clip.frame_indices[0])}
            )

    def settle(self, decoded: int) -> None:
        """A batch is decoded, ``decoded`` of its clips made it; raises ``SkipBudgetError`` past the budget."""
        if decoded:
            self.budget.decoded()
        if self.config.on_error == "skip":
            self.budget.check()

    def delivered(self, counts: Counter[str]) -> None:
        """The caller received a batch that adds ``counts`` (clips, padding, ...)."""
        self.counts.update(counts)

    def end_pass(self) -> None:
        """The pass ran to its end: one log line if it skipped, padded, abandoned or fell back on anything
        (a warning when clips were lost)."""
        report = loss_report(self.budget, self.counts - self._at_start)
        if report is not None:
            log.log(*report)

    def fallback(self, path: str, reason: str) -> None:
        """A clip of ``path`` decodes with PyAV instead of DALI."""
        self.counts["fallbacks"] += 1
        if path not in self._warned_fallback:
            self._warned_fallback.add(path)
            log.warning("vidloader: %s decodes on the CPU (PyAV) instead of DALI: %s", path, reason)

    def to_json(
        self,
        *,
        backend: str,
        skipped_files: list[dict[str, Any]],
        short: dict[str, Any] | None = None,
        damaged_files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The counters, failures, skipped files and damaged files (served with the frames that decode) as
        a JSON-safe dict (``short``: the short-video facts)."""
        out: dict[str, Any] = {"backend": backend}
        out.update({k: self.counts[k] for k in COUNTERS})
        out.update(short or {})
        b = self.budget  # the current (or last) pass's
        out["skip_budget"] = {"epoch": b.epoch, "planned": b.planned, "lost": b.lost, "allowed": b.allowed}
        out["decode_failures"] = list(self.failures)
        out["skipped_files"] = skipped_files
        out["damaged_files"] = damaged_files or []
        return out
