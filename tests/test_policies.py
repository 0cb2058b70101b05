"""VLAPolicy contract: act / evaluate_actions / masks / checkpoints / feature caching / bad input."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.policy_helpers import TEXTS, make_obs, obs_space, tiny_config
from vlarena.policies import CheckpointMismatchError, PolicyConfig, VLAPolicy
from vlarena.policies.config import FusionConfig
from vlarena.policies.fusion import Fusion

DISCRETE = gym.spaces.Discrete(4)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return VLAPolicy(tiny_config(), obs_space(), DISCRETE)


@pytest.mark.parametrize("space, shape, dtype", [
    (gym.spaces.Discrete(4), (5,), torch.int64),
    (gym.spaces.Discrete(3, start=-1), (5,), torch.int64),
    (gym.spaces.MultiDiscrete([3, 2, 5]), (5, 3), torch.int64),
    (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), (5, 2), torch.float32),
])
def test_act_shapes_dtypes_and_deterministic_mode(space, shape, dtype):
    torch.manual_seed(0)
    p = VLAPolicy(tiny_config(), obs_space(), space)
    obs, state = make_obs(5), p.initial_state(5)
    assert state.shape == (5, 1, 24) and not state.any()
    action, log_prob, value, new_state = p.act(obs, state)
    assert action.shape == shape and action.dtype == dtype
    assert log_prob.shape == (5,) and value.shape == (5,) and new_state.shape == state.shape
    assert torch.isfinite(log_prob).all() and torch.isfinite(value).all() and new_state.abs().sum() > 0
    if isinstance(space, gym.spaces.Discrete):
        assert ((action >= space.start) & (action < space.start + space.n)).all()
    a1, lp1, v1, _ = p.act(obs, state, deterministic=True)
    a2, lp2, v2, _ = p.act(obs, state, deterministic=True)
    assert torch.equal(a1, a2) and torch.equal(lp1, lp2) and torch.equal(v1, v2)
    lp, ent, v = p.evaluate_actions(obs, a1, state, torch.ones(1, 5))
    torch.testing.assert_close(lp, lp1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v, v1, atol=1e-5, rtol=1e-5)
    assert ent.shape == (5,) and (ent > 0).all() if not isinstance(space, gym.spaces.Box) else ent.shape == (5,)


@pytest.fixture(scope="module")
def readout_policy():
    torch.manual_seed(0)
    return VLAPolicy(tiny_config(memory={"attend_instruction": True}), obs_space(), DISCRETE)


@pytest.mark.parametrize("layout", ["time_batch", "flat"])
@pytest.mark.parametrize("which", ["policy", "readout_policy"])
def test_evaluate_actions_equals_stepping_act(request, which, layout):
    policy = request.getfixturevalue(which)
    t_len, b = 6, 3
    obs = make_obs(b, seed=1, lead=(t_len,))
    masks = torch.ones(t_len, b)
    masks[0] = 0  # all episodes start at t=0
    masks[2, 1] = 0  # env 1 starts a new episode at t=2
    masks[4, 0] = masks[4, 2] = 0
    state0 = torch.randn(b, 1, 24)
    state, logps, values, actions = state0, [], [], []
    torch.manual_seed(3)
    for t in range(t_len):
        step_obs = {"rgb": obs["rgb"][t], "instruction": obs["instruction"][t * b:(t + 1) * b]}
        a, lp, v, state = policy.act(step_obs, state, masks=masks[t])
        actions.append(a)
        logps.append(lp)
        values.append(v)
    actions = torch.stack(actions)
    if layout == "flat":
        obs = {"rgb": obs["rgb"].reshape(t_len * b, 16, 16, 3), "instruction": obs["instruction"]}
        actions = actions.reshape(-1)
    else:
        obs = {"rgb": obs["rgb"], "instruction": [obs["instruction"][t * b:(t + 1) * b] for t in range(t_len)]}
    lp, ent, v = policy.evaluate_actions(obs, actions, state0, masks)
    assert lp.shape == ent.shape == v.shape == (t_len * b,)
    torch.testing.assert_close(lp, torch.cat(logps), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v, torch.cat(values), atol=1e-5, rtol=1e-5)


def test_memory_reads_the_instruction_after_the_state(readout_policy):
    """memory.attend_instruction: the state's attention over the instruction tokens reaches the action logits."""
    p = readout_policy
    out = torch.randn(2, p.memory.out_dim)
    tokens, mask, _ = p.language(texts=list(TEXTS[:2]))
    swapped = p.language(texts=[TEXTS[1], TEXTS[0]])
    context = {"instruction": tokens, "instruction_mask": mask}
    z, value_z, action_mask = p._heads_input(out, None, context)
    z2, _, _ = p._heads_input(out, None, {"instruction": swapped[0], "instruction_mask": swapped[1]})
    assert action_mask is None and torch.equal(z, value_z)
    assert (z - out).abs().max() > 1e-4 and (z - z2).abs().max() > 1e-4
    assert p.readout.q.weight.shape == (p.memory.out_dim, p.memory.out_dim)


