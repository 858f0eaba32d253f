"""The skip budget: how much of an epoch ``on_error="skip"`` may lose before the loss is an error, and the
line a pass that ran to its end logs about what it lost.

Skipping a clip that fails keeps a long run alive through a few bad files; skipping most of an epoch (files
deleted after indexing, a mount or store that went away) trains on a fraction of the data and says
nothing. A budget bounds one pass of the loader three ways: the share of its planned clips that failed;
the files that failed in a row with no clip decoded between them (an outage fails every file, so this names
it within a few files, long before any share is reached; the clips of one file count once, so one damaged
long video in unshuffled sliding windows does not trip it); and, when the pass starts, the share of the
files given to its dataset that the dataset left out. Past any bound, ``SkipBudgetError`` gives the counts,
the failures by reason and the first files.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from ._errors import SkipBudgetError

FIRST_FILES = 5  # files named in a message; the counts cover every failure
TOP_REASONS = 3
# What the end-of-pass report names (loader counters, in its words); a pass that added to none of these
# is not reported.
REPORTED = {
    "skipped_clips": "clips skipped: {n} of {planned} planned ({pct:.1f}%)",
    "skipped_batches": "batches skipped whole: {n}",
    "abandoned_decodes": "decodes abandoned past decode_timeout: {n}",
    "padded_clips": "clips padded: {n} ({frames} frames)",
    "fallbacks": "clips decoded by PyAV instead of DALI: {n}",
}


def reason_kind(path: str, reason: str) -> str:
    """``reason`` with its file's path taken out, so one fault in many files counts as one reason.

    Args:
        path: the failing file.
        reason: why it failed (an OSError's text often repeats the path).

    Returns:
        The reason with ``<file>`` in place of the path.
    """
    return reason.replace(path, "<file>") if path else reason


def top_reasons(reasons: Counter[str], n: int = TOP_REASONS) -> str:
    """The ``n`` most frequent reasons as ``"3 x reason; 1 x other"`` (and how many others there are).

    Args:
        reasons: failures per reason.
        n: how many to name.

    Returns:
        The text, empty when there are none.
    """
    parts = [f"{count} x {reason}" for reason, count in reasons.most_common(n)]
    if len(reasons) > n:
        parts.append(f"{len(reasons) - n} other reasons")
    return "; ".join(parts)


def _share(max_fraction: float, of: int) -> int:
    # round() first: 0.29 * 100 is 28.999999999999996 in binary floating point.
    return math.floor(round(max_fraction * of, 9))


class SkipBudget:
    """What one pass of the loader lost under ``on_error="skip"``, checked against its bounds.

    Args:
        epoch: the epoch the pass runs.
        planned: clips the pass sets out to deliver (the rest of the epoch after a resume).
        max_fraction: the share of ``planned`` that may fail, and of the files given to the dataset that it
            may have left out (1.0: no bound on the share).
        max_consecutive: files that may fail in a row with no clip decoded between them (None: no bound).
        left_out: ``(path, reason)`` of the files the dataset left out (unreadable when it was built, or
            changed or gone when its index was opened): they have no clips in any plan.
        videos: the dataset's videos (the files it kept).
    """

    def __init__(
        self,
        *,
        epoch: int,
        planned: int,
        max_fraction: float = 1.0,
        max_consecutive: int | None = None,
        left_out: Sequence[tuple[str, str]] = (),
        videos: int = 0,
    ) -> None:
        self.epoch, self.planned = epoch, planned
        self.max_fraction, self.max_consecutive = max_fraction, max_consecutive
        self.left_out, self.videos = list(left_out), videos
        self.lost = 0
        self.reasons: Counter[str] = Counter()
        self.files: list[str] = []  # the first FIRST_FILES distinct failing files
        self._run: set[str] = set()  # files failed since the last clip that decoded

    @property
    def allowed(self) -> int:
        """Clips the pass may lose: ``max_fraction`` of ``planned``, rounded down."""
        return _share(self.max_fraction, self.planned)

    def lose(self, path: str, reason: str) -> None:
        """A clip of ``path`` failed for ``reason``."""
        self.lost += 1
        self.reasons[reason_kind(path, reason)] += 1
        if len(self.files) < FIRST_FILES and path not in self.files:
            self.files.append(path)
        self._run.add(path)

    def decoded(self) -> None:
        """A clip decoded: the run of failing files is broken."""
        self._run.clear()

    def check(self) -> None:
        """Raise if the dataset left out, or the pass has lost, more than a bound allows.

        Raises:
            SkipBudgetError: naming the bound, the counts, the failures by reason and the first files.
        """
        given = self.videos + len(self.left_out)
        if len(self.left_out) > _share(self.max_fraction, given):
            self._raise_left_out(given)
        share = f"{self.lost} of {self.planned} planned clips failed"
        if self.max_consecutive is not None and len(self._run) > self.max_consecutive:
            what = (
                f"{len(self._run)} files failed in a row with no clip decoded between them, more than "
                f"max_consecutive_failures={self.max_consecutive} allows (a missing mount or a store outage "
                f"fails every file); {share} so far"
            )
        elif self.lost > self.allowed:
            pct = 100 * self.lost / max(self.planned, 1)
            bound = f"max_skip_fraction={self.max_fraction} allows ({self.allowed} clips)"
            what = f"{share} ({pct:.1f}%), more than {bound}"
        else:
            return
        self._raise(what, self.lost, self.planned, "clips", self.reasons, self.files)

    def _raise_left_out(self, given: int) -> None:
        n = len(self.left_out)
        what = (
            f"the dataset left out {n} of the {given} files it was given ({100 * n / given:.1f}%: unreadable "
            f"when it was built, or changed or gone since its index was written), more than "
            f"max_skip_fraction={self.max_fraction} allows ({_share(self.max_fraction, given)} files)"
        )
        reasons = Counter(reason_kind(path, reason) for path, reason in self.left_out)
        self._raise(what, n, given, "files", reasons, [path for path, _ in self.left_out[:FIRST_FILES]])

    def _raise(
        self, what: str, lost: int, planned: int, unit: str, reasons: Counter[str], files: list[str]
    ) -> None:
        raise SkipBudgetError(
            f"epoch {self.epoch}: under on_error='skip' {what}; by reason: {top_reasons(reasons)}; first "
            f"files: {', '.join(files)}. Check the files (for an index, `vidloader index --index INDEX "
            "--strict` lists those changed or gone since it was written), fix them or index without them, "
            "or raise max_skip_fraction / max_consecutive_failures to accept the loss",
            epoch=self.epoch,
            lost=lost,
            planned=planned,
            unit=unit,
            reasons=dict(reasons.most_common()),
            files=files,
        )


def loss_report(budget: SkipBudget, added: Mapping[str, int]) -> tuple[int, str] | None:
    """The line a pass that ran to its end logs about what it skipped, padded, abandoned or fell back on.

    Args:
        budget: the pass's budget (its epoch, planned clips and failure reasons).
        added: what the pass added to the loader's counters.

    Returns:
        ``(logging level, message)``: a warning when clips were lost, else info; None when there is
        nothing to report.
    """
    planned, lost = budget.planned, added.get("skipped_clips", 0)
    facts = {"planned": planned, "pct": 100 * lost / max(planned, 1), "frames": added.get("padded_frames", 0)}
    said = [words.format(n=added[k], **facts) for k, words in REPORTED.items() if added.get(k)]
    if not said:
        return None
    reasons = f"; top reasons: {top_reasons(budget.reasons)}" if budget.reasons else ""
    level = logging.WARNING if lost or added.get("abandoned_decodes") else logging.INFO
    return level, f"vidloader: epoch {budget.epoch}: {', '.join(said)}{reasons}"
