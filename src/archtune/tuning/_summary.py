"""What a tune did, computed from its state: where the minutes went, how well each rung's
scores predicted the next, and the one screen ``archtune tune`` ends with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from ..training import Run
from ._state import Candidate, TuneState


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (ties share their mean rank); None under 3 pairs or when
    either side has no spread."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    from scipy.stats import spearmanr  # scipy comes with scikit-learn

    return float(spearmanr(a, b).statistic)


def decided(c: Candidate, rung: int) -> float:
    """The score a rung decided on: dev accuracy at its compared epoch (the score at the rung's
    end in a tune.json written before rungs compared at equal epochs)."""
    return c.ranked[rung] if len(c.ranked) > rung else c.scores[rung]


def fidelity(state: TuneState) -> list[dict[str, Any]]:
    """For each rung and the one after it (the last: the delivered model's final score), over
    the candidates measured at both: the rank correlation between the scores the rung decided
    on and the next rung's, and the pairs whose order reversed."""
    out = []
    depth = max((len(c.scores) for c in state.candidates), default=0)
    for r in range(depth - 1):
        both = [c for c in state.candidates if len(c.scores) > r + 1]
        a = [decided(c, r) for c in both]
        b = [c.scores[r + 1] for c in both]
        pairs = [(i, j) for i in range(len(both)) for j in range(i + 1, len(both))]
        reversed_ = sum(1 for i, j in pairs if (a[i] - a[j]) * (b[i] - b[j]) < 0)
        out.append({"rung": r, "next": "final" if r + 1 == depth - 1 and state.phase == "done"
                    else r + 1, "epoch": state.compared_at[r] if len(state.compared_at) > r
                    else None, "trials": len(both), "spearman": spearman(a, b),
                    "pairs": len(pairs), "reversed": reversed_})
    return out


def spending(state: TuneState) -> dict[str, float]:
    """Seconds of the budget by use: the delivered weights' training, the other candidates'
    training (exploration), and the rest (loading, timing, evaluations, writing)."""
    delivered = sum(c.seconds[-1] for c in state.candidates if c.status == "delivered" and c.seconds)
    explore = sum(c.seconds[-1] for c in state.candidates if c.status != "delivered" and c.seconds)
    return {"budget": state.minutes * 60, "elapsed": state.elapsed_s, "delivered": delivered,
            "explore": explore, "other": max(state.elapsed_s - delivered - explore, 0.0)}


@dataclass
class TuneResult:
    """The delivered run, the study of every candidate, the tune's state and its folder."""

    run: Run
    study: optuna.Study
    state: TuneState
    folder: Path

    @property
    def dev_accuracy(self) -> float | None:
        return self.state.dev_accuracy

    def summary(self) -> str:
        return summary(self.state, self.folder)

    def __repr__(self) -> str:
        return f"TuneResult(run={str(self.run.path)!r}, dev_accuracy={self.dev_accuracy})"


def _row(c: Candidate) -> str:
    scores = " ".join(f"{100 * s:6.2f}" for s in c.scores)
    return (f"  {c.label:<30} {c.status:<10} {scores:<22} "
            f"{c.epochs[-1] if c.epochs else 0:>5} {c.seconds[-1] if c.seconds else 0:>7.0f}s")


def summary(state: TuneState, folder: Path) -> str:
    """The screen a tune ends with."""
    winner = next((c for c in state.candidates if c.status == "delivered"), None)
    spent = spending(state)
    b = spent["budget"]
    lines = []
    if winner is not None and state.dev_accuracy is not None:
        lines.append(f"delivered: {state.delivered}  ({winner.label}, {winner.epochs[-1]} epochs)")
        lines.append(f"dev accuracy {state.dev_accuracy:.2%} (final weights, fp32, the spec's "
                     "test-time augmentation)")
    starts = [c for c in state.candidates if c.start_point is not None and c.scores]
    if starts:
        best = max(starts, key=lambda c: max(c.scores))
        lines.append(f"best start point seen: {best.label} at {max(best.scores):.2%} dev "
                     f"(moving-average weights, {best.epochs[-1]} epochs)")
    lines.append(f"time: {spent['elapsed']:.0f}s of {b:.0f}s ({spent['elapsed'] / b:.1%} of the "
                 f"budget): delivered weights {spent['delivered']:.0f}s "
                 f"({spent['delivered'] / b:.0%}), exploration {spent['explore']:.0f}s "
                 f"({spent['explore'] / b:.0%}: candidates not delivered), the rest "
                 f"{spent['other']:.0f}s ({spent['other'] / b:.0%}: loading, timing the start "
                 "points, dev passes, writing)")
    lines.append(f"  {'trial':<30} {'status':<10} {'dev % at each rung':<22} {'epochs':>5} "
                 f"{'train':>8}")
    lines += [_row(c) for c in state.candidates]
    for r, at in enumerate(state.compared_at):
        ranked = sorted((c for c in state.candidates if len(c.ranked) > r),
                        key=lambda c: c.ranked[r], reverse=True)
        margin = state.margins[r] if len(state.margins) > r else 0.0
        lines.append(f"rung {r} compared at epoch {at} (start points kept unless beaten by "
                     f"{margin:.2%}): " + ", ".join(
                         f"trial {c.number} {c.ranked[r]:.2%}" for c in ranked))
    for f in fidelity(state):
        rho = "n/a (under 3 trials, or no spread)" if f["spearman"] is None else f"{f['spearman']:+.2f}"
        lines.append(f"fidelity rung {f['rung']} -> {f['next']}: Spearman {rho} over "
                     f"{f['trials']} trials, {f['reversed']} of {f['pairs']} pairs reversed")
    if state.delivered:
        lines.append("next:")
        for cmd in (f"archtune evaluate {state.delivered} --split test   # once, at the end",
                    f"archtune export {state.delivered}",
                    f"archtune serve {state.delivered}",
                    f"archtune report {folder}"):
            lines.append(f"  {cmd}")
    return "\n".join(lines)