def test_mask_resets_exactly_that_rows_state(policy):
    obs = make_obs(3, seed=2)
    state = torch.randn(3, 1, 24)
    _, _, v_keep, s_keep = policy.act(obs, state, deterministic=True)
    _, _, v_mask, s_mask = policy.act(obs, state, deterministic=True, masks=torch.tensor([1.0, 0.0, 1.0]))
    _, _, v_zero, s_zero = policy.act(obs, torch.zeros_like(state), deterministic=True)
    assert torch.equal(s_mask[[0, 2]], s_keep[[0, 2]]) and torch.equal(v_mask[[0, 2]], v_keep[[0, 2]])
    torch.testing.assert_close(s_mask[1], s_zero[1], atol=0, rtol=0)
    assert not torch.allclose(s_mask[1], s_keep[1])


def test_feedforward_policy_has_empty_state():
    p = VLAPolicy(tiny_config(memory={"kind": "none"}), obs_space(), DISCRETE)
    state = p.initial_state(4)
    assert state.shape == (4, 0, 0)
    a, lp, v, s = p.act(make_obs(4), state, deterministic=True)
    lp2, _, v2 = p.evaluate_actions(make_obs(4), a, state, torch.ones(1, 4))
    torch.testing.assert_close(lp2, lp, atol=1e-6, rtol=1e-6)
    assert s.shape == (4, 0, 0)


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    p = VLAPolicy(tiny_config(fusion={"kind": "film"}), obs_space(depth=True), space)
    with torch.no_grad():  # make every tensor distinct from its init
        for prm in p.parameters():
            prm.add_(torch.randn_like(prm) * 0.01)
    p.save_pretrained(tmp_path / "ckpt")
    assert sorted(f.name for f in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["format"] == "vlarena.policy" and meta["config"]["language"]["backbone"] == "bert_random"
    assert meta["action_space"] == {"type": "Box", "shape": [3], "dtype": "float32", "low": -1.0, "high": 1.0}
    assert meta["language_backbone_saved"] is True  # random weights must travel with the checkpoint
    q = VLAPolicy.from_pretrained(tmp_path / "ckpt")
    sp, sq = p.state_dict(), q.state_dict()
    assert sp.keys() == sq.keys() and all(torch.equal(sp[k], sq[k]) for k in sp)
    assert q.action_space == space and q.observation_space == p.observation_space
    obs = make_obs(4, depth=True)
    state = p.initial_state(4)
    out_p = p.act(obs, state, deterministic=True)
    out_q = q.act(obs, state, deterministic=True)
    assert all(torch.equal(x, y) for x, y in zip(out_p, out_q, strict=True))


def test_mismatched_config_names_the_tensors(tmp_path):
    VLAPolicy(tiny_config(), obs_space(), DISCRETE).save_pretrained(tmp_path)
    with pytest.raises(CheckpointMismatchError) as err:
        VLAPolicy.from_pretrained(tmp_path, config=tiny_config(vision={"width": 48}))
    msg = str(err.value)
    assert "model.safetensors" in msg
    assert "shape mismatch vision.patch_embed.weight: expected (48, 3, 8, 8), got (32, 3, 8, 8)" in msg
    with pytest.raises(CheckpointMismatchError, match=r"missing vision\.blocks\.1\.qkv\.weight: expected shape \(96, 32\)"):
        VLAPolicy.from_pretrained(tmp_path, config=tiny_config(vision={"depth": 2}))
    with pytest.raises(CheckpointMismatchError, match=r"action_head\.logits\.weight: expected \(6, 24\), got \(4, 24\)"):
        VLAPolicy.from_pretrained(tmp_path, action_space=gym.spaces.Discrete(6))


def test_frozen_vision_and_cached_vision_tokens(policy):
    obs = make_obs(3, seed=4)
    tokens = policy.encode_vision(obs)
    assert tokens.shape == (3, 4, 32)
    state = policy.initial_state(3)
    out = policy.act(obs, state, deterministic=True)
    cached = policy.act({"vision_tokens": tokens, "instruction": obs["instruction"]}, state, deterministic=True)
    assert all(torch.equal(x, y) for x, y in zip(out, cached, strict=True))

    frozen = VLAPolicy(tiny_config(freeze_vision=True), obs_space(), DISCRETE).train()
    assert not frozen.vision.training and frozen.fusion.training
    lp, ent, v = frozen.evaluate_actions(obs, torch.zeros(3, dtype=torch.long), state, torch.ones(1, 3))
    (lp.sum() + v.sum()).backward()
    assert all(p.grad is None for p in frozen.vision.parameters())
    assert frozen.fusion.vision_proj.weight.grad.abs().sum() > 0


def test_gradients_reach_vision_and_fusion_not_frozen_language(policy):
    policy.zero_grad()
    obs = make_obs(2, seed=5)
    lp, ent, v = policy.evaluate_actions(obs, torch.tensor([1, 2]), policy.initial_state(2), torch.ones(1, 2))
    (lp.sum() + ent.sum() + v.sum()).backward()
    assert policy.vision.patch_embed.weight.grad.abs().sum() > 0
    assert policy.fusion.language_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in policy.language.backbone.parameters())
    policy.zero_grad()


