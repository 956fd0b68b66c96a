"""The search tests' fixtures: synthetic data big enough for trials of a few seconds, one
thread per process."""

from tests.search.conftest import big_npz, one_thread  # noqa: F401 - fixtures used here too
