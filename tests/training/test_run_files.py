"""Run folders read back: a killed run reads as died, a damaged or foreign file is one line
naming it (exit code 2), ``runs`` lists what it cannot read, and no NaN reaches a verdict."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archtune import ArchtuneError, evaluate, load_run, train
from archtune._process import is_gone, this_process
from archtune.evaluate import capacity_verdict, format_evaluation
from archtune.training import UnreadableRun, scan_runs
from tests._cli import run_cli
from tests.conftest import make_splits

MLP = {"name": "mlp", "layers": ["Flatten", {"Dense": {"units": 10, "activation": "softmax"}}],
       "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 2}}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(MLP, splits=make_splits(), run_dir=tmp_path_factory.mktemp("g") / "run",
                 progress=False).path


@pytest.fixture
def run_copy(good_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_run, tmp_path / "runs" / "copy"))


def _dead_process() -> dict:
    """The process record of a process of this machine that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return this_process() | {"pid": child.pid, "start": "1"}


def test_process_records_tell_dead_from_live_and_never_guess_for_other_machines() -> None:
    assert is_gone(_dead_process())
    assert not is_gone(this_process())
    assert not is_gone(this_process() | {"pid": os.getppid(), "start": None})  # alive
    assert not is_gone(_dead_process() | {"host": "another-machine"})
    assert not is_gone(_dead_process() | {"boot": "another-boot"})
    for junk in (None, [], "x", {"pid": "12"}, {}):
        assert not is_gone(junk)


def test_a_killed_train_reads_as_died_and_evaluate_says_so(tmp_path: Path, tiny_npz: Path,
                                                           capsys) -> None:
    """A real ``archtune train`` process, killed with SIGKILL after its first checkpoint."""
    spec = tmp_path / "mlp.json"
    spec.write_text(json.dumps(MLP | {"data": {"dataset": str(tiny_npz)}}))
    run_dir = tmp_path / "runs" / "killed"
    cmd = [sys.executable, "-c", "from archtune.cli import main; main()", "-q", "train", str(spec),
           "--epochs", "100000", "--threads", "1", "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "best.pt").is_file() and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "running" and metrics["process"]["pid"] == proc.pid
    run = load_run(run_dir)
    assert run.status == "died" and "died" in run.status_note()
    code, out, _ = run_cli(["runs", "--root", str(tmp_path / "runs")], capsys)
    row = next(line for line in out.splitlines() if line.startswith("killed"))
    assert code == 0 and " died " in row
    code, out, err = run_cli(["evaluate", str(run_dir)], capsys)
    assert code == 0, err
    assert out.startswith(f"note: run killed died: its training process (pid {proc.pid} on ")
    assert "best checkpoint is epoch" in out.splitlines()[0]
    assert json.loads((run_dir / "eval_dev.json").read_text())["run_status"] == "died"


def test_a_run_killed_between_its_checkpoint_and_its_metrics_names_the_checkpoint(
        run_copy: Path) -> None:
    """The CI race: killed after best.pt was written, before metrics.json named it; the note
    reads the epoch from the checkpoint itself."""
    metrics = json.loads((run_copy / "metrics.json").read_text())
    saved = torch.load(run_copy / "best.pt", weights_only=True)["epoch"]
    metrics.update(status="running", process=_dead_process(), best_epoch=None)
    (run_copy / "metrics.json").write_text(json.dumps(metrics))
    note = load_run(run_copy).status_note()
    assert f"its best checkpoint is epoch {saved} of" in note
    (run_copy / "best.pt").write_bytes(b"torn")  # unreadable: metrics.json is all there is
    with pytest.raises(ArchtuneError):
        load_run(run_copy).load_model()
    assert "it saved no checkpoint" in load_run(run_copy).status_note()


def test_a_running_run_of_a_live_process_stays_running(run_copy: Path) -> None:
    metrics = json.loads((run_copy / "metrics.json").read_text())
    metrics.update(status="running", process=this_process())
    (run_copy / "metrics.json").write_text(json.dumps(metrics))
    assert load_run(run_copy).status == "running"
    metrics["process"] = _dead_process()
    (run_copy / "metrics.json").write_text(json.dumps(metrics))
    assert load_run(run_copy).status == "died"


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.rindex(",")])


