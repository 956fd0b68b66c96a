"""The noise of one accuracy measured on a split: what every rule that asks "can the dev split
tell these apart?" counts (the ensemble's members, the finalists' verdict, a plan's pick)."""

from __future__ import annotations

import math


def accuracy_se(p: float, n: int) -> float:
    """The binomial standard error of an accuracy ``p`` measured on ``n`` images, with Agresti and
    Coull's adjustment (two right and two wrong answers added: p' = (pn + 2) / (n + 4)), so that
    a perfect or a zero score on a small split still has noise: 240 of 240 gives 0.58 points,
    where sqrt(p (1 - p) / n) gives 0 and would call a run one image behind clearly worse. On
    hundreds of images and more it is the plain formula to within a few hundredths of a point."""
    n = max(int(n), 0)
    q = (p * n + 2) / (n + 4)
    return math.sqrt(q * (1 - q) / (n + 4))
