"""The modular agent as an imitation teacher (agent.teacher=modular): its labels solve episodes whoever drives
the moves, the policy never sees its segmentation, and it learns from the actions that ran."""

from __future__ import annotations

import pytest
import torch

from vlarena.agents.dagger import DAggerConfig
from vlarena.agents.modular.executor import MOVE_AHEAD, ROTATE_LEFT, Executor
from vlarena.agents.modular.subgoals import Step
from vlarena.agents.modular.teacher import ModularTeacher
from vlarena.envs.alfred_env import AlfredVectorEnv
from vlarena.envs.household.navigate import STEP
from vlarena.envs.household.world import PICKUP

INTERACTIONS = torch.arange(6, 13)


def _teacher(n: int = 2) -> ModularTeacher:
    return ModularTeacher(AlfredVectorEnv(num_envs=n, split="valid_unseen", num_episodes=n, segmentation=True,
                                          semantic_map=31))


def _run(env: ModularTeacher, student: float) -> tuple[torch.Tensor, int]:
    """Episodes to their end, the teacher's label running except on a `student` fraction of the steps, where a
    student turns at random (its interactions would run only where they agree: expert_decides). Returns
    (success, the student's steps)."""
    obs, info = env.reset(options={"episode_id": env.unwrapped.episode_ids})
    done = torch.zeros(env.num_envs, dtype=torch.bool)
    success = torch.zeros_like(done)
    gen = torch.Generator().manual_seed(0)
    turned = 0
    while not bool(done.all()):
        assert "segmentation" not in obs and obs["semantic_map"].shape[1:3] == (31, 31)
        assert bool(info["expert_valid"].all())
        label = info["expert_action"]
        turn = (torch.rand(env.num_envs, generator=gen) < student) & ~torch.isin(label, INTERACTIONS)
        action = torch.where(turn, ROTATE_LEFT + torch.randint(0, 2, label.shape, generator=gen), label)
        obs, _, _, _, info = env.step(action)
        turned += int((turn & ~done).sum())
        success |= info["success"] & ~done
        done |= info["done"]
    return success, turned


def test_teacher_labels_solve_episodes_and_hide_segmentation():
    env = _teacher()
    assert "segmentation" not in env.single_observation_space.spaces
    assert "segmentation" in env.unwrapped.single_observation_space.spaces
    success, _ = _run(env, 0)
    assert success.all(), success


def test_teacher_labels_still_solve_after_a_student_turns_it_away():
    success, turned = _run(_teacher(), 0.25)
    assert success.all(), success
    assert turned > 20  # the student did act


def test_executor_learns_from_the_action_that_ran():
    ex = Executor([Step(PICKUP, frozenset({0}))], look_around=1)
    cells = torch.zeros(9, 9, 51, dtype=torch.bool)
    cells[..., 0] = True
    frame = (torch.zeros(16, 16, 2, dtype=torch.int16), torch.full((16, 16, 1), 5.0))
    pose = (4, 4, 0)
    assert ex.act(cells, pose, 3, *frame, False) == ROTATE_LEFT
    ex.executed(MOVE_AHEAD)  # a student walked instead, into a wall
    ex.act(cells, pose, 3, *frame, True)
    assert (4 + STEP[0][0], 4 + STEP[0][1]) in ex.blocked_cells
    ex._last, ex._h = (6 + PICKUP, pose, 3), 3  # an interaction it chose that did not run: may be tried again
    ex.tried[pose] = {3}
    ex.executed(ROTATE_LEFT)
    assert 3 not in ex.tried[pose] and ex._last == (ROTATE_LEFT, pose, -1)


def test_teacher_needs_segmentation_and_a_known_name():
    with pytest.raises(ValueError, match="segmentation=true"):
        ModularTeacher(AlfredVectorEnv(num_envs=1, split="valid_unseen", num_episodes=1, semantic_map=31))
    with pytest.raises(ValueError, match="agent.teacher must be one of"):
        DAggerConfig(teacher="oracle")
