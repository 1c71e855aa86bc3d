"""The search space (PLAYBOOK.md section 1): default ranges, log(1-beta) scale, overrides, parsing."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from optuna.distributions import FloatDistribution

from adamtune import DEFAULT_ADAM, DEFAULT_SPECS, AdamConfig, ConfigError, HyperparameterSpec, SearchSpace
from adamtune.config import CODE_ULPS, OptimizerName
from adamtune.space import HYPERPARAMETERS, parse_fixed, parse_limit, parse_names, parse_range

KNOWN = "lr, beta1, beta2, eps, weight_decay"


def spec(name: str) -> HyperparameterSpec:
    return next(s for s in DEFAULT_SPECS if s.name == name)


# --- defaults --------------------------------------------------------------------------------


def test_default_specs_match_playbook_section_1() -> None:
    assert [s.to_dict() for s in DEFAULT_SPECS] == [
        {"name": "lr", "low": 1e-5, "high": 1e-3, "scale": "log", "fixed": None},
        {"name": "beta1", "low": 0.9, "high": 0.999, "scale": "log1m", "fixed": 0.9},
        {"name": "beta2", "low": 0.99, "high": 0.999, "scale": "log1m", "fixed": 0.999},
        {"name": "eps", "low": 1e-8, "high": 1e-6, "scale": "log", "fixed": 1e-8},
        {"name": "weight_decay", "low": 1e-5, "high": 1e-1, "scale": "log", "fixed": 0.0},
    ]
    assert tuple(s.name for s in DEFAULT_SPECS) == HYPERPARAMETERS


def test_default_adam_is_kingma_and_ba() -> None:
    expected = AdamConfig(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, optimizer="adam")
    assert expected == DEFAULT_ADAM


def test_beta_ranges_are_searched_as_one_minus_beta_in_playbook_ranges() -> None:
    beta1, beta2 = spec("beta1").distribution(), spec("beta2").distribution()
    assert (beta1.low, beta1.high, beta1.log) == (pytest.approx(1e-3), pytest.approx(1e-1), True)
    assert (beta2.low, beta2.high, beta2.log) == (pytest.approx(1e-3), pytest.approx(1e-2), True)


# --- the log(1-beta) scale -------------------------------------------------------------------


def test_log_one_minus_beta_puts_half_of_beta1_above_0_99() -> None:
    beta1 = spec("beta1")
    units = np.random.default_rng(0).random(20_000)
    values = np.array([beta1.value_from_param(beta1.param_from_unit(float(u))) for u in units])
    assert values.min() >= 0.9
    assert values.max() <= 0.999
    assert np.mean(values > 0.99) == pytest.approx(0.50, abs=0.02)
    # Linear sampling over the same range would put only (0.999 - 0.99) / (0.999 - 0.9) above.
    linear = 0.9 + units * (0.999 - 0.9)
    assert np.mean(linear > 0.99) == pytest.approx(0.0909, abs=0.01)


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("beta2", 0.9999, "0.9999"),  # 3 significant figures of its own: 1
        ("beta2", 0.998587, "0.99859"),  # 1 - beta2 = 0.001413: 0.999
        ("beta1", 0.9, "0.9"),
        ("beta1", 0.95, "0.95"),
        ("beta1", 0.5, "0.5"),
        ("beta1", 0.0, "0"),
        ("lr", 0.012345, "0.0123"),
        ("eps", 1e-8, "1e-08"),
    ],
)
def test_values_are_shown_to_three_significant_figures_of_one_minus_beta(
    name: str, value: float, shown: str
) -> None:
    assert spec(name).value_text(value) == shown


def test_table_cells_and_short_configs_keep_betas_apart_from_1() -> None:
    from adamtune.config import cell_text

    # By 4 figures of its own, beta2 0.99999 would read 1 in the trials and confirmation tables.
    assert cell_text(0.99999, "beta2") == "0.99999"
    assert cell_text(0.977123, "beta1") == "0.97712"
    assert cell_text(0.0012345, "lr") == "0.001234"
    assert cell_text(0.99999) == "1"  # a metric is just a number
    assert (cell_text(None, "beta1"), cell_text(math.inf)) == ("", "inf")
    config = AdamConfig(lr=0.0236, beta1=0.92218, beta2=0.99999, eps=1e-8)
    assert config.short() == "lr=0.0236 beta1=0.9222 beta2=0.99999 eps=1e-08"


def test_a_range_is_shown_by_its_ends_value_texts() -> None:
    assert spec("beta2").with_range(0.9, 0.9999).range_text("..") == "0.9..0.9999"
    assert spec("lr").range_text() == "1e-05:0.001"


def test_a_space_shows_its_tuned_ranges_in_order() -> None:
    space = SearchSpace.build(("beta2", "lr"), ranges={"beta2": (0.9, 0.9999)})
    assert space.tuned_ranges() == ["lr 1e-05..0.001", "beta2 0.9..0.9999"]
    assert space.tuned_ranges(" .. ")[0] == "lr 1e-05 .. 0.001"


def test_param_from_unit_ends_and_middle() -> None:
    lr, beta1 = spec("lr"), spec("beta1")
    assert lr.param_from_unit(0.0) == pytest.approx(1e-5, rel=1e-12)
    assert lr.param_from_unit(0.5) == pytest.approx(1e-4, rel=1e-12)
    assert lr.param_from_unit(1.0) == pytest.approx(1e-3, rel=1e-12)
    # unit 0 is the small end of 1-beta1, i.e. beta1 = 0.999; unit 1 is beta1 = 0.9
    assert beta1.value_from_param(beta1.param_from_unit(0.0)) == pytest.approx(0.999, abs=1e-12)
    assert beta1.value_from_param(beta1.param_from_unit(0.5)) == pytest.approx(0.99, abs=1e-12)
    assert beta1.value_from_param(beta1.param_from_unit(1.0)) == pytest.approx(0.9, abs=1e-12)
    for s in DEFAULT_SPECS:
        dist = s.distribution()
        for unit in (0.0, 1.0, 1 - 1e-16):
            assert dist.low <= s.param_from_unit(unit) <= dist.high


def test_optuna_params_names_and_distributions() -> None:
    beta1, lr = spec("beta1"), spec("lr")
    assert beta1.param_name == "one_minus_beta1"
    assert beta1.distribution() == FloatDistribution(1 - 0.999, 1 - 0.9, log=True)
    assert lr.param_name == "lr"
    assert lr.distribution() == FloatDistribution(1e-5, 1e-3, log=True)
    assert spec("beta2").param_name == "one_minus_beta2"
    assert spec("eps").param_name == "eps"

    space = SearchSpace.build(("lr", "beta1"))
    assert space.distributions() == {
        "lr": FloatDistribution(1e-5, 1e-3, log=True),
        "one_minus_beta1": FloatDistribution(1 - 0.999, 1 - 0.9, log=True),
    }


@pytest.mark.parametrize("name", HYPERPARAMETERS)
def test_unit_value_roundtrip(name: str) -> None:
    s = spec(name)
    for unit in np.linspace(0.0, 1.0, 41):
        value = s.value_from_param(s.param_from_unit(float(unit)))
        assert s.unit_from_value(value) == pytest.approx(unit, abs=1e-9)
        assert s.param_from_value(value) == pytest.approx(s.param_from_unit(float(unit)), rel=1e-9)


def test_params_from_unit_needs_one_coordinate_per_tuned() -> None:
    space = SearchSpace.build(("lr", "beta1"))
    params = space.params_from_unit([0.5, 0.5])
    assert params == {"lr": pytest.approx(1e-4), "one_minus_beta1": pytest.approx(1e-2)}
    with pytest.raises(ValueError, match="expected a point with 2 coordinates"):
        space.params_from_unit([0.5])


# --- building a space ------------------------------------------------------------------------


def test_build_with_ranges_and_fixed_overrides() -> None:
    space = SearchSpace.build(
        ("lr", "beta1"),
        ranges={"lr": (1e-5, 1e-1), "beta1": (0.5, 0.99)},
        fixed={"beta2": 0.98, "eps": 1e-6},
    )
    assert space.tuned == ("lr", "beta1")
    assert (space.spec("lr").low, space.spec("lr").high) == (1e-5, 1e-1)
    assert (space.spec("beta1").low, space.spec("beta1").high) == (0.5, 0.99)
    assert space.spec("beta2").fixed == 0.98
    assert space.spec("eps").fixed == 1e-6
    assert space.spec("weight_decay").fixed == 0.0
    assert space.spec("beta1").distribution() == FloatDistribution(1 - 0.99, 1 - 0.5, log=True)
    assert space.describe() == [
        "lr            tuned  1e-05 .. 0.1 (log)",
        "beta1         tuned  0.5 .. 0.99 (log(1-beta))",
        "beta2         fixed  0.98",
        "eps           fixed  1e-06",
        "weight_decay  fixed  0",
    ]


def test_config_from_params_gives_beta_values_and_fixed_rest() -> None:
    space = SearchSpace.build(("lr", "beta1"), fixed={"beta2": 0.98})
    config = space.config_from_params({"lr": 3e-4, "one_minus_beta1": 0.01})
    assert config == AdamConfig(
        lr=3e-4, beta1=1.0 - 0.01, beta2=0.98, eps=1e-8, weight_decay=0.0, optimizer="adam"
    )
    assert config.beta1 == pytest.approx(0.99)


def test_a_point_on_the_default_edges_matches_adams_defaults_up_to_rounding() -> None:
    space = SearchSpace.build(("lr", "beta1"))
    # A GP point on the edges lr = 1e-3 and 1 - beta1 = 0.1, as a real study stored it.
    edge = space.config_from_params({"lr": 1e-3, "one_minus_beta1": 0.0999999999999999})
    assert edge.beta1 == 0.9000000000000001 and edge != DEFAULT_ADAM
    assert edge.matches(DEFAULT_ADAM) and DEFAULT_ADAM.matches(edge)
    assert not DEFAULT_ADAM.matches(AdamConfig(lr=1e-3, beta1=0.9 + 1e-9))  # 1 - beta1 off by 1e-8
    assert not DEFAULT_ADAM.matches(AdamConfig(lr=1.001e-3))
    assert not DEFAULT_ADAM.matches(AdamConfig(lr=1e-3, optimizer="adamw"))


def test_tuned_is_stored_in_canonical_order() -> None:
    space = SearchSpace.build(("beta1", "lr"))
    assert space.tuned == ("lr", "beta1")
    assert space == SearchSpace.build(("lr", "beta1"))
    assert SearchSpace.build(("eps", "beta2", "lr")).tuned == ("lr", "beta2", "eps")
    assert [s.name for s in space.tuned_specs] == ["lr", "beta1"]


def test_lr_may_be_fixed_instead_of_tuned() -> None:
    space = SearchSpace.build(("beta1",), fixed={"lr": 1e-3})
    assert space.tuned == ("beta1",)
    assert space.config_from_params({"one_minus_beta1": 0.1}).lr == 1e-3


def test_to_dict_from_dict_roundtrip() -> None:
    space = SearchSpace.build(
        ("beta1", "lr", "weight_decay"),
        ranges={"lr": (1e-4, 1e-2)},
        fixed={"eps": 1e-7},
        optimizer="adamw",
    )
    data = json.loads(json.dumps(space.to_dict()))
    assert data["optimizer"] == "adamw"
    assert data["tuned"] == ["lr", "beta1", "weight_decay"]
    assert data["specs"][0] == {"name": "lr", "low": 1e-4, "high": 1e-2, "scale": "log", "fixed": None}
    assert data["specs"][3]["fixed"] == 1e-7
    assert SearchSpace.from_dict(data) == space


def test_differences() -> None:
    base = SearchSpace.build(("lr",))
    assert base.differences(SearchSpace.build(("lr",))) == []
    wide = SearchSpace.build(("lr",), ranges={"lr": (1e-5, 1e-1)})
    assert wide.differences(base) == ["lr range 1e-05:0.1 vs 1e-05:0.001"]
    beta2 = SearchSpace.build(("lr",), fixed={"beta2": 0.98})
    assert beta2.differences(base) == ["beta2 fixed at 0.98 vs 0.999"]
    both = SearchSpace.build(("lr",), ranges={"lr": (1e-5, 1e-1)}, fixed={"beta2": 0.98})
    assert both.differences(base) == ["lr range 1e-05:0.1 vs 1e-05:0.001", "beta2 fixed at 0.98 vs 0.999"]
    assert SearchSpace.build(("lr", "beta1")).differences(base)[0] == "tuned lr,beta1 vs lr"
    limited = SearchSpace.build(("lr",), limits={"lr": (1e-6, 1)})
    assert limited.differences(base) == ["lr limit 1e-06:1 vs none"]
    adamw = SearchSpace.build(("lr",), optimizer="adamw")
    assert adamw.differences(base) == ["optimizer adamw vs adam", "weight_decay fixed at 0.01 vs 0.0"]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ranges": {"lr": (1e-3, 1e-5)}}, "range for lr: expected low < high, got 0.001:1e-05"),
        ({"ranges": {"lr": (1e-3, 1e-3)}}, "range for lr: expected low < high, got 0.001:0.001"),
        ({"ranges": {"lr": (0.0, 1e-3)}}, "range for lr: expected values in (0, inf), got 0:0.001"),
        ({"ranges": {"lr": (-1.0, 1e-3)}}, "range for lr: expected values in (0, inf), got -1:0.001"),
        ({"ranges": {"beta1": (0.9, 1.0)}}, "range for beta1: expected values in [0, 1), got 0.9:1"),
        ({"ranges": {"beta2": (0.99, 1.5)}}, "range for beta2: expected values in [0, 1), got 0.99:1.5"),
        ({"fixed": {"beta1": 1.0}}, "fixed value for beta1: expected a value in [0, 1), got 1"),
        ({"fixed": {"beta2": 1.0}}, "fixed value for beta2: expected a value in [0, 1), got 1"),
        ({"fixed": {"eps": 0.0}}, "fixed value for eps: expected a value in (0, inf), got 0"),
        ({"fixed": {"eps": -1e-8}}, "fixed value for eps: expected a value in (0, inf), got -1e-08"),
        ({"ranges": {"eps": (0.0, 1e-6)}}, "range for eps: expected values in (0, inf), got 0:1e-06"),
        (
            {"ranges": {"weight_decay": (0.0, 1e-1)}},
            "range for weight_decay: expected values in (0, inf), got 0:0.1",
        ),
        ({"fixed": {"weight_decay": -0.1}}, "fixed value for weight_decay: expected a value in [0, inf)"),
        ({"fixed": {"momentum": 0.9}}, f"unknown hyperparameter 'momentum': expected one of {KNOWN}"),
        ({"ranges": {"gamma": (0.1, 0.2)}}, f"unknown hyperparameter 'gamma': expected one of {KNOWN}"),
        ({"optimizer": "sgd"}, "optimizer: expected one of ('adam', 'adamw', 'nadam', 'nadamw'), got 'sgd'"),
    ],
)
def test_build_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        SearchSpace.build(("lr",), **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_fixed_weight_decay_zero_is_legal() -> None:
    assert SearchSpace.build(("lr",), fixed={"weight_decay": 0.0}).spec("weight_decay").fixed == 0.0


@pytest.mark.parametrize(
    ("tuned", "message"),
    [
        (
            ("beta1", "weight_decay"),
            "tune: expected lr among the tuned hyperparameters (it has no default value) or a fixed lr "
            "(--fix lr=VALUE, or fixed={'lr': VALUE}), got beta1, weight_decay",
        ),
        ((), "tuned hyperparameters: expected at least one, got none"),
        (("lr", "lr"), "tuned hyperparameters: expected no repeats, got ('lr', 'lr')"),
        (("lr", "momentum"), f"unknown hyperparameter 'momentum': expected one of {KNOWN}"),
    ],
)
def test_build_rejects_bad_tuned_sets(tuned: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SearchSpace.build(tuned)


def test_spec_rejects_unknown_name() -> None:
    with pytest.raises(ConfigError, match=re.escape(f"expected one of {KNOWN}")):
        HyperparameterSpec("alpha", 0.1, 0.2, "log", None)
    with pytest.raises(ConfigError, match="unknown hyperparameter 'alpha'"):
        SearchSpace.build(("lr",)).spec("alpha")


# --- parsing command-line values -------------------------------------------------------------


def test_parse_valid_values() -> None:
    assert parse_range("lr=1e-5:1e-1") == ("lr", (1e-5, 1e-1))
    assert parse_range(" beta1 = 0.5:0.99 ") == ("beta1", (0.5, 0.99))
    assert parse_fixed("beta2=0.98") == ("beta2", 0.98)
    assert parse_limit("lr=1e-6:1") == ("lr", (1e-6, 1.0))
    assert parse_names("lr, beta1") == ("lr", "beta1")
    assert parse_names("lr,beta1,eps,") == ("lr", "beta1", "eps")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", "--range: expected NAME=LOW:HIGH such as lr=1e-5:1e-1, got 'lr'"),
        ("lr=1e-5", "--range: expected NAME=LOW:HIGH such as lr=1e-5:1e-1, got 'lr=1e-5'"),
        ("lr=a:b", "range for lr: expected a number, got 'a'"),
        ("lr=1e-5:b", "range for lr: expected a number, got 'b'"),
        ("=1", "--range: expected NAME=LOW:HIGH such as lr=1e-5:1e-1, got '=1'"),
        ("lr=nan:1", "range for lr: expected a finite number, got 'nan'"),
        ("lr=1e-5:inf", "range for lr: expected a finite number, got 'inf'"),
        ("lr=", "--range: expected NAME=LOW:HIGH such as lr=1e-5:1e-1, got 'lr='"),
        ("foo=1:2", f"unknown hyperparameter 'foo': expected one of {KNOWN}"),
    ],
)
def test_parse_range_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_range(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", "--fix: expected NAME=VALUE such as beta2=0.98, got 'lr'"),
        ("=1", "--fix: expected NAME=VALUE such as beta2=0.98, got '=1'"),
        ("beta2=", "--fix: expected NAME=VALUE such as beta2=0.98, got 'beta2='"),
        ("beta2=x", "fixed value for beta2: expected a number, got 'x'"),
        ("beta2=nan", "fixed value for beta2: expected a finite number, got 'nan'"),
        ("foo=1", f"unknown hyperparameter 'foo': expected one of {KNOWN}"),
    ],
)
def test_parse_fixed_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_fixed(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--tune: expected names such as lr,beta1, got ''"),
        (" , ", "--tune: expected names such as lr,beta1, got ' , '"),
        ("lr,momentum", f"unknown hyperparameter 'momentum': expected one of {KNOWN}"),
    ],
)
def test_parse_names_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_names(text)


# --- AdamW and the torch optimizer -----------------------------------------------------------


@pytest.mark.parametrize("name", ["adamw", "nadamw"])
def test_decoupled_optimizers_fix_weight_decay_at_adamws_default_unless_given(name: OptimizerName) -> None:
    decoupled = SearchSpace.build(("lr",), optimizer=name)
    assert decoupled.spec("weight_decay").fixed == 1e-2 and decoupled.uses_weight_decay
    config = decoupled.config_from_params({"lr": 1e-4})
    assert (config.optimizer, config.weight_decay) == (name, 1e-2)
    given = SearchSpace.build(("lr",), optimizer=name, fixed={"weight_decay": 0.0})
    assert given.config_from_params({"lr": 1e-4}).weight_decay == 0.0
    for coupled in ("adam", "nadam"):
        space = SearchSpace.build(("lr",), optimizer=coupled)  # type: ignore[arg-type]
        assert space.config_from_params({"lr": 1e-4}).weight_decay == 0.0 and not space.uses_weight_decay


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("nadam", torch.optim.NAdam),
        ("nadamw", torch.optim.NAdam),
    ],
)
def test_make_optimizer(name: str, cls: type[torch.optim.Optimizer]) -> None:
    config = AdamConfig(lr=3e-4, beta1=0.95, beta2=0.98, eps=1e-7, weight_decay=0.05, optimizer=name)  # type: ignore[arg-type]
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = config.make_optimizer([weight])
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 3e-4
    assert tuple(group["betas"]) == (0.95, 0.98)
    assert group["eps"] == 1e-7
    assert group["weight_decay"] == 0.05
    assert group["params"] == [weight]
    if cls is torch.optim.NAdam:
        assert group["decoupled_weight_decay"] == (name == "nadamw")
        assert group["momentum_decay"] == 0.004


@pytest.mark.parametrize(
    ("config", "code"),
    [
        (
            AdamConfig(lr=0.012959664982864487, beta1=0.9832474950061473),
            "torch.optim.Adam(model.parameters(), lr=0.012959664982864487, "
            "betas=(0.9832474950061473, 0.999), eps=1e-08)",
        ),
        (
            AdamConfig(lr=1e-4, weight_decay=0.01, optimizer="adamw"),
            "torch.optim.AdamW(model.parameters(), lr=0.0001, "
            "betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)",
        ),
        (
            AdamConfig(lr=1e-4, optimizer="adamw"),  # AdamW's own default is 0.01: say 0
            "torch.optim.AdamW(model.parameters(), lr=0.0001, "
            "betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)",
        ),
        (
            AdamConfig(lr=2e-3, beta1=0.95, optimizer="nadam"),
            "torch.optim.NAdam(model.parameters(), lr=0.002, betas=(0.95, 0.999), eps=1e-08)",
        ),
        (
            AdamConfig(lr=1e-3, weight_decay=0.05, optimizer="nadamw"),  # NAdamW: NAdam, decoupled
            "torch.optim.NAdam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-08, "
            "weight_decay=0.05, decoupled_weight_decay=True)",
        ),
    ],
)
def test_torch_code_builds_the_same_optimizer(config: AdamConfig, code: str) -> None:
    assert config.torch_code() == code
    model = torch.nn.Linear(2, 1)
    pasted = eval(code, {"torch": torch, "model": model})  # what a user pastes into a script
    built = config.make_optimizer(model.parameters())
    assert type(pasted) is type(built)
    assert {k: v for k, v in pasted.param_groups[0].items() if k != "params"} == {
        k: v for k, v in built.param_groups[0].items() if k != "params"
    }


def test_torch_code_writes_a_range_ends_rounding_short_and_a_drawn_value_in_full() -> None:
    # A GP point on the ends lr = 1e-3, 1 - beta1 = 0.1 and beta2's 1 - 1e-3, as studies store them.
    space = SearchSpace.build(("lr", "beta1", "beta2"))
    params = {"lr": 0.0009999999999999994, "one_minus_beta1": 0.0999999999999999}
    edge = space.config_from_params({**params, "one_minus_beta2": 0.0009999999999999})
    assert (edge.lr, edge.beta1) == (0.0009999999999999994, 0.9000000000000001)
    assert edge.beta2 == 0.9990000000000001
    code = edge.torch_code()
    assert code == "torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-08)"
    drawn = AdamConfig(lr=0.0123456789012345, beta1=0.9000000001, eps=3.0000000000000004e-07)
    assert drawn.torch_code() == (
        "torch.optim.Adam(model.parameters(), lr=0.0123456789012345, betas=(0.9000000001, 0.999), eps=3e-07)"
    )
    # Every value written is the trained one to within a few units in the last place.
    for config in (edge, drawn):
        pasted = eval(config.torch_code(), {"torch": torch, "model": torch.nn.Linear(2, 1)})
        group = pasted.param_groups[0]
        written = (group["lr"], *group["betas"], group["eps"])
        for value, trained in zip(written, (config.lr, config.beta1, config.beta2, config.eps), strict=True):
            assert abs(value - trained) <= CODE_ULPS * math.ulp(trained)


def test_torch_kwargs_shape() -> None:
    config = AdamConfig(lr=1e-4, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)
    assert config.torch_kwargs() == {"lr": 1e-4, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}
    nadamw = AdamConfig(lr=1e-4, weight_decay=0.1, optimizer="nadamw")
    assert nadamw.torch_kwargs()["decoupled_weight_decay"] is True
    assert "decoupled_weight_decay" not in replace(nadamw, optimizer="nadam").torch_kwargs()
    assert (nadamw.short(), replace(nadamw, weight_decay=0.0, optimizer="nadam").short()) == (
        "lr=0.0001 beta1=0.9 beta2=0.999 eps=1e-08 weight_decay=0.1 (nadamw)",
        "lr=0.0001 beta1=0.9 beta2=0.999 eps=1e-08 (nadam)",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr: expected a number > 0, got 0.0"),
        ({"lr": -1e-3}, "lr: expected a number > 0, got -0.001"),
        ({"lr": math.nan}, "lr: expected a number > 0, got nan"),
        ({"lr": math.inf}, "lr: expected a number > 0, got inf"),
        ({"lr": 1e-3, "beta1": 1.0}, "beta1: expected a number in [0, 1), got 1.0"),
        ({"lr": 1e-3, "beta2": -0.1}, "beta2: expected a number in [0, 1), got -0.1"),
        ({"lr": 1e-3, "eps": 0.0}, "eps: expected a number > 0, got 0.0"),
        ({"lr": 1e-3, "weight_decay": -1.0}, "weight_decay: expected a number >= 0, got -1.0"),
        ({"lr": "0.1"}, "lr: expected a number > 0, got '0.1'"),
        ({"lr": True}, "lr: expected a number > 0, got True"),
        (
            {"lr": 1e-3, "optimizer": "sgd"},
            "optimizer: expected one of ('adam', 'adamw', 'nadam', 'nadamw'), got 'sgd'",
        ),
    ],
)
def test_adam_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        AdamConfig(**kwargs)  # type: ignore[arg-type]


# --- expansion limits ---------------------------------------------------------------------------


def test_limits_are_checked_stored_and_read_back() -> None:
    space = SearchSpace.build(
        ("lr", "beta1"), ranges={"lr": (1e-4, 1e-2)}, limits={"lr": (1e-6, 1), "beta1": (0.5, 0.999)}
    )
    assert space.spec("lr").limit == (1e-6, 1.0) and space.spec("beta1").limit == (0.5, 0.999)
    assert space.spec("eps").limit is None
    assert (space.spec("beta1").low, space.spec("beta1").high) == (0.9, 0.999)  # the range is unchanged
    stored = space.to_dict()
    assert "limit" not in stored["specs"][3]  # spaces without limits store as before
    assert SearchSpace.from_dict(json.loads(json.dumps(stored))) == space
    assert space.spec("lr").clipped_to_limit(1e-7, 10.0) == (1e-6, 1.0)
    assert space.spec("eps").clipped_to_limit(1e-12, 10.0) == (1e-12, 10.0)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"lr": (1e-4, 1.0)},
            "limit for lr: expected a limit that contains the search range 1e-05:0.001, got 0.0001:1",
        ),
        ({"lr": (1.0, 1e-6)}, "limit for lr: expected LOW < HIGH in (0, inf), got 1:1e-06"),
        ({"beta1": (0.5, 1.0)}, "limit for beta1: expected LOW < HIGH in [0, 1), got 0.5:1"),
        ({"gamma": (0.1, 0.2)}, f"unknown hyperparameter 'gamma': expected one of {KNOWN}"),
    ],
)
def test_bad_limits_are_refused_with_one_line(limits: dict[str, tuple[float, float]], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SearchSpace.build(("lr", "beta1"), limits=limits)
