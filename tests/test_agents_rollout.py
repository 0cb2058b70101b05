"""Rollout storage, GAE across NEXT_STEP autoreset, and the runner's masks/valid convention."""

from __future__ import annotations

import pytest
import torch

from tests.agent_helpers import OBJECTNAV, ScriptedEnv, one_thread, tiny_policy  # noqa: F401
from vlarena.agents.policy_agent import PolicyAgent
from vlarena.agents.rollout import RolloutStorage, compute_gae, explained_variance, masked_mean
from vlarena.agents.runner import EnvRunner, policy_obs_keys
from vlarena.envs.objectnav import ObjectNavVectorEnv


def test_gae_hand_computed_with_termination_and_truncation():
    # env 0 terminates at t=1 (t=2 is its reset step); env 1 is truncated at t=1 (bootstraps from V(final frame)).
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [0.0, 0.0], [3.0, 1.0]])
    values = torch.tensor([[0.5, 1.0], [1.0, 2.0], [4.0, 3.0], [2.0, 4.0]])
    terminated = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 0]], dtype=torch.bool)
    truncated = torch.tensor([[0, 0], [0, 1], [0, 0], [0, 0]], dtype=torch.bool)
    valid = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    last_value = torch.tensor([10.0, 5.0])
    adv, ret = compute_gae(rewards, values, last_value, terminated, truncated, valid, gamma=0.9, lam=0.8)
    # env 0: A3 = 3 + .9*10 - 2 = 10; A2 = 0 (reset step); A1 = 2 - 1 = 1 (terminal); A0 = 1 + .9*1 - .5 + .72*1
    # env 1: A3 = 1 + .9*5 - 4 = 1.5; A2 = 0; A1 = 1 + .9*3 - 2 = 1.7 (bootstrap); A0 = 1 + .9*2 - 1 + .72*1.7
    expected = torch.tensor([[2.12, 3.024], [1.0, 1.7], [0.0, 0.0], [10.0, 1.5]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_gae_lambda_one_is_discounted_return_minus_value():
    t, gamma = 5, 0.5
    rewards = torch.arange(1.0, t + 1).unsqueeze(1)
    values = torch.zeros(t, 1)
    zeros = torch.zeros(t, 1, dtype=torch.bool)
    adv, _ = compute_gae(rewards, values, torch.tensor([8.0]), zeros, zeros, torch.ones(t, 1), gamma, 1.0)
    expected = [sum(gamma ** (k - s) * rewards[k, 0].item() for k in range(s, t)) + gamma ** (t - s) * 8 for s in range(t)]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected))


def test_masked_mean_and_explained_variance_ignore_invalid_entries():
    x = torch.tensor([1.0, 3.0, float("inf")])
    valid = torch.tensor([1.0, 1.0, 0.0])
    assert masked_mean(x, valid).item() == 2.0
    assert masked_mean(x, torch.zeros(3)).item() == 0.0
    returns = torch.tensor([1.0, 2.0, 3.0, 100.0])
    assert explained_variance(returns, returns, torch.tensor([1.0, 1.0, 1.0, 0.0])).item() == 1.0
    ev = explained_variance(torch.zeros(4), returns, torch.tensor([1.0, 1.0, 1.0, 0.0])).item()
    assert ev == pytest.approx(0.0)


def collect(env, policy, steps):
    run = EnvRunner(env, policy)
    storage = RolloutStorage(steps, env.num_envs, obs_keys=policy_obs_keys(policy, run.obs))
    storage.reset(run.state)
    for _ in range(steps):
        obs, masks, valid = run.policy_obs(), run.masks, run.valid
        with torch.no_grad():
            action, log_prob, value, state = policy.act(obs, run.state, masks=masks)
        storage.insert(obs, masks, valid, action, log_probs=log_prob, values=value, expert_actions=run.expert_action())
        storage.insert_result(*run.step(action, state))
    return run, storage


