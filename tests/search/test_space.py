from __future__ import annotations

import json

import optuna
import pytest

from archtune import ArchtuneError
from archtune.search import canonical_json, list_spaces, load_space, refine_space
from archtune.specs import infer_shapes, spec_from_dict, totals

from .conftest import GRID_SPACE, TINY_SPACE, space


def test_builtin_spaces_and_reference_grid_sizes() -> None:
    assert {"default-space", "seed-cnn-grid", "seed-mlp-grid"} <= set(list_spaces())
    cnn = load_space("seed-cnn-grid")
    # 2 lr x 3 dropout x (3 filters x 2 kernels x 2 strides) per conv layer, squared, x 2 optimizers
    assert len(cnn.grid()) == 2 * 3 * (3 * 2 * 2) ** 2 * 2 == 1728
    assert len(load_space("seed-mlp-grid").grid()) == 3 * 2 * 3 * 3 ** 2 * 2 == 324
    with pytest.raises(ArchtuneError, match="continuous range"):
        load_space("default-space").grid()


@pytest.mark.parametrize("name", list_spaces())
def test_every_builtin_space_builds_for_any_channels_and_size(name: str) -> None:
    """Start points and sampled candidates of each space bind to 1 or 3 channels at 28, 32 and
    64 pixels (or the size the space names) and give one score per class."""
    import torch

    from archtune.models import build_model
    from archtune.specs import summary

    space_ = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    candidates = [space_.resolve(p) for p in space_.settings.start or []]
    candidates += [space_.sample(study.ask()) for _ in range(2)]
    for raw in candidates:
        spec = spec_from_dict(raw)
        for channels in (1, 3):
            for size in (28, 32, 64):
                h, w = spec.data.image_size or (size, size)
                bound = spec.for_input((h, w, channels)).for_classes(5)
                assert f"(None, {h}, {w}, {channels})" in summary(bound)
                with torch.no_grad():
                    out = build_model(bound).eval()(torch.rand(2, channels, h, w))
                assert out.shape == (2, 5), (name, raw.get("name"), channels, size)


def test_every_reference_grid_candidate_is_a_valid_model() -> None:
    cnn = load_space("seed-cnn-grid")
    grid = cnn.grid()
    specs = [spec_from_dict(cnn.resolve(p)) for p in grid[::97]]
    sgd = [s for s in specs if s.train.optimizer == "sgd"]
    assert sgd and all(s.train.nesterov and s.train.momentum == 0.9 for s in sgd)
    assert all(s.train.batch_size == 32 for s in specs)
    assert all(s.layers[0].args["padding"] == "same" for s in specs)


def test_conditional_grid_has_no_duplicate_models() -> None:
    s = load_space(space(TINY_SPACE, lr={"choice": [0.01, 0.02]}))
    assert s.names == ["conv.n", "conv.1.filters", "conv.2.filters", "train.lr",
                       "train.optimizer"]
    grid = s.grid()
    # conv.n=1: 2 widths; conv.n=2: 2 x 2 widths; x 2 lr x 2 optimizers
    assert len(grid) == (2 + 4) * 2 * 2
    assert all(("conv.2.filters" in p) == (p["conv.n"] == 2) for p in grid)
    resolved = [canonical_json(s.resolve(p)) for p in grid]
    assert len(set(resolved)) == len(grid)


def test_labelled_branch_sets_key_and_adds_its_own_keys() -> None:
    s = load_space(space(TINY_SPACE))
    base = {"conv.n": 1, "conv.1.filters": 2, "train.lr": 0.01}
    sgd = s.resolve(base | {"train.optimizer": "sgd"})["train"]
    adam = s.resolve(base | {"train.optimizer": "adam"})["train"]
    assert sgd["optimizer"] == "sgd" and sgd["momentum"] == 0.9 and sgd["nesterov"] is True
    assert adam["optimizer"] == "adam" and "nesterov" not in adam


def test_dimensions_inside_a_branch_exist_only_with_it() -> None:
    raw = space(TINY_SPACE)
    raw["train"]["optimizer"]["choice"]["sgd"]["momentum"] = {"float": [0.5, 0.95]}
    s = load_space(raw)
    assert "train.momentum@sgd" in s.names
    grid_free = s.resolve({"conv.n": 1, "conv.1.filters": 2, "train.lr": 0.01,
                           "train.optimizer": "adam"})
    assert "momentum" not in grid_free["train"]
    with pytest.raises(ArchtuneError, match="no value for 'train.momentum@sgd'"):
        s.resolve({"conv.n": 1, "conv.1.filters": 2, "train.lr": 0.01, "train.optimizer": "sgd"})


