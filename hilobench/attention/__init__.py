"""Attention layers, one file each, found by name through the registry."""

from hilobench.attention.base import IMPLS, Attention, set_impl
from hilobench.attention.registry import (
    available_attentions,
    build_attention,
    get_attention,
    register_attention,
)

# Importing the layer modules registers them.
from hilobench.attention import hilo, msa, sra, twins, window  # noqa: E402,F401  isort: skip

__all__ = [
    "IMPLS",
    "Attention",
    "available_attentions",
    "build_attention",
    "get_attention",
    "register_attention",
    "set_impl",
]
