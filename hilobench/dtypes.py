"""Dtype names → torch dtypes: the one mapping the measurement and the roofline peak share.

The names themselves (what a Case accepts) are ``hilobench.case.DTYPES``; this module is apart
because it imports torch and case.py must not.
"""

from __future__ import annotations

import torch

from hilobench.case import DTYPES

TORCH_DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPES}
