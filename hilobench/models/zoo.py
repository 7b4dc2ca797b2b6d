"""The paper's comparison backbones, built from timm (random init; nothing is downloaded).

Rows follow the paper's tables (display names as there). ``impl`` maps onto timm's own switch:
``fused`` keeps each attention module's ``fused_attn`` flag as timm sets it (what a timm user
runs: ``scaled_dot_product_attention`` where timm enables it by default; timm leaves it off in
some, e.g. Swin's window attention), and ``reference`` sets every one to False, the explicit
matmul + softmax path. Models without such modules (CNNs, TNT), or with none that timm enables,
run the same code either way, so ``--impl both`` gives them one row. Models whose position
embeddings or windows depend on the input get ``img_size`` set to the requested resolution;
fully convolutional ones take any size as they are. Any other timm model is reachable
as ``timm:<name>``, resolved here (the registry only knows the prefix).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import nn

from hilobench.core.case import DEFAULT_IMPL, IMPLS
from hilobench.core.errors import ConfigError
from hilobench.models.registry import ModelEntry, register_model, register_prefix

TIMM_PREFIX = "timm:"
#: Smallest image side a timm backbone is measured at: the usual total stride of a backbone,
#: below which its last stage would see an empty (or padded-only) map.
TIMM_MIN_SIDE = 32


def timm_default_res(timm_name: str) -> int:
    """The input side timm's default config names for ``timm_name`` (224 if none)."""
    import timm  # seconds to import: only a timm model needs it

    cfg = timm.get_pretrained_cfg(timm_name)
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    return int(size[-1]) if size else 224


def set_timm_impl(model: nn.Module, impl: str) -> nn.Module:
    """``reference``: every timm attention on the explicit path; ``fused``: as timm set them."""
    if impl == "fused":
        return model
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            # torch's stub types Module.__setattr__ values as Tensor | Module; a bool is allowed
            m.fused_attn = False  # type: ignore[assignment]
    return model


@functools.cache
def timm_paths(timm_name: str) -> tuple[str, ...]:
    """Both implementations when timm enables a fused attention in ``timm_name`` by default (so
    ``reference`` runs other code), else ``fused`` alone. Built on the meta device: no memory,
    no weights; a model that cannot be built there is taken to have both."""
    import timm  # seconds to import: only `--impl both` on a timm model needs it
    import torch

    try:
        with torch.device("meta"):
            model = timm.create_model(timm_name, pretrained=False)
    except Exception:  # timm's own code on an unusual device: measure both, as asked
        return IMPLS
    fused = any(getattr(m, "fused_attn", False) is True for m in model.modules())
    return IMPLS if fused else ("fused",)


def timm_builder(timm_name: str) -> Callable[..., nn.Module]:
    """A registry builder creating ``timm_name`` for the requested resolution."""

    def build(
        *, res: tuple[int, int], impl: str = DEFAULT_IMPL, num_classes: int = 1000, **_: Any
    ) -> nn.Module:
        if min(res) < TIMM_MIN_SIDE:
            raise ConfigError(
                f"{res[0]}x{res[1]} is too small for timm model {timm_name!r}: each side needs "
                f"at least {TIMM_MIN_SIDE} pixels"
            )
        import timm  # seconds to import: only building a timm model needs it

        kwargs: dict[str, Any] = dict(pretrained=False, num_classes=num_classes)
        try:
            try:
                model = timm.create_model(timm_name, img_size=tuple(res), **kwargs)
            except TypeError as exc:  # fully convolutional: no img_size argument
                if "img_size" not in str(exc):
                    raise
                model = timm.create_model(timm_name, **kwargs)
        except Exception as exc:
            raise ConfigError(
                f"timm model {timm_name!r} cannot be built for {res[0]}x{res[1]} images: {exc}"
            ) from exc
        return set_timm_impl(model, impl)

    return build


def timm_entry(name: str) -> ModelEntry:
    """The row of ``timm:<name>``, built on demand for any model timm has."""
    import timm  # seconds to import: only a timm model needs it

    timm_name = name[len(TIMM_PREFIX) :]
    if not timm_name or not timm.is_model(timm_name):
        raise ConfigError(
            f"timm has no model {timm_name!r}; list them with timm.list_models('<pattern>')"
        )
    return ModelEntry(
        name=name,
        display=timm_name,
        family="timm",
        source="timm",
        builder=timm_builder(timm_name),
        default_res=timm_default_res(timm_name),
        timm_name=timm_name,
        paths=functools.partial(timm_paths, timm_name),
    )


#: name, display (as in the paper's tables), family, timm name, default resolution
TIMM_ROWS: list[tuple[str, str, str, str, int]] = [
    ("resnet50", "ResNet-50", "resnet", "resnet50", 224),
    ("resnet101", "ResNet-101", "resnet", "resnet101", 224),
    ("resnet152", "ResNet-152", "resnet", "resnet152", 224),
    ("convnext_t", "ConvNext-Ti", "convnext", "convnext_tiny", 224),
    ("convnext_s", "ConvNext-S", "convnext", "convnext_small", 224),
    ("convnext_b", "ConvNext-B", "convnext", "convnext_base", 224),
    ("swin_t", "Swin-Ti", "swin", "swin_tiny_patch4_window7_224", 224),
    ("swin_s", "Swin-S", "swin", "swin_small_patch4_window7_224", 224),
    ("swin_b", "Swin-B", "swin", "swin_base_patch4_window7_224", 224),
    ("swin_b_384", "Swin-B@384", "swin", "swin_base_patch4_window12_384", 384),
    ("twins_pcpvt_s", "Twins-PCPVT-S", "twins", "twins_pcpvt_small", 224),
    ("twins_svt_b", "Twins-SVT-B", "twins", "twins_svt_base", 224),
    ("twins_svt_l", "Twins-SVT-L", "twins", "twins_svt_large", 224),
    ("deit_b_384", "DeiT-B@384", "deit", "deit_base_patch16_384", 384),
    ("pvtv2_b2", "PVTv2-B2", "pvt_v2", "pvt_v2_b2", 224),
    ("xcit_s12", "XCiT-S12", "xcit", "xcit_small_12_p16_224", 224),
    ("coatnet_0", "CoAtNet-0", "coatnet", "coatnet_0_224", 224),
    ("tnt_s", "TNT-S", "tnt", "tnt_s_patch16_224", 224),
    # timm only registers the 384 variant; the comparison runs it at 224 (img_size=224)
    ("cait_xs24", "CaiT-XS24", "cait", "cait_xs24_384", 224),
]


def timm_aliases(timm_name: str, res: int) -> tuple[str, ...]:
    """timm's name as another name of our row, unless it names another resolution than the
    row's (``cait_xs24_384`` is measured at 224 here: that name would mislead)."""
    tail = timm_name.rsplit("_", 1)[-1]
    return () if tail.isdigit() and int(tail) != res and int(tail) >= 100 else (timm_name,)


register_prefix(TIMM_PREFIX, timm_entry)
for _name, _display, _family, _timm, _res in TIMM_ROWS:
    register_model(
        ModelEntry(
            name=_name,
            display=_display,
            family=_family,
            source="timm",
            builder=timm_builder(_timm),
            default_res=_res,
            timm_name=_timm,
            paths=functools.partial(timm_paths, _timm),
            aliases=timm_aliases(_timm, _res),
        )
    )
