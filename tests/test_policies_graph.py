"""VLAPolicy on the R2R graph env: panorama (non-square) frames and masked candidate actions."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.policy_helpers import make_obs, obs_space, tiny_config
from vlarena.envs.r2r_graph import R2RGraphVectorEnv
from vlarena.policies import PolicyConfig, VisionConfig, VisionEncoder, VLAPolicy
from vlarena.policies.candidates import CandidateScoringHead
from vlarena.policies.heads import CategoricalHead

SIZES = {"scenes": {"seen": 2, "val_unseen": 1, "test": 1},
         "paths_per_scene": {"train": 6, "val_seen": 3, "val_unseen": 6, "test": 4}}
B = 4
PANORAMA = {"image_size": [16, 64]}  # 4 views of 16x16 -> a 2 x 8 grid of 8x8 patches


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    dataset = {**SIZES, "data_dir": str(tmp_path_factory.mktemp("data"))}
    return R2RGraphVectorEnv(num_envs=B, split="train", dataset=dataset, views=4, width=16, height=16)


def make_policy(env, head="score", seed=0, **overrides):
    torch.manual_seed(seed)
    config = tiny_config(vision={**PANORAMA, **overrides.pop("vision", {})}, candidates={"head": head}, **overrides)
    return VLAPolicy(config, env.single_observation_space, env.single_action_space)


def valid_actions(obs):
    """bool (B, 1 + C): STOP always, candidate c iff its mask."""
    mask = obs["candidate_mask"].bool()
    return torch.cat([torch.ones(mask.shape[0], 1, dtype=torch.bool), mask], dim=1)


def repeat(obs, k):
    """Each row k times (a batch of k * B rows of the same observations)."""
    out = {key: v.repeat_interleave(k, dim=0) for key, v in obs.items() if isinstance(v, torch.Tensor)}
    out["instruction"] = tuple(s for s in obs["instruction"] for _ in range(k))
    return out


def test_panorama_vit_grid_and_resizing():
    cfg = VisionConfig(image_size=[16, 64], patch_size=8, width=16, depth=1, heads=2)
    assert cfg.image_hw == (16, 64) and cfg.grid == (2, 8) and cfg.num_tokens == 16
    assert VisionConfig(image_size=(16, 64), patch_size=8).image_size == [16, 64]  # JSON form
    enc = VisionEncoder(cfg)
    assert enc.pos_embed.shape == (1, 16, 16)
    rgb = torch.randint(0, 256, (2, 32, 128, 3), dtype=torch.uint8)  # same 1:4 ratio: resized
    tokens, pooled = enc(rgb)
    assert tokens.shape == (2, 16, 16) and torch.isfinite(tokens).all()
    torch.testing.assert_close(enc.preprocess(rgb), enc.resize(rgb.permute(0, 3, 1, 2).float() / 127.5 - 1))
    with pytest.raises(ValueError, match=r"observation 'rgb' of shape \(2, 16, 16, 3\) has frames of 16x16 .* "
                                         r"vision.image_size is \[16, 64\] \(16x64\): accepted are frames of the "
                                         r"aspect ratio H:W = 1:4"):
        enc(torch.zeros(2, 16, 16, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"vision.image_size must be a positive int or \[height, width\]"):
        VisionConfig(image_size=[16, 64, 3])
    with pytest.raises(ValueError, match=r"vision.image_size \(\[16, 60\]\) must be a multiple of vision.patch_size"):
        VisionConfig(image_size=[16, 60], patch_size=8)
    # an int image_size keeps its JSON form and parameter shapes (older checkpoints load unchanged)
    square = PolicyConfig.from_dict(json.loads(json.dumps(tiny_config().to_dict())))
    assert square.vision.image_size == 16 and square.vision.num_tokens == 4


def test_observation_space_is_checked_against_image_size_and_candidates(env):
    space, actions = env.single_observation_space, env.single_action_space
    with pytest.raises(ValueError, match=r"observation_space\['rgb'\] \(16, 64, 3\) has frames of 16x64 .* "
                                         r"vision.image_size is 16 \(16x16\): accepted are frames of the aspect ratio "
                                         r"H:W = 1:1 .* ratio 1:4, .* e.g. \[8, 32\] \(4 tokens\) or \[16, 64\]"):
        VLAPolicy(tiny_config(), space, actions)
    with pytest.raises(ValueError, match=r"must be Discrete\(13\) with start 0 .* got Discrete\(4\)"):
        VLAPolicy(tiny_config(vision=PANORAMA), space, gym.spaces.Discrete(4))
    no_mask = gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != "candidate_mask"})
    with pytest.raises(ValueError, match="has 'candidates' but not 'candidate_mask'"):
        VLAPolicy(tiny_config(vision=PANORAMA), no_mask, actions)
    float_mask = gym.spaces.Dict({**space.spaces, "candidate_mask": gym.spaces.Box(0.0, 1.0, (12,), np.float32)})
    with pytest.raises(ValueError, match=r"'candidate_mask'\] must be a Box of shape \(12,\) .* int or bool"):
        VLAPolicy(tiny_config(vision=PANORAMA), float_mask, actions)


@pytest.mark.parametrize("head", ["score", "linear"])
def test_act_never_picks_a_padded_candidate(env, head):
    policy = make_policy(env, head)
    assert isinstance(policy.action_head, CandidateScoringHead if head == "score" else CategoricalHead)
    assert policy.candidate_keys == ("candidates", "candidate_mask")
    if head == "linear":  # make the padded slots (9..12 are always padded in this dataset) the favourites
        with torch.no_grad():
            policy.action_head.logits.bias[9:] = 50.0
    obs, _ = env.reset(seed=1)
    state, k, seen = policy.initial_state(B * 64), 64, torch.zeros(1 + 12, dtype=torch.bool)
    for _ in range(4):
        big = repeat(obs, k)  # 64 samples of each env's observation
        allowed = valid_actions(big)
        action, log_prob, value, state = policy.act(big, state)
        assert allowed.gather(1, action[:, None]).all()
        assert torch.isfinite(log_prob).all() and (log_prob > -1e3).all() and torch.isfinite(value).all()
        greedy = policy.act(big, state, deterministic=True)[0]
        assert allowed.gather(1, greedy[:, None]).all()
        seen[action] = True
        obs = env.step(action[::k])[0]
    assert seen[0] and seen[1:].sum() >= 2  # STOP and several candidates were sampled


@pytest.mark.parametrize("head", ["score", "linear"])
def test_masked_log_prob_and_entropy(env, head):
    policy = make_policy(env, head)
    obs, _ = env.reset(seed=2)
    obs = env.step(torch.ones(B, dtype=torch.long))[0]  # a second viewpoint, other candidates
    allowed, state, masks = valid_actions(obs), policy.initial_state(B), torch.ones(1, B)
    lps = torch.stack([policy.evaluate_actions(obs, torch.full((B,), a), state, masks)[0] for a in range(13)], 1)
    assert (lps[~allowed] <= -1e4).all() and torch.isfinite(lps[allowed]).all()
    torch.testing.assert_close(lps.logsumexp(dim=1), torch.zeros(B), atol=1e-5, rtol=0)  # all mass on valid ones
    one_step = torch.stack([policy.action_log_prob(obs, torch.full((B,), a), state)[0] for a in range(13)], 1)
    assert (one_step[~allowed] <= -1e4).all()
    torch.testing.assert_close(one_step[allowed], lps[allowed], atol=1e-5, rtol=1e-5)
    _, entropy, _ = policy.evaluate_actions(obs, torch.zeros(B, dtype=torch.long), state, masks)
    n_valid = allowed.sum(1).float()
    assert (entropy <= n_valid.log() + 1e-5).all() and (entropy[n_valid > 1] > 0.5 * n_valid[n_valid > 1].log()).all()
    # the candidate features reach both heads
    moved = {**obs, "candidates": obs["candidates"] * 2 + 0.5}
    _, lp2, v2, _ = policy.act(moved, state, deterministic=True)
    _, lp1, v1, _ = policy.act(obs, state, deterministic=True)
    assert (v1 - v2).abs().max() > 1e-6 and (lp1 - lp2).abs().max() > 1e-6


def rollout(env, policy, t_len, seed):
    """Step env and policy t_len times: (obs stacked (T, B, ...), actions, masks, logps, values)."""
    obs, _ = env.reset(seed=seed)
    state = policy.initial_state(B)
    masks = torch.zeros(B)
    steps, actions, all_masks, logps, values = [], [], [], [], []
    for _ in range(t_len):
        a, lp, v, state = policy.act(obs, state, masks=masks)
        steps.append(obs)
        actions.append(a)
        all_masks.append(masks)
        logps.append(lp)
        values.append(v)
        obs, _, term, trunc, _ = env.step(a)
        masks = 1.0 - (term | trunc).float()  # next_step autoreset: the next obs starts a new episode
    keys = ("rgb", "depth", "candidates", "candidate_mask", "last_move")
    seq = {k: torch.stack([o[k] for o in steps]) for k in keys}
    seq["instruction"] = [o["instruction"] for o in steps]
    return seq, torch.stack(actions), torch.stack(all_masks), torch.cat(logps), torch.cat(values)


@pytest.mark.parametrize("head, state_keys", [("score", []), ("linear", []), ("score", ["last_move"])])
def test_evaluate_actions_equals_stepping_act(env, head, state_keys):
    policy = make_policy(env, head, vision={"use_depth": True}, state_keys=state_keys)
    obs, actions, masks, logps, values = rollout(env, policy, 6, seed=3)
    assert (masks[1:] == 0).any()  # some episodes ended (STOP) inside the rollout
    lp, ent, v = policy.evaluate_actions(obs, actions, policy.initial_state(B), masks)
    torch.testing.assert_close(lp, logps, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v, values, atol=1e-5, rtol=1e-5)
    flat = {k: (x.flatten(0, 1) if isinstance(x, torch.Tensor) else [s for row in x for s in row])
            for k, x in obs.items()}
    lp_flat, ent_flat, _ = policy.evaluate_actions(flat, actions.reshape(-1), policy.initial_state(B), masks)
    torch.testing.assert_close(lp_flat, lp, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ent_flat, ent, atol=1e-6, rtol=1e-6)


def test_last_move_is_the_taken_candidate_and_feeds_the_policy(env):
    obs, info = env.reset(seed=5)
    assert (obs["last_move"] == 0).all()  # first step of every episode
    moves = obs["candidates"][:, 0].clone()  # the rightmost candidate of each row (always valid: >= 1 neighbour)
    obs, _, terminated, _, _ = env.step(torch.ones(B, dtype=torch.long))
    torch.testing.assert_close(obs["last_move"], moves)
    obs, _, terminated, _, _ = env.step(torch.zeros(B, dtype=torch.long))  # STOP: no move
    assert terminated.all() and (obs["last_move"] == 0).all()
    policy = make_policy(env, state_keys=["last_move"])
    assert "last_move" in policy.obs_keys and policy.state_proj.in_features == 3
    state = policy.initial_state(B)
    _, lp0, v0, _ = policy.act(obs, state, deterministic=True)
    _, lp1, v1, _ = policy.act({**obs, "last_move": obs["last_move"] + 1.0}, state, deterministic=True)
    assert not torch.allclose(v0, v1)  # the state input reaches the heads
    with pytest.raises(ValueError, match="observation 'last_move' \\(a policy.state_keys entry\\) must be a float "
                                         "tensor \\(B, D\\)"):
        policy.act({k: v for k, v in obs.items() if k != "last_move"}, state)
    with pytest.raises(ValueError, match="policy.state_keys names 'rgb', which must be a 1-D float Box"):
        make_policy(env, state_keys=["rgb"])


def test_save_load_round_trip_is_bit_exact(env, tmp_path):
    policy = make_policy(env, "score", seed=4, fusion={"kind": "film"})
    with torch.no_grad():
        for prm in policy.parameters():
            prm.add_(torch.randn_like(prm) * 0.01)
    policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["config"]["vision"]["image_size"] == [16, 64] and meta["config"]["candidates"]["head"] == "score"
    assert meta["action_space"] == {"type": "Discrete", "n": 13, "start": 0}
    assert meta["observation_space"]["spaces"]["candidate_mask"]["shape"] == [12]
    loaded = VLAPolicy.from_pretrained(tmp_path / "ckpt")
    sp, sq = policy.state_dict(), loaded.state_dict()
    assert sp.keys() == sq.keys() and all(torch.equal(sp[k], sq[k]) for k in sp)
    assert any(k.startswith("candidates.mlp.") for k in sp)
    obs, _ = env.reset(seed=5)
    state = torch.randn(B, 1, 24)
    out_p = policy.act(obs, state, deterministic=True)
    out_q = loaded.act(obs, state, deterministic=True)
    assert all(torch.equal(x, y) for x, y in zip(out_p, out_q, strict=True))
    a = torch.ones(B, dtype=torch.long)
    ev_p = policy.evaluate_actions(obs, a, state, torch.ones(1, B))
    ev_q = loaded.evaluate_actions(obs, a, state, torch.ones(1, B))
    assert all(torch.equal(x, y) for x, y in zip(ev_p, ev_q, strict=True))


@pytest.mark.parametrize("head", ["score", "linear"])
def test_bc_step_on_the_expert_action_raises_its_log_prob(env, head):
    policy = make_policy(env, head, seed=6).train()
    obs, info = env.reset(seed=6)
    expert = info["expert_action"]
    assert valid_actions(obs).gather(1, expert[:, None]).all()
    state, masks = policy.initial_state(B), torch.zeros(1, B)
    before = policy.evaluate_actions(obs, expert, state, masks)[0].detach()
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(3):
        loss = -policy.evaluate_actions(obs, expert, state, masks)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = policy.evaluate_actions(obs, expert, state, masks)[0].detach()
    assert after.mean() > before.mean() + 0.05 and (after > before).all()
    assert policy.candidates.mlp[0].weight.grad.abs().sum() > 0  # the candidate encoder learns too


def test_missing_candidate_keys_are_named(env):
    policy = make_policy(env)
    obs, _ = env.reset(seed=7)
    state = policy.initial_state(B)
    no_mask = {k: v for k, v in obs.items() if k != "candidate_mask"}
    with pytest.raises(ValueError, match=r"observation key 'candidate_mask' is missing: .* candidate actions"):
        policy.act(no_mask, state)
    with pytest.raises(ValueError, match="observation key 'candidate_mask' is missing"):
        policy.evaluate_actions(no_mask, torch.zeros(B, dtype=torch.long), state, torch.ones(1, B))
    with pytest.raises(ValueError, match="observation key 'candidates' is missing"):
        policy.act({k: v for k, v in obs.items() if k != "candidates"}, state)
    with pytest.raises(ValueError, match=r"'candidates' must be a float tensor \(B, 12, 3\), got torch.float32 "
                                         r"\(4, 12, 2\)"):
        policy.act({**obs, "candidates": obs["candidates"][..., :2]}, state)
    with pytest.raises(ValueError, match=r"'candidate_mask' must be a tensor \(4, 12\)"):
        policy.act({**obs, "candidate_mask": obs["candidate_mask"][:, :5]}, state)
    with pytest.raises(ValueError, match=r"observation 'rgb' of shape \(4, 16, 16, 3\) has frames of 16x16"):
        policy.act({**obs, "rgb": obs["rgb"][:, :, :16].contiguous()}, state)


def test_action_masks_are_for_categorical_heads_only():
    p = VLAPolicy(tiny_config(), obs_space(), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    with pytest.raises(ValueError, match="DiagGaussianHead does not take an action_mask"):
        p.action_head.act(torch.zeros(2, 24), action_mask=torch.ones(2, 2, dtype=torch.bool))
    q = VLAPolicy(tiny_config(), obs_space(), gym.spaces.Discrete(3))
    feats = torch.randn(2, 24)
    mask = torch.tensor([[True, False, True], [False, False, True]])
    lp = torch.stack([q.action_head.log_prob(feats, torch.full((2,), a), mask) for a in range(3)], 1)
    assert (lp[~mask] <= -1e4).all() and torch.equal(q.action_head.mode(feats, mask)[1], torch.tensor(2))
    assert q.action_head.entropy(feats, mask)[1].abs() < 1e-6
    assert math.isclose(float(lp[0][mask[0]].detach().exp().sum()), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError, match=r"action_mask must be bool of shape \(2, 3\)"):
        q.action_head.act(feats, action_mask=mask.long())
    assert make_obs(1)["rgb"].shape == (1, 16, 16, 3)  # the square helpers are untouched


def test_memory_readout_is_refused_with_candidates(env):
    with pytest.raises(ValueError, match=r"memory.attend_instruction is for action spaces without candidates; .*"
                                         r"policy.candidates.attend_instruction"):
        make_policy(env, memory={"attend_instruction": True})
