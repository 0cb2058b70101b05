"""The map planner: value iteration on a top-down map towards the object type the instruction picks."""

from __future__ import annotations

import math

import pytest
import torch

from vlarena.policies.map_planner import GAMMA, MapPlanner

C, S, LANG = 5, 9, 8  # channels: floor, wall, three object types


def _room() -> torch.Tensor:
    grid = torch.zeros(1, C, S, S)
    grid[0, 0] = 1.0  # seen floor everywhere
    grid[0, 3, 0, 4] = 1.0  # an object of type 1 (channel 3) at the top centre
    grid[0, 1, 2, 1:8] = 1.0  # a wall across row 2, open at both ends (columns 0 and 8)
    grid[0, 0, 2, 1:8] = 0.0
    return grid


def _planner(iterations: int = 30) -> MapPlanner:
    torch.manual_seed(0)
    planner = MapPlanner(C, LANG, out_dim=16, iterations=iterations, radius=2)
    with torch.no_grad():  # the instruction picks object type 1
        planner.goal_type.weight.zero_()
        planner.goal_type.bias.copy_(torch.tensor([0.0, 30.0, 0.0]))
    return planner


@torch.no_grad()
def test_values_follow_the_way_round_the_wall():
    planner = _planner()
    v, goal = planner.values(_room(), planner.goal_type(torch.zeros(1, LANG)))
    v, goal = v[0], goal[0]
    assert goal[0, 4] == pytest.approx(1.0) and float(goal.sum()) == pytest.approx(1.0, abs=1e-6)
    free = GAMMA * torch.sigmoid(torch.tensor(3.0)).item()  # a step onto a floor cell keeps this much value
    assert v[0, 4] == pytest.approx(1.0)
    assert float(v[0, 3]) == pytest.approx(free, rel=1e-5) and float(v[1, 4]) == pytest.approx(free, rel=1e-5)
    assert float(v[0, 0]) == pytest.approx(free ** 4, rel=1e-5)
    # below the wall (row 3, column 4) the way goes round it, through the gap at (2, 0) or (2, 8): 5 cells to the
    # gap and 6 on to the goal, not 3 straight through the wall
    assert float(v[3, 4]) == pytest.approx(free ** 11, rel=1e-4)
    assert float(v[3, 1]) == pytest.approx(free ** 8, rel=1e-4)
    # too few iterations: cells farther than that from the goal get nothing
    short = _planner(iterations=3)
    v_short, _ = short.values(_room(), short.goal_type(torch.zeros(1, LANG)))
    assert float(v_short[0, 8, 4]) < 1e-6


def test_the_instruction_and_the_passability_are_learned_through_the_readout():
    planner = _planner()
    with torch.no_grad():
        planner.goal_type.bias.zero_()
    instruction = torch.randn(1, LANG, requires_grad=True)
    out, logits = planner(_room(), instruction)
    assert out.shape == (1, 16)
    torch.testing.assert_close(logits, planner.goal_type(instruction))  # returned for goal supervision
    out.square().sum().backward()
    for name in ("goal_type.weight", "passable.weight", "passable.bias", "read.0.weight"):
        grad = dict(planner.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    # the prior: floor passable (p = 0.95), walls and objects not (0.05)
    p = torch.sigmoid(planner.passable(_room()))[0, 0].detach()
    assert float(p[0, 0]) == pytest.approx(1 / (1 + math.exp(-3.0)), rel=1e-5)
    assert float(p[2, 4]) == pytest.approx(1 / (1 + math.exp(3.0)), rel=1e-5)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="iterations >= 1"):
        MapPlanner(C, LANG, 16, iterations=0)
    with pytest.raises(ValueError, match="reads 7 x 7 cells around the agent; the map has 5"):
        MapPlanner(C, LANG, 16, iterations=4, radius=3)(torch.zeros(1, C, 5, 5), torch.zeros(1, LANG))
