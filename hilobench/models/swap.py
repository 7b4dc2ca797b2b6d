"""Any registered attention as a backbone stage's attention: the paper's ablation, generalised.

LITv2 (stage 3, stage 4 through ``attn4``) and PVT (stages 1–3, stage 4 through ``attn4``) build
their swapped layers here, so a built-in or plug-in attention drops into either the same way.
The layer knobs given to the model (``--split-size 7``, ``--sr 4``) reach every swapped layer
that takes them; one that no swapped layer takes is refused. A layer that cannot run at its
stage (CSWin with an odd number of heads, Linformer's fixed length on another map, QuadTree's
top-k on a map too small) is refused when the model is built for its resolution, in one line
naming the stage, its map and the layer's own reason: finding out at the first forward pass
would cost a build and a worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hilobench.attention import Attention, build_attention
from hilobench.core import options
from hilobench.core.errors import ConfigError

#: The stage-4 attention: a model knob declared with the code that uses it.
ATTN4 = options.declare(
    options.Knob(
        "attn4",
        "str",
        "LITv2 / PVT: the stage-4 attention (default: global MSA, as in both papers).",
        kinds=("model",),
        choices=options.get("attn").choices,
    )
)

#: The paper's block-wise alternations in LITv2's ablation: Swin alternates W-MSA and shifted
#: W-MSA, Twins-SVT its locally-grouped and global sub-sampled attention (even block, odd block).
ALTERNATING: dict[str, tuple[str, str]] = {"swmsa": ("wmsa", "swmsa"), "tmsa": ("lsa", "gsa")}

#: Attentions whose output does not depend on where the tokens sit on the map: they can take
#: PVT's stage-4 class token among the image tokens (SRA / GSA only without reduction).
TOKEN_SET = frozenset({"msa", "linformer", "performer", "xca"})


def layer_name(attn: str, index: int) -> str:
    """The registered layer block ``index`` of a stage swapped to ``attn`` runs."""
    pair = ALTERNATING.get(attn)
    return pair[index % 2] if pair else attn


def check_knobs(attns: Sequence[str], knobs: Mapping[str, Any]) -> None:
    """Refuse a layer knob (keyed by builder argument) that none of the swapped ``attns``
    takes, naming the attentions that do."""
    for arg, value in knobs.items():
        knob = options.by_arg("layer", arg)
        if knob is None:
            raise ConfigError(f"unknown attention option {arg!r}")
        if value is not None and not any(options.takes("layer", a, knob.name) for a in attns):
            raise options.not_taken("layer", list(attns), knob.name, f"{knob.name}={value!r}")


def token_set(layer: Attention, name: str) -> bool:
    """Whether ``layer`` mixes tokens without regard to their place on the map."""
    if name in ("sra", "gsa"):
        return int(getattr(layer, "sr_ratio", 0)) == 1
    return name in TOKEN_SET


def stage_layer(
    attn: str,
    index: int,
    dim: int,
    heads: int,
    hw: tuple[int, int] | None,
    *,
    impl: str,
    knobs: Mapping[str, Any],
    where: str,
) -> Attention:
    """Block ``index``'s attention for a stage swapped to ``attn``, built with ``knobs``
    (builder arguments; those the layer does not take are left out) and checked on the
    stage's ``hw`` token map when it is known: its count and its attention size are asked for,
    which is where the layers refuse a map they cannot run on."""
    name = layer_name(attn, index)
    size = f"{hw[0]}x{hw[1]} tokens, " if hw else ""
    try:
        layer = build_attention(name, dim, heads, impl=impl, **knobs)
        if hw is not None and min(hw) >= 1:
            layer.macs(*hw)
            layer.score_elements(*hw)
    except ConfigError as e:
        msg = " ".join(str(e).split())
        raise ConfigError(
            f"{name} cannot be the attention of {where} ({size}dim {dim}, {heads} heads): {msg}"
        ) from None
    return layer
