"""The classic first CNN, as its author trained it (Adam, batch 32, 15 epochs), in Keras, in a
plain PyTorch loop and in archtune: seconds per epoch and time to 90% test accuracy, same run.

Model: Conv2D(32, 3x3, valid, relu, he_uniform), MaxPooling2D(2), Flatten, Dense(100, relu,
he_uniform), Dense(10, softmax) (`archtune summary cnn-classic`). All three train on the same
48,000 / 12,000 split with validation on the dev images each epoch, in float32 (Keras' CPU
default); archtune is also run at its own default precision (bf16 where the CPU has it) for
information. After every epoch the *test* split is evaluated outside the timed training, only
to report when 90% is first reached. Keras needs TensorFlow (``pip install tensorflow``);
without it the Keras row is skipped with a message.

    python bench/keras_compare.py [--epochs 15] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from train_bench import archtune_loop, first_reaching, plain_loop  # noqa: I001  (bench-local)

import archtune as at
from archtune.data import load_dataset, split_dataset, test_split

TARGET = 0.90


def keras_loop(splits, x_test, y_test, epochs: int,
               seed: int = 0) -> tuple[list[tuple[float, float]], float]:
    """The author's Keras code; returns ((cumulative training seconds, test acc) per epoch, wall)."""
    import tensorflow as tf
    from tensorflow import keras

    tf.keras.utils.set_random_seed(seed)

    def nhwc(x):  # noqa: ANN001, ANN202
        return x.permute(0, 2, 3, 1).numpy()

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_uniform"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu", kernel_initializer="he_uniform"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    xt, xd, xs = nhwc(splits.train.x), nhwc(splits.dev.x), nhwc(x_test)
    out, elapsed = [], [0.0]

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # noqa: ANN001, ANN201
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # noqa: ANN001, ANN201
            elapsed[0] += time.perf_counter() - self.t0  # validation on dev included
            acc = float((model.predict(xs, batch_size=1000, verbose=0).argmax(1) == y_test.numpy()).mean())
            out.append((elapsed[0], acc))

    t0 = time.perf_counter()
    model.fit(xt, splits.train.y.numpy(), batch_size=32, epochs=epochs, shuffle=True, verbose=0,
              validation_data=(xd, splits.dev.y.numpy()), callbacks=[Timer()])
    return out, time.perf_counter() - t0


def measure(epochs: int, data: str = "fashion-mnist", seed: int | None = None,
            train_subset: int | None = None, test_images: int | None = None,
            run_root: Path = Path("runs")) -> tuple[list[dict], int]:
    """Train cnn-classic in each framework (Keras only where TensorFlow is installed) on ``data``;
    ``seed``: every framework's seed (None: the spec's, and 0 for Keras). Returns, per arm, its
    label, precision, curve (cumulative training seconds, test accuracy per epoch) and wall
    seconds; and the number of training images."""
    ds = load_dataset(data)
    test = test_split(ds)
    x_test, y_test = test.x[:test_images], test.y[:test_images]
    sets = [f"train.epochs={epochs}"] + ([f"data.train_subset={train_subset}"] if train_subset else [])
    sets += [f"train.seed={seed}"] if seed is not None else []
    spec32 = at.load_spec("cnn-classic", [*sets, "train.precision=fp32"])
    splits = split_dataset(ds, dev_fraction=spec32.data.dev_fraction, seed=spec32.data.split_seed,
                           train_subset=spec32.data.train_subset)
    arms = []
    try:
        import tensorflow as tf

        arms.append((f"Keras {tf.keras.__version__} (TensorFlow {tf.__version__}, CPU)", "fp32",
                     lambda: keras_loop(splits, x_test, y_test, epochs, seed or 0)))
    except ImportError:
        print("TensorFlow is not installed: skipping Keras (pip install tensorflow to include it)",
              file=sys.stderr)
    auto = at.load_spec("cnn-classic", sets)
    import torch

    from archtune.training.device import resolve_precision

    resolved, why = resolve_precision("auto", torch.device("cpu"))
    arms += [("plain PyTorch loop", "fp32", lambda: plain_loop(spec32, splits, x_test, y_test)),
             ("archtune", "fp32", lambda: archtune_loop(spec32, splits, x_test, y_test, run_root)),
             ("archtune, its default precision", f"auto -> {resolved} ({why.removeprefix('auto: ')})",
              lambda: archtune_loop(auto, splits, x_test, y_test, run_root))]
    out = []
    for label, precision, fn in arms:
        curve, wall = fn()
        print(f"{label}: {curve[-1][0] / len(curve):.1f} s/epoch, {wall:.0f} s", file=sys.stderr,
              flush=True)
        out.append({"label": label, "precision": precision, "curve": curve, "wall": wall})
    return out, len(splits.train.y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--smoke", action="store_true", help="1 epoch on 1,000 images; writes nothing")
    args = ap.parse_args()
    epochs = 1 if args.smoke else args.epochs
    arms, images = measure(epochs, train_subset=1000 if args.smoke else None,
                           test_images=1000 if args.smoke else None)
    rows = []
    for arm in arms:
        curve = arm["curve"]
        rows.append(f"| {arm['label']} | {arm['precision']} | {curve[-1][0] / len(curve):.1f} | "
                    f"{first_reaching(curve, TARGET)} | {max(a for _, a in curve) * 100:.2f}% | "
                    f"{curve[-1][1] * 100:.2f}% | {arm['wall']:.0f} s |")
    body = (f"cnn-classic, Adam 1e-3, batch 32, {epochs} epochs, {images:,} training "
            f"images, {os.cpu_count()} cores. Seconds per epoch include the dev validation; time to "
            f"{TARGET:.0%} is cumulative training seconds at the end of the first epoch whose test "
            "accuracy reaches it ('auto' precision is bf16 where the CPU has it).\n\n"
            "| framework | precision | s/epoch | time to 90% test | best test | final test | wall |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows))
    print(body)
    if not args.smoke:
        from _results import write_section  # noqa: I001  (bench-local helper)

        write_section("Keras against archtune and a plain PyTorch loop (classic CNN)", body,
                      "python bench/keras_compare.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
