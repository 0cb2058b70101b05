"""Adapters for third-party gymnasium envs: generic instruction adapter, BabyAI, instruction tokens."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import vlarena.envs  # noqa: F401  (registers the tasks)
from vlarena.envs.adapters import (
    InstructionEnvAdapter,
    InstructionTokens,
    ObservationKeyError,
    VectorInstructionTokens,
    resize_image,
    sanitize_instruction,
)
from vlarena.envs.nav_env import INSTRUCTION_CHARSET, INSTRUCTION_MAX_LENGTH

# ------------------------------------------------------------------------------------------------ helpers
VOCAB = ["<pad>", *INSTRUCTION_CHARSET]
CHAR_ID = {c: i for i, c in enumerate(VOCAB)}


def char_tokenize(texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Character-level tokenizer padded to the longest text (not to max_length), as HF tokenizers do."""
    length = min(max_length, max((len(t) for t in texts), default=1))
    ids = np.zeros((len(texts), length), np.int64)
    mask = np.zeros_like(ids)
    for i, t in enumerate(texts):
        row = [CHAR_ID[c] for c in t[:length]]
        ids[i, :len(row)], mask[i, :len(row)] = row, 1
    return ids, mask


class ToyEnv(gym.Env):
    """Image + mission observations; the agent must take action 1 three times (then reward 1)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, image_shape=(8, 8, 3), image_dtype=np.uint8, action_space=None, depth=False,
                 mission="go to the red ball", render_mode=None):
        high = 1.0 if np.issubdtype(image_dtype, np.floating) else 255
        spaces = {"image": gym.spaces.Box(0, high, image_shape, image_dtype),
                  "mission": gym.spaces.Text(max_length=200, charset="".join(map(chr, range(32, 0x2600))))}
        if depth:
            spaces["depth"] = gym.spaces.Box(0.0, 10.0, image_shape[:2], np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = action_space if action_space is not None else gym.spaces.Discrete(3)
        self.mission, self.render_mode = mission, render_mode
        self.count = 0

    def _obs(self):
        shape = self.observation_space["image"].shape
        img = self.np_random.integers(0, 256, shape).astype(self.observation_space["image"].dtype)
        if np.issubdtype(img.dtype, np.floating):
            img = img / 255.0
        obs = {"image": img.astype(self.observation_space["image"].dtype), "mission": self.mission}
        if "depth" in self.observation_space.spaces:
            obs["depth"] = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape[:2]) / 10.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return self._obs(), {"inner": 7}

    def step(self, action):
        self.count += int(np.asarray(action).ravel()[0] == 1)
        done = self.count >= 3
        return self._obs(), float(done), done, False, {"inner": 8}

    def render(self):
        return np.full((20, 30, 3), 100, np.uint8)


def _adapter(env=None, **kw):
    kw.setdefault("instruction_key", "mission")
    return InstructionEnvAdapter(env if env is not None else ToyEnv(), **kw)


# ------------------------------------------------------------------------------------------------ generic adapter
def test_adapter_contract_spaces_and_check_env():
    env = _adapter(size=(4, 4))
    space = env.observation_space
    assert set(space.spaces) == {"rgb", "instruction"}
    assert space["rgb"] == gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)
    assert isinstance(space["instruction"], gym.spaces.Text)
    assert space["instruction"].max_length == INSTRUCTION_MAX_LENGTH
    assert space["instruction"].character_set == frozenset(INSTRUCTION_CHARSET)
    obs, info = env.reset(seed=0)
    assert obs["rgb"].shape == (4, 4, 3) and obs["rgb"].dtype == np.uint8
    assert obs["instruction"] == "go to the red ball"
    assert space.contains(obs) and info == {"inner": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.MultiDiscrete([3, 2]),
                                   gym.spaces.Box(-1, 1, (2,), np.float32)])
def test_action_spaces_pass_through(space):
    env = _adapter(ToyEnv(action_space=space))
    assert env.action_space == space
    env.reset(seed=0)
    env.step(space.sample())


@pytest.mark.parametrize("space", [gym.spaces.Tuple((gym.spaces.Discrete(2),)), gym.spaces.MultiBinary(3)])
def test_unsupported_action_space_is_named(space):
    with pytest.raises(ValueError, match=rf"action space .*{type(space).__name__}.* accepted are Discrete, "
                                         r"MultiDiscrete and Box"):
        _adapter(ToyEnv(action_space=space))


def test_missing_keys_are_named_with_the_keys_present():
    with pytest.raises(ObservationKeyError, match=r"'pixels' not found; .* keys are \['image', 'mission'\]"):
        _adapter(image_key="pixels")
    with pytest.raises(ObservationKeyError, match=r"'goal' not found"):
        _adapter(instruction_key="goal")
    with pytest.raises(ValueError, match="exactly one of instruction_key"):
        _adapter(instruction_key=None)
    with pytest.raises(ValueError, match=r"size must be a pair of positive ints \(H, W\), got \(0, 4\)"):
        _adapter(size=(0, 4))


def test_bad_images_are_rejected_with_shape_and_dtype():
    with pytest.raises(ValueError, match=r"shape \(8, 8, 5\); accepted are \(H, W\), \(H, W, C\)"):
        _adapter(ToyEnv(image_shape=(8, 8, 5)))
    with pytest.raises(ValueError, match=r"dtype int32; accepted are uint8 or float"):
        _adapter(ToyEnv(image_dtype=np.int32))
    env = _adapter()
    with pytest.raises(ValueError, match=r"shape \(4, 4, 3\), expected \(8, 8, 3\)"):
        env.observation({"image": np.zeros((4, 4, 3), np.uint8), "mission": "x"})
    with pytest.raises(ValueError, match=r"dtype float64, expected uint8"):
        env.observation({"image": np.zeros((8, 8, 3)), "mission": "x"})
    with pytest.raises(ObservationKeyError, match=r"'mission' missing from the observation; present: \['image'\]"):
        env.observation({"image": np.zeros((8, 8, 3), np.uint8)})


def test_resize_nearest_and_area_numbers():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    area = resize_image(img, (2, 2), "area")
    assert area.dtype == np.uint8
    np.testing.assert_array_equal(area[..., 0], [[2, 4], [10, 12]])  # block means 2.5 -> 2, 4.5 -> 4 (rint)
    nearest = resize_image(img, (2, 2), "nearest")
    np.testing.assert_array_equal(nearest[..., 0], [[5, 7], [13, 15]])  # pixel under each target centre
    up = resize_image(img, (8, 8), "nearest")
    np.testing.assert_array_equal(up[::2, ::2], img)
    odd = resize_image(np.arange(9, dtype=np.float32).reshape(3, 3, 1), (2, 2), "area")
    np.testing.assert_allclose(odd[..., 0], [[2.0, 3.0], [5.0, 6.0]])  # adaptive windows of 2x2
    with pytest.raises(ValueError, match="resample must be one of"):
        resize_image(img, (2, 2), "bicubic")


def test_channel_conversions():
    grey = _adapter(ToyEnv(image_shape=(8, 8)))
    obs, _ = grey.reset(seed=1)
    assert obs["rgb"].shape == (8, 8, 3) and (obs["rgb"][..., 0] == obs["rgb"][..., 2]).all()
    rgba = _adapter(ToyEnv(image_shape=(8, 8, 4)))
    src = rgba.env.reset(seed=2)[0]["image"]
    np.testing.assert_array_equal(rgba.reset(seed=2)[0]["rgb"], src[..., :3])
    chw = _adapter(ToyEnv(image_shape=(3, 8, 6)), channels="chw", channel_order="bgr")
    src = chw.env.reset(seed=3)[0]["image"]
    np.testing.assert_array_equal(chw.reset(seed=3)[0]["rgb"], src.transpose(1, 2, 0)[..., ::-1])
    flt = _adapter(ToyEnv(image_dtype=np.float32))
    src = flt.env.reset(seed=4)[0]["image"]
    np.testing.assert_array_equal(flt.reset(seed=4)[0]["rgb"], np.rint(src * 255).astype(np.uint8))


def test_instruction_charset_rule():
    clean, replaced, cut = sanitize_instruction("Go to the café\tnow ☺ « »")
    assert clean == "Go to the cafe now      " and replaced == {"é", "\t", "☺", "«", "»"} and not cut
    assert sanitize_instruction("abcdef", max_length=4) == ("abcd", set(), True)
    assert sanitize_instruction("ÀB", charset="ab ")[0] == "ab"  # other case when only it is allowed
    env = _adapter(ToyEnv(mission="go to the café ☺"))
    with pytest.warns(UserWarning, match="outside the charset"):
        obs, _ = env.reset(seed=0)
    assert obs["instruction"] == "go to the cafe  " and env.observation_space.contains(obs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warns once per adapter, not every step
        env.step(0)
    strict = _adapter(ToyEnv(mission="café"), on_invalid="error")
    with pytest.raises(ValueError, match=r"outside the charset \['é'\]"):
        strict.reset(seed=0)
    with pytest.warns(UserWarning, match="longer than 5 characters was cut"):
        assert _adapter(max_length=5).reset(seed=0)[0]["instruction"] == "go to"


def test_expert_success_info_and_depth():
    calls = []

    def expert_fn(env):
        calls.append(env.count)
        return 1

    def success_fn(reward, terminated, truncated, info):
        return terminated and reward > 0

    env = _adapter(ToyEnv(depth=True), depth_key="depth", size=(4, 4), expert=expert_fn, success_fn=success_fn)
    assert env.observation_space["depth"] == gym.spaces.Box(0.0, 10.0, (4, 4, 1), np.float32)
    obs, info = env.reset(seed=0)
    assert info == {"inner": 7, "expert_action": 1, "success": False}
    assert obs["depth"].shape == (4, 4, 1) and obs["depth"].dtype == np.float32
    np.testing.assert_allclose(obs["depth"][..., 0], np.arange(64).reshape(8, 8)[1::2, 1::2] / 10.0)  # nearest
    done, steps = False, 0
    while not done:
        obs, reward, done, _, info = env.step(info["expert_action"])
        steps += 1
    assert steps == 3 and info["success"] is True and info["inner"] == 8
    assert calls == [0, 1, 2, 3]
    check_env(env, skip_render_check=True)


def test_render_image_and_fixed_instruction():
    with pytest.raises(ValueError, match="needs size"):
        _adapter(image_key="render")
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        _adapter(image_key="render", size=(10, 15))
    env = _adapter(ToyEnv(render_mode="rgb_array"), image_key="render", instruction_key=None,
                   instruction="find the door", size=(10, 15))
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (10, 15, 3) and (obs["rgb"] == 100).all()
    assert obs["instruction"] == "find the door"
    assert env.render().shape == (20, 30, 3)


# ------------------------------------------------------------------------------------------------ tokens
@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_instruction_tokens_single_env():
    env = InstructionTokens(_adapter(), char_tokenize, vocab_size=len(VOCAB), max_length=24)
    space = env.observation_space
    assert set(space.spaces) == {"rgb", "instruction_ids", "instruction_mask"}
    assert space["instruction_ids"] == gym.spaces.Box(0, len(VOCAB) - 1, (24,), np.int64)
    assert space["instruction_mask"] == gym.spaces.Box(0, 1, (24,), np.int64)
    obs, _ = env.reset(seed=0)
    text = "go to the red ball"
    assert obs["instruction_ids"].dtype == np.int64 and obs["instruction_ids"].shape == (24,)
    np.testing.assert_array_equal(obs["instruction_ids"][:len(text)], [CHAR_ID[c] for c in text])
    assert obs["instruction_mask"].sum() == len(text) and (obs["instruction_ids"][len(text):] == 0).all()
    assert space.contains(obs)
    check_env(env, skip_render_check=True)


def test_instruction_tokens_torch_tokenizer_cache_and_errors():
    calls = []

    def torch_tokenize(texts, max_length):
        calls.append(list(texts))
        ids, mask = char_tokenize(texts, max_length)
        return torch.from_numpy(ids), torch.from_numpy(mask).bool()

    env = InstructionTokens(_adapter(), torch_tokenize, vocab_size=len(VOCAB), max_length=8)
    obs, _ = env.reset(seed=0)
    env.step(0)
    env.reset(seed=1)
    assert calls == [["go to the red ball"]]  # cached per string
    np.testing.assert_array_equal(obs["instruction_mask"], np.ones(8))  # cut at max_length
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\)"):
        InstructionTokens(_adapter(), char_tokenize, vocab_size=5).reset(seed=0)
    with pytest.raises(ValueError, match="more than max_length=4"):
        InstructionTokens(_adapter(), lambda t, n: char_tokenize(t, 99), vocab_size=len(VOCAB), max_length=4).reset()
    with pytest.raises(ValueError, match=r"needs a Dict observation space with a 'mission' key"):
        InstructionTokens(_adapter(), char_tokenize, vocab_size=len(VOCAB), key="mission")
    with pytest.raises(ValueError, match="vocab_size must be a positive int, got 0"):
        InstructionTokens(_adapter(), char_tokenize, vocab_size=0)


def test_vector_instruction_tokens_numpy_and_native_torch():
    venv = gym.vector.SyncVectorEnv([lambda m=m: _adapter(ToyEnv(mission=m)) for m in ("go left", "stop now")])
    env = VectorInstructionTokens(venv, char_tokenize, vocab_size=len(VOCAB), max_length=10)
    assert env.single_observation_space["instruction_ids"].shape == (10,)
    assert env.observation_space["instruction_ids"].shape == (2, 10)
    obs, _ = env.reset(seed=0)
    assert isinstance(obs["instruction_ids"], np.ndarray) and obs["instruction_ids"].shape == (2, 10)
    np.testing.assert_array_equal(obs["instruction_mask"].sum(1), [7, 8])
    assert env.observation_space.contains(obs)

    native = gym.make_vec("vlarena/ObjectNav-v0", num_envs=2, num_scenes=1, episodes_per_scene=4, width=8, height=8)
    tokens = VectorInstructionTokens(native, char_tokenize, vocab_size=len(VOCAB), max_length=64)
    obs, _ = tokens.reset(seed=0)
    assert isinstance(obs["instruction_ids"], torch.Tensor) and obs["instruction_ids"].dtype == torch.int64
    assert obs["instruction_ids"].shape == (2, 64) and obs["instruction_ids"].device == obs["rgb"].device
    assert "instruction" not in obs and (obs["instruction_mask"].sum(1) > 0).all()


# ------------------------------------------------------------------------------------------------ BabyAI
def test_importing_vlarena_does_not_import_minigrid():
    code = ("import sys, gymnasium as gym, vlarena, vlarena.envs, vlarena.envs.adapters; "
            "assert 'vlarena/BabyAI-GoToLocal-v0' in gym.registry and 'vlarena/BabyAI-v0' in gym.registry; "
            "assert 'minigrid' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.fixture(scope="module")
def minigrid():
    return pytest.importorskip("minigrid")


def _run(env, seed, policy):
    obs, info = env.reset(seed=seed)
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(info))
        steps, done = steps + 1, terminated or truncated
    return info["success"], steps


def test_babyai_contract_and_check_env(minigrid):
    env = gym.make("vlarena/BabyAI-GoToLocal-v0")
    space = env.observation_space
    assert space["rgb"] == gym.spaces.Box(0, 255, (56, 56, 3), np.uint8) and env.action_space == gym.spaces.Discrete(7)
    obs, info = env.reset(seed=0)
    assert obs["instruction"].startswith("go to ") and space.contains(obs)
    assert info["success"] is False and 0 <= info["expert_action"] < 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def test_babyai_expert_solves_gotolocal_and_random_does_not(minigrid):
    env = gym.make("vlarena/BabyAI-GoToLocal-v0")
    expert = [_run(env, seed, lambda info: info["expert_action"]) for seed in range(20)]
    assert np.mean([s for s, _ in expert]) == 1.0  # measured: 20/20 (and 50/50 on seeds 0-49)
    assert np.mean([n for _, n in expert]) < 10  # measured: 4.55 steps (random: 47)
    rng = np.random.default_rng(0)
    random = [_run(env, seed, lambda info: int(rng.integers(7))) for seed in range(20)]
    assert np.mean([s for s, _ in random]) <= 0.6  # measured: 0.45 here, 0.31 on seeds 0-199


def test_babyai_expert_advises_a_straying_agent(minigrid):
    """DAgger use: after k random actions the bot, fed the actions taken, still leads to success."""
    env = gym.make("vlarena/BabyAI-GoToLocal-v0", max_steps=200)
    rng = np.random.default_rng(1)
    successes = 0
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        done, t = False, 0
        while not done:
            action = int(rng.integers(7)) if t < 8 else info["expert_action"]
            obs, reward, terminated, truncated, info = env.step(action)
            done, t = terminated or truncated, t + 1
        successes += bool(info["success"])
    assert successes == 10


def test_babyai_seeding_is_reproducible(minigrid):
    def trajectory():
        env = gym.make("vlarena/BabyAI-GoToLocal-v0")
        obs, info = env.reset(seed=5)
        out = [(obs["instruction"], obs["rgb"].copy(), info["expert_action"])]
        for _ in range(4):
            obs, _, terminated, _, info = env.step(info["expert_action"])
            out.append((obs["instruction"], obs["rgb"].copy(), info["expert_action"]))
            if terminated:
                break
        return out

    a, b = trajectory(), trajectory()
    assert len(a) == len(b) and all(x[0] == y[0] and np.array_equal(x[1], y[1]) and x[2] == y[2]
                                    for x, y in zip(a, b, strict=True))


def test_babyai_image_options(minigrid):
    from vlarena.envs.adapters import make_babyai

    sym = gym.make("vlarena/BabyAI-v0", env_id="BabyAI-GoToObj-v0", image="symbolic").unwrapped
    obs, _ = sym.reset(seed=0)
    assert obs["rgb"].shape == (56, 56, 3) and obs["rgb"].max() <= 10  # object/colour/state codes
    np.testing.assert_array_equal(obs["rgb"][::8, ::8], sym.env.unwrapped.gen_obs()["image"])  # 8x8 blocks
    assert make_babyai(size=(64, 48)).reset(seed=0)[0]["rgb"].shape == (64, 48, 3)
    assert make_babyai(view="full", size=None).observation_space["rgb"].shape == (64, 64, 3)  # 8x8 cells, 8 px
    assert "direction" in make_babyai(extra_keys=("direction",)).reset(seed=0)[0]
    with pytest.raises(ValueError, match="image must be one of"):
        make_babyai(image="depth")
    with pytest.raises(ValueError, match="unknown BabyAI env id 'BabyAI-Nope-v0'"):
        make_babyai("BabyAI-Nope-v0")


def test_babyai_tokens_for_sb3(minigrid):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    from vlarena.envs.adapters import make_babyai

    env = InstructionTokens(make_babyai(), char_tokenize, vocab_size=len(VOCAB), max_length=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_checker.check_env(env, warn=False)
    obs, info = env.reset(seed=0)
    assert obs["instruction_mask"].sum() == len(env.env.reset(seed=0)[0]["instruction"])
