"""Notebook support: HTML cards for runs, evaluations, specs, search spaces and studies
(``_repr_html_``), the live table of epochs while training, one line per finished trial while
searching. Nothing here imports IPython unless a notebook is running.
"""

from __future__ import annotations

import sys


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook, JupyterLab, VS Code, nbclient), not in a
    terminal IPython or plain Python."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
