"""Two trials at once with one thread each, or one trial at a time with two threads?

    python bench/jobs.py [--specs mlp-small cnn-small cnn-classic default] [--subset 6000] [--epochs 2]

For each built-in spec, trains it twice in two ways on the machine's cores:
A) two `archtune train` processes at the same time, ARCHTUNE_THREADS=1 each (what `search
--jobs 2` does); B) the same two runs one after the other, ARCHTUNE_THREADS=2 each. Throughput
counts training seconds only (metrics.json's train_seconds: no process start-up or data
loading, which a search worker pays once): A = images / the longer of the two concurrent runs,
B = images / the sum of the two runs. The ratio A/B > 1 means parallel trials win; the table
gives it against each spec's FLOPs per image, from which `--jobs auto` takes its threshold.
Run it on a quiet machine with 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from _results import ARCHTUNE, use_shared_data, write_section  # noqa: I001  (bench-local helper)


def _cmd(spec: str, run_dir: Path, subset: int, epochs: int) -> list[str]:
    return [*ARCHTUNE, "train", spec, "--run-dir", str(run_dir), "--epochs", str(epochs), "--train-subset",
            str(subset), "--set", "train.patience=null"]


def _train_s(run_dir: Path) -> tuple[float, str, int]:
    m = json.loads((run_dir / "metrics.json").read_text())
    env = json.loads((run_dir / "env.json").read_text())
    return float(m["train_seconds"]), env["precision"], int(m["flops"])


def measure(spec: str, root: Path, subset: int, epochs: int) -> dict:
    images = 2 * subset * epochs
    env1 = dict(os.environ, ARCHTUNE_THREADS="1")
    procs = [subprocess.Popen(_cmd(spec, root / f"{spec}-a{i}", subset, epochs), env=env1)
             for i in range(2)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"{spec}: a training process failed")
    a = [_train_s(root / f"{spec}-a{i}") for i in range(2)]
    env2 = dict(os.environ, ARCHTUNE_THREADS="2")
    for i in range(2):
        subprocess.run(_cmd(spec, root / f"{spec}-b{i}", subset, epochs), env=env2, check=True)
    b = [_train_s(root / f"{spec}-b{i}") for i in range(2)]
    tput_a = images / max(s for s, _, _ in a)
    tput_b = images / sum(s for s, _, _ in b)
    return {"spec": spec, "flops": a[0][2], "precision": a[0][1], "a": tput_a, "b": tput_b,
            "ratio": tput_a / tput_b}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=["mlp-small", "cnn-small", "cnn-classic", "default"])
    ap.add_argument("--subset", type=int, default=6000, help="training images per run")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    rows = []
    for spec in args.specs:
        r = measure(spec, root, args.subset, args.epochs)
        rows.append(r)
        print(f"{spec}: 2x1 thread {r['a']:,.0f} img/s, 1x2 threads {r['b']:,.0f} img/s, "
              f"ratio {r['ratio']:.2f}", flush=True)
    body = ("Training images per second (training time only), two runs of each spec: A) at the "
            "same time with 1 thread each, B) one after the other with 2 threads each.\n\n"
            "| spec | FLOPs/image | precision | A: 2 trials x 1 thread | B: 1 trial x 2 threads | A / B |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(f"| {r['spec']} | {r['flops'] / 1e6:.1f}M | {r['precision']} | "
                        f"{r['a']:,.0f} img/s | {r['b']:,.0f} img/s | **{r['ratio']:.2f}** |" for r in rows))
    write_section("Search workers: 2 trials x 1 thread or 1 trial x 2 threads", body,
                  f"python bench/jobs.py --specs {' '.join(args.specs)} --subset {args.subset} "
                  f"--epochs {args.epochs}")
    print(body)


if __name__ == "__main__":
    use_shared_data()
    main()