def test_same_name_same_range_shares_one_value() -> None:
    mlp = load_space("seed-mlp-grid")
    assert mlp.names.count("dropout") == 1
    layers = mlp.resolve(mlp.grid()[5])["layers"]
    rates = [layer["Dropout"]["rate"] for layer in layers if "Dropout" in layer]
    assert len(rates) == 2 and rates[0] == rates[1]


def test_branch_list_is_spliced_into_layers() -> None:
    raw = space(TINY_SPACE, lr=0.01)
    raw["layers"].insert(2, {"name": "head", "choice": {
        "none": [], "dense": [{"Dense": {"units": {"choice": [8, 16]}, "activation": "relu"}},
                              {"Dropout": 0.1}]}})
    s = load_space(raw)
    assert "layers.2.0.units@dense" in s.names
    base = {"conv.n": 1, "conv.1.filters": 2, "train.optimizer": "adam"}
    without = s.resolve(base | {"head": "none"})["layers"]
    with_head = s.resolve(base | {"head": "dense", "layers.2.0.units@dense": 16})["layers"]
    assert len(with_head) == len(without) + 2 and with_head[3] == {"Dense": {"units": 16,
                                                                            "activation": "relu"}}
    spec = spec_from_dict(s.resolve(base | {"head": "dense", "layers.2.0.units@dense": 8}))
    assert totals(infer_shapes(spec)).params > 0


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["train"].update(lr={"float": [0.05, 0.001]}), "empty range"),
    (lambda r: r["train"].update(lr={"float": [0.0, 0.1], "log": True}), "log-scale range must be above 0"),
    (lambda r: r["train"].update(lr={"float": [0.001, 0.1], "stpe": 0.01}), "did you mean 'step'"),
    (lambda r: r["train"].update(lr={"choice": []}), "empty choice"),
    (lambda r: r["train"].update(lr={"choise": [0.1, 0.2]}), "did you mean 'choice'"),
    (lambda r: r["train"].update(lr={"choice": [0.1, 0.1]}), "appears twice"),
    (lambda r: r["train"].update(batch_size={"int": [16, 64], "step": 10}), "whole number of steps"),
    (lambda r: r["train"].update(batch_size={"int": [16.5, 64]}), "two integers"),
    (lambda r: r["train"].update(lr={"float": ["1e-4", 0.1]}), "write 1.0e-4"),
    (lambda r: r["train"].update(lr={"float": [-1.0, 0.1]}), "train.lr = -1.0: .*must be > 0"),
    (lambda r: r["train"].update(optimiser="adam"), "unknown key 'optimiser'"),
    (lambda r: r.update(trian={}), "unknown key 'trian'"),
    (lambda r: r["layers"][0]["block"][0]["Conv2D"].update(kernel={"choice": [3, 5]}, filtrs=4),
     "unknown argument 'filtrs'"),
    (lambda r: r["train"]["optimizer"]["choice"].update(rms={"optimizer": "x"}), "already set"),
    (lambda r: r["train"]["optimizer"]["choice"].update(sgdd={"momentun": 0.5}),
     "train.optimizer = \"sgdd\""),
    (lambda r: r.update(data={"train_subset": {"int": [100, 200]}}), "only in layers and train"),
    (lambda r: r["layers"][0].update(repeat={"int": [1, 40]}), "from 0 to 16"),
    (lambda r: r.update(search={"sampler": "tpee"}), "did you mean 'tpe'"),
    (lambda r: r.update(search={"sampler": "tpe", "fraction": 0.1}), "use it with sampler 'grid'"),
])
def test_invalid_spaces_name_the_problem(edit, message) -> None:
    raw = space(TINY_SPACE)
    edit(raw)
    with pytest.raises(ArchtuneError, match=message):
        load_space(raw)


def test_space_file_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("layers: [Flatten, {Dense: {units: {int: [10, 2]}}}]\n")
    with pytest.raises(ArchtuneError, match=r"bad.yaml: layers\.1\.Dense\.units: empty range"):
        load_space(path)
    with pytest.raises(ArchtuneError, match="did you mean 'seed-cnn-grid'"):
        load_space("seed-cnn-gird")


