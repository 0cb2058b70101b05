"""A small text transformer over word ids: the text tower of CLIP pretraining on simulator captions.

`TextTransformer(vocab_size)(ids (B, L), mask (B, L) bool) -> (B, dim)`: learned word and position
embeddings, pre-norm transformer layers, final LayerNorm, mean over the real tokens (mask True). Word
ids come from `perception.speaker.WordVocab` (pad id 0). Captions of the simulator use a few hundred
words, so this tower is trained from scratch with the image tower (no hub download).
"""

from __future__ import annotations

import torch
from torch import nn

from vlarena.perception._checks import positive_int


class TextTransformer(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 128, depth: int = 2, heads: int = 4, max_len: int = 64):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("dim", dim), ("depth", depth), ("heads", heads),
                            ("max_len", max_len)):
            positive_int(name, value)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.dim, self.max_len = dim, max_len
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True,
                                       activation="gelu") for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or mask.shape != ids.shape:
            raise ValueError(f"ids and mask must both be (B, L), got {tuple(ids.shape)} and {tuple(mask.shape)}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"texts of {ids.shape[1]} tokens are longer than max_len {self.max_len}: truncate them "
                             f"(WordVocab.encode(text, max_len)) or build the tower with a larger max_len")
        mask = mask.bool()
        x = self.embed(ids) + self.pos[:, :ids.shape[1]]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0)