BAD_FILES = [
    ("metrics.json", "[1, 2]", "metrics.json: expected a mapping of names to values, got a list"),
    ("metrics.json", '{"status": "complete"}', "metrics.json: missing 'classes'"),
    ("metrics.json", '{"status": 3, "classes": []}', "metrics.json: status: unknown value '3'"),
    ("metrics.json", '{"status": "complete", "classes": [], "best": 1}',
     "metrics.json: best: expected a mapping, got 1"),
    ("metrics.json", '{"status": "complete", "classes": [], "epochs_run": "2"}',
     "metrics.json: epochs_run: expected an integer, got '2'"),
    ("metrics.json", '{"status": "compl', "metrics.json: not valid JSON"),
    ("env.json", '"a string"', "env.json: expected a mapping of names to values, got the text"),
    ("env.json", '{"threads": [1]}', "env.json: threads: expected an integer"),
    ("history.csv", _truncate, "history.csv: line 3 has 6 values, the header 7 (a truncated file?)"),
    ("history.csv", "epoch,lr\n1,0.1\n", "history.csv: no column 'train_loss'"),
    ("history.csv", "epoch,lr,train_loss,train_accuracy,dev_loss,dev_accuracy\n1,x,1,1,1,1\n",
     "history.csv: line 2, column 'lr': expected a number, got 'x'"),
    ("grad_norms.csv", b"\xff\xfe\x00", "grad_norms.csv: not valid UTF-16"),
    ("spec.yaml", "- Flatten\n", "spec.yaml: a spec must be a mapping with 'layers', got a list"),
    ("spec.yaml", b"\x00\x01binary", "spec.yaml: binary data"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_FILES)])
