"""How a tune spends its minutes: rungs of successive halving with continuation.

Every candidate trains ``first_rung_s`` seconds (rung 0); the best third, compared at equal
epochs (:func:`rank`), continue from where they stopped to ``ETA`` times that (rung 1), and so
on until one is left: it continues to the end of the budget, its learning rate decaying over
the last ``COOLDOWN`` of its epochs, and is the delivered model. What is spent on the others
(and on the winner's rivals' share of each rung) is the exploration share, ``explore`` of the
training time by default a quarter.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ArchtuneError

ETA = 3  # a rung keeps a third of its candidates (at least one)
CANDIDATES = 9  # candidates at the first rung, start points first
EXPLORE = 0.25  # share of the training time spent on weights that are not delivered
MIN_RUNG_EPOCHS = 4  # the first rung gives the slowest start point at least this many epochs:
# rungs compare candidates at equal epochs, and under 4 the one-epoch warm-up dominates
COOLDOWN = 0.2  # the delivered run's last share of epochs, its learning rate decaying to zero
MARGIN = 0.97  # plan the training for this share of the seconds left: epochs vary a little
MUTATE = 2 / 3  # share of exploration candidates that are mutations of the best so far (the
# rest are proposed by the space's sampler)


def survivors(candidates: int, eta: int = ETA) -> list[int]:
    """Candidates at each rung until one is left: 9 -> [9, 3, 1]."""
    out = [candidates]
    while out[-1] > 1:
        out.append(math.ceil(out[-1] / eta))
    return out


def explore_units(candidates: int, eta: int = ETA) -> float:
    """Training time not delivered, in first rungs: every rung's candidates train from the
    rung before to ``eta`` times longer, and the winner's own share is delivered."""
    alive = survivors(candidates, eta)
    spent, before = 0.0, 0.0
    for r, n in enumerate(alive[:-1]):
        spent += n * (eta ** r - before)
        before = eta ** r
    return spent - (eta ** (len(alive) - 2) if len(alive) > 1 else 0.0)


@dataclass(frozen=True)
class TunePlan:
    """The budget split, from the start points' measured epochs (seconds are this machine's)."""

    budget_s: float  # the whole tune's wall-clock budget
    spent_s: float  # gone before the first rung: loading the data, timing the start points
    final_s: float  # the delivered model's final dev evaluation (the slowest start point's)
    epoch_s: list[float]  # one epoch of each start point, measured
    candidates: int  # at the first rung
    first_rung_s: float  # training seconds of each candidate at rung 0
    eta: int = ETA
    explore: float = EXPLORE

    @property
    def train_s(self) -> float:
        """Seconds for training in all."""
        return max(MARGIN * (self.budget_s - self.spent_s - self.final_s), 0.0)

    @property
    def rungs(self) -> list[tuple[int, float]]:
        """(candidates, training seconds each has reached) at every decision."""
        alive = survivors(self.candidates, self.eta)
        return [(n, self.first_rung_s * self.eta ** r) for r, n in enumerate(alive[:-1])]

    @property
    def explore_s(self) -> float:
        return self.first_rung_s * explore_units(self.candidates, self.eta)

    @property
    def delivered_s(self) -> float:
        """Training seconds of the delivered model's weights."""
        return self.train_s - self.explore_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunePlan:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """The plan in a few lines (``archtune tune --dry-run``)."""
        m = self.budget_s / 60
        lines = [f"budget {m:.4g} min: {self.spent_s:.0f}s to load the data and time the start "
                 f"points, {self.train_s:.0f}s of training, {self.final_s:.0f}s for the final "
                 f"dev evaluation, {self.budget_s - self.spent_s - self.final_s - self.train_s:.0f}s"
                 " margin"]
        for r, (n, seconds) in enumerate(self.rungs):
            keep = survivors(self.candidates, self.eta)[r + 1]
            lines.append(f"  rung {r}: {n} candidates trained to {seconds:.0f}s each, the best "
                         f"{keep} continue from their weights")
        lines.append(f"  the winner trains on to {self.delivered_s:.0f}s in all, its last "
                     f"{COOLDOWN:.0%} of epochs cooling down: the delivered model")
        share = self.explore_s / self.train_s if self.train_s else 0.0
        lines.append(f"exploration (weights not delivered): {self.explore_s:.0f}s, {share:.0%} "
                     f"of the training time")
        return "\n".join(lines)


def plan_tune(budget_s: float, spent_s: float, epoch_s: Sequence[float], final_s: float, *,
              explore: float = EXPLORE, candidates: int = CANDIDATES, eta: int = ETA) -> TunePlan:
    """The largest first rung (at most ``candidates``, at least the start points when they fit)
    whose candidates each get at least MIN_RUNG_EPOCHS of the slowest start point's epochs
    within ``explore`` of the training time; one candidate (no exploration) when none fits."""
    if not 0 <= explore < 1:
        raise ArchtuneError(f"explore: expected a share of the budget in [0, 1), got {explore}")
    if candidates < 1:
        raise ArchtuneError(f"candidates: expected at least 1, got {candidates}")
    if eta < 2:
        raise ArchtuneError(f"eta: expected at least 2, got {eta}")
    base = TunePlan(budget_s, spent_s, final_s, list(epoch_s), 1, 0.0, eta, explore)
    slowest = max(epoch_s) if epoch_s else 0.0
    for n in range(candidates, 1, -1):
        first = explore * base.train_s / explore_units(n, eta)
        if first >= MIN_RUNG_EPOCHS * slowest:
            return TunePlan(budget_s, spent_s, final_s, list(epoch_s), n, first, eta, explore)
    return base


def prior_margin(accuracy: float, dev_size: int) -> float:
    """One standard error of the difference of two accuracies near ``accuracy`` measured on
    ``dev_size`` images: how much a candidate must beat a start point by to replace it."""
    p = min(max(accuracy, 0.0), 1.0)
    return math.sqrt(2 * p * (1 - p) / dev_size) if dev_size > 0 else 0.0


def rank(curves: Mapping[int, Sequence[float]], prior: Collection[int] = (),
         dev_size: int = 0) -> tuple[list[int], int, float]:
    """Candidates best first, the epoch they were compared at, and the prior's margin.

    ``curves``: each candidate's dev accuracy after each epoch it trained. Candidates trained
    for equal time have different epoch counts; a fast model is ahead early in training, and a
    comparison at equal time picks it over a slower model that ends higher at the delivered
    length. So they are compared at equal epochs: each one's dev accuracy at the fewest epochs
    any of them trained (ties broken by the last score). A candidate under MIN_RUNG_EPOCHS
    epochs is too slow for the budget and ranks after the others (when all are, all compare).

    The start points (``prior``) are the expert's choice: a candidate that is not one counts
    with ``prior_margin`` less (one standard error of a difference on ``dev_size`` images), so
    it replaces a start point only by beating it beyond the dev set's noise.
    """
    if not curves:
        return [], 0, 0.0
    enough = [n for n, c in curves.items() if len(c) >= MIN_RUNG_EPOCHS] or list(curves)
    at = min(len(curves[n]) for n in enough)
    starts = [curves[n][at - 1] for n in enough if n in prior]
    margin = prior_margin(max(starts), dev_size) if starts else 0.0

    def key(n: int) -> tuple[bool, float, float]:
        c = curves[n]
        if n not in enough or not c:
            return False, 0.0, c[-1] if c else 0.0
        less = 0.0 if n in prior else margin
        return True, c[at - 1] - less, c[-1] - less

    return sorted(curves, key=key, reverse=True), at, margin
