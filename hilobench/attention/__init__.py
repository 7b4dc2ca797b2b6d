"""Attention layers, one file each, found by name through the registry."""

from hilobench.attention.base import IMPLS, Attention, set_impl
from hilobench.attention.registry import (
    available_attentions,
    build_attention,
    get_attention,
    register_attention,
    resolve_attentions,
)

# Importing the layer modules registers them.
from hilobench.attention import dat, focal, hilo, hornet, msa, sra, twins, van, window, xca  # noqa: E402,F401  isort: skip
from hilobench.attention import cswin, linformer, performer, quadtree  # noqa: E402,F401  isort: skip

__all__ = [
    "IMPLS",
    "Attention",
    "available_attentions",
    "build_attention",
    "get_attention",
    "register_attention",
    "resolve_attentions",
    "set_impl",
]
