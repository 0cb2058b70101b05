"""The action-mask observation: the policy contract (policies/action_mask.py) and ALFRED-v0's mask of the actions
that failed since the last one that worked."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.policy_helpers import tiny_config
from vlarena.envs.alfred_env import ACTIONS, AlfredVectorEnv
from vlarena.policies import VLAPolicy


def _space(n: int = 5, mask: gym.Space | None = None) -> gym.spaces.Dict:
    return gym.spaces.Dict({
        "rgb": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
        "instruction": gym.spaces.Text(64, charset="abcdefghijklmnopqrstuvwxyz "),
        "action_mask": mask if mask is not None else gym.spaces.Box(0, 1, (n,), np.int8)})


def _obs(mask: list[list[int]]) -> dict:
    b = len(mask)
    return {"rgb": torch.randint(0, 256, (b, 16, 16, 3), dtype=torch.uint8), "instruction": ["go to the door"] * b,
            "action_mask": torch.tensor(mask, dtype=torch.int8)}


def test_masked_actions_get_no_probability_in_act_and_evaluate_actions():
    torch.manual_seed(0)
    policy = VLAPolicy(tiny_config(), _space(), gym.spaces.Discrete(5)).eval()
    assert "action_mask" in policy.obs_keys  # a rollout keeps it for evaluate_actions
    obs = _obs([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]] * 50)
    state, masks = policy.initial_state(100), torch.ones(100)
    with torch.no_grad():
        action, log_prob, _, _ = policy.act(obs, state, masks=masks)
        greedy, _, _, _ = policy.act(obs, state, deterministic=True, masks=masks)
        obs_t = {k: (v[None] if isinstance(v, torch.Tensor) else [v]) for k, v in obs.items()}
        lp, entropy, _ = policy.evaluate_actions(obs_t, action[None], state, masks[None])
        masked_lp, _, _ = policy.evaluate_actions(obs_t, torch.ones_like(action)[None], state, masks[None])
    allowed = obs["action_mask"].bool()
    rows = torch.arange(100)
    assert allowed[rows, action].all() and allowed[rows, greedy].all()
    assert torch.equal(action[1::2], torch.full((50,), 3))  # one allowed action: always it, with probability 1
    assert torch.allclose(log_prob[1::2], torch.zeros(50), atol=1e-6)
    assert torch.allclose(lp, log_prob, atol=1e-5)
    assert (entropy[0::2] <= np.log(2) + 1e-6).all() and torch.allclose(entropy[1::2], torch.zeros(50), atol=1e-6)
    assert (masked_lp < -1e8).all()  # action 1 is masked in every row


def test_action_mask_errors():
    with pytest.raises(ValueError, match=r"observation_space\['action_mask'\] must be a Box of shape \(5,\)"):
        VLAPolicy(tiny_config(), _space(mask=gym.spaces.Box(0, 1, (4,), np.int8)), gym.spaces.Discrete(5))
    with pytest.raises(ValueError, match=r"must be a Box of shape \(5,\) .* int or bool dtype"):
        VLAPolicy(tiny_config(), _space(mask=gym.spaces.Box(0, 1, (5,), np.float32)), gym.spaces.Discrete(5))
    with pytest.raises(ValueError, match=r"masks a Discrete\(n\) action space with start 0"):
        VLAPolicy(tiny_config(), _space(), gym.spaces.MultiDiscrete([5, 5]))
    VLAPolicy(tiny_config(), _space(mask=gym.spaces.MultiBinary(5)), gym.spaces.Discrete(5))  # accepted
    policy = VLAPolicy(tiny_config(), _space(), gym.spaces.Discrete(5))
    state = policy.initial_state(1)
    with pytest.raises(ValueError, match=r"allows no action in some rows"):
        policy.act(_obs([[0, 0, 0, 0, 0]]), state)
    obs = _obs([[1, 1, 1, 1, 1]])
    del obs["action_mask"]
    with pytest.raises(ValueError, match=r"observation 'action_mask' must be a tensor \(B, 5\)"):
        policy.act(obs, state)


def test_alfred_masks_the_actions_that_failed_until_one_works_and_never_the_experts():
    env = AlfredVectorEnv(num_envs=4, split="train", num_episodes=4, action_mask=True)
    assert "action_mask" not in AlfredVectorEnv(num_envs=1, num_episodes=1).single_observation_space.spaces
    obs, info = env.reset(seed=0)
    assert obs["action_mask"].dtype == torch.int8 and bool((obs["action_mask"] == 1).all())
    rng = torch.Generator().manual_seed(0)
    failures = repeats = 0
    for _ in range(150):
        # mostly the expert, sometimes a random action (failed looks, pickups and moves) and its repeat
        a = torch.where(torch.rand(4, generator=rng) < 0.6, info["expert_action"].clamp(min=0),
                        torch.randint(1, len(ACTIONS), (4,), generator=rng))
        a = torch.where(env.last_failed & (torch.rand(4, generator=rng) < 0.5), env.last_action.clamp(min=0), a)
        was = obs["action_mask"].bool()
        repeats += int((~was[torch.arange(4), a]).sum())
        obs, _, term, trunc, info = env.step(a)
        failed, fresh = info["failed_action"], ~(term | trunc)
        failures += int(failed.sum())
        mask = obs["action_mask"].bool()
        for b in torch.nonzero(fresh).flatten().tolist():
            if failed[b]:  # the failed action is masked, with those masked before it
                expected = was[b].clone()
                expected[a[b]] = False
                assert torch.equal(mask[b], expected)
            else:  # an action that worked clears the mask
                assert bool(mask[b].all())
        expert = info["expert_action"]
        known = expert >= 0
        assert bool(mask[known, expert[known]].all())  # the expert never takes a masked action
    assert failures >= 10 and repeats >= 3  # masked actions were taken (the env itself does not refuse them)


def test_dagger_from_a_checkpoint_built_without_the_mask_reads_it(tmp_path, monkeypatch):
    """init_from rebuilds the saved network on the run's env spaces, so a policy cloned without the action mask
    reads it once the env gives it (no new weights); agent.expert_decides comes through hydra as a list."""
    import json

    import yaml

    from vlarena.cli import main

    monkeypatch.chdir(tmp_path)
    common = ["env=alfred", "policy=tiny", "num_envs=2", "env.kwargs.num_episodes=2", "env.kwargs.width=32",
              "env.kwargs.height=32", "agent.progress=false", "agent.num_steps=16", "eval.enabled=false"]
    assert main(["train", "agent=bc", "agent.total_steps=32", f"run_dir={tmp_path / 'bc'}", *common]) == 0
    assert main(["train", "agent=dagger", "agent.total_steps=64", "agent.beta0=0.0", "agent.beta_schedule=constant",
                 "agent.expert_decides=[6,7,8,9,10,11,12]", f"init_from={tmp_path / 'bc' / 'checkpoints' / 'step_32'}",
                 "env.kwargs.action_mask=true", f"run_dir={tmp_path / 'dagger'}", *common]) == 0
    saved = json.loads((tmp_path / "dagger" / "checkpoints" / "step_64" / "config.json").read_text())
    assert "action_mask" in json.dumps(saved["observation_space"])
    assert "action_mask" not in json.dumps(json.loads(
        (tmp_path / "bc" / "checkpoints" / "step_32" / "config.json").read_text())["observation_space"])
    config = yaml.safe_load((tmp_path / "dagger" / "config.yaml").read_text())
    assert config["agent"]["expert_decides"] == [6, 7, 8, 9, 10, 11, 12]


def test_sampled_evaluation_draws_the_same_actions_on_every_run(tmp_path):
    """`vlarena eval ... deterministic=false` seeds the sampled actions with agent.seed: two runs in one process
    (where the global generator would otherwise go on) write the same episodes; another seed gives other ones."""
    from vlarena.cli import main

    env = AlfredVectorEnv(num_envs=1, split="valid_unseen", num_episodes=2, action_mask=True)
    torch.manual_seed(0)
    VLAPolicy(tiny_config(vision={"image_size": 64, "patch_size": 16}), env.single_observation_space,
              env.single_action_space).save_pretrained(tmp_path / "p")
    runs = []
    for k, seed in enumerate((0, 0, 1)):
        assert main(["eval", "env=alfred", f"checkpoint={tmp_path / 'p'}", "split=valid_unseen", "num_envs=2",
                     "env.kwargs.num_episodes=2", "env.kwargs.action_mask=true", "deterministic=false",
                     f"agent.seed={seed}", "progress=false", f"out_dir={tmp_path / str(k)}"]) == 0
        runs.append((tmp_path / str(k) / "episodes.jsonl").read_text())
    assert runs[0] == runs[1] and runs[0] != runs[2]
