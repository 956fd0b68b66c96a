"""Plain-language descriptions of a spec, read from its layers and train section: the
architecture, initialisers, activations, regularisation, optimiser and schedule.

Pure functions of a :class:`~archtune.specs.Spec`; reports and ``archtune plan --dry-run`` use
them, so what a report says about a model is what the spec holds.
"""

from __future__ import annotations

from typing import Any

from ..specs import Spec, infer_shapes, list_specs, load_spec, output_units, totals

INIT_NAMES = {"glorot_uniform": "Glorot-uniform", "glorot_normal": "Glorot-normal",
              "he_uniform": "He-uniform", "he_normal": "He-normal",
              "lecun_uniform": "LeCun-uniform", "lecun_normal": "LeCun-normal",
              "orthogonal": "orthogonal", "random_normal": "random-normal",
              "random_uniform": "random-uniform", "zeros": "zeros", "ones": "ones"}
ACT_NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "elu": "ELU", "selu": "SELU",
             "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "GELU", "silu": "SiLU",
             "swish": "swish", "softmax": "softmax", "linear": "linear"}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
WEIGHTED = ("Conv2D", "Dense")


def _pair(v: Any) -> str:
    a, b = v if isinstance(v, list | tuple) else (v, v)
    return f"{a}x{b}"


def _g(v: float) -> str:
    return f"{v:g}"


def layer_text(layer: Any) -> str:
    """One layer in a few words: 'Conv2D 32 3x3 same, ReLU', 'Dense 10, softmax'."""
    a, t = layer.args, layer.type
    if t == "Conv2D":
        out = f"Conv2D {a['filters']} {_pair(a['kernel_size'])}"
        if _pair(a["strides"]) != "1x1":
            out += f" stride {_pair(a['strides'])}"
        if _pair(a["dilation_rate"]) != "1x1":
            out += f" dilation {_pair(a['dilation_rate'])}"
        out += f" {a['padding']}"
    elif t == "Dense":
        out = f"Dense {a['units']}"
    elif t in ("MaxPooling2D", "AveragePooling2D"):
        out = f"{'Max' if t.startswith('Max') else 'Avg'}Pool {_pair(a['pool_size'])}"
        if a.get("padding") == "same":
            out += " same"
    elif t == "Dropout":
        out = f"Dropout {_g(a['rate'])}"
    elif t == "BatchNormalization":
        out = "BatchNorm"
    elif t == "Activation":
        out = ACT_NAMES.get(a["activation"], a["activation"])
    elif t == "LeakyReLU":
        out = f"leaky ReLU {_g(a['negative_slope'])}"
    elif t.startswith("Global"):
        out = "GlobalAvgPool" if "Average" in t else "GlobalMaxPool"
    else:
        out = t
    act = a.get("activation") if t in WEIGHTED else None
    if act not in (None, "linear"):
        out += f", {ACT_NAMES.get(act, act)}"
    return out


def layers_text(spec: Spec) -> str:
    """The layers in order, runs of identical layers folded: '6 x [Dense 8, sigmoid]'."""
    parts: list[tuple[str, int]] = []
    for layer in spec.layers:
        text = layer_text(layer)
        if parts and parts[-1][0] == text:
            parts[-1] = (text, parts[-1][1] + 1)
        else:
            parts.append((text, 1))
    return " > ".join(t if n == 1 else f"{n} x [{t}]" for t, n in parts)


def kind(spec: Spec) -> str:
    return "CNN" if any(layer.type == "Conv2D" for layer in spec.layers) else "MLP"


def architecture_text(spec: Spec) -> str:
    t = totals(infer_shapes(spec))
    return (f"{kind(spec)}: {layers_text(spec)} ({t.params:,} parameters, "
            f"{t.flops / 1e6:.2f} MFLOPs per image)")


def init_text(spec: Spec, *, short: bool = False) -> str:
    """Which kernel initialiser the weight layers use, and the biases'."""
    weighted = [la for la in spec.layers if la.type in WEIGHTED]
    if not weighted:
        return "no weight layers"
    inits: dict[str, list[int]] = {}
    for i, la in enumerate(weighted):
        inits.setdefault(la.args["kernel_initializer"], []).append(i)
    last = len(weighted) - 1
    parts = []
    for name, where in inits.items():
        label = INIT_NAMES.get(name, name) + (" (Keras default)" if name == "glorot_uniform" else "")
        if len(inits) > 1:
            label += (" in the output layer" if where == [last] else
                      " in the hidden layers" if where == list(range(last)) else
                      f" in {len(where)} of {len(weighted)} weight layers")
        parts.append(label)
    biases = {la.args.get("bias_initializer", "zeros") for la in weighted if la.args.get("use_bias")}
    text = ("" if short else "kernels ") + ", ".join(parts)
    if short:
        return text.replace("in the hidden layers", "hidden").replace("in the output layer",
                                                                      "output")
    if biases and biases != {"zeros"}:
        return text + "; biases " + ", ".join(INIT_NAMES.get(b, b) for b in sorted(biases))
    return text + ("; biases zero" if biases else "; no biases")


