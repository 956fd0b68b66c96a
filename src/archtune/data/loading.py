"""A spec's data, loaded and split one way for training, evaluation, reports and searches.

:func:`load_data` is the only place that turns a ``data:`` section into a data set and its
train/dev splits, so "the same split as training" is this function called with the same section.
:func:`check_fits` is the only check that a model's input shape and outputs fit the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from ..config import DataConfig
from ..errors import ArchtuneError, short
from .datasets import Dataset, load_dataset
from .split import Split, Splits, split_dataset, test_split

SPLITS = ("train", "dev", "test")


@dataclass
class SpecData:
    """The data set a ``data:`` section names, and its splits (made on first use)."""

    config: DataConfig
    dataset: Dataset
    train_subset: int | None

    @cached_property
    def splits(self) -> Splits:
        """The stratified, seeded train/dev splits (the test part is not touched)."""
        d = self.config
        return split_dataset(self.dataset, dev_fraction=d.dev_fraction, seed=d.split_seed,
                             train_subset=self.train_subset)

    def split(self, name: str) -> Split:
        """One split by name: ``train`` or ``dev`` as training made them, or ``test``."""
        if check_split(name) == "test":
            return test_split(self.dataset)
        return self.splits.train if name == "train" else self.splits.dev


def check_split(name: str) -> str:
    """``name`` if it names a split (train, dev or test), else a clear error."""
    if name not in SPLITS:
        raise ArchtuneError(f"unknown split {short(name)}; expected one of: {', '.join(SPLITS)}")
    return name


def load_data(config: DataConfig, *, data_dir: str | None = None,
              train_subset: int | None = None) -> SpecData:
    """Load the data set of a spec's ``data:`` section (its ``image_size`` and ``channels``).

    ``data_dir`` and ``train_subset``, when given, take the place of the section's values (the
    files are elsewhere on this machine; a search's coarse pass trains on fewer images).
    """
    d = config
    ds = load_dataset(d.dataset, data_dir=data_dir or d.data_dir, channels=d.channels,
                      image_size=tuple(d.image_size) if d.image_size else None,
                      resize=d.resize, skip_bad_files=d.skip_bad_files)
    return SpecData(config, ds, train_subset or d.train_subset)


def check_input(*, kind: str, name: str, input_shape: Sequence[int],
                chw: Sequence[int]) -> None:
    """Raise unless ``input_shape`` (Keras order: height, width[, channels]) is the data's
    (``chw``: channels, height, width)."""
    h, w, *c = input_shape
    if (c[0] if c else 1, h, w) != tuple(chw):
        ch, hh, ww = chw
        raise ArchtuneError(
            f"{kind} '{name}' expects input_shape {list(input_shape)} but the data set's images "
            f"are [{hh}, {ww}, {ch}]; set input_shape: [{hh}, {ww}, {ch}] in the {kind}"
            + (" (or input_shape: auto to take the data's)" if kind == "spec" else ""))


def check_fits(splits: Splits, *, kind: str, name: str, input_shape: Sequence[int],
               units: int | None) -> None:
    """Raise unless a model with ``input_shape`` (Keras order: height, width[, channels]) and
    ``units`` outputs (None: not known yet) fits the data; ``kind`` is ``spec`` or ``space``."""
    check_input(kind=kind, name=name, input_shape=input_shape, chw=splits.input_shape)
    k = len(splits.classes)
    if units is not None and units != k:
        raise ArchtuneError(
            f"{kind} '{name}' ends with {units} outputs but the data set has {k} classes; make the "
            f"last Dense layer units: {k}")
