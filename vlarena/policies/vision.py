"""Vision encoder: a small ViT (patch embedding, learned position embedding, pre-norm transformer blocks).

Input: `rgb` uint8 (B, H, W, 3) and, with `use_depth`, `depth` float32 (B, H, W, 1) in metres as a
4th channel. Normalisation happens inside: rgb/255 and depth/max_depth are mapped to [-1, 1].
`image_size` is S (square) or [H, W] (e.g. a 360-degree panorama strip of K views, [16, 64]); the
patches form an (H / patch, W / patch) grid with one learned position embedding per cell. Frames of
another size but the same aspect ratio are resized (bilinear, antialiased when shrinking) to it; a
frame of another aspect ratio is an error naming both (`check_frame_size`). Output: tokens (B, N, width)
after a final LayerNorm, N = (H / patch) * (W / patch), and the pooled mean (B, width).

Default size (the "cpu" preset), chosen with `benchmarks/policy_throughput.py` on the 2-core CPU
(x86_64, torch 2.13 eager, 2 threads, batch 256, 64x64 RGB, bert_random language, inference mode).
Renderer + step in the same run, batch 256: 46,900 frames/s compiled, 6,700 eager (64x64).

| ViT (tokens, width, depth, MLP ratio) | MFLOPs/frame | ViT frames/s | `act` frames/s | `act` vs compiled renderer |
|---|---|---|---|---|
| 16, 128, 3, x2 (**cpu default**)       | 15.7  | 8,800  | 5,800 | 8x   |
| 16, 128, 2, x2                         | 11.5  | 12,400 | 7,200 | 6.5x |
| 16, 192, 4, x4                         | 61.3  | 2,450  | 2,270 | 21x  |
| 64, 192, 4, x4 (the 240 MFLOPs reference) | 231 | 655  | 540   | 87x  |
| "gpu" preset on CPU: 64 (128x128), 384, 6, x4 | 1,397 | 128 | 96 | 200x (128x128 renderer) |

The default (16x16 patches of a 64x64 frame = 16 tokens, width 128, depth 3, MLP x2) spends about
as much per frame as the eager renderer and 8x the compiled one, where the 64-token reference
costs 87x; depth 3 rather than 2 costs ~20% of `act` and keeps three rounds of token mixing. At
batch 1 `act` takes 1.7 ms (Python overhead bound). The "gpu" preset (128x128, 64 tokens, width
384, depth 6) is for CUDA.

Weights: random init (truncated normal 0.02) by default; `load_vision_weights(encoder, path)` reads
a safetensors file written by `save_vision_weights` (the perception module's pretrained encoders);
tensors that do not fit raise an error naming them.
"""

from __future__ import annotations

import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from vlarena.policies.checkpoint import load_state, load_tensors, save_tensors
from vlarena.policies.config import VisionConfig

VISION_FORMAT = "vlarena.vision_encoder"


