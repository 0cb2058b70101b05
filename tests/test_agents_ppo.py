"""PPO: the loss pieces by hand, the KL penalty towards a reference, learning on a bandit, a run on ObjectNav."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from tests.agent_helpers import OBJECTNAV, ScriptedEnv, one_thread, tiny_policy  # noqa: F401
from vlarena.agents.checkpoint import latest_checkpoint
from vlarena.agents.logging_utils import read_metrics
from vlarena.agents.ppo import PPOConfig, PPOTrainer, ppo_loss, train_ppo
from vlarena.envs.objectnav import ObjectNavVectorEnv

QUIET = dict(progress=False, tensorboard=False)


def test_ppo_loss_pieces_by_hand():
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.9, 1.0])
    old = torch.zeros(5)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 1e9])  # the last entry is an autoreset step: masked out
    valid = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    new_value = torch.tensor([1.0, 0.0, 0.0, 0.0, 1e9])
    old_value = torch.zeros(5)
    returns = torch.tensor([2.0, 0.0, 0.0, 1.0, 0.0])
    entropy = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0])
    out = ppo_loss(ratio.log(), old, adv, new_value, old_value, returns, entropy, valid, clip_coef=0.2,
                   clip_vloss=True, norm_adv=False)
    # max(-A r, -A clip(r)): A=1,r=1.5 -> -1.2 (clipped); A=-1,r=1.5 -> 1.5; A=1,r=.5 -> -.5; A=-1,r=.9 -> .9
    assert out.policy_loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.9) / 4)
    assert out.clipfrac.item() == pytest.approx(0.75)
    kl = [(r - 1) - math.log(r) for r in (1.5, 1.5, 0.5, 0.9)]
    assert out.approx_kl.item() == pytest.approx(sum(kl) / 4, rel=1e-5)
    # value clipped: entry 0 V=1 -> clipped .2; max((1-2)^2, (.2-2)^2) = 3.24; entry 3: max(1, 1) = 1
    assert out.value_loss.item() == pytest.approx(0.5 * (3.24 + 0 + 0 + 1) / 4)
    assert out.entropy.item() == pytest.approx(2.5)
    unclipped = ppo_loss(ratio.log(), old, adv, new_value, old_value, returns, entropy, valid, clip_vloss=False,
                         norm_adv=False)
    assert unclipped.value_loss.item() == pytest.approx(0.5 * (1 + 0 + 0 + 1) / 4)


def test_ppo_loss_gradient_is_zero_where_clipped_and_advantages_normalise_over_valid_steps():
    log_ratio = torch.log(torch.tensor([1.5, 0.5, 1.1])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 1.0])
    out = ppo_loss(log_ratio, torch.zeros(3), adv, torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3),
                   torch.ones(3), clip_coef=0.2, norm_adv=False)
    out.policy_loss.backward()
    # r = 1.5 with A > 0 and r = 0.5 with A < 0 are clipped: no gradient; r = 1.1: d(-A r / 3)/d log r = -1.1 / 3
    torch.testing.assert_close(log_ratio.grad, torch.tensor([0.0, 0.0, -1.1 / 3]))
    # normalisation uses valid entries only: advantages (1, 3) -> (-1, 1), ratio 1 -> loss = -mean = 0
    out = ppo_loss(torch.zeros(3), torch.zeros(3), torch.tensor([1.0, 3.0, 1e6]), torch.zeros(3), torch.zeros(3),
                   torch.zeros(3), torch.zeros(3), torch.tensor([1.0, 1.0, 0.0]))
    assert out.policy_loss.item() == pytest.approx(0.0, abs=1e-6)


def test_kl_penalty_is_zero_when_the_policy_is_its_reference(tmp_path):
    env = ScriptedEnv(lengths=[3, 4, 5, 2])
    policy = tiny_policy(env)
    cfg = PPOConfig(total_steps=32, num_steps=8, num_minibatches=2, kl_coef=0.5, **QUIET)
    trainer = PPOTrainer(policy, env, cfg, tmp_path / "same", reference=copy.deepcopy(policy))
    trainer.setup()
    stats = trainer.collect()
    assert stats["train/kl_ref"] == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(trainer.storage.rewards, torch.stack(env.rewards), atol=1e-6, rtol=0)

    other = tiny_policy(env, seed=1)
    with torch.no_grad():
        other.action_head.logits.bias.copy_(torch.tensor([3.0, -3.0, 0.0, 0.0]))
    env2 = ScriptedEnv(lengths=[3, 4, 5, 2])
    trainer = PPOTrainer(tiny_policy(env2), env2, cfg, tmp_path / "other", reference=other)
    trainer.setup()
    stats = trainer.collect()
    assert stats["train/kl_ref"] > 0.5  # ~KL(uniform || a peaked reference)
    kl = torch.stack(env2.rewards) - trainer.storage.rewards  # the penalty kl_coef * (log pi - log pi_ref)
    assert kl.sum().item() / trainer.storage.valid.sum().item() == pytest.approx(0.5 * stats["train/kl_ref"], rel=1e-4)


def test_kl_coef_without_a_reference_is_an_error(tmp_path):
    env = ScriptedEnv(lengths=[3, 3])
    with pytest.raises(ValueError, match="agent.reference"):
        PPOTrainer(tiny_policy(env), env, PPOConfig(kl_coef=0.1, num_minibatches=1, **QUIET), tmp_path)
    with pytest.raises(ValueError, match="agent.clip_coef must be >= 0"):
        PPOConfig(clip_coef=-1)


def test_ppo_learns_a_bandit(tmp_path):
    """Reward 1 for action 2, else 0: the probability of action 2 must rise from 1/4."""
    env = ScriptedEnv(lengths=[1] * 8, good_action=2)
    policy = tiny_policy(env, memory={"kind": "none"})
    cfg = PPOConfig(total_steps=8 * 8 * 12, num_steps=8, num_minibatches=2, update_epochs=4, lr=3e-3,
                    ent_coef=0.0, gamma=0.0, **QUIET)
    train_ppo(policy, env, cfg, tmp_path)
    rows = read_metrics(tmp_path)
    first = torch.stack(env.rewards[:8]).mean().item()
    last = torch.stack(env.rewards[-8:]).mean().item()
    # every other step is a reset step (reward 0): the best possible mean is 0.5, a uniform policy's 0.125
    print(f"PPO bandit: mean reward per step {first:.3f} (first rollout) -> {last:.3f} (last), at most 0.5")
    assert first < 0.25 and last > 0.4, (first, last)
    assert len(rows) == 12 and rows[-1]["step"] == 8 * 8 * 12


def test_ppo_runs_on_objectnav_with_finite_diagnostics(tmp_path):
    env = ObjectNavVectorEnv(num_envs=4, max_episode_steps=12, **OBJECTNAV)
    policy = tiny_policy(env)
    cfg = PPOConfig(total_steps=4 * 16 * 3, num_steps=16, num_minibatches=2, update_epochs=2, checkpoint_every=2,
                    progress=False)
    last = train_ppo(policy, env, cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [64, 128, 192]
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clipfrac",
                "train/explained_variance", "train/grad_norm", "train/lr"):
        assert all(r[key] is not None and math.isfinite(r[key]) for r in rows), key
    assert 0 <= last["train/clipfrac"] <= 1 and last["train/approx_kl"] > -1e-6
    assert rows[0]["train/entropy"] == pytest.approx(math.log(4), abs=0.05)  # near-uniform initial head
    assert [r["train/lr"] for r in rows] == pytest.approx([2.5e-4, 2.5e-4 * 2 / 3, 2.5e-4 / 3])  # linear decay
    assert sum(r["episode/episodes"] for r in rows) >= 4  # 12-step time limit: every env ended at least once
    assert latest_checkpoint(tmp_path).name == "step_192"
    assert (tmp_path / "tb").is_dir()


def test_target_kl_stops_the_epochs_early(tmp_path):
    env = ScriptedEnv(lengths=[2, 3, 4, 5])
    cfg = PPOConfig(total_steps=4 * 8 * 2, num_steps=8, num_minibatches=2, update_epochs=4, target_kl=1e-12, **QUIET)
    train_ppo(tiny_policy(env), env, cfg, tmp_path)
    assert [r["train/epochs"] for r in read_metrics(tmp_path)] == [1.0, 1.0]


def test_frozen_vision_rollouts_store_vision_tokens_not_pixels(tmp_path):
    env = ScriptedEnv(lengths=[2, 3, 4, 5])
    policy = tiny_policy(env, freeze_vision=True)
    vision = {k: v.clone() for k, v in policy.vision.state_dict().items()}
    trainer = PPOTrainer(policy, env, PPOConfig(num_steps=6, num_minibatches=2, **QUIET), tmp_path)
    trainer.setup()
    trainer.collect()
    assert set(trainer.storage.obs) == {"vision_tokens"} and trainer.storage.obs["vision_tokens"].shape[:2] == (6, 4)
    metrics = trainer.learn()
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(torch.equal(v, vision[k]) for k, v in policy.vision.state_dict().items())


def test_value_warmup_trains_only_the_value_head(tmp_path):
    """During the warm-up updates the actor keeps its weights and the value head learns; then both train."""
    env = ScriptedEnv(lengths=[1] * 4, good_action=2)
    policy = tiny_policy(env, memory={"kind": "none"})
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    cfg = PPOConfig(total_steps=4 * 8 * 3, num_steps=8, num_minibatches=2, update_epochs=2, lr=3e-3,
                    value_warmup=2, **QUIET)
    trainer = PPOTrainer(policy, env, cfg, tmp_path)
    trainer.num_updates = 2  # stop after the warm-up
    trainer.train()
    changed = {k for k, v in policy.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"value_head.v.weight", "value_head.v.bias"}
    assert [r["train/value_warmup"] for r in read_metrics(tmp_path)] == [1.0, 1.0]

    policy = tiny_policy(env, memory={"kind": "none"})
    train_ppo(policy, env, dataclasses.replace(cfg, total_steps=4 * 8 * 2, value_warmup=1), tmp_path / "then")
    assert [r["train/value_warmup"] for r in read_metrics(tmp_path / "then")] == [1.0, 0.0]
    assert not torch.equal(policy.action_head.logits.weight, before["action_head.logits.weight"])
    with pytest.raises(ValueError, match="agent.value_warmup must be an int >= 0"):
        PPOConfig(value_warmup=-1)


@pytest.mark.parametrize("aux", ["cpca", "mae"])
def test_auxiliary_loss_trains_with_ppo_and_resumes(tmp_path, aux):
    """The auxiliary loss is logged and falls; its module's weights are in the checkpoint and come back on resume."""
    env = ObjectNavVectorEnv(num_envs=4, max_episode_steps=12, **OBJECTNAV)
    policy = tiny_policy(env)
    cfg = PPOConfig(total_steps=4 * 16 * 6, num_steps=16, num_minibatches=2, update_epochs=2, lr=1e-3, aux=aux,
                    aux_coef=0.5, aux_steps=3, checkpoint_every=3, **QUIET)
    trainer = PPOTrainer(policy, env, cfg, tmp_path)
    assert {id(p) for p in trainer.aux.parameters()} <= {id(p) for p in trainer.params}
    trainer.train()
    losses = [r["train/aux_loss"] for r in read_metrics(tmp_path)]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0], losses
    saved = {k: v.clone() for k, v in trainer.aux.state_dict().items()}
    again = PPOTrainer(tiny_policy(env, seed=1), env, dataclasses.replace(cfg, resume=True), tmp_path)
    again._resume()
    assert all(torch.equal(v, saved[k]) for k, v in again.aux.state_dict().items())


