"""PVT (Pyramid Vision Transformer, v1): PVT-S and PVT-M.

Four stages with widths 64/128/320/512; each starts with a patch embedding (conv with kernel =
stride = 4 for stage 1, 2 after) plus LayerNorm and adds a learned absolute position embedding.
Blocks are pre-norm with spatial-reduction attention (keys/values from a map reduced 8/4/2/1×)
and a plain MLP (ratios 8/8/4/4). As in PVTv1, a class token joins the tokens in the last stage
(its position embedding has one extra slot) and the classifier reads it after the final norm.

``attn`` swaps the attention of stages 1–3 for any registered one (PVT's own per-stage reduction
ratios 8/4/2 go to one that takes ``sr``), ``attn4`` that of stage 4 (default: SRA with ratio 1,
i.e. global MSA): :mod:`hilobench.models.swap`. Stage 4 carries the class token, so only an
attention that ignores where tokens sit (MSA, Linformer, Performer, XCA, SRA / GSA at ratio 1)
can run there; a map-bound one is refused with that reason.

The position embeddings are sized to the stage maps, so a PVT model is built for one resolution
and other input sizes raise ConfigError. A size not divisible by 32 is zero-padded right/bottom
to the next multiple of 32 before the first patch embedding (the embeddings are sized for the
padded image), so every stage map is whole.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import Attention, build_attention, get_attention
from hilobench.core.errors import ConfigError, check_choice
from hilobench.models.blocks import (
    LAYERNORM_MACS,
    Block,
    Mlp,
    PatchEmbed,
    ceil_div,
    init_weights,
    members,
    to_map,
)
from hilobench.models.registry import register_model, variant
from hilobench.models.swap import TOKEN_SET, check_knobs, layer_name, stage_layer, token_set

CONFIGS: dict[str, dict[str, Any]] = {
    "s": dict(depths=(3, 4, 6, 3)),
    "m": dict(depths=(3, 4, 18, 3)),
}


class PVT(nn.Module):
    """PVTv1 classifier built for ``res = (H, W)`` images."""

    def __init__(
        self,
        res: tuple[int, int] = (224, 224),
        dims: tuple[int, ...] = (64, 128, 320, 512),
        depths: tuple[int, ...] = (3, 4, 6, 3),
        num_heads: tuple[int, ...] = (1, 2, 5, 8),
        sr_ratios: tuple[int, ...] = (8, 4, 2, 1),
        mlp_ratios: tuple[int, ...] = (8, 8, 4, 4),
        num_classes: int = 1000,
        in_chans: int = 3,
        impl: str = "reference",
        attn: str = "sra",
        attn4: str | None = None,
        name: str = "PVT",
        **knobs: Any,
    ) -> None:
        super().__init__()
        swapped = [a for a in (attn, attn4) if a is not None]
        for swap in swapped:
            get_attention(swap)  # an unknown name: one line listing the known ones
        check_knobs(swapped, knobs)
        self.res = (int(res[0]), int(res[1]))
        self.stride = 4 * 2 ** (len(dims) - 1)
        if min(self.res) < self.stride:
            raise ConfigError(
                f"{self.res[0]}x{self.res[1]} is too small for PVT: each side needs at least "
                f"{self.stride} pixels (its total stride; a smaller image would be mostly padding)"
            )
        self.padded = tuple(ceil_div(s, self.stride) * self.stride for s in self.res)
        self.dims, self.num_classes = list(dims), num_classes
        self.name, self.impl, self.knobs, self.attn, self.attn4 = name, impl, knobs, attn, attn4
        self.patch_embeds = nn.ModuleList()
        self.pos_embeds = nn.ParameterList()
        self.stages = nn.ModuleList()
        h, w = self.padded
        last = len(dims) - 1
        for i, dim in enumerate(dims):
            embed = PatchEmbed(dims[i - 1] if i else in_chans, dim, 4 if i == 0 else 2)
            h, w = embed.out_size(h, w)
            self.patch_embeds.append(embed)
            tokens = h * w + (1 if i == last else 0)
            self.pos_embeds.append(nn.Parameter(torch.zeros(1, tokens, dim)))
            hw = (1, h * w + 1) if i == last else (h, w)
            mlp = mlp_ratios[i] * dim
            blocks = [
                Block(dim, self._layer(i, j, dim, num_heads[i], hw, sr_ratios[i]), Mlp(dim, mlp))
                for j in range(depths[i])
            ]
            self.stages.append(nn.ModuleList(blocks))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dims[-1]))
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_weights)
        for p in [*self.pos_embeds, self.cls_token]:
            nn.init.trunc_normal_(p, std=0.02)

    def _layer(
        self, i: int, j: int, dim: int, heads: int, hw: tuple[int, int], sr: int
    ) -> Attention:
        """Block ``j`` of stage ``i + 1``: the swapped attention, or stage 4's own."""
        if i == len(self.dims) - 1 and self.attn4 is None:
            return build_attention("sra", dim, heads, impl=self.impl, sr_ratio=1)
        name = self.attn if i < len(self.dims) - 1 else str(self.attn4)
        knobs = {"sr_ratio": sr, **self.knobs}
        where = f"stage {i + 1} of {self.name}"
        layer = stage_layer(name, j, dim, heads, hw, impl=self.impl, knobs=knobs, where=where)
        if i == len(self.dims) - 1 and not token_set(layer, layer_name(name, j)):
            raise ConfigError(
                f"{layer_name(name, j)} cannot be the attention of {where}: that stage carries "
                f"PVT's class token, which has no place on the map it attends over; stage 4 "
                f"takes {', '.join(sorted(TOKEN_SET))}, or sra / gsa with sr 1"
            )
        return layer

    def check_size(self, H: int, W: int) -> None:
        if (int(H), int(W)) != self.res:
            raise ConfigError(
                f"PVT was built for {self.res[0]}x{self.res[1]} images (its position embeddings "
                f"are sized to them) and cannot take {H}x{W}; build it for that size"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(*x.shape[-2:])
        pad_h, pad_w = self.padded[0] - x.shape[-2], self.padded[1] - x.shape[-1]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        last = len(self.stages) - 1
        stages = members(self.stages, nn.ModuleList)
        for i, (embed, pos, blocks) in enumerate(
            zip(self.patch_embeds, self.pos_embeds, stages, strict=True)
        ):
            x, H, W = embed(x)
            if i == last:
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + pos
            # the last stage runs its class token too: a 1 x (h·w + 1) sequence, as counted
            bh, bw = (1, H * W + 1) if i == last else (H, W)
            for block in members(blocks, Block):
                x = block(x, bh, bw)
            if i < last:
                x = to_map(x, H, W)
        return self.head(self.norm(x)[:, 0])

    def macs(self, H: int, W: int) -> int:
        """Analytic MACs of one image, in the convention of :mod:`hilobench.models.blocks`.

        The last stage runs ``h·w + 1`` tokens (class token); its attention has no spatial
        reduction (sr 1), so it is counted as a ``1 × (h·w+1)`` map.
        """
        self.check_size(H, W)
        total = 0
        h, w = self.padded
        last = len(self.stages) - 1
        stages = members(self.stages, nn.ModuleList)
        for i, (embed, blocks) in enumerate(
            zip(members(self.patch_embeds, PatchEmbed), stages, strict=True)
        ):
            total += embed.macs(h, w)
            h, w = embed.out_size(h, w)
            bh, bw = (1, h * w + 1) if i == last else (h, w)
            total += sum(block.macs(bh, bw) for block in members(blocks, Block))
        tokens = h * w + 1
        return total + LAYERNORM_MACS * tokens * self.dims[-1] + self.dims[-1] * self.num_classes


def pvt(size: str, **kwargs: Any) -> PVT:
    """PVT-S/M (``size`` in s, m) with any :class:`PVT` keyword overrides."""
    check_choice("PVT size", size, tuple(CONFIGS))
    return PVT(**CONFIGS[size], **{"name": f"PVT-{size.upper()}", **kwargs})


#: Model knobs a PVT row registers.
PVT_KNOBS = ("attn", "attn4")

register_model(variant("pvt_s", "PVT-S", "pvt", pvt, "s", PVT_KNOBS))
register_model(variant("pvt_m", "PVT-M", "pvt", pvt, "m", PVT_KNOBS))
