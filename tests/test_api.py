"""The public API: what ``import adamtune`` offers, the error tree, and the typing marker."""

from __future__ import annotations

import inspect
import re
import runpy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import adamtune
from adamtune import errors

BUILTIN_OF = {
    "ConfigError": ValueError,
    "TargetError": ImportError,
    "StorageError": OSError,
    "StudyNotFoundError": LookupError,
    "StudyMismatchError": ValueError,
    "TooManyFailuresError": RuntimeError,
}


def test_all_names_are_importable_and_unique() -> None:
    assert len(adamtune.__all__) == len(set(adamtune.__all__))
    namespace: dict[str, object] = {}
    exec("from adamtune import *", namespace)
    for name in adamtune.__all__:
        assert hasattr(adamtune, name), name
        assert namespace[name] is getattr(adamtune, name)


def test_every_public_class_and_function_is_in_all() -> None:
    public = {
        name
        for name, value in vars(adamtune).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.split(".")[0] == "adamtune"
    }
    assert len(public) > 20
    assert public <= set(adamtune.__all__), public - set(adamtune.__all__)
    for name in ("tune", "load_study", "choose_tuned", "halton_points", "AdamConfig", "SearchSpace"):
        assert name in public
    for name in ("DEFAULT_ADAM", "DEFAULT_SPECS", "__version__"):
        assert name in adamtune.__all__


def test_version_is_a_string() -> None:
    assert isinstance(adamtune.__version__, str)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", adamtune.__version__)


def test_error_tree_matches_the_errors_docstring() -> None:
    documented = dict(re.findall(r"(\w+Error)\((\w+)\)", errors.__doc__ or ""))
    assert documented == {name: builtin.__name__ for name, builtin in BUILTIN_OF.items()}
    leaves = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.AdamTuneError)
        and value is not errors.AdamTuneError
    }
    assert leaves == set(BUILTIN_OF)


@pytest.mark.parametrize(("name", "builtin"), list(BUILTIN_OF.items()))
def test_each_leaf_is_an_adamtune_error_and_its_builtin(name: str, builtin: type[Exception]) -> None:
    cls = getattr(adamtune, name)
    assert issubclass(cls, adamtune.AdamTuneError)
    assert issubclass(cls, builtin)
    error = cls("message")
    with pytest.raises(builtin, match="message"):
        raise error


def test_diverged_is_not_an_error() -> None:
    assert issubclass(adamtune.Diverged, Exception)
    assert not issubclass(adamtune.Diverged, adamtune.AdamTuneError)
    assert issubclass(adamtune.AdamTuneError, Exception)


def test_py_typed_is_shipped() -> None:
    marker = resources.files("adamtune") / "py.typed"
    assert marker.is_file()
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["adamtune"]


@pytest.mark.slow
def test_the_quickstart_example_runs_and_prints_its_evidence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The script as a user runs it, with a smaller budget and confirmation, in memory.
    tune = adamtune.tune

    def small(objective: adamtune.executors.Objective, budget: int, **kwargs: Any) -> adamtune.Study:
        assert budget == 12 and kwargs["study"] == "quickstart"
        return tune(objective, 3, **{**kwargs, "storage": "memory", "confirm": 2, "confirm_top": 1})

    monkeypatch.setattr(adamtune, "tune", small)
    runpy.run_path(str(Path(__file__).parent.parent / "examples" / "quickstart.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("budget 3 (1-9 trials): tune lr;")
    assert re.fullmatch(
        r"best val_loss \d\.\d{4} with lr=\S+ beta1=0\.9 beta2=0\.999 eps=1e-08 \(seed \d+\)", lines[1]
    )
    assert lines[2].startswith("recommended: trial ")
    assert lines[3].startswith("confirmation on 2 seeds: the winner #")
