"""Shared perception modules: contrastive and generative objectives used for pretraining and as auxiliary losses.

Pure torch (no vlarena imports outside this package), generic over the encoder they train:

- `contrastive`: InfoNCE, CLIP's symmetric loss (learnable temperature), MoCo (momentum encoder + queue),
  triplet and margin contrastive losses.
- `mae`: masked autoencoding of image patches (patchify, random masking, decoder, loss).
- `vqvae`: vector quantiser (straight-through, commitment loss) and a small conv VQ-VAE image tokenizer.
- `diffusion`: DDPM/DDIM noise schedule and a conditional denoiser used as a diffusion action head.
- `speaker`: word vocabulary and the Speaker-Follower speaker (trajectory features -> instruction).
- `distill`: teacher -> student logit and feature distillation, deep mutual learning.
- `cpca`: CPC|A, the action-conditioned contrastive auxiliary loss for recurrent agents.
- `text_encoder`: a small text transformer (CLIP's text tower on simulator captions).

Where they are used: `vlarena pretrain` (agents/pretrain.py), PPO's `agent.aux` (agents/aux_losses.py),
`policy.action_head: diffusion` (policies/diffusion_head.py), `vlarena speaker` (agents/speaker_aug.py).
"""

from vlarena.perception.contrastive import CLIPLoss, MoCo, info_nce, margin_contrastive_loss, triplet_loss
from vlarena.perception.cpca import CPCA
from vlarena.perception.diffusion import DiffusionActionHead, NoiseSchedule
from vlarena.perception.distill import (
    Distiller,
    MutualLearner,
    feature_distillation_loss,
    logit_distillation_loss,
    mutual_learning_loss,
)
from vlarena.perception.mae import MAEDecoder, mae_loss, patchify, random_masking, unpatchify
from vlarena.perception.speaker import Speaker, WordVocab
from vlarena.perception.text_encoder import TextTransformer
from vlarena.perception.vqvae import VQVAE, VectorQuantizer

__all__ = [
    "CLIPLoss", "CPCA", "DiffusionActionHead", "Distiller", "MAEDecoder", "MoCo", "MutualLearner", "NoiseSchedule",
    "Speaker", "TextTransformer", "VQVAE", "VectorQuantizer", "WordVocab", "feature_distillation_loss", "info_nce",
    "logit_distillation_loss", "mae_loss", "margin_contrastive_loss", "mutual_learning_loss", "patchify",
    "random_masking", "triplet_loss", "unpatchify",
]
