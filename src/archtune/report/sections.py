"""The sections of a run report, one function each (data computed, then drawn, then laid out)."""

from __future__ import annotations

from typing import Any

import yaml

from ..config import to_dict
from ..evaluate import dev_result
from ..specs import infer_shapes, summary_rows, totals
from . import data as plot_data
from . import figures as fg
from .describe import ACT_NAMES, INIT_NAMES, activation_text, changes_from_builtin, init_text
from .html import (
    Section,
    cards,
    details,
    figure,
    kv_table,
    note,
    pct,
    pre,
    table,
)
from .inspect import activation_maps, dead_filters, first_layer_weights
from .run_data import RunData, dev_accuracy, mistake_test_images, overview_cards


def _missing(rd: RunData, what: str) -> str:
    why = "; ".join(rd.missing) or "it needs the run's data"
    return note(f"{what} left out: {why}.")


def overview(rd: RunData) -> Section:
    m = rd.run.metrics
    best = m.get("best") or {}
    dev = dev_accuracy(rd)
    items = [("spec", rd.run.spec.name), ("status", rd.run.status),
             ("epochs run", m.get("epochs_run")), ("best epoch", m.get("best_epoch")),
             ("stopped early", bool(m.get("stopped_early"))),
             ("dev accuracy", (pct(dev), dev)),
             ("dev accuracy: weights", dev_result(rd.run)["weights"]),
             ("dev loss at best epoch (training)", best.get("dev_loss")),
             ("train accuracy at best", (pct(best.get("train_accuracy")), best.get("train_accuracy"))),
             ("train loss at best", best.get("train_loss")),
             ("parameters", m.get("params")), ("FLOPs per image", m.get("flops")),
             ("training time (s)", m.get("train_seconds")), ("started", m.get("started", "-")),
             ("train / dev images", f"{m.get('data', {}).get('n_train', '-'):,} / "
                                    f"{m.get('data', {}).get('n_dev', '-'):,}")]
    if rd.test_eval:
        items.insert(6, ("test accuracy", (pct(rd.test_eval["accuracy"]), rd.test_eval["accuracy"])))
    desc = note(rd.run.spec.description) if rd.run.spec.description else ""
    changes = changes_from_builtin(rd.run.spec)
    if desc and changes:
        desc = note(f"Built-in spec '{rd.run.spec.name}': {rd.run.spec.description} This run "
                    f"changes it: {'; '.join(changes)}.")
    return Section("overview", "Overview", desc + cards(overview_cards(rd))
                   + kv_table(items, id="overview"))


def architecture(rd: RunData) -> Section:
    spec = rd.run.spec
    t = totals(infer_shapes(spec))

    rows = [(name, shape, _act(layer), INIT_NAMES.get(layer.args.get("kernel_initializer"), "-"),
             params, flops) for (name, shape, params, flops), layer
            in zip(summary_rows(spec), spec.layers, strict=True)]
    body = table(["layer (type)", "output shape", "activation", "initialiser", "params", "FLOPs"],
                 rows, id="summary")
    body += note(f"Activations: {activation_text(spec)}. Initialisation: {init_text(spec)}.")
    body += kv_table([("total params", t.params), ("trainable params", t.trainable),
                      ("non-trainable params", t.params - t.trainable),
                      ("FLOPs per image", t.flops)], id="totals")
    return Section("architecture", "Architecture", body)


def _act(layer: Any) -> str:
    """A layer's activation as the table shows it ('-' for layers without one)."""

    if layer.type == "Activation":
        return ACT_NAMES.get(layer.args["activation"], layer.args["activation"])
    if layer.type == "LeakyReLU":
        return "leaky ReLU"
    act = layer.args.get("activation", "-") if layer.type in ("Conv2D", "Dense") else "-"
    return "linear" if act is None else ACT_NAMES.get(act, act)


def _setting(value: Any) -> str:
    """A config value as written in a spec: 0.01, 1e-05, true, null, [28, 28]."""
    return "null" if value is None else yaml.safe_dump(value, default_flow_style=True).strip(
        ).removesuffix("...").strip()