def test_fraction_is_seeded_without_repeats_and_rounded_down() -> None:
    cnn = load_space("seed-cnn-grid")
    first, size = cnn.select(0.1, seed=7)
    again, _ = cnn.select(0.1, seed=7)
    other, _ = cnn.select(0.1, seed=8)
    assert size == 1728 and len(first) == 172  # floor(172.8), as Talos rounds
    assert first == again and first != other
    keys = {canonical_json(p) for p in first}
    assert len(keys) == 172 and keys <= {canonical_json(p) for p in cnn.grid()}
    assert len(cnn.select(0.0001, seed=0)[0]) == 1


def test_space_hash_is_stable_through_json() -> None:
    s = load_space(space(TINY_SPACE))
    again = load_space(json.loads(json.dumps(s.raw)))
    assert s.hash == again.hash and len(s.hash) == 64


def _study_with(trials: list[tuple[dict, float]], s) -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="coarse")
    dists = {d.name: d.distribution() for d in s.dims}
    for params, value in trials:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: dists[k] for k in params}, value=value))
    return study


def test_refine_narrows_ranges_and_keeps_used_choices() -> None:
    s = load_space(space(TINY_SPACE))
    good = {"conv.n": 2, "conv.1.filters": 4, "conv.2.filters": 4, "train.optimizer": "adam"}
    study = _study_with([
        (good | {"train.lr": 0.01}, 0.95), (good | {"train.lr": 0.012}, 0.94),
        (good | {"train.lr": 0.009, "conv.2.filters": 2}, 0.93),
        ({"conv.n": 1, "conv.1.filters": 2, "train.optimizer": "sgd", "train.lr": 0.05}, 0.5),
    ], s)
    refined, numbers = refine_space(s, study, top=3)
    assert numbers == [0, 1, 2]
    lr = refined.dim("train.lr")
    assert 0.005 <= lr.low < 0.009 and 0.012 < lr.high <= 0.05 and lr.log
    assert refined.dim("train.optimizer").choices == ("adam",)
    assert refined.raw["layers"][0]["repeat"] == 2  # every top trial used two blocks
    # a repeated block has one template: its refined choices are the union over the repeats
    assert refined.dim("conv.1.filters").choices == refined.dim("conv.2.filters").choices == (2, 4)
    with pytest.raises(ArchtuneError, match="no complete trial"):
        refine_space(s, optuna.create_study(direction="maximize"))


def test_grid_spaces_list_every_combination() -> None:
    g = load_space(GRID_SPACE)
    assert len(g.grid()) == 4 and g.settings.sampler == "grid"


def test_default_space_starts_from_the_default_recipe() -> None:
    from archtune.specs import load_spec

    s = load_space("default-space")
    start = spec_from_dict(s.resolve(s.settings.start[0])).to_dict()
    default = load_spec("default").to_dict()
    assert start["layers"] == default["layers"] and start["data"] == default["data"]
    assert {k: v for k, v in start["train"].items() if k != "epochs"} == \
        {k: v for k, v in default["train"].items() if k != "epochs"}


@pytest.mark.parametrize("start, message", [
    ([{"train.lr": 0.01}], "no value for 'conv.n'"),
    ([{"conv.n": 1, "conv.1.filters": 2, "train.lr": 0.9, "train.optimizer": "sgd"}], "outside"),
    ([{"conv.n": 1, "conv.1.filters": 2, "conv.2.filters": 2, "train.lr": 0.01,
       "train.optimizer": "sgd"}], "conv.2.filters not used"),
    ([{"conv.nn": 1}], "did you mean 'conv.n'"),
])
def test_start_points_must_be_whole_candidates(start, message) -> None:
    raw = space(TINY_SPACE)
    raw["search"] = {"start": start}
    with pytest.raises(ArchtuneError, match=message):
        load_space(raw)


def test_auto_space_starts_from_the_two_recipes() -> None:
    """auto-space's start points build the default and accurate nets (same parameters and
    FLOPs as the built-in specs), and every dimension is reachable."""
    from archtune.search import load_space
    from archtune.specs import infer_shapes, load_spec, spec_from_dict, totals

    s = load_space("auto-space")
    built = [totals(infer_shapes(spec_from_dict(s.resolve(p)))) for p in s.settings.start]
    for t, name in zip(built, ("default", "accurate"), strict=True):
        ref = totals(infer_shapes(load_spec(name)))
        assert (t.params, t.flops) == (ref.params, ref.flops), name
    assert {"arch", "block1", "width3", "ema", "translate", "lr"} <= set(s.names)
