"""Performer (FAVOR+): softmax attention approximated by positive orthogonal random features.

``exp(q·k / sqrt(d))`` is approximated by ``phi(q)·phi(k)`` with
``phi(x) = m^-1/2 · (exp(w_i·x' - |x'|^2 / 2) + eps)``, ``x' = x · d^-1/4``, over ``m`` random
features ``w_i``; attention then is ``phi(Q) (phi(K)^T V)`` normalised by
``phi(Q) (phi(K)^T 1)``, linear in the number of tokens. The ``w_i`` are Gaussian orthogonal
random features: blocks of ``d`` orthonormal rows (Haar-distributed), each row rescaled by the
norm of a Gaussian vector, drawn from a fixed seed so every build of the same shape has the
same features (a buffer, saved in the state dict). They are not redrawn during training.

For numerical range the exponent is shifted before ``exp``: per query by its largest feature
logit, per image and head by the keys' largest one. A shift common to a query's features
cancels in the normalisation, as does one common to all keys (up to ``eps``); the keys' shift is
taken per image, so images of a batch do not depend on each other.

There is no softmax attention matrix to hand to ``scaled_dot_product_attention``, so the
``fused`` implementation runs this same computation: a fused row measures the reference path.
"""

from __future__ import annotations

import torch

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention
from hilobench.core import options

FEATURES = options.Knob(
    "features",
    "int",
    "Performer: number of random features (FAVOR+).",
    minimum=1,
    maximum=65536,
)

#: Seed of the random features: fixed, so builds and runs are deterministic.
FEATURE_SEED = 0
#: Added to every feature after ``exp`` (FAVOR+'s kernel epsilon), keeping the normaliser > 0.
KERNEL_EPS = 1e-4


def orthogonal_features(m: int, d: int, seed: int = FEATURE_SEED) -> torch.Tensor:
    """``(m, d)`` Gaussian orthogonal random features, drawn on the CPU from ``seed``."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    blocks = []
    for _ in range(-(-m // d)):
        gauss = torch.randn(d, d, generator=g, device="cpu")
        q, r = torch.linalg.qr(gauss)
        q = q * torch.sign(torch.diagonal(r))  # sign fix: Haar-distributed
        blocks.append(q.t())  # rows orthonormal
    rows = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=g, device="cpu").norm(dim=1)
    return rows * norms[:, None]


@register_attention(
    "performer",
    "Performer (FAVOR+ positive orthogonal random features; linear in tokens)",
    knobs={FEATURES: 256},
)
class PerformerAttention(Attention):
    """``qkv: C -> 3C``, FAVOR+ attention with ``features`` random features per head (shared
    by all heads), ``proj: C -> C``. ``impl`` is accepted for symmetry; both run the same code."""

    fused_is_reference = True  # no softmax attention for scaled_dot_product_attention to carry

    features_matrix: torch.Tensor

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        features: int = 256,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.features = int(options.check("features", features))
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)
        # allocated where the module is being built (meta included), filled from the CPU draw
        buf = torch.empty(self.features, self.head_dim)
        if buf.device.type != "meta":
            buf.copy_(orthogonal_features(self.features, self.head_dim))
        self.register_buffer("features_matrix", buf)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.num_heads}, features={self.features}, impl={self.impl}"

    def score_elements(self, H: int, W: int) -> int:
        """No attention matrix: the largest intermediates are the query and key feature maps,
        ``heads x N x m`` each."""
        return 2 * self.num_heads * H * W * self.features

    def _phi(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        """Positive random features of ``x`` ``(B, heads, N, d)`` -> ``(B, heads, N, m)``."""
        x = x * self.head_dim**-0.25
        logits = x @ self.features_matrix.t().to(x.dtype)
        sq = (x * x).sum(dim=-1, keepdim=True) / 2
        shift = logits.max(dim=-1, keepdim=True).values  # per query
        if not is_query:  # per image and head: common to all keys
            shift = shift.max(dim=-2, keepdim=True).values
        return (torch.exp(logits - sq - shift) + KERNEL_EPS) * self.features**-0.5

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        qf, kf = self._phi(q, True), self._phi(k, False)  # (B, heads, N, m)
        context = kf.transpose(-2, -1) @ v  # (B, heads, m, d)
        k_sum = kf.sum(dim=-2).unsqueeze(-1)  # (B, heads, m, 1)
        out = (qf @ context) / (qf @ k_sum)  # (B, heads, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """``4*N*C^2 + 4*N*m*C + heads*N*m``: qkv and proj linears; per head the query and key
        feature projections (``N*m*d`` each), ``phi(K)^T V`` and ``phi(Q) @ context`` (``N*m*d``
        each) and the normaliser ``phi(Q) @ sum(phi(K))`` (``N*m``). ``exp``, the squared norms,
        the shifts and the division are elementwise and not counted."""
        n, c, m = H * W, self.dim, self.features
        return 4 * n * c * c + 4 * n * m * c + self.num_heads * n * m