def suggest_image_size(frame_hw: tuple[int, int], config: VisionConfig) -> list[list[int]]:
    """[H, W] sizes of the frame's aspect ratio, multiples of patch_size: the one whose token count is
    closest to the configured one, and the frame's own size when it fits the patches."""
    h, w, p = int(frame_hw[0]), int(frame_hw[1]), config.patch_size
    g = math.gcd(h, w)
    a, b = h // g, w // g
    unit = math.lcm(p // math.gcd(p, a), p // math.gcd(p, b))  # the smallest k with k*a, k*b multiples of p
    target = config.num_tokens
    m = max(1, round(math.sqrt(target * p * p / (unit * unit * a * b))))
    out = [[unit * m * a, unit * m * b]]
    if h % p == 0 and w % p == 0 and [h, w] not in out:
        out.append([h, w])
    return out


def check_frame_size(frame_hw: tuple[int, int], config: VisionConfig, what: str) -> None:
    """A frame (H, W) fits the ViT when it has the aspect ratio of `image_size` (it is then resized)."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    sh, sw = config.image_hw
    if h * sw != w * sh:
        g, gs = math.gcd(h, w), math.gcd(sh, sw)
        tips = " or ".join(f"{s} ({(s[0] // config.patch_size) * (s[1] // config.patch_size)} tokens)"
                           for s in suggest_image_size((h, w), config))
        raise ValueError(f"{what} has frames of {h}x{w} (H x W) but vision.image_size is {config.image_size} "
                         f"({sh}x{sw}): accepted are frames of the aspect ratio H:W = {sh // gs}:{sw // gs} (resized "
                         f"to {sh}x{sw}); for these frames set vision.image_size to [H, W] of ratio {h // g}:{w // g}, "
                         f"each a multiple of vision.patch_size {config.patch_size}, e.g. {tips}")


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.config = config
        channels = 4 if config.use_depth else 3
        self.patch_embed = nn.Conv2d(channels, config.width, config.patch_size, stride=config.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, config.width))  # row-major over the grid
        self.blocks = nn.ModuleList(Block(config.width, config.heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width)
        self.reset_parameters()
        if config.weights:
            load_vision_weights(self, config.weights)

    @property
    def out_dim(self) -> int:
        return self.config.width

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def preprocess(self, rgb: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B,H,W,3) [+ depth (B,H,W,1) metres] -> float (B,C,h,w) in [-1, 1] at image_size (h, w)."""
        if rgb.dim() != 4 or rgb.shape[-1] != 3 or rgb.dtype != torch.uint8:
            raise ValueError(f"observation 'rgb' must be uint8 of shape (B, H, W, 3), got {rgb.dtype} "
                             f"{tuple(rgb.shape)}")
        check_frame_size(tuple(rgb.shape[1:3]), self.config, f"observation 'rgb' of shape {tuple(rgb.shape)}")
        x = rgb.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        if self.config.use_depth:
            if depth is None:
                raise ValueError("observation 'depth' is required: the vision encoder was configured with "
                                 "vision.use_depth=True (float32 (B, H, W, 1), metres)")
            if depth.shape != (*rgb.shape[:3], 1) or not depth.is_floating_point():
                raise ValueError(f"observation 'depth' must be float of shape {(*rgb.shape[:3], 1)} (as rgb), "
                                 f"got {depth.dtype} {tuple(depth.shape)}")
            d = depth.permute(0, 3, 1, 2).float().mul(2.0 / self.config.max_depth).sub(1.0)
            x = torch.cat([x, d], dim=1)
        return self.resize(x)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, *image_hw); the aspect ratio must match (`check_frame_size`)."""
        h, w = self.config.image_hw
        if tuple(x.shape[-2:]) != (h, w):
            check_frame_size(tuple(x.shape[-2:]), self.config, f"the pixels (B, C, H, W) {tuple(x.shape)}")
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                              antialias=bool(x.shape[-2] > h or x.shape[-1] > w))
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings plus position embeddings (B, N, width) of normalised pixels (B, C, *image_hw)."""
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def encode_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The transformer over embedded tokens (B, n, width), any subset of the grid (MAE encodes the visible ones)."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N, width) of normalised pixels (B, C, *image_hw)."""
        return self.encode_tokens(self.embed(x))

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, N, width), pooled (B, width)) of raw observations."""
        tokens = self.forward_pixels(self.preprocess(rgb, depth))
        return tokens, tokens.mean(dim=1)


def save_vision_weights(encoder: VisionEncoder, path: str | os.PathLike) -> None:
    """Write the encoder's weights (and its config, as metadata) to a safetensors file."""
    cfg = {k: v for k, v in encoder.config.__dict__.items() if k != "weights"}
    save_tensors(path, encoder.state_dict(), metadata={"format": VISION_FORMAT, "config": json.dumps(cfg)})


def load_vision_weights(encoder: VisionEncoder, path: str | os.PathLike) -> None:
    """Load a safetensors file of `save_vision_weights` into `encoder`; mismatching tensors are named."""
    state, meta = load_tensors(path)
    if meta.get("format") not in (None, VISION_FORMAT):
        raise ValueError(f"{path} is a {meta['format']!r} file, not a vision encoder ({VISION_FORMAT!r})")
    note = f" (written for vision config {meta['config']})" if "config" in meta else ""
    load_state(encoder, state, f"vision weights {path}{note}")
