"""The pretraining objectives of `vlarena pretrain`, each around the policy's ViT (`VisionEncoder`).

A batch is `{"pixels": (B, C, H, W) in [-1, 1] at the ViT's image size, "captions": [str] * B}`;
`objective.loss(batch) -> (loss, {name: float})`. Only `objective.vision` is kept afterwards (the
encoder checkpoint); the heads below are thrown away.

- clip: image embedding = a linear map of the ViT's tokens concatenated in grid order (so where a
  thing is in the panorama can be told), text embedding = `TextTransformer` over the caption's words,
  CLIP's symmetric loss with a learnable temperature.
- mae: 75% of the patches hidden, the ViT encodes the visible ones (with their position embeddings),
  `MAEDecoder` predicts the hidden patches' pixels (per-patch normalised targets).
- moco: two augmentations of a frame (a circular turn of the panorama by up to 1/8 of a turn, a random
  crop of 70-100% of each side resized back, brightness and contrast jitter); MoCo v2's MLP head,
  momentum key encoder and queue.
- vqvae: the ViT's tokens are projected to `code_dim` and quantised (`VectorQuantizer`); a decoder
  (`MAEDecoder` with every token visible) reconstructs all patches from the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlarena.perception.contrastive import CLIPLoss, MoCo
from vlarena.perception.mae import MAEDecoder, mae_loss, patchify, random_masking
from vlarena.perception.speaker import WordVocab
from vlarena.perception.text_encoder import TextTransformer
from vlarena.perception.vqvae import VectorQuantizer
from vlarena.policies.vision import VisionEncoder

METHODS = ("clip", "mae", "moco", "vqvae")
CAPTION_MAX_LEN = 64


@dataclass
class MethodConfig:
    name: str = "clip"
    embed_dim: int = 256  # clip / moco embedding size
    init_temperature: float = 0.07  # clip
    text_dim: int = 128
    text_depth: int = 2
    mask_ratio: float = 0.75  # mae
    decoder_dim: int = 128  # mae / vqvae
    decoder_depth: int = 2
    norm_pix: bool = True
    queue_size: int = 4096  # moco
    momentum: float = 0.99
    temperature: float = 0.2
    num_codes: int = 256  # vqvae
    code_dim: int = 32
    beta: float = 0.25
    restart_after: int = 10  # vqvae: a code unused for this many updates moves onto a batch vector (0: never)

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(f"method.name must be one of {list(METHODS)}, got {self.name!r}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"method.mask_ratio must be in [0, 1), got {self.mask_ratio}")


def _flat_dim(vision: VisionEncoder) -> int:
    return vision.config.num_tokens * vision.out_dim


class ClipObjective(nn.Module):
    def __init__(self, vision: VisionEncoder, cfg: MethodConfig, vocab: WordVocab):
        super().__init__()
        self.vision, self.vocab = vision, vocab
        self.image_head = nn.Linear(_flat_dim(vision), cfg.embed_dim)
        self.text = TextTransformer(len(vocab), cfg.text_dim, cfg.text_depth, max_len=CAPTION_MAX_LEN)
        self.text_head = nn.Linear(cfg.text_dim, cfg.embed_dim)
        self.clip = CLIPLoss(cfg.init_temperature)

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_head(self.vision.forward_pixels(pixels).flatten(1))

    def embed_texts(self, captions: list[str]) -> torch.Tensor:
        ids = self.vocab.encode_batch(captions, CAPTION_MAX_LEN).to(self.text_head.weight.device)
        return self.text_head(self.text(ids, ids != 0))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.clip(self.embed_images(batch["pixels"]), self.embed_texts(batch["captions"]))
        return loss, {"logit_scale": float(self.clip.logit_scale.detach().exp())}

    def after_step(self) -> None:
        self.clip.clamp_()


class MAEObjective(nn.Module):
    def __init__(self, vision: VisionEncoder, cfg: MethodConfig):
        super().__init__()
        self.vision, self.cfg = vision, cfg
        self.decoder = mae_decoder(vision, cfg.decoder_dim, cfg.decoder_depth)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return masked_autoencoding(self.vision, self.decoder, batch["pixels"], self.cfg.mask_ratio,
                                   self.cfg.norm_pix), {}


def mae_decoder(vision: VisionEncoder, dim: int, depth: int) -> MAEDecoder:
    p, c = vision.config.patch_size, vision.patch_embed.in_channels
    return MAEDecoder(vision.out_dim, vision.config.num_tokens, p * p * c, dim, depth)


def masked_autoencoding(vision: VisionEncoder, decoder: MAEDecoder, x: torch.Tensor, mask_ratio: float,
                        norm_pix: bool = True) -> torch.Tensor:
    """MAE's loss of pixels x (B, C, H, W): the ViT encodes the visible patches, the decoder fills in the rest."""
    tokens = vision.embed(x)
    b, n, d = tokens.shape
    keep, mask, restore = random_masking(b, n, mask_ratio, x.device)
    visible = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, d))
    pred = decoder(vision.encode_tokens(visible), restore)
    return mae_loss(pred, patchify(x, vision.config.patch_size), mask, norm_pix)


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """MoCo's views of panoramas (B, C, H, W): circular turn, random resized crop, brightness/contrast jitter."""
    b, _, h, w = x.shape
    dev = x.device

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    shift = ((u(b) * 2 - 1) * (w // 8)).round().long()
    cols = (torch.arange(w, device=dev)[None] + shift[:, None]) % w
    x = x.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], h, -1))
    scale = 0.7 + 0.3 * u(b)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = (u(b, 2) * 2 - 1) * (1 - scale)[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = (0.6 + 0.8 * u(b))[:, None, None, None]
    bright = (u(b) * 0.4 - 0.2)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(-1.0, 1.0)


class _PixelEmbedding(nn.Module):
    """ViT tokens concatenated in grid order -> MoCo v2's 2-layer MLP head."""

    def __init__(self, vision: VisionEncoder, dim: int):
        super().__init__()
        self.vision = vision
        self.head = nn.Sequential(nn.Linear(_flat_dim(vision), 512), nn.ReLU(), nn.Linear(512, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.vision.forward_pixels(x).flatten(1))


class MoCoObjective(nn.Module):
    def __init__(self, vision: VisionEncoder, cfg: MethodConfig, seed: int = 0):
        super().__init__()
        self.vision = vision
        self.moco = MoCo(_PixelEmbedding(vision, cfg.embed_dim), cfg.embed_dim, cfg.queue_size, cfg.momentum,
                         cfg.temperature)
        self.generator = torch.Generator().manual_seed(seed)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["pixels"]
        return self.moco(augment(x, self.generator), augment(x, self.generator)), {}


class VQObjective(nn.Module):
    def __init__(self, vision: VisionEncoder, cfg: MethodConfig):
        super().__init__()
        self.vision = vision
        p, c, n = vision.config.patch_size, vision.patch_embed.in_channels, vision.config.num_tokens
        self.to_code = nn.Linear(vision.out_dim, cfg.code_dim)
        self.quantizer = VectorQuantizer(cfg.num_codes, cfg.code_dim, cfg.beta, cfg.restart_after)
        self.decoder = MAEDecoder(cfg.code_dim, n, p * p * c, cfg.decoder_dim, cfg.decoder_depth)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["pixels"]
        z = self.to_code(self.vision.forward_pixels(x))
        z_q, _, vq = self.quantizer(z)
        restore = torch.arange(z.shape[1], device=x.device).expand(z.shape[0], -1)
        recon = F.mse_loss(self.decoder(z_q, restore), patchify(x, self.vision.config.patch_size))
        return recon + vq["loss"], {"recon_loss": float(recon.detach()), "perplexity": float(vq["perplexity"].detach())}


def build_objective(vision: VisionEncoder, cfg: MethodConfig, captions: list[str], seed: int = 0) -> nn.Module:
    if cfg.name == "clip":
        return ClipObjective(vision, cfg, WordVocab.build(captions))
    if cfg.name == "mae":
        return MAEObjective(vision, cfg)
    if cfg.name == "moco":
        return MoCoObjective(vision, cfg, seed)
    return VQObjective(vision, cfg)
