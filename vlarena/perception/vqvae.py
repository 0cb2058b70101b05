"""VQ-VAE image tokenizer (van den Oord et al. 2017, "Neural Discrete Representation Learning").

* :class:`VectorQuantizer` maps each vector ``z (..., dim)`` to its nearest codebook entry (squared
  Euclidean distance; ties go to the lowest index) and returns the straight-through output
  ``z + (z_q - z).detach()``: forward value ``z_q``, gradient passed to ``z`` unchanged. Its losses
  follow the paper's eq. 3 with ``sg`` = stop-gradient, each averaged over **all elements** (as
  ``F.mse_loss``):

  - ``codebook   = mean((sg[z] - e)^2)``          (moves the codes only)
  - ``commitment = beta * mean((z - sg[e])^2)``   (moves the encoder only)
  - ``loss = codebook + commitment``; ``perplexity = exp(entropy of the code usage)`` in the batch
    (1 = one code used, ``num_codes`` = uniform use).

  The codebook is ``nn.Embedding(num_codes, dim)`` initialised uniform(-1/num_codes, 1/num_codes), and is
  learned by the codebook loss (no EMA updates). Dead-code restarts (``restart_after=k > 0``, Jukebox's
  random restarts, Dhariwal et al. 2020): in training mode, a code that no vector picked in the last ``k``
  forward passes is moved onto a random vector of the current batch before the assignment, so the codebook
  does not collapse onto the few codes near the encoder's first outputs.
* :class:`VQVAE` is a small convolutional tokenizer: ``downsample`` stride-2 4x4 convs (so 64x64 images
  give 16x16 codes with the default 2), a 1x1 conv to ``code_dim``, the quantizer, and a mirror decoder of
  stride-2 ``ConvTranspose2d`` back to ``in_channels``. Images are float ``(B, C, H, W)`` in ``[-1, 1]``;
  the decoder output is unbounded (no final tanh), and its loss is ``MSE(recon, x) + vq loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlarena.perception._checks import positive_int

__all__ = ["VQVAE", "VectorQuantizer"]


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantisation with a straight-through gradient.

    ``forward(z (..., dim)) -> (z_q_st (..., dim), indices (...), losses)`` where ``losses`` holds
    ``"codebook"``, ``"commitment"``, ``"loss"`` and ``"perplexity"`` (scalars).
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, restart_after: int = 0) -> None:
        super().__init__()
        positive_int("num_codes", num_codes)
        positive_int("dim", dim)
        if not float(beta) >= 0.0:
            raise ValueError(f"beta must be a non-negative float, got {beta!r}")
        if isinstance(restart_after, bool) or not isinstance(restart_after, int) or restart_after < 0:
            raise ValueError(f"restart_after must be an int >= 0 (0: no dead-code restarts), got {restart_after!r}")
        self.num_codes, self.dim, self.beta, self.restart_after = num_codes, dim, float(beta), restart_after
        self.codebook = nn.Embedding(num_codes, dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)
        self.register_buffer("idle", torch.zeros(num_codes, dtype=torch.long), persistent=False)  # passes unused

    @torch.no_grad()
    def _restart_dead_codes(self, flat: Tensor) -> None:
        dead = (self.idle >= self.restart_after).nonzero().squeeze(1)
        if dead.numel():
            pick = torch.randint(flat.shape[0], (dead.numel(),), device=flat.device)
            self.codebook.weight[dead] = flat[pick].to(self.codebook.weight.dtype)
            self.idle[dead] = 0

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if z.dim() < 1 or z.shape[-1] != self.dim:
            raise ValueError(f"z must have last dimension dim={self.dim}, got shape {tuple(z.shape)}")
        flat = z.reshape(-1, self.dim)
        restarting = self.training and self.restart_after > 0 and flat.shape[0] > 0
        if restarting:
            self._restart_dead_codes(flat.detach())
        weight = self.codebook.weight
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, computed without gradient (argmin is not differentiable).
        with torch.no_grad():
            dist = flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ weight.t() + weight.pow(2).sum(1)[None]
            indices = dist.argmin(dim=1)
        z_q = self.codebook(indices).view_as(z)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commitment = self.beta * F.mse_loss(z, z_q.detach())
        counts = torch.bincount(indices, minlength=self.num_codes).to(z.dtype)
        if restarting:
            self.idle = torch.where(counts > 0, 0, self.idle + 1)
        probs = counts / counts.sum().clamp(min=1.0)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        z_q_st = z + (z_q - z).detach()
        losses = {
            "codebook": codebook_loss,
            "commitment": commitment,
            "loss": codebook_loss + commitment,
            "perplexity": perplexity,
        }
        return z_q_st, indices.view(z.shape[:-1]), losses

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors for integer ``indices (...)`` -> ``(..., dim)``."""
        if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
        return self.codebook(indices.long())


class VQVAE(nn.Module):
    """Small convolutional VQ-VAE image tokenizer.

    ``forward(x (B, C, H, W) in [-1, 1]) -> dict(recon, indices (B, h, w), loss, recon_loss, vq_loss,
    perplexity)`` with ``h, w = H / 2**downsample, W / 2**downsample``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        hidden: int = 64,
        code_dim: int = 32,
        num_codes: int = 128,
        downsample: int = 2,
        beta: float = 0.25,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("hidden", hidden)
        positive_int("code_dim", code_dim)
        positive_int("downsample", downsample)
        self.in_channels, self.downsample = in_channels, downsample
        enc: list[nn.Module] = []
        channels = in_channels
        for _ in range(downsample):
            enc += [nn.Conv2d(channels, hidden, 4, stride=2, padding=1), nn.ReLU()]
            channels = hidden
        enc += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(num_codes, code_dim, beta)
        dec: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1), nn.ReLU()]
        for i in range(downsample):
            last = i == downsample - 1
            dec.append(nn.ConvTranspose2d(hidden, in_channels if last else hidden, 4, stride=2, padding=1))
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec)

    def _check_images(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a float tensor in [-1, 1], got dtype {x.dtype}")
        f = 2**self.downsample
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(
                f"image height and width must be divisible by 2**downsample={f}, got H={x.shape[2]}, W={x.shape[3]}"
            )

    def _quantize(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        z = self.encoder(x).permute(0, 2, 3, 1)  # (B, h, w, code_dim)
        z_q, indices, losses = self.quantizer(z)
        return z_q.permute(0, 3, 1, 2), indices, losses

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self._check_images(x)
        z_q, indices, vq = self._quantize(x)
        recon = self.decoder(z_q)
        recon_loss = F.mse_loss(recon, x)
        return {
            "recon": recon,
            "indices": indices,
            "loss": recon_loss + vq["loss"],
            "recon_loss": recon_loss,
            "vq_loss": vq["loss"],
            "perplexity": vq["perplexity"],
        }

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> code indices ``(B, h, w)``."""
        self._check_images(x)
        return self._quantize(x)[1]

    def decode(self, indices: Tensor) -> Tensor:
        """Code indices ``(B, h, w)`` -> images ``(B, C, h * 2**downsample, w * 2**downsample)``."""
        if indices.dim() != 3:
            raise ValueError(f"indices must have shape (B, h, w), got {tuple(indices.shape)}")
        return self.decoder(self.quantizer.lookup(indices).permute(0, 3, 1, 2))
