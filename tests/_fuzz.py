"""How the fuzz tests run: each input kind twice, a fixed part (derandomised: the same cases
every run) and a random part seeded afresh each session. The seed is printed in pytest's header
and summary; ``ARCHTUNE_FUZZ_SEED=N`` replays a session's random part.

A case the test cannot use (say, a document too deep for the test's own YAML writer) is not
dropped silently: it is counted, the count is recorded (``fuzz_cases`` / ``fuzz_dropped`` user
properties, summed in the summary) and a test fails when it drops more than its bound.
"""

from __future__ import annotations

import datetime
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

SEED_ENV = "ARCHTUNE_FUZZ_SEED"
PARTS = ("fixed", "random")
BASE = settings(deadline=datetime.timedelta(seconds=10), database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])


def fuzz_seed() -> int:
    """This session's seed: ``$ARCHTUNE_FUZZ_SEED``, else a fresh one (tests/conftest.py draws
    it once, before any test, and puts it in the environment for xdist's workers)."""
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        value = str(random.SystemRandom().randrange(2**32))
        os.environ[SEED_ENV] = value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={value!r}: expected an integer") from None


class Drop(Exception):
    """Raised by a check: this case cannot be used (the reason is counted)."""


class KnownBug(Exception):
    """Raised by a check: this case hits a product bug that an xfail(strict=True) test names
    (counted apart; when the bug is fixed, that test fails and the check should stop raising)."""


@dataclass
class Tally:
    cases: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common())
        bugs = ", ".join(f"{n} {bug}" for bug, n in self.known.most_common())
        return (f"{self.cases} cases, {sum(self.dropped.values())} dropped" + (f" ({why})" if why else "")
                + (f", {sum(self.known.values())} hit known bugs ({bugs})" if bugs else ""))


def run_fuzz(kind: str, part: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], Any],
             *, examples: int, record: Callable[[str, object], None],
             max_dropped: float = 0.02, **overrides: Any) -> Tally:
    """Run ``check`` on ``examples`` cases of ``strategy``: derandomised for part 'fixed',
    seeded by :func:`fuzz_seed` for part 'random'. ``check`` raises :class:`Drop` for a case it
    cannot use; more than ``max_dropped`` of the cases dropped fails."""
    assert part in PARTS, part
    tally = Tally()

    def one(case: Any) -> None:
        tally.cases += 1
        try:
            check(case)
        except Drop as why:
            tally.dropped[str(why)] += 1
        except KnownBug as bug:
            tally.known[str(bug)] += 1

    test = given(strategy)(one)
    test = settings(BASE, max_examples=examples, derandomize=part == "fixed", **overrides)(test)
    if part == "random":
        test = seed(fuzz_seed())(test)
    test()
    dropped = sum(tally.dropped.values())
    record("fuzz_kind", kind)
    record("fuzz_cases", tally.cases)
    record("fuzz_dropped", dropped)
    record("fuzz_known_bugs", sum(tally.known.values()))
    print(f"fuzz {kind} ({part}{'' if part == 'fixed' else f', seed {fuzz_seed()}'}): {tally}")
    assert tally.cases > 0, f"fuzz {kind}: no case ran"
    assert dropped <= max_dropped * tally.cases, f"fuzz {kind} ({part}): too many dropped: {tally}"
    return tally
