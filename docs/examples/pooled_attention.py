"""An attention of one's own, measured like the built-in ones: ``--plugin`` loads this file.

    hilobench layer --plugin docs/examples/pooled_attention.py --attn pooled --pool 2 --res 224

Pooled global attention: every token queries keys and values average-pooled over ``pool × pool``
blocks (SRA's idea without the reduction conv's parameters). The ``pool`` knob declared here gets
its ``--pool`` flag and suite field from hilobench's options table; ``macs`` is checked against
the traced count like every built-in layer's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.core import options
from hilobench.attention import Attention, register_attention
from hilobench.core.errors import ConfigError

POOL = options.Knob("pool", "int", "Pooled attention: side of the key/value pooling.", minimum=1)


@register_attention("pooled", "global attention to average-pooled keys/values", knobs={POOL: 2})
class PooledAttention(Attention):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference",
                 pool: int = 2) -> None:  # fmt: skip
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.pool = int(pool)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _kv_tokens(self, H: int, W: int) -> int:
        h, w = H // self.pool, W // self.pool
        if h < 1 or w < 1:
            raise ConfigError(f"pool={self.pool} is larger than the {H}x{W} token map")
        return h * w

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        self._kv_tokens(H, W)
        heads, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(B, N, heads, d).transpose(1, 2)
        pooled = F.avg_pool2d(x.transpose(1, 2).reshape(B, C, H, W), self.pool)
        kv = self.kv(pooled.flatten(2).transpose(1, 2))
        k, v = kv.reshape(B, -1, 2, heads, d).permute(2, 0, 3, 1, 4)
        if self.impl == "fused":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        n, m, c = H * W, self._kv_tokens(H, W), self.dim
        return n * c * c + m * c * 2 * c + 2 * n * m * c + n * c * c  # q, kv, QKᵀ and AV, proj

    def score_elements(self, H: int, W: int) -> int:
        return self.num_heads * H * W * self._kv_tokens(H, W)
