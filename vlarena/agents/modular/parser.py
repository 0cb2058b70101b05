"""The modular agent's language module: instruction -> task (type and pddl arguments), as FILM's BERT
classifiers turn ALFRED's instruction into its task type and arguments.

    parser = TaskParser.train(traj_rows, epochs=4)   # traj_rows: (instruction, TaskSpec) pairs
    spec = parser(instruction)                         # a TaskSpec that passes spec.check()
    parser.save("runs/parser"); TaskParser.load("runs/parser")

A word embedding, a bidirectional GRU, and for each output an attention pooling and a linear head:
task type (7), object_target, parent_target, toggle_target, mrecep_target (an object type or none) and
object_sliced. Decoding keeps each argument to what the predicted task type accepts (TaskSpec.check's
rules: a lamp for toggle_target, a movable receptacle for mrecep_target, ...), so every answer is a
valid task. Saved as `parser.safetensors` and `parser.json` (vocabulary and sizes), each written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load, save
from torch import nn

from vlarena.datasets.alfred.objects import OBJECT_TYPE_NAMES, OBJECT_TYPES
from vlarena.datasets.alfred.tasks import TASK_TYPES, TaskSpec
from vlarena.datasets.alfred.traj_data import validate_traj
from vlarena.datasets.jsonio import write_bytes_atomic, write_json
from vlarena.perception.speaker import PAD, WordVocab

ROLES = ("object_target", "parent_target", "toggle_target", "mrecep_target")
NONE = len(OBJECT_TYPES)  # the "no object" class of a role head


def instruction_rows(episodes: Sequence[dict]) -> list[tuple[str, TaskSpec]]:
    """(instruction, task) pairs of traj_data episodes, one per annotation; the instruction as ALFRED-v0
    gives it (the goal description, then the step-by-step instructions)."""
    return [(" ".join([ann["task_desc"], *ann["high_descs"]]), validate_traj(e))
            for e in episodes for ann in e["turk_annotations"]["anns"]]


def exact_match(parser: TaskParser, rows: Sequence[tuple[str, TaskSpec]]) -> float:
    """Fraction of the instructions whose task (type and every argument) the parser gets exactly right."""
    predicted = parser.parse([text for text, _ in rows])
    return sum(p == spec for p, (_, spec) in zip(predicted, rows, strict=True)) / max(1, len(rows))


@cache
def _role_mask(role: str, task_type: str) -> torch.Tensor:
    """(len(OBJECT_TYPES) + 1,) bool: the classes `role` may take in `task_type` (TaskSpec.check's rules)."""
    look, mrecep = task_type == "look_at_obj_in_light", task_type == "pick_and_place_with_movable_recep"
    rule = {"object_target": (True, lambda t: t.pickupable and not t.movable),
            "parent_target": (not look, lambda t: t.receptacle and not t.movable),
            "toggle_target": (look, lambda t: t.light), "mrecep_target": (mrecep, lambda t: t.movable)}
    needed, fits = rule[role]
    out = torch.zeros(NONE + 1, dtype=torch.bool)
    if needed:
        out[:NONE] = torch.tensor([fits(t) for t in OBJECT_TYPES])
    else:
        out[NONE] = True
    return out


class _Net(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.rnn = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        sizes = {"task_type": len(TASK_TYPES), **{r: NONE + 1 for r in ROLES}, "object_sliced": 2}
        self.query = nn.Parameter(torch.randn(len(sizes), 2 * dim) * 0.02)
        self.heads = nn.ModuleDict({k: nn.Linear(2 * dim, n) for k, n in sizes.items()})

    def forward(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _ = self.rnn(self.embed(ids))  # (B, L, 2D)
        scores = torch.einsum("bld,qd->bql", h, self.query).masked_fill((ids == PAD)[:, None], float("-inf"))
        pooled = torch.einsum("bql,bld->bqd", scores.softmax(-1), h)
        return {k: head(pooled[:, q]) for q, (k, head) in enumerate(self.heads.items())}


def _targets(specs: Sequence[TaskSpec]) -> dict[str, torch.Tensor]:
    def role(s: TaskSpec, r: str) -> int:
        name = getattr(s, r)
        return OBJECT_TYPE_NAMES.index(name) if name else NONE

    out = {"task_type": torch.tensor([TASK_TYPES.index(s.task_type) for s in specs])}
    out |= {r: torch.tensor([role(s, r) for s in specs]) for r in ROLES}
    out["object_sliced"] = torch.tensor([int(s.object_sliced) for s in specs])
    return out


class TaskParser:
    def __init__(self, vocab: WordVocab, dim: int = 128, max_len: int = 160):
        self.vocab, self.dim, self.max_len = vocab, dim, max_len
        self.net = _Net(len(vocab), dim)

    @classmethod
    def train(cls, rows: Sequence[tuple[str, TaskSpec]], epochs: int = 4, batch: int = 64, lr: float = 2e-3,
              seed: int = 0, log: bool = True) -> TaskParser:
        if not rows:
            raise ValueError("the parser needs at least one (instruction, task) pair to train on")
        torch.manual_seed(seed)
        parser = cls(WordVocab.build([text for text, _ in rows], min_count=2))
        ids = parser.vocab.encode_batch([text for text, _ in rows], parser.max_len)
        targets = _targets([spec for _, spec in rows])
        opt = torch.optim.Adam(parser.net.parameters(), lr=lr)
        parser.net.train()
        for epoch in range(epochs):
            order, total = torch.randperm(len(rows)), 0.0
            for start in range(0, len(rows), batch):
                idx = order[start:start + batch]
                out = parser.net(ids[idx])
                loss = sum(nn.functional.cross_entropy(out[k], targets[k][idx]) for k in out)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            if log:
                print(f"parser epoch {epoch + 1}/{epochs}: loss {total / len(rows):.4f}", flush=True)
        parser.net.eval()
        return parser

    @torch.no_grad()
    def parse(self, texts: Sequence[str]) -> list[TaskSpec]:
        out = self.net(self.vocab.encode_batch(list(texts), self.max_len))
        specs = []
        for b in range(len(texts)):
            task_type = TASK_TYPES[int(out["task_type"][b].argmax())]
            args = {}
            for r in ROLES:
                c = int(out[r][b].masked_fill(~_role_mask(r, task_type), float("-inf")).argmax())
                args[r] = "" if c == NONE else OBJECT_TYPE_NAMES[c]
            sliced = bool(out["object_sliced"][b].argmax()) and OBJECT_TYPES[OBJECT_TYPE_NAMES.index(
                args["object_target"])].sliceable
            specs.append(TaskSpec(task_type, object_sliced=sliced, **args))
        return specs

    def __call__(self, text: str) -> TaskSpec:
        return self.parse([text])[0]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_bytes_atomic(folder / "parser.safetensors", save(self.net.state_dict()))
        write_json(folder / "parser.json", {"vocab": self.vocab.itos[4:], "dim": self.dim, "max_len": self.max_len},
                   indent=1)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TaskParser:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "parser.json").read_text())
            parser = cls(WordVocab(meta["vocab"]), meta["dim"], meta["max_len"])
            parser.net.load_state_dict(load((folder / "parser.safetensors").read_bytes()))
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise ValueError(f"{folder} is not a saved task parser (parser.json + parser.safetensors from "
                             f"`vlarena parser`): {e}") from e
        parser.net.eval()
        return parser
