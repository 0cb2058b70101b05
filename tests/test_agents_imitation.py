"""Behaviour cloning and DAgger: the mixing schedule, who acts, the labels, and BC learning on ObjectNav."""

from __future__ import annotations

import math

import pytest
import torch

from tests.agent_helpers import OBJECTNAV, ScriptedEnv, one_thread, tiny_policy  # noqa: F401
from vlarena.agents import get_algorithm
from vlarena.agents.bc import BCConfig, BCTrainer, train_bc
from vlarena.agents.dagger import DAggerConfig, DAggerTrainer, mixing_beta
from vlarena.agents.logging_utils import read_metrics
from vlarena.agents.rollout import RolloutStorage, masked_mean
from vlarena.agents.runner import EnvRunner, policy_obs_keys
from vlarena.envs.objectnav import ObjectNavVectorEnv

QUIET = dict(progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def nav_env():
    return ObjectNavVectorEnv(num_envs=8, max_episode_steps=60, **OBJECTNAV)


def test_beta_schedules():
    exp = DAggerConfig(beta0=0.8, beta_decay=0.5, beta_every=2)
    assert [mixing_beta(exp, u) for u in range(6)] == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2])
    lin = DAggerConfig(beta0=1.0, beta_schedule="linear", beta_final=0.2, beta_steps=4, beta_every=1)
    assert [mixing_beta(lin, u) for u in range(6)] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.2])
    assert mixing_beta(DAggerConfig(beta0=0.3, beta_schedule="constant"), 99) == 0.3
    with pytest.raises(ValueError, match="agent.beta_schedule must be one of"):
        DAggerConfig(beta_schedule="cosine")
    with pytest.raises(ValueError, match=r"agent.beta0 must be in \[0, 1\]"):
        DAggerConfig(beta0=1.5)


def all_log_probs(policy, batch):
    """log pi(a | s_t) for every action a: (T * b, 4)."""
    with torch.no_grad():
        return torch.stack([policy.evaluate_actions(batch.obs, torch.full_like(batch.actions, a), batch.state0,
                                                    batch.masks)[0] for a in range(4)], dim=1)


