"""Landmark matching (policy.candidates.landmarks, agent.landmark_coef, R2R-v0's landmark_labels): the labels the
env gives, the matcher's score on a hand-set case, the heads' loss, learning from the labels, and the errors."""

from __future__ import annotations

import math

import pytest
import torch

from tests.agent_helpers import OBJECTNAV, one_thread, tiny_policy  # noqa: F401
from tests.helpers import TINY_PANORAMA_VIT, TINY_R2R
from vlarena.agents.bc import BCConfig, train_bc
from vlarena.agents.dagger import landmark_bce
from vlarena.agents.logging_utils import read_metrics
from vlarena.datasets.catalog import CATEGORY_NAMES
from vlarena.datasets.instructions import named_categories
from vlarena.envs.objectnav import ObjectNavVectorEnv
from vlarena.envs.r2r_data import R2RDataConfig
from vlarena.envs.r2r_graph import R2RGraphVectorEnv
from vlarena.envs.r2r_graph_tables import objects_near
from vlarena.policies.landmarks import LandmarkMatcher

K = len(CATEGORY_NAMES)
QUIET = dict(progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return R2RDataConfig(**TINY_R2R, data_dir=str(tmp_path_factory.mktemp("data")))


def _named(text: str) -> set[str]:
    return {c for c, x in zip(CATEGORY_NAMES, named_categories(text), strict=True) if x}


def test_named_categories_reads_synonyms_as_whole_words():
    assert _named("Walk past the Couch, then stop by the bin near the refrigerator.") == {"sofa", "trash_can", "fridge"}
    assert _named("Turn left and walk down the hallway.") == set()
    assert _named("the sofas") == set()  # whole words only


def test_env_gives_the_landmark_labels_in_info(dataset):
    env = R2RGraphVectorEnv(num_envs=6, split="val_unseen", dataset=dataset, width=8, height=8,
                            landmark_labels=True)
    assert "objects" not in env.single_observation_space  # labels only, not inputs
    assert env.single_observation_space["candidates"].shape[1] == 3
    obs, info = env.reset(seed=0)
    seen = 0.0
    for _ in range(4):
        near, named = info["candidate_landmarks"], info["instruction_landmarks"]
        assert near.shape == (6, env.config.max_candidates, K) and named.shape == (6, K)
        cand = env.candidate_viewpoints()
        for b in range(6):
            s = int(env.scene_idx[b])
            table = torch.as_tensor(objects_near(env.data.scenes[s], env.data.graphs[s]))
            for c in range(env.config.max_candidates):
                want = table[int(cand[b, c])] if cand[b, c] >= 0 else torch.zeros(K)
                assert torch.equal(near[b, c], want)
            assert named[b].tolist() == named_categories(obs["instruction"][b])
        seen += float(near.sum())
        obs, _, _, _, info = env.step(info["expert_action"])
    assert seen > 0


def test_matcher_scores_the_best_named_category_near_each_candidate():
    torch.manual_seed(0)
    m = LandmarkMatcher(num_classes=3, candidate_features=3, vision_dim=8, language_dim=4, dim=8)
    with torch.no_grad():  # named: a per-token classifier whose logits are the tokens themselves (first 3 dims)
        m.named.weight.copy_(torch.eye(3, 4))
        m.named.bias.zero_()
    tokens = torch.tensor([[[5.0, -5.0, -5.0, 0.0], [-5.0, -5.0, 0.0, 0.0], [-5.0, 9.0, -5.0, 0.0]]])  # (1, 3, 4)
    mask = torch.tensor([[True, True, False]])  # the third token (naming category 1) is padding
    match, near, named = m(torch.randn(1, 2, 3), torch.randn(1, 5, 8), tokens, mask)
    s = torch.sigmoid
    assert torch.allclose(named, torch.tensor([[5.0, -5.0, 0.0]]))  # max over the real tokens
    want = (s(near) * s(named)[:, None, :]).amax(-1, keepdim=True)
    assert match.shape == (1, 2, 1) and torch.allclose(match, want)
    assert not match.requires_grad  # the policy reads it detached: only the labels train the heads
    index = torch.tensor([0, 0])  # two frames of the same (cached) instruction
    match2, _, named2 = m(torch.randn(2, 2, 3), torch.randn(2, 5, 8), tokens, mask, index)
    assert named2.shape == (2, 3) and torch.equal(named2[0], named2[1])


def test_landmark_bce_on_a_hand_computed_case():
    near = torch.zeros(1, 2, 2, 1)  # (T=1, B=2, C=2, K=1): logit 0, probability 0.5
    named = torch.tensor([[[2.0], [0.0]]])  # (1, 2, K=1)
    labels = {"landmark_near": torch.ones(1, 2, 2, 1), "landmark_named": torch.tensor([[[1.0], [0.0]]])}
    valid = torch.tensor([[1.0, 0.0]])  # env 1's step is an autoreset step
    cand = torch.tensor([[[1, 0], [1, 1]]])  # env 0's second candidate is padding
    loss = landmark_bce({"landmark_near": near, "landmark_named": named}, labels, valid, cand)
    assert float(loss) == pytest.approx(math.log(2) + math.log(1 + math.exp(-2.0)), rel=1e-6)


def test_bc_trains_the_landmark_heads_from_the_labels(tmp_path, dataset, one_thread):  # noqa: F811
    env = R2RGraphVectorEnv(num_envs=4, split="train", dataset=dataset, width=16, height=16, landmark_labels=True)
    policy = tiny_policy(env, vision=TINY_PANORAMA_VIT, candidates={"landmarks": K})
    train_bc(policy, env, BCConfig(total_steps=2400, num_steps=20, lr=3e-3, epochs=4, landmark_coef=1.0, **QUIET),
             run_dir=tmp_path)
    losses = [r["train/landmark_loss"] for r in read_metrics(tmp_path) if "train/landmark_loss" in r]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3


def test_landmark_options_refuse_what_cannot_work(tmp_path, dataset):
    objectnav = ObjectNavVectorEnv(num_envs=2, **OBJECTNAV)
    with pytest.raises(ValueError, match="policy.candidates.landmarks=32 scores candidate actions"):
        tiny_policy(objectnav, candidates={"landmarks": K})
    with pytest.raises(ValueError, match="policy.candidates.landmarks must be an int >= 0"):
        tiny_policy(objectnav, candidates={"landmarks": -1})
    env = R2RGraphVectorEnv(num_envs=2, split="train", dataset=dataset, width=16, height=16)
    with pytest.raises(ValueError, match=r"agent.landmark_coef \(1.0\) trains the policy's landmark heads"):
        train_bc(tiny_policy(env, vision=TINY_PANORAMA_VIT), env,
                 BCConfig(total_steps=40, num_steps=20, landmark_coef=1.0, **QUIET), run_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="agent.landmark_coef needs info.*landmark_labels=true"):
        train_bc(tiny_policy(env, vision=TINY_PANORAMA_VIT, candidates={"landmarks": K}), env,
                 BCConfig(total_steps=40, num_steps=20, landmark_coef=1.0, **QUIET), run_dir=tmp_path / "b")
