"""Reports and diagnostics: figures, self-contained HTML reports of runs, comparisons and
studies, activation maps and dead filters.

Importing this package is cheap (the CLI imports it at start-up); the names below load their
module, and with it torch or matplotlib, on first use::

    from archtune import report
    report.report("runs/try1")                       # -> runs/try1/report.html
    report.compare_report(["runs/a", "runs/b"], "cmp.html")
    report.inspect_run("runs/try1", image=17, layers=[2])
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "report": "api", "inspect_run": "api", "data_plots": "api", "kind_of": "api",
    "Inspection": "api",
    "run_report": "run", "collect": "run_data", "RunData": "run_data",
    "compare_report": "compare",
    "study_report": "study_report", "load_study_data": "study",
    "activation_maps": "inspect", "dead_filters": "inspect", "ActivationMaps": "inspect",
    "DeadLayer": "inspect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