def test_auxiliary_loss_settings_are_checked(tmp_path):
    env = ScriptedEnv(lengths=[2, 3, 4, 5])
    with pytest.raises(ValueError, match="agent.aux must be one of"):
        PPOConfig(aux="byol")
    with pytest.raises(ValueError, match="needs a trainable ViT"):
        PPOTrainer(tiny_policy(env, freeze_vision=True), env, PPOConfig(aux="mae", **QUIET), tmp_path)


def _value_gradients(trainer: PPOTrainer) -> set[str]:
    """Names of the parameters that the squared values of one fresh rollout send a gradient to."""
    trainer.setup()
    trainer.collect()
    mb = next(iter(trainer.storage.minibatches(1, trainer.generator)))
    trainer.policy.zero_grad(set_to_none=True)
    trainer.policy.evaluate_actions(mb.obs, mb.actions, mb.state0, mb.masks)[2].pow(2).sum().backward()
    return {n for n, p in trainer.policy.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


class _GradientProbe(PPOTrainer):
    """Makes no update: each iteration records which parameters the value loss reaches inside train()."""

    def iteration(self) -> dict[str, float]:
        self.reached = _value_gradients(self)
        return {}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # the probe makes no update
def test_value_detach_keeps_the_value_loss_out_of_the_shared_layers(tmp_path):
    """With value_detach the value's gradient reaches the value head alone; without it, the shared layers too;
    after the run the policy is as it was."""
    reached = {}
    for detach in (False, True):
        env = ScriptedEnv(lengths=[3, 4])
        cfg = PPOConfig(total_steps=16, num_steps=8, num_minibatches=1, value_detach=detach, **QUIET)
        trainer = _GradientProbe(tiny_policy(env), env, cfg, tmp_path / str(detach))
        trainer.train()
        reached[detach], reached[f"after {detach}"] = trainer.reached, _value_gradients(trainer)
    assert reached[True] == {"value_head.v.weight", "value_head.v.bias"}
    assert any(n.startswith("memory.") for n in reached[False]) and any(n.startswith("vision.") for n in reached[False])
    assert reached["after True"] == reached["after False"] == reached[False]
