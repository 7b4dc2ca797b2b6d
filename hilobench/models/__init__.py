"""Backbones found by name: hilobench's own (LITv2, LITv1, PVT, CvT, Focal) and timm-backed ones.

``build_model("litv2_s", res=(224, 224))`` builds one; ``available_models()`` lists every row
(unavailable ones included, with the reason); ``timm:<name>`` reaches any other timm model.
The knobs models take (attn, alpha, window, dtm) are declared in ``hilobench.core.options``.
"""

from hilobench.models.registry import (
    ModelEntry,
    analytic_macs,
    available_models,
    build_model,
    get_model,
    impls_for,
    register_model,
    resolve_models,
)

# Importing the family modules registers their rows.
from hilobench.models import cvt, focal_tiny, litv1, litv2, pvt, zoo  # noqa: E402,F401  isort: skip
from hilobench.models import features  # noqa: E402,F401  isort: skip  (the head knob)
from hilobench.models.litv1 import LITv1  # noqa: E402  isort: skip
from hilobench.models.litv2 import LITv2, published_macs  # noqa: E402  isort: skip
from hilobench.models.pvt import PVT  # noqa: E402  isort: skip

__all__ = [
    "LITv1",
    "LITv2",
    "PVT",
    "ModelEntry",
    "analytic_macs",
    "available_models",
    "build_model",
    "get_model",
    "impls_for",
    "published_macs",
    "register_model",
    "resolve_models",
]
