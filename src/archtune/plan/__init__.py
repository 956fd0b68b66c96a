"""Experiment plans: the runs, searches and final tests of a whole study in one YAML file,
run with one call that skips what is already done and resumes after an interruption.

::

    from archtune import plan
    p = plan.load_plan("homework", ["train.epochs=1"])    # built-in name, YAML file or folder
    print(plan.format_preview(p, plan.plan_folder(p), plan.preview(p, plan.plan_folder(p))))
    folder = plan.run_plan(p)                             # -> plans/homework/

Names are imported on first use, so ``archtune --help`` stays fast.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "Plan": ".schema", "RunEntry": ".schema", "SearchEntry": ".schema", "Retrain": ".schema",
    "load_plan": ".schema", "parse_plan": ".schema", "list_plans": ".schema",
    "builtin_text": ".schema",
    "Step": ".steps", "resolve": ".steps", "fingerprint": ".steps", "pick_trial": ".steps",
    "read_state": ".steps",
    "Options": ".execute", "run_plan": ".execute", "plan_folder": ".execute",
    "dev_subset": ".execute",
    "preview": ".preview", "format_preview": ".preview", "Preview": ".preview",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
