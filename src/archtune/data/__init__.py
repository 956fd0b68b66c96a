"""Data loading: registered IDX data sets, .npz files and image folders; stratified splits."""

from archtune.data.datasets import Dataset, data_shape, list_datasets, load_dataset
from archtune.data.idx import read_idx, write_idx
from archtune.data.loading import SPLITS, SpecData, check_fits, check_input, check_split, load_data
from archtune.data.sources import locate, mirror_symmetric
from archtune.data.split import (
    Split,
    Splits,
    channel_stats,
    split_dataset,
    test_split,
    train_split_size,
)

__all__ = [
    "SPLITS",
    "Dataset",
    "SpecData",
    "Split",
    "Splits",
    "check_fits",
    "check_input",
    "check_split",
    "data_shape",
    "channel_stats",
    "list_datasets",
    "load_data",
    "load_dataset",
    "locate",
    "mirror_symmetric",
    "read_idx",
    "split_dataset",
    "test_split",
    "train_split_size",
    "write_idx",
]