def activation_text(spec: Spec, *, short: bool = False) -> str:
    """Hidden activations and the output's (softmax is folded into the cross-entropy loss)."""
    hidden: list[str] = []
    last = spec.layers[-1]
    for la in spec.layers:
        name = None
        if la.type in WEIGHTED and la is not last:
            name = la.args.get("activation")
        elif la.type == "Activation":
            name = la.args["activation"]
        elif la.type == "LeakyReLU":
            name = "leaky_relu"
        if name not in (None, "linear") and ACT_NAMES.get(name, name) not in hidden:
            hidden.append(ACT_NAMES.get(name, name))
    out = last.args.get("activation") if last.type in WEIGHTED else None
    text = (", ".join(hidden) or "none (linear)") + (" hidden" if short else " in hidden layers")
    if out == "softmax":
        text += ", softmax output" if short else \
            "; softmax output (folded into the cross-entropy loss)"
    elif out not in (None, "linear"):
        text += f"; {ACT_NAMES.get(out, out)} output"
    else:
        text += "; linear output (logits)"
    return text


def regularisation_text(spec: Spec) -> str:
    tc = spec.train
    parts = []
    rates = [_g(la.args["rate"]) for la in spec.layers if la.type == "Dropout"]
    if rates:
        parts.append(f"dropout {', '.join(rates)}")
    n_bn = sum(la.type == "BatchNormalization" for la in spec.layers)
    if n_bn:
        parts.append(f"{n_bn} BatchNorm layer{'s' if n_bn > 1 else ''}")
    if tc.weight_decay:
        parts.append(f"{'decoupled ' if tc.optimizer == 'adamw' else 'L2 '}weight decay "
                     f"{_g(tc.weight_decay)}")
    if tc.label_smoothing:
        parts.append(f"label smoothing {_g(tc.label_smoothing)}")
    aug = tc.augment
    moves = [w for w, on in (("horizontal flips", aug.hflip),
                             (f"shifts up to {aug.translate} px", aug.translate),
                             (f"random erasing p={_g(aug.erase)}", aug.erase)) if on]
    if moves:
        parts.append("augmentation: " + ", ".join(moves))
    if tc.patience is not None:
        what = tc.monitor.replace("_", " ")
        parts.append(f"early stopping on {what} (patience {tc.patience}, best weights kept)")
    elif tc.monitor == "dev_accuracy":
        parts.append("best-epoch weights kept (by dev accuracy)")
    return "; ".join(parts) if parts else "none (best-epoch weights kept by dev loss)"


def schedule_text(spec: Spec) -> str:
    tc = spec.train
    if tc.schedule == "constant":
        return "constant learning rate"
    if tc.schedule == "step":
        return f"learning rate x{_g(tc.gamma)} every {tc.step_size} epochs"
    if tc.schedule == "cosine":
        return "cosine decay of the learning rate to 0"
    return (f"one-cycle: linear warm-up over {tc.warmup_frac:.0%} of the steps from lr/25, then "
            f"cosine decay")


def optimiser_text(spec: Spec) -> str:
    tc = spec.train
    text = f"{OPTIMIZERS.get(tc.optimizer, tc.optimizer)}, lr {_g(tc.lr)}"
    if tc.optimizer == "sgd":
        if tc.momentum:
            text += f", {'Nesterov ' if tc.nesterov else ''}momentum {_g(tc.momentum)}"
        else:
            text += ", no momentum"
    elif tc.optimizer == "rmsprop" and tc.momentum:
        text += f", momentum {_g(tc.momentum)}"
    return text


def training_text(spec: Spec) -> str:
    """Optimiser, schedule, batch and epochs in one line."""
    tc = spec.train
    text = (f"{optimiser_text(spec)}; {schedule_text(spec)}; batch {tc.batch_size}; up to "
            f"{tc.epochs} epochs; seed {tc.seed}")
    if tc.tta:
        text += "; flip test-time augmentation at evaluation"
    return text


def describe(spec: Spec) -> dict[str, str]:
    """Every description of a spec, keyed: architecture, init, activations, regularisation,
    training."""
    return {"architecture": architecture_text(spec), "init": init_text(spec, short=True),
            "activations": activation_text(spec, short=True),
            "regularisation": regularisation_text(spec), "training": training_text(spec)}


def changes_from_builtin(spec: Spec) -> list[str] | None:
    """How a run's spec differs from the built-in spec of its name ('train.epochs 15 -> 2'),
    so a built-in description is not taken for the run's own; None when the name is not a
    built-in spec."""

    if spec.name not in list_specs():
        return None
    base = load_spec(spec.name).for_classes(output_units(spec)).to_dict()  # as trained on its data
    mine = spec.to_dict()
    out = []
    for section in ("train", "data"):
        for key, value in mine[section].items():
            old = base[section].get(key)
            if isinstance(value, dict) and isinstance(old, dict):
                out += [f"{section}.{key}.{k} {old.get(k)} -> {v}" for k, v in value.items()
                        if old.get(k) != v]
            elif old != value and not (section == "data" and key == "data_dir"):
                out.append(f"{section}.{key} {old} -> {value}")
    if mine["layers"] != base["layers"] or mine["input_shape"] != base["input_shape"]:
        out.append("the layers")
    return out
