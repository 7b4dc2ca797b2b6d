"""``hilobench model``: full backbones (LITv2 / LITv1 / PVT built here, the paper's others
from timm). Parsing only: the cases come from the shared builder (:mod:`hilobench.cli.caseopts`),
measuring and printing from :mod:`hilobench.cli.execute`."""

from __future__ import annotations

from typing import Any

import typer

from hilobench.cli import caseopts, execute
from hilobench.cli.caseopts import CaseFlags
from hilobench.cli.flags import print_models

#: The shared flags ``model`` takes, in the order help lists them.
SHARED = (
    "res", "batch", "device", "dtype", "impl", "threads", "mode", "train", "backend",
    "compile", "channels_last", "max_batch", "mem_limit", "budget", "roofline", "out_dir",
    "append", "fmt", "columns", "wide", "plugin",
)  # fmt: skip


def model(
    names: str | None = typer.Argument(
        None,
        help="Model name(s), comma separated: ours, timm's full names (convnext_tiny), globs "
        "('litv2_*') or timm:<name>; see --list.",
    ),
    list_: bool = typer.Option(False, "--list", help="List the models and exit."),
    *,
    flags: CaseFlags,
    knobs: dict[str, Any],
    set_knobs: list[str],
) -> None:
    """Benchmark full backbones: LITv2 / LITv1 / PVT built here, the paper's others from timm."""
    if list_:
        from hilobench.models import available_models  # torch, torchvision

        print_models(available_models())
        return
    # every named model gets the knobs; one that does not take them refuses when it is built
    cases = caseopts.build_cases("model", caseopts.model_names(names), flags, knobs, set_knobs)
    execute.execute(cases, flags, "backbones")


def register(app: typer.Typer) -> None:
    """Attach ``model``, with a flag per model knob the options table holds now."""
    caseopts.attach(app, "model", model, SHARED, after="batch", budget=5.0)