@pytest.mark.parametrize("kind", ["cross_attention", "film"])
def test_instruction_and_depth_change_the_features(kind):
    torch.manual_seed(0)
    p = VLAPolicy(tiny_config(fusion={"kind": kind}, vision={"use_depth": True}), obs_space(depth=True), DISCRETE)
    assert p.vision.patch_embed.in_channels == 4
    obs = make_obs(2, depth=True)
    f = p.encode_observation(obs)
    g = p.encode_observation({**obs, "instruction": (TEXTS[2], TEXTS[3])})
    h = p.encode_observation({**obs, "depth": obs["depth"] * 0.5})
    assert f.shape == (2, 32)
    assert (f - g).abs().max() > 1e-4 and (f - h).abs().max() > 1e-4


def test_token_id_observations_equal_string_observations(policy):
    obs = make_obs(4, seed=6)
    ids, mask = policy.tokenize(obs["instruction"], 24)
    assert ids.shape == mask.shape == (4, 24) and ids.dtype == torch.int64 and mask.dtype == torch.bool
    by_text = policy.encode_observation(obs)
    by_ids = policy.encode_observation({"rgb": obs["rgb"], "instruction_ids": ids, "instruction_mask": mask.long()})
    torch.testing.assert_close(by_ids, by_text, atol=1e-5, rtol=1e-5)


def test_frames_of_another_size_are_resized(policy):
    a = policy.encode_observation(make_obs(2, res=32))
    assert a.shape == (2, 32) and torch.isfinite(a).all()


