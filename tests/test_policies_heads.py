"""Action heads against torch.distributions references; head choice per gym space."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from vlarena.policies import (
    ActionHead,
    CategoricalHead,
    DiagGaussianHead,
    MultiCategoricalHead,
    ValueHead,
    build_action_head,
)

F = 12


@pytest.fixture
def feats():
    return torch.randn(7, F, generator=torch.Generator().manual_seed(0))


def test_categorical_matches_torch(feats):
    head = build_action_head(gym.spaces.Discrete(5, start=2), F)
    assert isinstance(head, CategoricalHead) and isinstance(head, ActionHead)
    with torch.no_grad():
        head.logits.weight.normal_()
    ref = Categorical(logits=head.logits(feats))
    torch.manual_seed(0)
    action, log_prob = head.act(feats)
    assert action.shape == (7,) and action.dtype == torch.int64 and ((action >= 2) & (action < 7)).all()
    torch.testing.assert_close(log_prob, ref.log_prob(action - 2))
    lp, ent = head.evaluate(feats, action)
    torch.testing.assert_close(lp, ref.log_prob(action - 2))
    torch.testing.assert_close(ent, ref.entropy())
    torch.testing.assert_close(head.entropy(feats), ref.entropy())
    torch.testing.assert_close(head.log_prob(feats, action.float()), ref.log_prob(action - 2))  # SB3 gives floats
    assert torch.equal(head.mode(feats), ref.logits.argmax(-1) + 2)
    counts = torch.bincount(torch.stack([head.sample(feats[:1]) for _ in range(2000)]).view(-1) - 2, minlength=5)
    torch.testing.assert_close(counts / 2000.0, ref.probs[0], atol=0.05, rtol=0)


def test_multi_categorical_matches_sum_of_torch_categoricals(feats):
    nvec = [3, 2, 4]
    head = build_action_head(gym.spaces.MultiDiscrete(nvec), F)
    assert isinstance(head, MultiCategoricalHead)
    with torch.no_grad():
        head.logits.weight.normal_()
    parts = [Categorical(logits=c) for c in torch.split(head.logits(feats), nvec, dim=-1)]
    action, log_prob = head.act(feats)
    assert action.shape == (7, 3) and action.dtype == torch.int64
    assert all(((action[:, i] >= 0) & (action[:, i] < n)).all() for i, n in enumerate(nvec))
    ref_lp = sum(p.log_prob(action[:, i]) for i, p in enumerate(parts))
    torch.testing.assert_close(log_prob, ref_lp)
    lp, ent = head.evaluate(feats, action)
    torch.testing.assert_close(lp, ref_lp)
    torch.testing.assert_close(ent, sum(p.entropy() for p in parts))
    assert torch.equal(head.mode(feats), torch.stack([p.logits.argmax(-1) for p in parts], dim=-1))


def test_diag_gaussian_matches_torch_normal(feats):
    head = build_action_head(gym.spaces.Box(-2.0, 2.0, (2, 3), np.float32), F, init_log_std=-0.5)
    assert isinstance(head, DiagGaussianHead)
    with torch.no_grad():
        head.mean.weight.normal_()
        head.log_std.copy_(torch.linspace(-1.0, 0.5, 6))
    mean = head.mean(feats)
    ref = Normal(mean, head.log_std.exp().expand_as(mean))
    action, log_prob = head.act(feats)
    assert action.shape == (7, 2, 3) and action.dtype == torch.float32
    torch.testing.assert_close(log_prob, ref.log_prob(action.view(7, 6)).sum(-1))
    lp, ent = head.evaluate(feats, action)
    torch.testing.assert_close(lp, ref.log_prob(action.view(7, 6)).sum(-1))
    torch.testing.assert_close(ent, ref.entropy().sum(-1))
    expected_entropy = (0.5 + 0.5 * math.log(2 * math.pi) + head.log_std).sum().expand(7)
    torch.testing.assert_close(ent, expected_entropy.detach())
    torch.testing.assert_close(head.mode(feats), mean.view(7, 2, 3))
    lp.sum().backward()
    assert head.log_std.grad is not None and head.mean.weight.grad is not None


def test_value_head_and_init():
    v = ValueHead(F)
    assert v(torch.randn(5, F)).shape == (5,)
    head = build_action_head(gym.spaces.Discrete(4), F)
    assert head.logits.weight.abs().max() < 0.05  # small init: near-uniform first policy (cleanrl / SB3)


@pytest.mark.parametrize("space", [gym.spaces.MultiBinary(3), gym.spaces.Box(0, 255, (3,), np.uint8),
                                   gym.spaces.MultiDiscrete([[2, 3], [4, 5]]), gym.spaces.Text(5)])
def test_unsupported_action_space_is_named(space):
    with pytest.raises(ValueError, match=r"(?s)unsupported action space .*accepted are Discrete, MultiDiscrete"):
        build_action_head(space, F)


def test_diffusion_head_clones_instruction_dependent_box_actions(tmp_path):
    """A VLA policy with the diffusion head, trained through evaluate_actions (the BC loss), then sampled by DDIM."""
    from tests.policy_helpers import TEXTS, make_obs, obs_space, tiny_config
    from vlarena.agents.ppo import PPOConfig, PPOTrainer
    from vlarena.policies import VLAPolicy

    torch.manual_seed(0)
    space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    policy = VLAPolicy(tiny_config(action_head="diffusion", memory={"kind": "none"}), obs_space(), space)
    target = torch.tensor([[-1.5, 0.5], [1.0, -1.0], [0.2, 1.8], [-0.8, -1.6]])  # one per instruction in TEXTS
    many = {k: v.repeat(16, *([1] * (v.dim() - 1))) if isinstance(v, torch.Tensor) else v * 16
            for k, v in make_obs(4).items()}  # 16 noise draws per frame and step
    obs = {k: v[:4] for k, v in many.items()}
    assert list(obs["instruction"]) == list(TEXTS) and len(many["instruction"]) == 64
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    state = policy.initial_state(4)
    for _ in range(300):
        log_prob, entropy, _ = policy.evaluate_actions(many, target.repeat(16, 1), policy.initial_state(64),
                                                       torch.ones(1, 64))
        loss = -log_prob.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert entropy.abs().sum() == 0
    action, log_prob, _, _ = policy.act(obs, state, deterministic=True)
    assert action.shape == (4, 2) and bool((action.abs() <= 2.0).all())
    assert (action - target).abs().max().item() < 0.25, action
    again, _, _, _ = policy.act(obs, state, deterministic=True)
    torch.testing.assert_close(again, action)  # deterministic: DDIM from zero noise
    policy.save_pretrained(tmp_path / "p")
    torch.testing.assert_close(VLAPolicy.from_pretrained(tmp_path / "p").act(obs, state, deterministic=True)[0], action)
    with pytest.raises(ValueError, match="bounded Box"):
        VLAPolicy(tiny_config(action_head="diffusion"), obs_space(), gym.spaces.Box(-np.inf, np.inf, (2,)))

    class Env:
        num_envs, device = 4, "cpu"

    with pytest.raises(ValueError, match="PPO needs action log-probs"):
        PPOTrainer(policy, Env(), PPOConfig(progress=False, tensorboard=False), tmp_path / "ppo")
