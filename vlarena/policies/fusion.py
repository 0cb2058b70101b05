"""Vision-language fusion: visual tokens + instruction tokens -> one feature vector per frame.

- "cross_attention" (default): visual tokens (queries) attend to the instruction tokens (keys and
  values, padding masked out) in `layers` pre-norm cross-attention + MLP blocks; the fused tokens
  are pooled and joined with the pooled instruction.
- "film": the pooled instruction gives a per-channel scale and shift (FiLM, Perez et al. 2018) of
  the visual tokens, followed by a token-wise MLP; then the same pooling and join.
Pooling (`pool`): "mean" over tokens, or "flatten" (each token projected to `pool_dim` channels,
concatenated in grid order, so where a thing is in the view survives the pooling).
Output: (B, out_dim) after Linear + ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlarena.policies.config import FusionConfig


class CrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor,
                index: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, d) attends to context (B, L, d) under mask (B, L); with `index` (B,), context and mask hold
        distinct rows (M, L, ...), projected once each and gathered."""
        b, n, d = x.shape
        h = self.heads
        q = self.q(self.norm_q(x)).view(b, n, h, d // h).transpose(1, 2)
        kv = self.kv(self.norm_kv(context))
        if index is not None:
            kv, mask = kv[index], mask[index]
        k, v = kv.view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm_mlp(x))))


class Fusion(nn.Module):
    def __init__(self, config: FusionConfig, vision_dim: int, language_dim: int, num_tokens: int):
        super().__init__()
        self.config = config
        d = config.dim
        self.vision_proj = nn.Linear(vision_dim, d)
        self.language_proj = nn.Linear(language_dim, d)
        if config.kind == "cross_attention":
            self.blocks = nn.ModuleList(CrossAttentionBlock(d, config.heads) for _ in range(config.layers))
        else:
            self.film = nn.Linear(d, 2 * d)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
            self.film_mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.norm = nn.LayerNorm(d)
        self.pool_proj = nn.Linear(d, config.pool_dim) if config.pool == "flatten" else None
        pooled_dim = num_tokens * config.pool_dim if config.pool == "flatten" else d
        self.out = nn.Sequential(nn.Linear(pooled_dim + d, config.out_dim), nn.ReLU())

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, vision_tokens: torch.Tensor, language_tokens: torch.Tensor, language_mask: torch.Tensor,
                language_pooled: torch.Tensor, language_index: torch.Tensor | None = None) -> torch.Tensor:
        """vision tokens (B, N, Dv), language tokens (B, L, Dl) and mask (B, L), or those of M distinct instructions
        (M, L, ...) with `language_index` (B,), and the pooled instruction (B, Dl) -> (B, out_dim)."""
        x = self.vision_proj(vision_tokens)
        pooled = self.language_proj(language_pooled)
        if self.config.kind == "cross_attention":
            ctx = self.language_proj(language_tokens)
            mask = language_mask.bool()
            mask = mask | ~mask.any(dim=1, keepdim=True)  # an empty instruction attends to zeros, not NaN
            for block in self.blocks:
                x = block(x, ctx, mask, language_index)
        else:
            gamma, beta = self.film(pooled).chunk(2, dim=-1)
            x = x * (1 + gamma[:, None]) + beta[:, None]
            x = x + self.film_mlp(x)
        x = self.norm(x)
        x = x.mean(dim=1) if self.pool_proj is None else self.pool_proj(x).flatten(1)
        return self.out(torch.cat([x, pooled], dim=-1))
