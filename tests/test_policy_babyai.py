"""The VLA policy acting in BabyAI (MiniGrid) through the instruction adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.policy_helpers import tiny_config
from vlarena.policies import VLAPolicy

pytest.importorskip("minigrid")


def to_batch(obs: dict) -> dict:
    return {"rgb": torch.as_tensor(obs["rgb"])[None], "instruction": (obs["instruction"],)}


def test_policy_runs_babyai_episodes_and_scores_the_bot_actions():
    from vlarena.envs.adapters.babyai import make_babyai

    env = make_babyai("BabyAI-GoToLocal-v0", size=(16, 16))
    policy = VLAPolicy(tiny_config(), env.observation_space, env.action_space)
    assert policy.action_head.__class__.__name__ == "CategoricalHead"
    lengths, expert = [], []
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        state = policy.initial_state(1)
        for t in range(65):  # noqa: B007 (t is read after the loop); GoToLocal truncates after 64 steps
            with torch.no_grad():
                action, log_prob, value, state = policy.act(to_batch(obs), state)
            a = int(action[0])
            assert env.action_space.contains(a) and torch.isfinite(log_prob).all() and torch.isfinite(value).all()
            expert.append(int(info["expert_action"]))
            obs, reward, terminated, truncated, info = env.step(a)
            if terminated or truncated:
                break
        assert terminated or truncated
        lengths.append(t + 1)
    # the policy gives the expert's (BabyAIBot's) actions a proper log-probability: what BC maximises
    obs, info = env.reset(seed=0)
    batch = to_batch(obs)
    masks = torch.zeros(1, 1)
    with torch.no_grad():
        log_prob, entropy, _ = policy.evaluate_actions(batch, torch.tensor([int(info["expert_action"])]),
                                                       policy.initial_state(1), masks)
    assert log_prob.shape == (1,) and -np.log(env.action_space.n) - 1.0 < float(log_prob) < 0
    assert 0 < float(entropy) <= np.log(env.action_space.n) + 1e-5
    assert set(expert) <= set(range(env.action_space.n)) and max(lengths) <= 64
