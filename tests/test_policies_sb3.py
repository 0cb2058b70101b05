"""stable-baselines3: the VecEnv adapter's contract, the features extractor, and PPO learning on ObjectNav."""

import csv
import math

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.logger import configure  # noqa: E402

from tests.policy_helpers import tiny_config  # noqa: E402
from vlarena.envs.motion import FORWARD, STOP  # noqa: E402
from vlarena.policies import InstructionTokenizer, VLAPolicy  # noqa: E402
from vlarena.policies.sb3 import VLAFeaturesExtractor, VlarenaVecEnv, make_sb3_vec_env, sb3_policy_kwargs  # noqa: E402

ENV = dict(num_scenes=2, episodes_per_scene=8, width=16, height=16, max_episode_steps=5)


@pytest.fixture(scope="module")
def config():
    return tiny_config()


def test_vec_env_adapter_contract(config):
    venv = make_sb3_vec_env("ObjectNav", num_envs=4, language=config.language, max_length=24, **ENV)
    tok = InstructionTokenizer(config.language)
    obs = venv.reset()
    assert set(obs) == {"rgb", "instruction_ids", "instruction_mask"}
    assert obs["rgb"].shape == (4, 16, 16, 3) and obs["rgb"].dtype == np.uint8
    assert obs["instruction_ids"].shape == (4, 24) and obs["instruction_ids"].dtype == np.int64
    assert all(venv.observation_space[k].contains(obs[k][0]) for k in obs)
    ids, mask = tok.tokenize(list(venv.env._instructions), 24)
    assert np.array_equal(obs["instruction_ids"], ids.numpy()) and np.array_equal(obs["instruction_mask"], mask.numpy())
    total = np.zeros(4)
    for t in range(5):  # FORWARD until the 5-step limit: every env truncates at t = 4
        obs, rewards, dones, infos = venv.step(np.full(4, FORWARD))
        assert rewards.shape == (4,) and rewards.dtype == np.float32 and dones.dtype == bool
        total += rewards
        assert dones.all() == (t == 4)
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True and info["is_success"] is False
        assert info["episode"]["l"] == 5 and math.isclose(info["episode"]["r"], total[i], rel_tol=1e-5)
        term = info["terminal_observation"]
        assert term["rgb"].shape == (16, 16, 3) and term["instruction_ids"].shape == (24,)
    obs, rewards, dones, infos = venv.step(np.array([STOP, FORWARD, FORWARD, FORWARD]))
    assert dones.tolist() == [True, False, False, False]
    assert infos[0]["episode"]["l"] == 1 and infos[0]["TimeLimit.truncated"] is False and infos[1] == {}
    assert venv.get_attr("num_envs") == [4] * 4 and venv.env_is_wrapped(object) == [False] * 4
    import gymnasium as gym

    with pytest.raises(ValueError, match="same-step autoreset"):
        VlarenaVecEnv(gym.make_vec("vlarena/ObjectNav-v0", num_envs=2, **ENV), config.language)


def test_features_extractor_equals_the_policy_encoder(config):
    venv = make_sb3_vec_env("ObjectNav", num_envs=3, language=config.language, max_length=24, **ENV)
    obs = venv.reset()
    ext = VLAFeaturesExtractor(venv.observation_space, config=config)
    assert ext.features_dim == config.fusion.out_dim
    policy = VLAPolicy(config, venv.env.single_observation_space, venv.env.single_action_space)
    for name in ("vision", "language", "fusion"):
        getattr(policy, name).load_state_dict(getattr(ext, name).state_dict())
    sb3_obs = {"rgb": torch.as_tensor(obs["rgb"]).permute(0, 3, 1, 2).float() / 255.0,  # VecTransposeImage + /255
               "instruction_ids": torch.as_tensor(obs["instruction_ids"]).float(),
               "instruction_mask": torch.as_tensor(obs["instruction_mask"]).float()}
    with torch.no_grad():
        f = ext(sb3_obs)
        g = policy.encode_observation({"rgb": torch.as_tensor(obs["rgb"]), "instruction": venv.env._instructions})
    assert f.shape == (3, config.fusion.out_dim)
    torch.testing.assert_close(f, g, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"missing \['instruction_ids', 'instruction_mask'\]"):
        VLAFeaturesExtractor(venv.env.single_observation_space, config=config)


def _ppo_run(tmp_path, config, total: int, n_steps: int, num_envs: int = 8):
    venv = make_sb3_vec_env("ObjectNav", num_envs=num_envs, language=config.language, max_length=24,
                            num_scenes=2, episodes_per_scene=16, width=32, height=32, max_episode_steps=64)
    model = PPO("MultiInputPolicy", venv, n_steps=n_steps, batch_size=64, n_epochs=2, learning_rate=1e-3, seed=0,
                policy_kwargs=sb3_policy_kwargs(config, net_arch=dict(pi=[32], vf=[32])))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total)
    after = model.policy.state_dict()
    with open(tmp_path / "progress.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    return model, before, after, rows


def _check_learned(model, before, after, rows, total):
    assert model.num_timesteps == total
    assert rows and all(math.isfinite(float(r[k])) for r in rows
                        for k in ("train/loss", "train/value_loss", "train/approx_kl", "train/entropy_loss"))
    changed = [k for k in after if not torch.equal(before[k], after[k])]
    backbone = [k for k in after if ".language.backbone." in k]
    assert any(".vision.patch_embed" in k for k in changed) and any(".fusion." in k for k in changed)
    assert any(k.startswith("action_net") for k in changed) and any(k.startswith("value_net") for k in changed)
    assert backbone and not set(backbone) & set(changed)  # the frozen language backbone stays as it was
    ext = model.policy.features_extractor
    assert ext.language.cache_info()["hits"] > 10 * ext.language.cache_info()["misses"]
    assert len(model.ep_info_buffer) > 0 and all(e["l"] >= 1 for e in model.ep_info_buffer)


def test_ppo_builds_and_learns_a_few_thousand_steps(tmp_path, config):
    model, before, after, rows = _ppo_run(tmp_path, config, total=2048, n_steps=32)
    _check_learned(model, before, after, rows, 2048)
    assert len(rows) == 2048 // (32 * 8) - 1  # SB3 logs train/* from the second iteration on


@pytest.mark.slow
def test_ppo_learns_a_few_thousand_steps_with_the_cpu_preset(tmp_path):
    from vlarena.policies import PolicyConfig

    config = PolicyConfig.preset("cpu", language={"backbone": "bert_random"}, memory={"kind": "none"})
    model, before, after, rows = _ppo_run(tmp_path, config, total=4096, n_steps=64)
    _check_learned(model, before, after, rows, 4096)
    assert len(rows) == 4096 // (64 * 8) - 1


def test_sb3_policy_kwargs_keep_the_extractor_weights(config):
    """SB3's default ortho_init zeroes every Linear bias of the extractor (and re-draws the weights)."""
    venv = make_sb3_vec_env("ObjectNav", num_envs=2, language=config.language, max_length=24,
                            num_scenes=1, episodes_per_scene=4, width=32, height=32)
    ours = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=8, policy_kwargs=sb3_policy_kwargs(config))
    plain = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=8, policy_kwargs=dict(
        features_extractor_class=VLAFeaturesExtractor, features_extractor_kwargs=dict(config=config)))
    assert ours.policy.features_extractor.fusion.vision_proj.bias.abs().sum() > 0
    assert plain.policy.features_extractor.fusion.vision_proj.bias.abs().sum() == 0
