"""What ``adamtune demo`` trains: the MNIST-1D MLP (the default) or CNN, or the byte-level
language model of the standard library's source; each with its objective and study name."""

from __future__ import annotations

from typing import Literal

from adamtune.environment import cpu_cores
from adamtune.workloads.mnist1d import MODELS, Mnist1dWorkload
from adamtune.workloads.stdlib_lm import StdlibLmWorkload

DemoModel = Literal["mlp", "cnn", "lm"]
DEMO_MODELS: tuple[DemoModel, ...] = (*MODELS, "lm")
LANGUAGE_MODEL: DemoModel = "lm"
MAX_LM_THREADS = 4
"""The language model's trials run one after another, each on this many cores at most: on 2
cores a 200-step run took 2.0 s with 2 threads against 2.9-3.5 s with 1."""


def demo_workload(model: str, steps: int | None = None) -> Mnist1dWorkload | StdlibLmWorkload:
    """The workload ``model`` names, training ``steps`` steps (None: its own default, 8000 for
    MNIST-1D as the paper trains, 400 for the language model)."""
    if model not in DEMO_MODELS:
        raise ValueError(f"model: expected one of {', '.join(DEMO_MODELS)}, got {model!r}")
    if model == LANGUAGE_MODEL:
        threads = min(MAX_LM_THREADS, cpu_cores())
        return (
            StdlibLmWorkload(threads=threads)
            if steps is None
            else StdlibLmWorkload(steps=steps, threads=threads)
        )
    return Mnist1dWorkload(model=model) if steps is None else Mnist1dWorkload(model=model, steps=steps)  # type: ignore[arg-type]


def demo_metric(model: str) -> str:
    """MNIST-1D's objective is the paper's measure, the validation error (on it the best lr lies a
    decade above the default range); a language model's is its loss, in nats per byte."""
    return "val_loss" if model == LANGUAGE_MODEL else "val_error"


def demo_study(model: str) -> str:
    """The demo study's default name."""
    return "demo-stdlib-lm" if model == LANGUAGE_MODEL else f"demo-mnist1d-{model}"