def test_bad_observations_name_the_key(policy):
    obs = make_obs(2)
    with pytest.raises(ValueError, match="observation key 'rgb' is missing"):
        policy.act({"instruction": obs["instruction"]}, policy.initial_state(2))
    with pytest.raises(ValueError, match=r"'rgb' must be uint8 of shape \(B, H, W, 3\), got torch.float32"):
        policy.act({**obs, "rgb": obs["rgb"].float()}, policy.initial_state(2))
    with pytest.raises(ValueError, match="has no instruction"):
        policy.act({"rgb": obs["rgb"]}, policy.initial_state(2))
    with pytest.raises(ValueError, match="'instruction' must be a tuple/list of B strings"):
        policy.act({**obs, "instruction": "go"}, policy.initial_state(2))
    with pytest.raises(ValueError, match=r"recurrent state must be a tensor of shape \(2, 1, 24\)"):
        policy.act(obs, torch.zeros(3, 24))
    with pytest.raises(ValueError, match=r"masks must have shape \(2,\)"):
        policy.act(obs, policy.initial_state(2), masks=torch.ones(3))
    with pytest.raises(ValueError, match=r"observation 'rgb' holds 2 rows: expected T \* B = 4"):
        policy.evaluate_actions(obs, torch.zeros(4, dtype=torch.long), policy.initial_state(2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="observation_space\\['rgb'\\] must be a uint8 Box"):
        VLAPolicy(tiny_config(), gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}), DISCRETE)
    with pytest.raises(ValueError, match="vision.use_depth is True"):
        VLAPolicy(tiny_config(vision={"use_depth": True}), obs_space(), DISCRETE)


def test_config_presets_and_validation():
    cpu, gpu = PolicyConfig.preset("cpu"), PolicyConfig.preset("gpu")
    assert cpu == PolicyConfig()
    assert (cpu.vision.num_tokens, cpu.vision.width, cpu.vision.depth) == (16, 128, 3)
    assert gpu.vision.num_tokens == 64 and gpu.vision.width > cpu.vision.width
    assert PolicyConfig.from_dict(json.loads(json.dumps(gpu.to_dict()))) == gpu
    assert PolicyConfig.preset("cpu", memory={"kind": "none"}).memory.kind == "none"
    with pytest.raises(ValueError, match="unknown policy preset 'tpu'"):
        PolicyConfig.preset("tpu")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['widht'\] in vision"):
        PolicyConfig.from_dict({"vision": {"widht": 3}})
    with pytest.raises(ValueError, match="vision.image_size \\(60\\) must be a multiple of vision.patch_size"):
        PolicyConfig.from_dict({"vision": {"image_size": 60}})
    with pytest.raises(ValueError, match="fusion.kind must be one of"):
        PolicyConfig.from_dict({"fusion": {"kind": "concat"}})
    with pytest.raises(ValueError, match="language.path must name a local HF model directory"):
        PolicyConfig.from_dict({"language": {"backbone": "path"}})


@pytest.mark.parametrize("kind", ["cross_attention", "film"])
def test_flatten_pooling_keeps_where_tokens_are(kind):
    """Mean pooling cannot tell a token grid from its mirror image; flatten pooling can."""
    torch.manual_seed(0)
    language = (torch.randn(2, 5, 24), torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 24))
    tokens = torch.randn(2, 6, 16)
    mirrored = tokens.flip(1)
    mean = Fusion(FusionConfig(kind=kind, dim=16, heads=2, out_dim=8), 16, 24, num_tokens=6)
    torch.testing.assert_close(mean(tokens, *language), mean(mirrored, *language))
    flat = Fusion(FusionConfig(kind=kind, dim=16, heads=2, out_dim=8, pool="flatten", pool_dim=3), 16, 24, 6)
    assert flat.out[0].in_features == 6 * 3 + 16
    assert (flat(tokens, *language) - flat(mirrored, *language)).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"fusion.pool must be one of \['mean', 'flatten'\], got 'max'"):
        FusionConfig(pool="max")
