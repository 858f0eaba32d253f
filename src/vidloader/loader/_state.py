"""Where a loader stands: each epoch's plan for this rank (and its videos shorter than one clip), the cursor
in the epoch, the counters and the on_error policy, and the state that saves the position (JSON-safe, with the configuration it was made
under, checked field by field on load).

The world size is recorded beside the configuration, not in it: a state saved at one world size resumes
at another (an elastic restart), the rest of the epoch dealt to the new ranks (``sampling.resume_plan``).
``stages`` lists, for an epoch that already changed world size, each earlier stage's world size and the
clips every rank consumed in it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ConfigError, StateMismatchError, VideoError
from ..dataset import VideoDataset
from ..sampling import ClipPlan, ClipSpec, SamplingConfig, check_stages, plan_epoch, resume_plan, short_mask
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


class EpochCursor:
    """Where iteration stands: the next epoch to run and, inside a pass, how many batches are done.

    The position counts batches of the epoch's plan, not deliveries: batches skipped whole under
    on_error="skip" are done too, so a resume neither replays them nor shifts the rest.
    """

    def __init__(self) -> None:
        self.next_epoch = 0
        self.resume_from = 0
        self.epoch = 0
        self.done = 0
        # True from a pass's start until it runs to its end; a pass left early keeps its position.
        self.in_epoch = False

    def begin(self) -> tuple[int, int]:
        """Start a pass: returns (epoch, first batch); the pass after this one is the next epoch."""
        epoch, start = self.next_epoch, self.resume_from
        self.resume_from = 0
        self.next_epoch = epoch + 1
        self.epoch, self.done = epoch, start
        self.in_epoch = True
        return epoch, start

    def delivered(self, position: int) -> None:
        """The caller now holds the batch before ``position`` (batches are numbered from 1 here)."""
        self.done = position

    def end(self) -> None:
        self.in_epoch = False

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.next_epoch:
            # A state loaded for this very epoch stays pending: the usual loop calls set_epoch(e) every
            # epoch, also right after load_state_dict.
            self.resume_from = 0
        self.next_epoch = epoch
        self.in_epoch = False

    def position(self) -> tuple[int, int]:
        """(epoch, batches done) a checkpoint taken now resumes from."""
        if self.in_epoch:
            return self.epoch, self.done
        # Between passes (also after set_epoch or a finished pass): at the start of the next one.
        return self.next_epoch, self.resume_from

    def load(self, epoch: int, done: int) -> None:
        self.next_epoch, self.resume_from = epoch, done
        self.epoch, self.done = epoch, done
        self.in_epoch = False


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
    dataset is not free."""

    def __init__(self, config: LoaderConfig) -> None:
        self._config = config
        self._cache: tuple[tuple[int, tuple], ClipPlan] | None = None
        # Earlier world-size stages of the epoch a loaded state resumes (elastic restart), by epoch.
        self._stages: tuple[int, Stages] = (0, ())

    def stages_of(self, epoch: int) -> Stages:
        """The earlier stages of ``epoch`` when a loaded state resumes it, else none."""
        return self._stages[1] if self._stages[0] == epoch else ()

    def resume(self, epoch: int, stages: Stages) -> None:
        """Plan ``epoch`` as the rest of ``stages`` (from a loaded state)."""
        self._stages = (epoch, stages)

    def plan(self, dataset: VideoDataset, epoch: int) -> ClipPlan:
        """``epoch``'s clips for this rank."""
        key = (epoch, self.stages_of(epoch))
        if self._cache is None or self._cache[0] != key:
            cfg = self._config

            def plan(rank: int, world_size: int) -> ClipPlan:
                return plan_epoch(dataset, cfg, seed=cfg.seed, epoch=epoch, rank=rank, world_size=world_size)

            clips = resume_plan(plan, key[1], rank=cfg.rank, world_size=cfg.world_size)
            self._cache = (key, ClipPlan.from_specs(clips, cfg.frames_per_clip))
        return self._cache[1]


COUNTERS = (
    "clips",
    "batches",
    "fallbacks",
    "shared_decode_clips",
    "skipped_clips",
    "skipped_batches",
    "clips_without_audio",
    "abandoned_decodes",
    "padded_clips",
    "padded_frames",
)
_MAX_FAILURES = 1000  # listed with reasons; the counter keeps counting past it


class LoaderStats:
    """Counters plus the first decode failures with their reasons; one warning per file."""

    def __init__(self, *, on_error: str) -> None:
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self.failures: list[dict[str, str]] = []
        self._warned_failed: set[str] = set()
        self._warned_fallback: set[str] = set()

    def fail(self, clip: ClipSpec, err: VideoError) -> None:
        """Apply on_error to a clip that failed: raise ``err`` ("raise") or record it ("skip")."""
        if self.on_error == "raise":
            raise err
        self.counts["skipped_clips"] += 1
        if err.path not in self._warned_failed:
            self._warned_failed.add(err.path)
            log.warning("vidloader: skipping clip of %s: %s", err.path, err.reason)
        if len(self.failures) < _MAX_FAILURES:
            self.failures.append(
                {"path": err.path, "reason": err.reason, "frame_index": str(clip.frame_indices[0])}
            )

    def fallback(self, path: str, reason: str) -> None:
        """A clip of ``path`` decodes with PyAV instead of DALI."""
        self.counts["fallbacks"] += 1
        if path not in self._warned_fallback:
            self._warned_fallback.add(path)
            log.warning("vidloader: %s decodes on the CPU (PyAV) instead of DALI: %s", path, reason)

    def to_json(
        self, *, backend: str, skipped_files: list[dict[str, Any]], short: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The counters, failures and skipped files as a JSON-safe dict (``short``: the short-video facts)."""
        out: dict[str, Any] = {"backend": backend}
        out.update({k: self.counts[k] for k in COUNTERS})
        out.update(short or {})
        out["decode_failures"] = list(self.failures)
        out["skipped_files"] = skipped_files
        return out