def test_runner_masks_and_valid_follow_next_step_autoreset():
    env = ScriptedEnv(lengths=[2, 3], truncate=[False, True])
    policy = tiny_policy(env)
    run, storage = collect(env, policy, 6)
    # env 0: episodes of 2 steps, each followed by its reset step; env 1: 3 steps then truncated
    assert storage.valid[:, 0].tolist() == [1, 1, 0, 1, 1, 0]
    assert storage.masks[:, 0].tolist() == [0, 1, 1, 0, 1, 1]
    assert storage.valid[:, 1].tolist() == [1, 1, 1, 0, 1, 1]
    assert storage.masks[:, 1].tolist() == [0, 1, 1, 1, 0, 1]
    assert storage.terminated[:, 0].tolist() == [0, 1, 0, 0, 1, 0]
    assert storage.truncated[:, 1].tolist() == [0, 0, 1, 0, 0, 0]
    assert run.masks.tolist() == [0, 1] and run.valid.tolist() == [1, 1]  # for the next rollout
    # obs were copied before each step: frame k is the k-th observation the env produced
    assert storage.obs["rgb"][:, 0, 1, 1, 0].tolist() == [1, 2, 3, 4, 5, 6]
    stats = run.episode_metrics(run.pop_episode_sums())
    assert stats["episodes"] == 3 and stats["length"] == pytest.approx(7 / 3) and stats["return"] == pytest.approx(7 / 3)
    assert stats["success"] == pytest.approx(2 / 3)
    assert "spl" not in stats  # the scripted env reports success but no SPL
    assert run.episode_metrics(run.pop_episode_sums()) == {"episodes": 0}


def test_stored_sequences_reproduce_the_policy_log_probs():
    """evaluate_actions over stored (T, b) sequences (any env subset) gives what act gave step by step."""
    env = ScriptedEnv(lengths=[2, 3, 4, 5], truncate=[False, True, False, True])
    policy = tiny_policy(env)
    _, storage = collect(env, policy, 7)
    full = storage.batch()
    with torch.no_grad():
        log_prob, _, value = policy.evaluate_actions(full.obs, full.actions, full.state0, full.masks)
    torch.testing.assert_close(log_prob, full.flat(full.log_probs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, full.flat(full.values), atol=1e-5, rtol=1e-5)
    seen = []
    for mb in storage.minibatches(3, torch.Generator().manual_seed(0)):
        seen += mb.env_index.tolist()
        assert mb.obs["rgb"].shape[:2] == (7, len(mb.env_index)) and len(mb.obs["instruction"]) == 7
        assert mb.obs["instruction"][0] == tuple(storage.instructions[0][b] for b in mb.env_index.tolist())
        with torch.no_grad():
            lp, _, _ = policy.evaluate_actions(mb.obs, mb.actions, mb.state0, mb.masks)
        torch.testing.assert_close(lp, mb.flat(mb.log_probs), atol=1e-5, rtol=1e-5)
    assert sorted(seen) == [0, 1, 2, 3]


def test_storage_errors_name_the_problem():
    storage = RolloutStorage(2, 3, obs_keys=("rgb", "instruction"))
    with pytest.raises(RuntimeError, match="reset"):
        storage.insert({}, torch.zeros(3), torch.ones(3), torch.zeros(3))
    storage.reset(torch.zeros(3, 1, 1))
    with pytest.raises(ValueError, match="'rgb' is missing"):
        storage.insert({"instruction": ("a",) * 3}, torch.zeros(3), torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="num_minibatches must be an int in \\[1, num_envs=3\\]"):
        next(storage.minibatches(4))
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        RolloutStorage(0, 3)


def test_policy_agent_reads_episode_starts_from_elapsed_steps_like_the_runner():
    """PolicyAgent (for evaluate.py) resets its state where the runner's masks do, and acts identically."""
    env = ObjectNavVectorEnv(num_envs=3, max_episode_steps=3, **OBJECTNAV)
    policy = tiny_policy(env)
    run = EnvRunner(env, policy, seed=0)
    agent = PolicyAgent(policy, deterministic=True)
    starts = 0
    for _ in range(9):
        assert torch.equal(run.masks, (run.info["elapsed_steps"] != 0).float())
        starts += int((run.masks == 0).sum())
        chosen = agent.act(run.obs, run.info)
        with torch.no_grad():
            action, _, _, state = policy.act(run.obs, run.state, deterministic=True, masks=run.masks)
        assert torch.equal(chosen, action)
        run.step(action, state)
    assert starts >= 6  # the 3-step time limit restarted every env at least once
