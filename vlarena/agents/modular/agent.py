"""The modular ALFRED agent, batched: an `act(obs, info)` for agents.evaluate_alfred (and any loop over
`vlarena/ALFRED-v0`).

    agent = ModularAgent(parse)            # parse: instruction -> TaskSpec (parser.TaskParser, or the truth)
    act = agent.act                        # obs needs `semantic_map` (2 x 32 - 1 = 63 cells across or more),
                                           # `segmentation`, `depth`, `pose` and `instruction`

It parses each new episode's instruction into its task (type and arguments, as FILM's language module
does), expands the task into interaction steps (subgoals.py) and carries them out with one Executor per
env on the map the env's `semantic_map` observation gives (grid.py). A new episode is one whose
`elapsed_steps` is 0; `failed_action` tells the executor what its last action did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vlarena.agents.modular.executor import Executor
from vlarena.agents.modular.grid import StartFrameGrid
from vlarena.agents.modular.subgoals import interaction_steps
from vlarena.datasets.alfred.tasks import TaskSpec
from vlarena.envs.household.navigate import HORIZONS

NEEDS = ("semantic_map", "segmentation", "depth", "pose", "instruction")
MIN_MAP = 63  # cells across: twice the household grid (32 cells), so the crop holds the room wherever the agent is


class ModularAgent:
    def __init__(self, parse: Callable[[str], TaskSpec], look_around: int = 4):
        self.parse, self.look_around = parse, look_around
        self.executors: list[Executor] = []
        self.grid: StartFrameGrid | None = None

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        missing = [k for k in NEEDS if k not in obs]
        if missing:
            raise ValueError(f"the modular agent needs observations {list(NEEDS)}; missing {missing}: make the env "
                             f"with semantic_map={MIN_MAP} (or more) and segmentation=true")
        crop = obs["semantic_map"].cpu()
        if crop.shape[1] < MIN_MAP:
            raise ValueError(f"the modular agent needs semantic_map >= {MIN_MAP} cells across, got {crop.shape[1]}")
        if self.grid is None or self.grid.size != crop.shape[1]:
            self.grid = StartFrameGrid(crop.shape[1])
        b = crop.shape[0]
        new = (info["elapsed_steps"].cpu() == 0).tolist()
        if len(self.executors) != b:
            self.executors = [None] * b  # type: ignore[list-item]
        pose, seg, depth = obs["pose"].cpu(), obs["segmentation"].cpu(), obs["depth"].cpu()
        failed = info["failed_action"].cpu().tolist()
        out = []
        for e in range(b):
            if new[e] or self.executors[e] is None:
                self.executors[e] = Executor(interaction_steps(self.parse(obs["instruction"][e])), self.look_around)
            cells, here = self.grid.place(crop[e], pose[e])
            h = HORIZONS.index(round(float(pose[e, 4]) * 60))
            out.append(self.executors[e].act(cells, here, h, seg[e], depth[e], bool(failed[e]) and not new[e]))
        return torch.tensor(out, dtype=torch.long)

    def executed(self, actions: torch.Tensor) -> None:
        """The actions the env ran after the last `act` (B,), where someone else may have chosen them (a DAgger
        student): each executor learns from what ran, not from what it chose."""
        for ex, a in zip(self.executors, actions.tolist(), strict=True):
            if ex is not None:
                ex.executed(int(a))

    def headings(self) -> torch.Tensor:
        """(B,) int64: the object type each env's last action heads for or acts on (-1: none, or several)."""
        return torch.tensor([-1 if ex is None else ex.heading for ex in self.executors], dtype=torch.long)


def true_parser(env: Any) -> Callable[[str], TaskSpec]:
    """The episodes' own tasks looked up by instruction (an upper bound for a learned parser: FILM's
    ablation with ground-truth language)."""
    table = {env._instruction(e): spec for e, spec in enumerate(env.specs)}

    def parse(instruction: str) -> TaskSpec:
        return table[instruction]

    return parse