def test_dagger_beta_zero_executes_the_student_and_labels_with_the_expert(tmp_path):
    env = ScriptedEnv(lengths=[3, 4, 5, 6], good_action=3)  # the expert always says 3
    policy = tiny_policy(env)
    cfg = DAggerConfig(total_steps=64, num_steps=8, beta0=0.0, student_action="argmax", **QUIET)
    trainer = DAggerTrainer(policy, env, cfg, tmp_path)
    trainer.setup()
    stats = trainer.collect(beta=0.0)
    storage = trainer.storage
    executed = torch.stack(env.received)
    assert torch.equal(executed, storage.actions) and stats["train/expert_executed"] == 0.0
    assert bool((storage.expert_actions == 3).all())
    batch = storage.batch()
    argmax = all_log_probs(policy, batch).argmax(dim=1).view(8, 4)
    valid = storage.valid.bool()
    assert torch.equal(executed[valid], argmax[valid])  # the student's argmax was executed
    assert stats["train/accuracy"] == pytest.approx((argmax[valid] == 3).float().mean().item())
    # the loss targets the expert's action (before the update: one epoch, one minibatch)
    with torch.no_grad():
        log_prob, _, _ = policy.evaluate_actions(batch.obs, batch.expert_actions, batch.state0, batch.masks)
    expected = masked_mean(-log_prob, batch.flat(batch.valid)).item()
    assert trainer.learn()["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_dagger_beta_one_executes_the_expert_and_mixes_in_between(tmp_path):
    env = ScriptedEnv(lengths=[3, 4, 5, 6] * 4, good_action=3)
    policy = tiny_policy(env)
    trainer = DAggerTrainer(policy, env, DAggerConfig(total_steps=128, num_steps=8, **QUIET), tmp_path)
    trainer.setup()
    assert trainer.collect(beta=1.0)["train/expert_executed"] == 1.0
    assert bool((torch.stack(env.received) == 3).all())
    half = trainer.collect(beta=0.5)["train/expert_executed"]
    assert 0.3 < half < 0.7


class PartlyUnlabelled(ScriptedEnv):
    """The expert has no answer (-1) in env 0."""

    def _info(self, success):
        info = super()._info(success)
        info["expert_action"][0] = -1
        return info


def test_unlabelled_states_run_the_student_and_stay_out_of_the_loss(tmp_path):
    env = PartlyUnlabelled(lengths=[3, 4, 5, 6], good_action=3)
    policy = tiny_policy(env)
    trainer = DAggerTrainer(policy, env, DAggerConfig(total_steps=64, num_steps=8, **QUIET), tmp_path)
    trainer.setup()
    stats = trainer.collect(beta=1.0)
    valid = trainer.storage.valid
    share = float(valid[:, 1:].sum() / valid.sum())  # the valid steps of envs 1-3
    assert stats["train/labelled"] == pytest.approx(share) and stats["train/expert_executed"] == pytest.approx(share)
    received = torch.stack(env.received)
    assert bool((received[:, 1:] == 3).all()) and bool((received[:, 0] >= 0).all())  # env 0: the student's
    assert bool((trainer.storage.expert_actions[:, 0] == -1).all())
    assert math.isfinite(trainer.learn()["train/loss"])  # -1 never reaches the log-prob (it would raise)


def test_expert_decides_runs_the_expert_where_the_student_proposes_one_of_its_actions_and_disagrees(tmp_path):
    env = ScriptedEnv(lengths=[3, 4, 5, 6] * 4, good_action=3)  # the expert always says 3
    policy = tiny_policy(env)
    cfg = DAggerConfig(total_steps=128, num_steps=8, student_action="sample", expert_decides=[0, 1], **QUIET)
    trainer = DAggerTrainer(policy, env, cfg, tmp_path)
    trainer.setup()
    trainer.collect(beta=0.0)
    storage = trainer.storage
    received, valid = torch.stack(env.received), storage.valid.bool()
    assert bool((received[valid] >= 2).all())  # 0 and 1 (never the expert's 3) were overruled: 3 ran instead
    assert bool((received[valid] == 2).any()) and bool((received[valid] == 3).any())  # 2 stays the student's
    with pytest.raises(ValueError, match=r"agent.expert_decides must be a list of Discrete action ids"):
        DAggerConfig(expert_decides=[-1])
    with pytest.raises(ValueError, match=r"agent.expert_decides \[4\] names actions of a Discrete action space; "
                                         r"the env's is Discrete\(4\)"):
        DAggerTrainer(policy, env, DAggerConfig(expert_decides=[4], **QUIET), tmp_path)


class EnvLabels(ScriptedEnv):
    """The expert's label is the env's index mod 4 (several actions in one batch)."""

    def _info(self, success):
        info = super()._info(success)
        info["expert_action"] = torch.arange(self.num_envs) % 4
        return info


def test_action_weights_weigh_each_labels_cross_entropy(tmp_path):
    """agent.action_weights: the loss is torch's weighted cross-entropy (sum w[y] nll / sum w[y]) over the valid
    labelled steps, one epoch and minibatch before the update."""
    env = EnvLabels(lengths=[3, 4, 5, 6], good_action=3)
    policy = tiny_policy(env)
    biases = [p for name, p in policy.named_parameters() if name.endswith("bias") and p.shape == (4,)]
    with torch.no_grad():  # a policy far from uniform, so the weights change the mean
        biases[-1].copy_(torch.tensor([3.0, 0.0, -3.0, 1.0]))
    weights = [0.5, 1.0, 3.0, 0.0]
    trainer = DAggerTrainer(policy, env, DAggerConfig(total_steps=64, num_steps=8, action_weights=weights, **QUIET),
                            tmp_path)
    trainer.setup()
    trainer.collect(beta=1.0)
    batch = trainer.storage.batch()
    with torch.no_grad():
        log_prob, _, _ = policy.evaluate_actions(batch.obs, batch.expert_actions, batch.state0, batch.masks)
    w = torch.tensor(weights)[batch.flat(batch.expert_actions).long()] * batch.flat(batch.valid)
    expected = float((w * -log_prob).sum() / w.sum())
    assert expected != pytest.approx(masked_mean(-log_prob, batch.flat(batch.valid)).item(), rel=1e-3)
    assert trainer.learn()["train/loss"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"agent.action_weights must be numbers >= 0, not all 0"):
        DAggerConfig(action_weights=[0, 0])
    with pytest.raises(ValueError, match=r"agent.action_weights has 3 weights; it needs one per action of a "
                                         r"Discrete action space, and the env's is Discrete\(4\)"):
        DAggerTrainer(policy, env, DAggerConfig(action_weights=[1, 1, 1], **QUIET), tmp_path)
    assert BCConfig(action_weights=weights).as_dagger().action_weights == tuple(weights)


def expert_demos(policy, steps=40):
    """Fixed demonstrations: the expert on the 4 episodes from their starts (then autoreset), as one batch."""
    env = ObjectNavVectorEnv(num_envs=4, max_episode_steps=60, **OBJECTNAV)
    run = EnvRunner(env, policy)
    run.obs, run.info = env.reset(options={"episode_id": [0, 1, 2, 3]})
    storage = RolloutStorage(steps, 4, obs_keys=policy_obs_keys(policy, run.obs))
    storage.reset(run.state)
    for _ in range(steps):
        expert = run.expert_action()
        storage.insert(run.obs, run.masks, run.valid, expert, expert_actions=expert)
        storage.insert_result(*run.step(expert, run.state))
    return storage.batch()


def accuracy_and_nll(policy, demos):
    log_probs = all_log_probs(policy, demos)
    valid, expert = demos.flat(demos.valid).bool(), demos.flat(demos.expert_actions)
    accuracy = (log_probs.argmax(dim=1) == expert)[valid].float().mean().item()
    return accuracy, -log_probs.gather(1, expert[:, None])[:, 0][valid].mean().item()


def test_bc_lowers_the_loss_and_raises_expert_accuracy_on_objectnav(tmp_path, nav_env):
    policy = tiny_policy(nav_env)
    demos = expert_demos(policy)
    labels = demos.flat(demos.expert_actions)[demos.flat(demos.valid).bool()]
    majority = torch.bincount(labels, minlength=4).max().item() / len(labels)  # the best action-blind accuracy
    acc0, nll0 = accuracy_and_nll(policy, demos)
    cfg = BCConfig(total_steps=8 * 16 * 20, num_steps=16, lr=2e-3, max_grad_norm=1.0, epochs=4, num_minibatches=2,
                   **QUIET)
    train_bc(policy, nav_env, cfg, tmp_path)
    acc1, nll1 = accuracy_and_nll(policy, demos)
    rows = read_metrics(tmp_path)
    print(f"BC on ObjectNav, 20 updates: expert-action accuracy {acc0:.3f} -> {acc1:.3f} (majority action "
          f"{majority:.3f}), NLL {nll0:.3f} -> {nll1:.3f}; rollout loss {rows[0]['train/loss']:.3f} -> "
          f"{rows[-1]['train/loss']:.3f}")
    assert len(rows) == 20 and all(r["train/beta"] == 1.0 and r["train/expert_executed"] == 1.0 for r in rows)
    assert nll0 == pytest.approx(math.log(4), abs=0.02)  # a near-uniform head at the start
    assert nll1 < nll0 - 0.3
    assert acc1 > majority + 0.1 and acc1 > acc0 + 0.4
    first, last = (sum(r["train/loss"] for r in part) / 3 for part in (rows[:3], rows[-3:]))
    assert last < first - 0.2


def test_bc_is_dagger_with_beta_one_and_the_registry_knows_it(tmp_path, nav_env):
    trainer = BCTrainer(tiny_policy(nav_env), nav_env, BCConfig(num_steps=4, epochs=2, **QUIET), tmp_path)
    assert trainer.name == "bc" and trainer.config.beta0 == 1.0 and trainer.config.beta_schedule == "constant"
    assert trainer.config.student_action == "argmax" and trainer.config.epochs == 2
    for name, config_class in (("bc", BCConfig), ("dagger", DAggerConfig)):
        assert get_algorithm(name)[0] is config_class
    with pytest.raises(ValueError, match="unknown algorithm 'sac'"):
        get_algorithm("sac")


def test_imitation_without_expert_actions_is_a_clear_error(tmp_path):
    env = ObjectNavVectorEnv(num_envs=2, expert=False, **OBJECTNAV)
    trainer = DAggerTrainer(tiny_policy(env), env, DAggerConfig(num_steps=2, **QUIET), tmp_path)
    trainer.setup()
    with pytest.raises(ValueError, match="expert=True"):
        trainer.collect(beta=1.0)
