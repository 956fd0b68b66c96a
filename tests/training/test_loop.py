"""predict_logits returns logits; predict_log_probs returns log-probabilities (with or without TTA)."""

from __future__ import annotations

import inspect

import torch

from archtune import build_model
from archtune.specs import spec_from_dict
from archtune.training import predict_log_probs, predict_logits


def test_logits_and_log_probabilities_are_what_their_names_say() -> None:
    torch.manual_seed(0)
    model = build_model(spec_from_dict({"input_shape": [6, 5, 1], "layers": [
        {"Conv2D": {"filters": 2, "kernel_size": 3}}, "Flatten", {"Dense": 4}]}))
    x = torch.rand(7, 1, 6, 5)
    with torch.no_grad():
        logits, mirrored = model(x), model(x.flip(3))
    assert torch.allclose(predict_logits(model, x, batch_size=3), logits, atol=1e-6)
    assert "tta" not in inspect.signature(predict_logits).parameters
    plain = predict_log_probs(model, x, batch_size=3)
    assert torch.allclose(plain, logits.log_softmax(1), atol=1e-6)
    tta = predict_log_probs(model, x, batch_size=3, tta=True)
    mean = (logits.softmax(1) + mirrored.softmax(1)) / 2
    assert torch.allclose(tta.exp(), mean, atol=1e-6) and torch.allclose(tta.exp().sum(1), torch.ones(7))
    assert not torch.allclose(tta, plain, atol=1e-3)  # the mirror really counts
