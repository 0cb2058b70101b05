"""ALFRED-v0's `type_view` (where each object type is in view, what each interaction would act on) and the policy
reading it through its planner's goal choice (`policy.view_key`)."""

from __future__ import annotations

import pytest
import torch

from tests.policy_helpers import tiny_config
from vlarena.envs.alfred_env import FIRST_INTERACTION, NUM_TYPES, AlfredVectorEnv
from vlarena.envs.household.type_view import type_view
from vlarena.policies import PolicyConfig, VLAPolicy


def test_type_view_on_a_hand_made_view():
    types = torch.full((1, 9, 9), -1)
    types[0, 0, 0] = 2      # above and left of the window (rows and columns 3..5 with window 1)
    types[0, 4, 4] = 0      # in it
    types[0, 8, 5] = 1      # below it, in its columns
    types[0, 3, 8] = 1      # in its rows, right of it
    view = type_view(types, torch.tensor([[0, -1, 2]]), num_types=3, window=1)
    expected = torch.zeros(1, 3, 9 + 3)
    expected[0, 2, 0] = expected[0, 0, 4] = expected[0, 1, 7] = expected[0, 1, 5] = 1.0
    expected[0, 0, 9 + 0] = expected[0, 2, 9 + 2] = 1.0  # interaction 0 acts on type 0, interaction 2 on type 2
    assert torch.equal(view, expected)
    with pytest.raises(ValueError, match=r"targets must be \(B, A\) = \(1, A\), got \(3,\)"):
        type_view(types, torch.tensor([0, -1, 2]), 3, 1)


def test_every_expert_interaction_acts_on_the_flagged_type_and_the_grid_matches_segmentation():
    env = AlfredVectorEnv(num_envs=4, split="train", num_episodes=4, type_view=True, segmentation=True)
    assert "type_view" not in AlfredVectorEnv(num_envs=1, num_episodes=1).single_observation_space.spaces
    obs, info = env.reset(seed=0)
    assert obs["type_view"].shape == (4, NUM_TYPES, 9 + 7)
    interactions = 0
    for _ in range(120):
        seg = obs["segmentation"][..., 0].long() - 1
        present = torch.zeros(4, NUM_TYPES, dtype=torch.bool)
        for b in range(4):
            present[b, seg[b][seg[b] >= 0].unique()] = True
        assert torch.equal(obs["type_view"][:, :, :9].amax(-1) > 0, present)  # the grid covers the view
        a = info["expert_action"].clamp(min=0)
        for b in torch.nonzero(a >= FIRST_INTERACTION).flatten().tolist():
            interactions += 1
            hits = obs["type_view"][b, :, 9 + int(a[b]) - FIRST_INTERACTION]
            assert hits.sum() == 1 and hits[info["expert_target_type"][b]] == 1
        obs, _, _, _, info = env.step(a)
        if interactions >= 6:
            break
    assert interactions >= 6


def _policy(env, **overrides):
    torch.manual_seed(0)
    config = tiny_config(vision={"image_size": 64, "patch_size": 16}, map_key="semantic_map", map_plan=4, **overrides)
    return VLAPolicy(config, env.single_observation_space, env.single_action_space)


def test_the_policy_reads_the_view_through_its_goal_choice():
    env = AlfredVectorEnv(num_envs=2, split="train", num_episodes=2, semantic_map=15, type_view=True)
    policy = _policy(env, view_key="type_view").eval()
    obs, _ = env.reset(seed=0)
    state, masks = policy.initial_state(2), torch.ones(2)
    with torch.no_grad():
        chosen = policy.map_encoder.planner.goal_type
        goal = int(chosen(torch.zeros(1, chosen.in_features)).argmax())  # the type a zero instruction would choose
        chosen.weight.zero_()
        chosen.bias.fill_(-30.0)
        chosen.bias[goal] = 30.0  # the planner now heads for `goal` whatever the instruction
        seen = dict(obs, type_view=obs["type_view"].clone())
        seen["type_view"][:, goal, 4] = 1.0  # the chosen type at the view centre
        other = dict(obs, type_view=obs["type_view"].clone())
        other["type_view"][:, (goal + 1) % NUM_TYPES, 4] = 1.0  # another type there
        a, b, c = (policy.encode_observation(o) for o in (obs, seen, other))
        assert not torch.allclose(a, b)  # the view is read
        assert not torch.allclose(b, c)  # the chosen type in the centre is not any type in the centre
        # evaluate_actions over a (T=1, B=2) rollout gives what act gives
        action, log_prob, value, _ = policy.act(obs, state, masks=masks)
        obs_t = {k: (v[None] if isinstance(v, torch.Tensor) else [v]) for k, v in obs.items()}
        lp, _, val = policy.evaluate_actions(obs_t, action[None], state, masks[None])
    assert torch.allclose(lp, log_prob, atol=1e-5) and torch.allclose(val, value, atol=1e-5)


def test_view_key_errors():
    env = AlfredVectorEnv(num_envs=1, split="train", num_episodes=1, semantic_map=15, type_view=True)
    with pytest.raises(ValueError, match=r"policy.view_key \('type_view'\) .* needs policy.map_plan > 0"):
        PolicyConfig(map_key="semantic_map", view_key="type_view")
    with pytest.raises(ValueError, match=r"policy.view_key names 'progress', which must be a \(49, K\) Box"):
        _policy(env, view_key="progress")
    obs, _ = env.reset(seed=0)
    policy = _policy(env, view_key="type_view")
    del obs["type_view"]
    with pytest.raises(ValueError, match=r"observation 'type_view' \(policy.view_key\) is missing"):
        policy.encode_observation(obs)
