"""This rank's clip plan of each epoch, as a VideoLoader asks for it (``len()``, ``clip_plan``, each pass),
including the earlier world-size stages of an epoch that a loaded state resumes (elastic restart)."""

from __future__ import annotations

from ..dataset import VideoDataset
from ..sampling import ClipPlan, plan_epoch, resume_plan
from ._config import LoaderConfig

Stages = tuple[tuple[int, int], ...]


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
                return plan_epoch(
                    dataset, cfg.sampling, seed=cfg.seed, epoch=epoch, rank=rank, world_size=world_size
                )

            clips = resume_plan(plan, key[1], rank=cfg.rank, world_size=cfg.world_size)
            self._cache = (key, ClipPlan.from_specs(clips, cfg.sampling.frames_per_clip))
        return self._cache[1]
