"""A speaker: writes a navigation instruction from a trajectory's observation features.

Speaker-Follower (Fried et al. 2018, "Speaker-Follower Models for Vision-and-Language
Navigation") trains a *speaker* that maps a route to the words a person would use to
describe it, then uses it to label sampled routes (instruction augmentation) and to
rerank a follower's candidate routes. This module holds the two pieces that needs:

- ``WordVocab``: a word-level vocabulary. Text is lowercased and split on whitespace, with
  the punctuation marks ``. , ; ! ?`` as tokens of their own. Special ids are fixed:
  ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3. ``encode`` gives
  ``[bos, words..., eos]``; ``decode`` stops at ``eos``, drops specials and re-attaches
  punctuation to the previous word ("walk past the sofa. stop").
- ``Speaker``: a sequence-to-sequence model. A bidirectional GRU encodes the per-step
  features ``(B, T, feature_dim)`` under a mask ``(B, T)`` (bool, True = real step; real
  steps come first in each row, padded steps are packed away and never influence a row's
  output). A GRU decoder over word embeddings attends (bilinear, masked, Luong-style) to
  the encoder outputs at every step and predicts vocabulary logits.

Token tensors are ``LongTensor (B, L)`` laid out like ``WordVocab.encode``: ``bos`` first,
``eos`` after the last word, ``pad`` (0) after that. ``forward`` is teacher-forced
(inputs ``tokens[:, :-1]``, targets ``tokens[:, 1:]``); ``generate`` returns rows in the
same layout, starting with ``bos``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vlarena.perception._checks import positive_int

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PUNCTUATION = ".,;!?"
_TOKEN_RE = re.compile(r"[.,;!?]|[^\s.,;!?]+")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and split it into words, punctuation marks being tokens of their own."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower())


class WordVocab:
    """Word-level vocabulary with fixed specials ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, ``<unk>``=3."""

    def __init__(self, words: Sequence[str] = ()) -> None:
        itos = list(SPECIALS)
        for w in words:
            if not isinstance(w, str) or not w:
                raise ValueError(f"vocabulary words must be non-empty str, got {w!r}")
            if w in itos:
                raise ValueError(f"vocabulary word {w!r} is duplicated or a special token {SPECIALS}")
            itos.append(w)
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(itos)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> WordVocab:
        """Vocabulary of every word seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        if isinstance(texts, str):
            raise ValueError("texts must be an iterable of str (e.g. a list of sentences), got a single str")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        for s in SPECIALS:
            counts.pop(s, None)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"WordVocab(size={len(self)})"

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``[bos, words..., eos]``; unknown words map to ``<unk>``; longer than ``max_len`` is cut, keeping eos."""
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2):
            raise ValueError(f"max_len must be an int >= 2 (room for <bos> and <eos>) or None, got {max_len!r}")
        ids = [BOS] + [self.stoi.get(w, UNK) for w in tokenize(text)] + [EOS]
        if max_len is not None and len(ids) > max_len:
            ids = ids[: max_len - 1] + [EOS]
        return ids

    def encode_batch(self, texts: Sequence[str], max_len: int | None = None) -> torch.Tensor:
        """Encode several texts into a ``LongTensor (B, L)`` right-padded with ``<pad>``."""
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError("texts must be a non-empty sequence of str")
        rows = [self.encode(t, max_len) for t in texts]
        out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Text of ``ids`` up to the first ``<eos>``, specials skipped, punctuation glued to the previous word."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence (1-D ids), got a tensor of shape {tuple(ids.shape)}")
            ids = ids.tolist()
        out = ""
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i < 0 or i >= len(self.itos):
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self.itos)})")
            if i < len(SPECIALS):
                continue
            w = self.itos[i]
            if w in PUNCTUATION or not out:
                out += w
            else:
                out += " " + w
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``{"specials": [...], "words": [...]}`` (words in id order after the specials)."""
        return {"specials": list(SPECIALS), "words": self.itos[len(SPECIALS) :]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordVocab:
        """Inverse of ``to_dict``."""
        if not isinstance(d, dict) or "words" not in d:
            raise ValueError(f"from_dict needs a dict with a 'words' list (as written by to_dict), got {d!r:.80}")
        specials = d.get("specials", list(SPECIALS))
        if list(specials) != list(SPECIALS):
            raise ValueError(f"specials must be {list(SPECIALS)}, got {specials!r}")
        return cls(list(d["words"]))


class Speaker(nn.Module):
    """Trajectory features -> instruction tokens (bi-GRU encoder, attentive GRU decoder)."""

    def __init__(
        self, feature_dim: int, vocab_size: int, hidden: int = 256, embed: int = 128, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.feature_dim = positive_int("feature_dim", feature_dim)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        if vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must exceed the {len(SPECIALS)} special tokens, got {vocab_size}")
        self.hidden = positive_int("hidden", hidden)
        self.embed_dim = positive_int("embed", embed)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

        self.feat_proj = nn.Linear(feature_dim, hidden)
        self.encoder = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.enc_out = nn.Linear(2 * hidden, hidden)
        self.init_state = nn.Linear(2 * hidden, hidden)
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=PAD)
        self.decoder = nn.GRU(embed, hidden, batch_first=True)
        self.attn = nn.Linear(hidden, hidden, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab_size)
        self.drop = nn.Dropout(dropout)

    # ----------------------------------------------------------------- checks
    def _check_features(self, features: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
        if not isinstance(features, torch.Tensor) or features.dim() != 3:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be a tensor (B, T, feature_dim={self.feature_dim}), got {shape}")
        if features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"features last dim {features.shape[-1]} does not match the speaker's feature_dim {self.feature_dim}"
            )
        if not isinstance(feature_mask, torch.Tensor) or feature_mask.shape != features.shape[:2]:
            shape = tuple(feature_mask.shape) if isinstance(feature_mask, torch.Tensor) else type(feature_mask)
            raise ValueError(f"feature_mask shape {shape} does not match features (B, T) = {tuple(features.shape[:2])}")
        if feature_mask.dtype != torch.bool:
            raise ValueError(f"feature_mask must be a bool tensor (True = real step), got dtype {feature_mask.dtype}")
        lengths = feature_mask.sum(dim=1)
        if bool((lengths == 0).any()):
            raise ValueError("every trajectory needs at least one real step; feature_mask has an all-False row")
        prefix = torch.arange(features.shape[1], device=features.device)[None, :] < lengths[:, None]
        if not torch.equal(prefix, feature_mask):
            raise ValueError("feature_mask must mark real steps first in each row (right padding), e.g. [1, 1, 1, 0]")
        return lengths

    @staticmethod
    def _check_tokens(tokens: torch.Tensor, batch: int) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] < 2:
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be a LongTensor (B, L) with L >= 2 (bos ... eos), got {shape}")
        if tokens.dtype != torch.long:
            raise ValueError(f"tokens must have dtype torch.long, got {tokens.dtype}")
        if tokens.shape[0] != batch:
            raise ValueError(f"tokens batch size {tokens.shape[0]} does not match features batch size {batch}")

    # ---------------------------------------------------------------- modules
    def encode(self, features: torch.Tensor, feature_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs ``(B, T, hidden)`` (zero at padded steps) and the decoder's initial state ``(1, B, hidden)``."""
        lengths = self._check_features(features, feature_mask)
        x = self.drop(torch.tanh(self.feat_proj(features)))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=features.shape[1])
        ctx = self.enc_out(out) * feature_mask.unsqueeze(-1).to(out.dtype)
        h0 = torch.tanh(self.init_state(torch.cat([h_n[0], h_n[1]], dim=-1))).unsqueeze(0)
        return ctx, h0

    def _step_logits(self, dec_out: torch.Tensor, ctx: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
        """Attend from decoder outputs ``(B, L, H)`` to ``ctx (B, T, H)``; vocabulary logits ``(B, L, V)``."""
        scores = torch.bmm(self.attn(dec_out), ctx.transpose(1, 2))  # (B, L, T)
        scores = scores.masked_fill(~feature_mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        attended = torch.bmm(weights, ctx)
        h = torch.tanh(self.combine(torch.cat([dec_out, attended], dim=-1)))
        return self.out(self.drop(h))

    def forward(self, features: torch.Tensor, feature_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, L-1, V)`` predicting ``tokens[:, 1:]`` from ``tokens[:, :-1]``."""
        self._check_tokens(tokens, features.shape[0] if isinstance(features, torch.Tensor) else -1)
        ctx, h0 = self.encode(features, feature_mask)
        emb = self.drop(self.embedding(tokens[:, :-1]))
        dec_out, _ = self.decoder(emb, h0)
        return self._step_logits(dec_out, ctx, feature_mask)

    def loss(self, features: torch.Tensor, feature_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over non-pad target tokens."""
        logits = self(features, feature_mask, tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def generate(
        self,
        features: torch.Tensor,
        feature_mask: torch.Tensor,
        max_len: int = 40,
        greedy: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode instructions: ``LongTensor (B, <= max_len)``, each row ``bos, words..., eos, pad...``.

        Greedy (argmax) by default; with ``greedy=False`` samples from ``softmax(logits / temperature)``
        using ``generator`` when given. A row that never emits ``eos`` is cut at ``max_len`` without one.
        """
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise ValueError(f"max_len must be an int >= 2 (room for <bos> and <eos>), got {max_len!r}")
        if not greedy and not float(temperature) > 0.0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}")
        ctx, h = self.encode(features, feature_mask)
        batch = features.shape[0]
        tok = torch.full((batch, 1), BOS, dtype=torch.long, device=features.device)
        out = [tok]
        done = torch.zeros(batch, dtype=torch.bool, device=features.device)
        for _ in range(max_len - 1):
            dec_out, h = self.decoder(self.embedding(tok), h)
            logits = self._step_logits(dec_out, ctx, feature_mask)[:, 0]
            if greedy:
                nxt = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = nxt.masked_fill(done, PAD)
            done = done | (nxt == EOS)
            tok = nxt.unsqueeze(1)
            out.append(tok)
            if bool(done.all()):
                break
        return torch.cat(out, dim=1)