def test_a_damaged_run_file_is_one_line_naming_it(run_copy: Path, capsys, name: str, content,
                                                  message: str) -> None:
    path = run_copy / name
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ArchtuneError) as caught:
        load_run(run_copy)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    code, _, err = run_cli(["evaluate", str(run_copy)], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    code, out, _ = run_cli(["runs", "--root", str(run_copy.parent)], capsys)
    assert code == 0 and f"copy{' ' * 32}unreadable: {message}" in out, out


@pytest.mark.parametrize(("content", "message"), [
    (b"not a zip", "not a readable archtune checkpoint"),
    ([1, 2], "not an archtune checkpoint (it holds a list)"),
    ({"spec": {}, "classes": []}, "missing 'mean'"),
    ("swap", "the weights do not fit the checkpoint's spec"),
])
def test_a_damaged_checkpoint_is_one_line_naming_it(run_copy: Path, capsys, content,
                                                    message: str) -> None:
    path = run_copy / "best.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "swap":  # weights of another architecture under this spec
        ckpt = torch.load(path, weights_only=True)
        ckpt["state_dict"] = {"other.weight": torch.zeros(2)}
        torch.save(ckpt, path)
    else:
        torch.save(content, path)
    code, _, err = run_cli(["evaluate", str(run_copy)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: ") and message in err, err


def test_classes_that_do_not_match_the_model(run_copy: Path, capsys) -> None:
    metrics = json.loads((run_copy / "metrics.json").read_text())
    (run_copy / "metrics.json").write_text(json.dumps(metrics | {"classes": ["a", "b"]}))
    _, _, err = run_cli(["evaluate", str(run_copy)], capsys)
    assert err == f"error: {run_copy / 'metrics.json'}: lists 2 classes but the model has 10 outputs\n"


def test_a_damaged_evaluation_file(run_copy: Path, capsys) -> None:
    (run_copy / "eval_test.json").write_text('{"split": "test", "n": 10, "accuracy": "high"}')
    with pytest.raises(ArchtuneError, match="eval_test.json: accuracy: expected a number"):
        load_run(run_copy).evaluation("test")
    code, out, _ = run_cli(["runs", "--root", str(run_copy.parent)], capsys)
    assert code == 0 and "unreadable: eval_test.json: accuracy: expected a number" in out


def test_runs_lists_unreadable_folders_with_the_reason(good_run: Path, tmp_path: Path,
                                                       capsys) -> None:
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "a-good")
    (root / "b-list").mkdir()
    (root / "b-list" / "metrics.json").write_text("[]")
    (root / "c-half").mkdir()
    (root / "c-half" / "best.pt").write_bytes(b"x")
    (root / "not-a-run").mkdir()
    found = scan_runs(root)
    assert [r.name for r in found if not isinstance(r, UnreadableRun)] == ["a-good"]
    reasons = {r.name: r.reason for r in found if isinstance(r, UnreadableRun)}
    assert reasons == {
        "b-list": f"{root / 'b-list'}: not an archtune run folder (missing spec.yaml)",
        "c-half": f"{root / 'c-half'}: not an archtune run folder (missing spec.yaml, metrics.json)"}
    code, out, _ = run_cli(["runs", "--root", str(root)], capsys)
    assert code == 0 and "a-good" in out and "complete" in out
    assert "b-list" in out and "unreadable: " in out and "not-a-run" not in out


def test_no_nan_reaches_a_verdict(run_copy: Path) -> None:
    rows = [{"train_loss": 1.0, "train_accuracy": 0.5, "dev_loss": 1.0, "dev_accuracy": 0.5},
            {"train_loss": math.nan, "train_accuracy": 0.6, "dev_loss": 0.9, "dev_accuracy": 0.6}]
    verdict = capacity_verdict(rows, chance=0.1)
    assert verdict["verdict"] == "unknown" and "nan" not in verdict["reason"].lower()
    assert "epoch 2" in verdict["reason"] and "train_loss" in verdict["reason"]
    history = run_copy / "history.csv"  # a NaN the trainer wrote (a diverged epoch)
    lines = history.read_text().splitlines()
    head = lines[0].split(",")
    cells = lines[-1].split(",")
    cells[head.index("dev_loss")] = "nan"
    history.write_text("\n".join([*lines[:-1], ",".join(cells)]) + "\n")
    result = evaluate(run_copy, data=make_splits().dev, save=False)
    assert result["capacity"]["verdict"] == "unknown"
    verdict_line = format_evaluation(result).splitlines()[-1]
    assert verdict_line.startswith("capacity: unknown") and "nan" not in verdict_line.lower()


def test_json_files_can_be_written_by_many_writers_at_once(tmp_path) -> None:
    """Two workers attaching to a study both write its study.json: each rename must find its
    own temporary file (a shared '.tmp' name made one of them crash)."""
    import json
    import threading

    from archtune.training.runs import write_json

    path = tmp_path / "study.json"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                write_json(path, {"writer": k, "i": i})
        except BaseException as err:  # noqa: BLE001 (collected, asserted below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and json.loads(path.read_text())["i"] == 39
    assert [p.name for p in tmp_path.iterdir()] == ["study.json"]


def test_units_classes_in_a_saved_spec_is_read_as_the_run_s_classes(run_copy: Path) -> None:
    """A run's files name their classes: a spec.yaml or checkpoint spec saying `units: classes`
    (written by hand) rebuilds the model the weights were trained as."""
    import yaml

    from archtune.serve.predict import Predictor
    from archtune.training import load_checkpoint

    raw = yaml.safe_load((run_copy / "spec.yaml").read_text())
    raw["layers"][-1]["Dense"]["units"] = "classes"
    (run_copy / "spec.yaml").write_text(yaml.safe_dump(raw))
    ckpt = torch.load(run_copy / "best.pt", weights_only=True)
    ckpt["spec"] = raw
    torch.save(ckpt, run_copy / "best.pt")
    run = load_run(run_copy)
    assert run.spec.class_layers == () and run.spec.to_dict()["layers"][-1]["Dense"]["units"] == 10
    model, _ = load_checkpoint(run_copy / "best.pt", "cpu")
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert Predictor.from_run(run_copy / "best.pt").spec.class_layers == ()
