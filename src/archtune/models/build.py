"""Spec -> torch module: each layer's modules come from its type's build rule in the table of
layer types (:mod:`archtune.specs.layers`); activations come from the activation table."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.functions import ACTIVATIONS, create_activation
from ..specs.layers import layer_type
from ..specs.schema import Spec
from ..specs.shapes import Address, LayerInfo, infer_shapes, walk

# name -> module factory, for each activation that has a module (from the one activation table)
ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module | None]] = {
    name: act.create for name, act in ACTIVATIONS.items() if act.module is not None}


class SamePool2d(nn.Module):
    """Keras 'same' pooling: pad (extra pixel after) then pool; averages count real pixels only."""

    def __init__(self, kind: str, kernel: Sequence[int], stride: Sequence[int], pad: tuple[int, ...]):
        super().__init__()
        self.kind, self.kernel, self.stride, self.pad = kind, tuple(kernel), tuple(stride), pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), self.kernel, self.stride)
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride)
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel, self.stride)
        return total / count


def _bins(size: int, out: int) -> torch.Tensor:
    """(out, size) averaging matrix of PyTorch's adaptive pooling bins along one axis."""
    m = torch.zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class AdaptivePool2d(nn.Module):
    """Adaptive average pooling of a fixed input size to a fixed grid, as two matrix products
    (the bins of ``nn.AdaptiveAvgPool2d``), so that ONNX exports it for any sizes (its own
    adaptive pooling needs the output to divide the input). The matrices are not saved."""

    def __init__(self, size: Sequence[int], out: Sequence[int]):
        super().__init__()
        self.register_buffer("rows", _bins(size[0], out[0]), persistent=False)
        self.register_buffer("cols", _bins(size[1], out[1]).T.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows.to(x.dtype), x), self.cols.to(x.dtype))


class Residual(nn.Module):
    """A spec's Residual layer: ``shortcut(x) + layers(x)`` (its activation follows as a module).

    An in-place activation at the start of ``layers`` would overwrite ``x`` before the identity
    shortcut adds it, so those are made out-of-place.
    """

    def __init__(self, layers: nn.Sequential, shortcut: nn.Module):
        super().__init__()
        self.layers, self.shortcut = layers, shortcut
        for module in layers.modules():
            if isinstance(module, nn.Sequential):
                continue
            if not hasattr(module, "inplace"):
                break
            module.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.layers(x)


class Builder:
    """What a layer type's build rule gets besides its LayerInfo: archtune's own torch modules,
    and :meth:`layers` for a layer that holds a list of layers."""

    SamePool2d = SamePool2d
    AdaptivePool2d = AdaptivePool2d
    Residual = Residual

    def layers(self, infos: Sequence[LayerInfo], *, fold_last_softmax: bool = False) -> nn.Sequential:
        """One module per layer, named as the spec numbers them (``conv2d_0``, ``dense_3``)."""
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        for info in infos:
            mods = self.modules(info, fold_softmax=fold_last_softmax and info.index == len(infos) - 1)
            blocks[info.name] = mods[0] if len(mods) == 1 else nn.Sequential(*mods)
        return nn.Sequential(blocks)

    def modules(self, info: LayerInfo, *, fold_softmax: bool = False) -> list[nn.Module]:
        """The layer's modules, then its ``activation`` argument's (a softmax left out if folded)."""
        mods = layer_type(info.layer.type).build(info, self)
        act = info.layer.args.get("activation")
        if not (fold_softmax and act == "softmax"):
            mod = create_activation(act)
            if mod is not None:
                mods.append(mod)
        return mods


class ArchtuneNet(nn.Module):
    """The model built from a spec: input standardisation, then the spec's layers.

    ``forward`` returns logits; a softmax on the last layer is folded into the loss and applied
    by :meth:`predict_proba`. ``blocks`` holds one module per spec layer, so hooks and plots can
    address "layer 2" exactly as the spec numbers it.
    """

    def __init__(self, spec: Spec, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        c = spec.chw[0]
        self.register_buffer("mean", torch.tensor(mean or [0.0] * c, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std or [1.0] * c, dtype=torch.float32).view(1, c, 1, 1))
        self.layer_infos = infer_shapes(spec)
        self.blocks = Builder().layers(self.layer_infos, fold_last_softmax=True)
        self.spec_name = spec.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks((x - self.mean) / self.std)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).float().softmax(dim=1)


class EnsembleNet(ArchtuneNet):
    """Several trained models of the same classes as one: ``forward`` returns the log of the
    members' mean softmax probabilities (log-probabilities are logits: a softmax of them gives
    those probabilities back), so everything that takes an :class:`ArchtuneNet` (evaluate,
    predict, export, serve) takes an ensemble.

    Layer-level views (explanations, activations, per-layer plots) address ``blocks`` and
    ``layer_infos``: those of the lead member, ``members[0]``, the one ranked first.
    """

    def __init__(self, members: Sequence[ArchtuneNet]):
        nn.Module.__init__(self)  # no spec of its own: each member has one
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.spec_name = f"ensemble of {len(members)}: " + ", ".join(m.spec_name for m in members)

    @property
    def lead(self) -> ArchtuneNet:
        return self.members[0]  # type: ignore[return-value]

    @property  # type: ignore[override]
    def blocks(self) -> nn.Sequential:
        return self.lead.blocks

    @property  # type: ignore[override]
    def layer_infos(self) -> list[LayerInfo]:
        return self.lead.layer_infos

    @property  # type: ignore[override]
    def mean(self) -> torch.Tensor:
        return self.lead.mean

    @property  # type: ignore[override]
    def std(self) -> torch.Tensor:
        return self.lead.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).float().softmax(1) for m in self.members]).mean(0)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def _holder(module: nn.Module) -> nn.Module:
    """The module of a layer that holds layers (``layers`` and branch attributes)."""
    if hasattr(module, "layers"):
        return module
    return next(m for m in module.children() if hasattr(m, "layers"))


def module_at(model: ArchtuneNet, address: Address) -> nn.Module:
    """The module of the spec layer at ``address`` (see :func:`archtune.specs.walk`)."""
    module: nn.Module = model.blocks[address[0]]
    rest = list(address[1:])
    while rest:
        holder = _holder(module)
        branch = getattr(holder, rest.pop(0)) if isinstance(rest[0], str) else holder.layers
        module = branch[rest.pop(0)]
    return module


def weight_layers(model: ArchtuneNet) -> dict[str, nn.Parameter]:
    """The trainable weight matrix or kernel of each layer that has one, nested layers included,
    keyed by the layer's name (``conv2d_0``, ``residual_3.conv2d_1``), in spec order."""
    out = {}
    for found in walk(model.layer_infos):
        if found.info.children:
            continue  # a block: its layers have the weights
        for p_name, p in module_at(model, found.address).named_parameters():
            if p_name.endswith("weight") and p.dim() > 1 and p.requires_grad:
                out[found.name] = p
                break
    return out


def build_model(spec: Spec, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ArchtuneNet:
    """Build the torch module of a validated spec (weights initialised as the spec says)."""
    return ArchtuneNet(spec, mean, std)
