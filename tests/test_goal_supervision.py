"""Supervising the map planner's goal choice (DAgger / BC `agent.goal_coef`) with ALFRED-v0's
info["expert_target_type"]: the loss on hand-computed cases, the labels reaching the rollout, learning, errors."""

from __future__ import annotations

import math

import pytest
import torch

from tests.agent_helpers import OBJECTNAV, one_thread, tiny_policy  # noqa: F401
from tests.policy_helpers import tiny_config
from vlarena.agents.bc import BCConfig, BCTrainer, train_bc
from vlarena.agents.dagger import GOAL_LABEL, DAggerConfig, goal_cross_entropy
from vlarena.agents.logging_utils import read_metrics
from vlarena.envs.alfred_env import AlfredVectorEnv
from vlarena.envs.objectnav import ObjectNavVectorEnv
from vlarena.policies import VLAPolicy

QUIET = dict(progress=False, tensorboard=False)


def test_goal_cross_entropy_on_a_hand_computed_case():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                           [[0.0, 0.0, 3.0], [5.0, 0.0, 0.0]]])   # (T=2, B=2, K=3)
    goal = torch.tensor([[0, 0], [-1, 0]])                          # -1: no goal
    valid = torch.tensor([[1.0, 1.0], [1.0, 0.0]])                  # step (1, 1) is an autoreset step
    loss, accuracy = goal_cross_entropy(logits, goal, valid)
    # the labelled valid steps: (0, 0) label 0 and (0, 1) label 0
    ce00 = -2.0 + math.log(math.exp(2.0) + 2)
    ce01 = -0.0 + math.log(math.exp(1.0) + 2)
    assert float(loss) == pytest.approx((ce00 + ce01) / 2, rel=1e-6)
    assert float(accuracy) == pytest.approx(0.5)  # (0, 0) right, (0, 1) picks type 1
    with pytest.raises(ValueError, match="goal labels must be < 3 .*got 3"):
        goal_cross_entropy(logits, torch.full((2, 2), 3), valid)


def test_goal_coef_needs_a_planner_and_is_not_negative(tmp_path):
    env = ObjectNavVectorEnv(num_envs=2, **OBJECTNAV)
    with pytest.raises(ValueError, match=r"agent.goal_coef \(1.0\) supervises .* needs policy.map_key and "
                                         r"policy.map_plan > 0"):
        BCTrainer(tiny_policy(env), env, BCConfig(goal_coef=1.0, **QUIET), tmp_path)
    with pytest.raises(ValueError, match="agent.goal_coef must be >= 0, got -0.5"):
        DAggerConfig(goal_coef=-0.5)


class NoGoalLabel(AlfredVectorEnv):
    def _info(self, *args, **kwargs):
        info = super()._info(*args, **kwargs)
        del info[GOAL_LABEL]
        return info


def planner_policy(env):
    torch.manual_seed(0)
    config = tiny_config(vision={"image_size": 64, "patch_size": 16}, map_key="semantic_map",
                         progress_key="progress", map_plan=4)
    return VLAPolicy(config, env.single_observation_space, env.single_action_space)


def test_bc_with_goal_coef_keeps_the_labels_and_teaches_the_planner_the_goal(tmp_path):
    env = AlfredVectorEnv(num_envs=4, split="train", num_episodes=4, semantic_map=15)
    policy = planner_policy(env)
    cfg = BCConfig(total_steps=4 * 16 * 20, num_steps=16, lr=3e-3, epochs=2, num_minibatches=2, goal_coef=1.0,
                   **QUIET)
    trainer = BCTrainer(policy, env, cfg, tmp_path)
    trainer.setup()
    trainer.collect(beta=1.0)
    stored = trainer.storage.batch().labels["goal_type"]
    assert stored.shape == (16, 4) and bool((stored >= -1).all()) and bool((stored >= 0).any())
    train_bc(policy, env, cfg, tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    first, last = rows[0], rows[-1]
    print(f"goal loss {first['train/goal_loss']:.3f} -> {last['train/goal_loss']:.3f}, accuracy "
          f"{first['train/goal_accuracy']:.3f} -> {last['train/goal_accuracy']:.3f}")
    assert first["train/goal_loss"] > math.log(49) - 1.0  # about uniform over the 49 types at the start
    assert last["train/goal_loss"] < first["train/goal_loss"] - 1.5
    assert last["train/goal_accuracy"] > first["train/goal_accuracy"] + 0.3


def test_an_env_without_the_label_is_a_clear_error(tmp_path):
    env = NoGoalLabel(num_envs=2, split="valid_unseen", num_episodes=2, semantic_map=15)
    trainer = BCTrainer(planner_policy(env), env, BCConfig(num_steps=2, goal_coef=1.0, **QUIET), tmp_path)
    trainer.setup()
    with pytest.raises(ValueError, match=r"agent.goal_coef needs info\['expert_target_type'\] from the env"):
        trainer.collect(beta=1.0)
