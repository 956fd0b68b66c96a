"""Notebook support in one place: each class renders its own card (``_repr_html_``, built
from :mod:`archtune._html`); ``train`` shows a live table of epochs and ``search`` one line per
finished trial while a notebook runs them. Nothing here imports IPython unless a notebook is
running.
"""

from .._html import card, in_notebook, table
from ..evaluate import evaluation_html
from ..search import Study, study_html
from ..specs import spec_html
from ..training import run_html
from ..training.live import EpochsView, EpochTable

__all__ = ["EpochTable", "EpochsView", "Study", "card", "evaluation_html", "in_notebook", "run_html",
           "spec_html", "study_html", "table"]
