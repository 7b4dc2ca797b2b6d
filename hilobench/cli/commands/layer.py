"""``hilobench layer``: single attention layers, measured where the paper measures them (the
1/16-scale token map of an image). Parsing only: the cases come from the shared builder
(:mod:`hilobench.cli.caseopts`), measuring and printing from :mod:`hilobench.cli.execute`."""

from __future__ import annotations

from typing import Any

import typer

from hilobench.cli import caseopts, execute
from hilobench.cli.caseopts import CaseFlags

#: The shared flags ``layer`` takes, in the order help lists them.
SHARED = (
    "res", "batch", "device", "dtype", "impl", "threads", "mode", "train", "backend",
    "compile", "max_batch", "mem_limit", "budget", "roofline", "out_dir", "append", "fmt",
    "columns", "wide", "plugin",
)  # fmt: skip


def layer(
    attn: str = typer.Option(
        "all", help="Attention: one name, a comma list, globs ('*msa'), or 'all'."
    ),
    *,
    flags: CaseFlags,
    knobs: dict[str, Any],
    set_knobs: list[str],
) -> None:
    """Benchmark single attention layers where the paper does: the 1/16-scale map of an image."""
    cases = caseopts.build_cases("layer", caseopts.layer_names(attn), flags, knobs, set_knobs)
    execute.execute(cases, flags, "attention layers")


def register(app: typer.Typer) -> None:
    """Attach ``layer``, with a flag per layer knob the options table holds now."""
    caseopts.attach(app, "layer", layer, SHARED, after="res", budget=3.0)
