"""CUDA: the CPU jobs run unchanged on a GPU (`pytest -m gpu`; skipped where torch sees no CUDA device)."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import pytest
import torch

import vlarena.envs  # noqa: F401  (registers the envs)
from tests.test_train_cli import TINY
from vlarena.cli import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

SMALL = dict(num_scenes=1, episodes_per_scene=4, width=32, height=32)


def rollout(device: str, steps: int = 40) -> list[dict[str, torch.Tensor]]:
    """`steps` steps of a 4-env ObjectNav batch on `device` under a fixed action sequence (same seed)."""
    env = gym.make_vec("vlarena/ObjectNav-v0", num_envs=4, split="train", device=device, expert=True, **SMALL)
    obs, _ = env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        action = torch.randint(0, env.single_action_space.n, (4,), generator=gen).to(device)
        obs, reward, terminated, truncated, info = env.step(action)
        out.append({"depth": obs["depth"].cpu(), "rgb": obs["rgb"].cpu(), "reward": torch.as_tensor(reward).cpu(),
                    "done": torch.as_tensor(terminated | truncated).cpu(),
                    "expert": torch.as_tensor(info["expert_action"]).cpu()})
    env.close()
    return out


def test_objectnav_env_on_cuda_steps_like_the_cpu_env():
    """Same actions, same episodes: the same rewards, episode ends and expert actions; frames equal up to the
    rasteriser's float rounding at a few edge pixels."""
    cpu, gpu = rollout("cpu"), rollout("cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a["done"], b["done"]) and torch.equal(a["expert"], b["expert"])
        assert torch.allclose(a["reward"], b["reward"], atol=1e-5)
        assert (a["rgb"] != b["rgb"]).any(dim=-1).float().mean() < 0.01
        assert (a["depth"] - b["depth"]).abs().median() < 1e-4


@pytest.mark.parametrize("agent", ["bc", "ppo"])
def test_train_on_cuda_then_score_the_checkpoint_on_the_cpu(tmp_path, monkeypatch, agent):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", f"agent={agent}", "agent.total_steps=256", f"run_dir={run}", "device=cuda", *TINY]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 256
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    trained = json.loads((run / "eval_val" / "summary.json").read_text())
    assert trained["num_episodes"] == 4

    out = tmp_path / "cpu_eval"
    assert main(["eval", "env=objectnav", f"checkpoint={run}", "split=val", "num_envs=4", "progress=false", "device=cpu",
                 f"out_dir={out}", "env.kwargs.num_scenes=1", "env.kwargs.episodes_per_scene=4",
                 "env.kwargs.width=32", "env.kwargs.height=32"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["num_episodes"] == 4 and again["agent"] == "policy"
