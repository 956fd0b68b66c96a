"""examples/workflow.ipynb runs top to bottom in a real kernel (nbclient) on a few hundred
Fashion-MNIST images: cards, the live epoch table, one line per trial, the reports."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflow.ipynb"


def _outputs(cell: dict, kind: str) -> str:
    """All text of one kind of output of a cell: 'stream', or a MIME type such as text/html."""
    parts = []
    for out in cell.get("outputs", []):
        if kind == "stream" and out["output_type"] == "stream":
            parts.append(out["text"])
        elif kind in out.get("data", {}):
            parts.append(out["data"][kind])
    return "\n".join(parts)


def _cell(nb: nbformat.NotebookNode, source_start: str) -> dict:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return cell


@pytest.mark.slow
def test_the_example_notebook_runs_the_whole_workflow(real_data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"IMAGES": "300", "EPOCHS": "2", "TRIALS": "2", "OUT": str(tmp_path)}.items():
        monkeypatch.setenv(f"ARCHTUNE_EXAMPLE_{key}", value)
    monkeypatch.setenv("ARCHTUNE_THREADS", "2")
    nb = nbformat.read(EXAMPLE, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    table = _outputs(_cell(nb, "mlp_run = at.train"), "text/html")  # the live table, final state
    assert "Training mlp-small-" in table and ">complete<" in table and "2 of 2" in table
    card = _outputs(_cell(nb, "cnn_run = at.train"), "text/html")
    assert card.count("archtune-card") == 2 and "Run cnn-small-" in card  # live table, then the run
    assert "<polyline" in _outputs(_cell(nb, "cnn_run = at.train"), "text/html")
    history = _outputs(_cell(nb, "cnn_run.history"), "text/html")
    assert "dev_accuracy" in history and "<table" in history  # pandas' own rendering
    assert "Evaluation on the dev split" in _outputs(_cell(nb, 'results["cnn-small"]'), "text/html")
    lines = _outputs(_cell(nb, "study = at_search.search"), "stream").splitlines()
    assert [ln.split(" ")[:2] for ln in lines if ln.startswith("trial ")] == [
        ["trial", "0"], ["trial", "1"]]
    assert "Study example-cnn" in _outputs(_cell(nb, "study = at_search.search"), "text/html")
    assert "Search space example-cnn" in _outputs(_cell(nb, "space = at_search"), "text/html")
    assert "Evaluation on the test split" in _outputs(_cell(nb, 'at.evaluate(cnn_run, "test")'),
                                                      "text/html")
    for page in ("compare.html", "studies/example-cnn/report.html", "samples.png"):
        assert (tmp_path / page).is_file(), page
    assert len(list((tmp_path / "runs").glob("cnn-small-*/report.html"))) == 1