def configuration(rd: RunData) -> Section:
    spec = rd.run.spec
    train_cfg = to_dict(spec.train)
    augment = train_cfg.pop("augment", {})
    rows = list(train_cfg.items()) + [(f"augment.{k}", v) for k, v in augment.items()]
    cfg = table(["train", "value"], [(k, _setting(v)) for k, v in rows], id="config-train")
    data = table(["data", "value"], [(k, _setting(v)) for k, v in to_dict(spec.data).items()],
                 id="config-data")
    env = table(["environment", "value"], [(k, v if isinstance(v, int | float | str) else str(v))
                                           for k, v in rd.run.env.items()], id="env")
    body = f'<div class="cols">{cfg}{data}{env}</div>'
    body += details("the resolved spec (spec.yaml)", pre(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
    return Section("config", "Configuration and environment", body)


def curves(rd: RunData) -> Section:
    c = rd.curves
    caption = (f"Loss and accuracy per epoch, train vs dev. Dashed green line: best epoch "
               f"({c.best_epoch}), whose weights are kept.")
    if c.stopped_epoch is not None:
        caption += f" Dotted red line: early stopping ended training after epoch {c.stopped_epoch}."
    body = figure(fg.draw_curves(c), caption, id="fig-curves")
    rows = [(int(h["epoch"]), h["lr"], h["train_loss"], h["train_accuracy"], h["dev_loss"],
             h["dev_accuracy"], h["seconds"]) for h in rd.run.history_rows]
    body += details("history per epoch", table(
        ["epoch", "lr", "train loss", "train acc", "dev loss", "dev acc", "seconds"], rows,
        id="history"))
    return Section("curves", "Learning curves", body)


def capacity(rd: RunData, verdict: dict[str, Any]) -> Section:
    v = verdict["verdict"]
    body = (f'<p>Verdict: <span class="verdict {v}" id="verdict">{v}</span> - '
            f'{verdict["reason"]}.</p>')
    k = len(rd.run.classes)
    best = (rd.run.metrics.get("best") or {}).get("dev_accuracy")
    if k > 1 and best is not None and best <= 1.5 / k and not verdict["reason"].startswith("not"):
        body += (f'<p id="chance-warning"><b>The model has not learned:</b> its best dev accuracy '
                 f'({pct(best)}) is at chance level for {k} classes ({pct(1 / k)}). Look at the '
                 f'gradient norms below (vanishing gradients?) and at the learning rate.</p>')
    numbers = verdict.get("numbers", {})
    body += kv_table([(k.replace("_", " "), val) for k, val in numbers.items()], id="capacity")
    body += note("Over-fitting: dev loss rose more than 10% above its minimum, or train accuracy "
                 "exceeds dev accuracy by more than 3 points. Under-fitting: train loss still fell "
                 "more than 5% over the last third of training with no train/dev gap.")
    return Section("capacity", "Capacity verdict", body)


def _metrics_block(result: dict[str, Any], split: str) -> str:
    head = kv_table([("images", result["n"]), ("accuracy", (pct(result["accuracy"]),
                                                             result["accuracy"])),
                     ("loss", result["loss"]), ("macro F1", result["macro_f1"])],
                    id=f"{split}-metrics")
    rows = [(c, m["precision"], m["recall"], m["f1"], m["support"])
            for c, m in result["per_class"].items()]
    per_class = table(["class", "precision", "recall", "F1", "support"], rows,
                      id=f"{split}-per-class", sortable=True)
    scores = figure(fg.draw_class_scores(plot_data.class_scores(result["per_class"])),
                    f"Per-class precision, recall and F1 on the {split} split.",
                    id=f"fig-{split}-scores")
    conf = plot_data.confusion_from_counts(result["confusion_matrix"], list(result["per_class"]))
    cm = figure(fg.draw_confusion(conf, f"Confusion matrix ({split})"),
                "Rows: true class, columns: predicted. Colour: share of the true class "
                "(row-normalised); each cell shows the count and that share.",
                id=f"fig-{split}-confusion")
    return f'<div class="cols">{head}{per_class}</div>{scores}{cm}'


def dev_metrics(rd: RunData) -> Section:
    if rd.dev_eval is None:
        return Section("dev-metrics", "Dev metrics", _missing(rd, "The dev evaluation"))
    return Section("dev-metrics", "Dev metrics", _metrics_block(rd.dev_eval, "dev"))


def test_metrics(rd: RunData) -> Section:
    body = note("From eval_test.json, written by 'archtune evaluate --split test'.")
    return Section("test-metrics", "Test metrics", body + _metrics_block(rd.test_eval or {}, "test"))


def mistakes(rd: RunData) -> Section:
    title = "Most confident mistakes"
    x = mistake_test_images(rd)
    if x is not None and rd.test_eval is not None:
        wrong, split = rd.test_eval["most_confident_wrong"], "test"
    elif rd.dev_eval is not None and rd.splits is not None:
        wrong, split = rd.dev_eval["most_confident_wrong"], "dev"
        x = rd.splits.dev.x[[w["index"] for w in wrong]].numpy() if wrong else None
    else:
        return Section("mistakes", title, _missing(rd, "The mistakes"))
    if not wrong:
        return Section("mistakes", title, note(f"No mistakes on the {split} split."))
    grid = plot_data.mistakes_grid(x, wrong)
    caption = (f"The {len(grid.titles)} {split} images the model got wrong with the highest "
               f"confidence: true label, predicted label and its probability.")
    if split == "dev":
        caption += " (Test images are shown once 'archtune evaluate --split test' has been run.)"
    return Section("mistakes", title, figure(fg.draw_grid(grid), caption, id="fig-mistakes"))


def data_views(rd: RunData) -> Section:
    if rd.splits is None:
        return Section("data", "Data", _missing(rd, "The data views"))
    s = rd.splits
    grid = plot_data.sample_grid(s.train.x.numpy(), s.train.y.numpy(), s.classes)
    counts: dict[str, list[int]] = dict(s.class_counts())
    if rd.test_eval:
        counts["test"] = [m["support"] for m in rd.test_eval["per_class"].values()]
    body = figure(fg.draw_grid(grid, "Sample training images"),
                  "Random training images with their class names.", id="fig-samples")
    body += figure(fg.draw_class_distribution(plot_data.class_distribution(s.classes, counts)),
                   "Images per class in each split.", id="fig-distribution")
    return Section("data", "Data", body)


def filters(rd: RunData) -> Section:
    title = "First-layer filters"
    if rd.model is None:
        return Section("filters", title, _missing(rd, "The filters"))
    got = first_layer_weights(rd.model, rd.run.spec)
    if got is None:
        return Section("filters", title, note("The first weight layer does not see the image "
                                              "directly, so it cannot be drawn as images."))
    weight, kind = got
    grid = plot_data.filter_grid(weight, rd.run.spec.chw, kind=kind)
    caption = (f"Weights of the first layer ({len(weight)} {kind}s, {len(grid.images)} shown), "
               f"each scaled to its own range: bright = positive, dark = negative.")
    cell = 0.75 if grid.images.shape[1] <= 7 else 1.25
    return Section("filters", title, figure(fg.draw_grid(grid, cell=cell), caption,
                                            id="fig-filters"))


def activations(rd: RunData, images: tuple[int, ...]) -> Section:
    title = "Activation maps"
    if rd.model is None or rd.splits is None:
        return Section("activations", title, _missing(rd, "The activation maps"))
    spec = rd.run.spec
    if not any(layer.type == "Conv2D" for layer in spec.layers):
        return Section("activations", title, note("This model has no conv layers; activation "
                                                  "maps apply to CNNs."))
    body = ""
    for i in images:
        img = rd.splits.dev.x[i]
        label = rd.splits.classes[int(rd.splits.dev.y[i])]
        picture = plot_data.as_images(img[None].numpy())[0]
        for maps in activation_maps(rd.model, spec, img):
            fig = fg.draw_activations(picture, maps, f"{maps.name}, dev image {i} ({label})")
            n = len(maps.maps)
            shown = f"all {n} channels" if n <= 32 else f"the first 32 of {n} channels"
            body += figure(fig, f"Feature maps of {maps.name} (layer {maps.layer}) for dev image {i} "
                                f"({label}), {shown} on one colour scale; red titles: channels "
                                f"that stay at or below 0.", id=f"fig-act-{i}-{maps.layer}")
    body += note("Any conv layer and image: archtune inspect RUN --image N --layer L.")
    return Section("activations", title, body)


def dead(rd: RunData, sample: int) -> Section:
    title = "Dead filters"
    if rd.model is None or rd.splits is None:
        return Section("dead", title, _missing(rd, "The dead-filter count"))
    x = rd.splits.dev.x[:sample]
    layers = dead_filters(rd.model, rd.run.spec, x)
    if not layers:
        return Section("dead", title, note("No conv or hidden dense layer with an activation."))
    rows = [(d.layer, d.name, d.kind, d.total, d.n_dead, ", ".join(map(str, d.dead[:40])) or "-")
            for d in layers]
    body = table(["layer", "name", "kind", "total", "dead", "dead channels"], rows, id="dead-table")
    body += figure(fg.draw_dead(layers, len(x)), f"Channels whose activation never exceeds 0 on "
                                                 f"{len(x):,} dev images.", id="fig-dead")
    return Section("dead", title, body)


def gradients(rd: RunData) -> Section:
    title = "Gradient norms"
    g = rd.grads
    if g is None:
        return Section("gradients", title, note("No gradient norms were recorded "
                                                "(train.grad_norm_every is 0)."))
    body = (f'<p>First-layer / last-layer gradient norm at epoch {g.epochs[-1]}: '
            f'<b id="grad-ratio" data-v="{g.first_over_last!r}">{plot_data.ratio_text(g)}</b>. '
            'Layers of different sizes differ by some factor anyway; a ratio of 0.01 or less '
            '(two orders of magnitude) means gradients vanish on their way to the input.</p>')
    body += figure(fg.draw_grad_norms(g), "Mean weight-gradient norm of each layer, sampled during "
                                          "training. Norms that shrink layer by layer towards the "
                                          "input show vanishing gradients; growing ones, exploding "
                                          "gradients.", id="fig-gradients")
    rows = [(name, (f"{v:.3g}", float(v))) for name, v in zip(g.layers, g.last, strict=True)]
    body += table(["layer", f"norm at epoch {g.epochs[-1]}"], rows, id="grad-table")
    return Section("gradients", title, body)
