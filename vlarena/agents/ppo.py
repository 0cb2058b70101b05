"""PPO (Schulman et al. 2017) for recurrent VLA policies in a batched env, with an optional KL penalty
towards a frozen reference policy (the InstructGPT recipe for fine-tuning after imitation).

    policy = VLAPolicy.from_pretrained("runs/bc/checkpoints/step_200000")      # or a fresh VLAPolicy
    metrics = train_ppo(policy, env, PPOConfig(total_steps=2_000_000, kl_coef=0.05,
                        reference="runs/bc/checkpoints/step_200000"), run_dir="runs/ppo")

Each update (cleanrl's ppo.py, with sequences and masks for the GRU):

    1. collect T steps of B envs with the current policy (sampled actions), storing obs, actions,
       log-probs, values, rewards; with a reference policy also log pi_ref(a_t | s_t), and shape the
       reward r_t <- r_t - kl_coef * (log pi(a_t | s_t) - log pi_ref(a_t | s_t))   (InstructGPT eq. 2:
       a per-step sample of KL(pi || pi_ref) on the sampled states, so PPO maximises
       E[return] - kl_coef * KL)
    2. GAE(lambda) advantages and returns, bootstrapping truncated episodes (rollout.py)
    3. for update_epochs: for minibatches of whole env sequences:
          ratio = exp(log pi(a|s) - log pi_old(a|s))
          L_clip = -E[min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)]     (A normalised per minibatch)
          L_value = 0.5 * E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)]   (or unclipped)
          loss = L_clip + vf_coef * L_value - ent_coef * entropy;  Adam step with grad-norm clipping
       stopping the epochs early when approx_kl > target_kl (if set)
    4. the learning rate decays linearly to lr * lr_final_fraction over the run

Auxiliary loss (`aux: cpca | mae`, agents/aux_losses.py): aux_coef times CPC|A's or MAE's loss on each
minibatch is added to the loss above (not during the value warm-up); its module trains with the policy.

Value warm-up (`value_warmup` updates, 0 by default): a policy fine-tuned from imitation starts with an
untrained value head, so its first advantages are noise that pushes the policy off its imitation start.
During the first `value_warmup` updates the loss is vf_coef * L_value and only the value head's
parameters change (rollouts, rewards and logs as usual; train/value_warmup is 1).

Critic on detached features (`value_detach`, off by default): the value loss trains the value head alone
and leaves the shared encoder and memory to the policy's loss. Fine-tuning from imitation, the untrained
critic's loss is the largest term by far, and through the shared layers it moves the policy away from its
imitation start (r2r_bc_ppo's drift, docs/r2r_experiments.md).

Means are over valid steps only (autoreset steps are masked out). Reward: the env's (nav_env.py:
decrease of geodesic distance + success bonus - slack penalty). Diagnostics logged per update:
train/policy_loss, value_loss, entropy, approx_kl, clipfrac, explained_variance, grad_norm, and with
a reference train/kl_ref (mean of log pi - log pi_ref over the rollout) and train/kl_penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlarena.agents.aux_losses import AUX_KINDS, build_aux
from vlarena.agents.rollout import explained_variance, masked_mean
from vlarena.agents.trainer import AgentConfig, Trainer, mean_over_ranks


@dataclass
class PPOConfig(AgentConfig):
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 4
    num_minibatches: int = 4  # groups of envs (whole sequences); at most num_envs
    clip_coef: float = 0.2
    clip_vloss: bool = True
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    norm_adv: bool = True
    target_kl: float | None = None
    kl_coef: float = 0.0  # > 0: KL penalty towards the reference policy
    reference: str | None = None  # a saved policy directory (save_pretrained); needed when kl_coef > 0
    value_warmup: int = 0  # first updates that train only the value head (see the module doc)
    value_detach: bool = False  # the value loss does not reach the layers the policy shares (see the module doc)
    aux: str = "none"  # an auxiliary loss: none | cpca | mae (agents/aux_losses.py)
    aux_coef: float = 0.1
    aux_steps: int = 4  # CPC|A's k: frames predicted ahead

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"agent.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("update_epochs", "num_minibatches"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"agent.{name} must be a positive int, got {value!r}")
        if not isinstance(self.value_warmup, int) or isinstance(self.value_warmup, bool) or self.value_warmup < 0:
            raise ValueError(f"agent.value_warmup must be an int >= 0 (updates), got {self.value_warmup!r}")
        if self.aux not in AUX_KINDS:
            raise ValueError(f"agent.aux must be one of {list(AUX_KINDS)}, got {self.aux!r}")
        if not isinstance(self.aux_steps, int) or isinstance(self.aux_steps, bool) or self.aux_steps < 1:
            raise ValueError(f"agent.aux_steps must be a positive int, got {self.aux_steps!r}")
        for name in ("clip_coef", "vf_coef", "ent_coef", "kl_coef", "aux_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"agent.{name} must be >= 0, got {getattr(self, name)}")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError(f"agent.target_kl must be positive or null, got {self.target_kl}")


@dataclass
class PPOLoss:
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clipfrac: torch.Tensor


def ppo_loss(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
             new_value: torch.Tensor, old_value: torch.Tensor, returns: torch.Tensor, entropy: torch.Tensor,
             valid: torch.Tensor, clip_coef: float = 0.2, clip_vloss: bool = True,
             norm_adv: bool = True) -> PPOLoss:
    """The PPO loss pieces over flat (N,) tensors, averaged over the entries where `valid` is 1."""
    log_ratio = new_log_prob - old_log_prob
    ratio = torch.where(valid.bool(), log_ratio, torch.zeros_like(log_ratio)).exp()
    if norm_adv:
        mean = masked_mean(advantages, valid)
        std = masked_mean((advantages - mean) ** 2, valid).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    pg1 = -advantages * ratio
    pg2 = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    policy_loss = masked_mean(torch.max(pg1, pg2), valid)
    unclipped = (new_value - returns) ** 2
    if clip_vloss:
        clipped = old_value + (new_value - old_value).clamp(-clip_coef, clip_coef)
        value_loss = 0.5 * masked_mean(torch.max(unclipped, (clipped - returns) ** 2), valid)
    else:
        value_loss = 0.5 * masked_mean(unclipped, valid)
    with torch.no_grad():  # cleanrl's estimators (http://joschu.net/blog/kl-approx.html)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, valid)
        clipfrac = masked_mean(((ratio - 1.0).abs() > clip_coef).float(), valid)
    return PPOLoss(policy_loss, value_loss, masked_mean(entropy, valid), approx_kl, clipfrac)


def reference_log_prob(reference: Any, obs: dict[str, Any], state: torch.Tensor, masks: torch.Tensor,
                       actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the reference policy: (log pi_ref(actions | obs), its next recurrent state)."""
    log_prob, state = reference.action_log_prob(obs, actions, state, masks)
    return log_prob, state.float()


class PPOTrainer(Trainer):
    name = "ppo"
    config: PPOConfig

    def __init__(self, policy: torch.nn.Module, env: Any, config: PPOConfig, run_dir: str | Path,
                 reference: torch.nn.Module | None = None):
        self.aux = build_aux(config.aux, policy, config.aux_steps)
        super().__init__(policy, env, config, run_dir)
        if not getattr(getattr(policy, "action_head", None), "has_likelihood", True):
            raise ValueError(f"PPO needs action log-probs; the policy's {type(policy.action_head).__name__} has none "
                             f"(a diffusion head trains by imitation: agent=bc or agent=dagger)")
        for name in ("value_warmup", "value_detach"):
            if getattr(config, name) and not isinstance(getattr(policy, "value_head", None), torch.nn.Module):
                raise ValueError(f"agent.{name} needs a policy with a `value_head` module; "
                                 f"{type(policy).__name__} has none")
        if config.kl_coef > 0 and reference is None:
            if not config.reference:
                raise ValueError("agent.kl_coef > 0 needs a reference policy: set agent.reference to a saved policy "
                                 "directory (config.json + model.safetensors) or pass reference=")
            from vlarena.policies.policy import VLAPolicy

            reference = VLAPolicy.from_pretrained(config.reference, device=self.device)
        self.reference = None
        if reference is not None and config.kl_coef > 0:
            self.reference = reference.to(self.device).eval().requires_grad_(False)
        self.ref_state: torch.Tensor | None = None

    def train(self) -> dict[str, float]:
        if not self.config.value_detach:
            return super().train()
        # while this trainer runs, the value head's input arrives detached from the layers it shares
        hook = self.policy.value_head.register_forward_pre_hook(lambda _, args: tuple(a.detach() for a in args))
        try:
            return super().train()
        finally:
            hook.remove()

    def auxiliary_parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.aux is None else list(self.aux.to(self.device).parameters())

    def checkpoint_extra(self) -> dict[str, Any]:
        return {} if self.aux is None else {"aux": self.aux.state_dict()}

    def restore_extra(self, extra: dict[str, Any], path: Path) -> None:
        if self.aux is None:
            return
        from vlarena.agents.checkpoint import CheckpointError

        if "aux" not in extra:
            raise CheckpointError(f"{path} holds no auxiliary-loss weights but agent.aux is {self.config.aux!r}: "
                                  f"resume with the agent config the run started with")
        try:
            self.aux.load_state_dict(extra["aux"])
        except RuntimeError as e:
            raise CheckpointError(f"the auxiliary-loss weights in {path} do not fit agent.aux={self.config.aux!r} "
                                  f"({e})") from e

    def setup(self) -> None:
        super().setup()
        if self.reference is not None:
            self.ref_state = self.reference.initial_state(self.num_envs)

    def iteration(self) -> dict[str, float]:
        rollout_stats = self.collect()
        return {**rollout_stats, **self.learn()}

    # ---- 1-2: rollout and advantages -------------------------------------------------------------
    def collect(self) -> dict[str, float]:
        cfg, run, storage, policy = self.config, self.runner, self.storage, self.policy
        assert run is not None and storage is not None
        storage.reset(run.state)
        kl_sum = torch.zeros((), device=self.device)
        for _ in range(cfg.num_steps):
            obs, masks, valid = run.policy_obs(), run.masks, run.valid
            with torch.no_grad(), self.autocast():
                action, log_prob, value, state = policy.act(obs, run.state, masks=masks)
                if self.reference is not None:
                    ref_log_prob, self.ref_state = reference_log_prob(self.reference, run.obs, self.ref_state,
                                                                      masks, action)
                    kl = (log_prob.float() - ref_log_prob.float()) * valid
                    kl_sum += kl.sum()
            storage.insert(obs, masks, valid, action, log_probs=log_prob, values=value)
            reward, terminated, truncated = run.step(action, state)
            if self.reference is not None:
                reward = reward - cfg.kl_coef * kl
            storage.insert_result(reward, terminated, truncated)
        with torch.no_grad(), self.autocast():
            last_value = policy.get_value(run.policy_obs(), run.state, run.masks)
        storage.compute_returns(last_value, cfg.gamma, cfg.gae_lambda)
        if self.reference is None:
            return {}
        kl_ref = kl_sum / storage.valid.sum().clamp(min=1)
        return {"train/kl_ref": float(kl_ref), "train/kl_penalty": float(cfg.kl_coef * kl_ref)}

    # ---- 3: the clipped objective over epochs and minibatches ---------------------------------------
    def learn(self) -> dict[str, float]:
        cfg, storage, policy = self.config, self.storage, self.policy
        assert storage is not None
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in (
            "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "grad_norm",
            *(("aux_loss",) if self.aux is not None else ()))}
        warmup = self.counters["update"] < cfg.value_warmup
        only = list(policy.value_head.parameters()) if warmup else None
        for _ in range(cfg.update_epochs):
            for mb in storage.minibatches(cfg.num_minibatches, self.generator):
                with self.autocast():
                    if self.aux is not None and self.aux.needs_features:
                        log_prob, entropy, value, features = policy.evaluate_actions(
                            mb.obs, mb.actions, mb.state0, mb.masks, return_features=True)
                    else:
                        log_prob, entropy, value = policy.evaluate_actions(mb.obs, mb.actions, mb.state0, mb.masks)
                        features = None
                out = ppo_loss(log_prob.float(), mb.flat(mb.log_probs), mb.flat(mb.advantages), value.float(),
                               mb.flat(mb.values), mb.flat(mb.returns), entropy.float(), mb.flat(mb.valid),
                               cfg.clip_coef, cfg.clip_vloss, cfg.norm_adv)
                loss = cfg.vf_coef * out.value_loss
                if not warmup:
                    loss = loss + out.policy_loss - cfg.ent_coef * out.entropy
                if self.aux is not None and not warmup:
                    with self.autocast():
                        aux_loss = self.aux(mb, features).float()
                    loss = loss + cfg.aux_coef * aux_loss
                    stats["aux_loss"].append(aux_loss.detach())
                grad_norm = self.optimizer_step(loss, only=only)
                for key in stats:
                    if key != "aux_loss":
                        stats[key].append((grad_norm if key == "grad_norm" else getattr(out, key)).detach().float())
            if cfg.target_kl is not None and float(mean_over_ranks(stats["approx_kl"][-1])) > cfg.target_kl:
                break  # cleanrl's rule (the last minibatch's approx_kl), agreed over ranks
        stats = {k: v for k, v in stats.items() if v}  # aux_loss stays empty during the value warm-up
        means = torch.stack([torch.stack(v).mean() for v in stats.values()]).tolist()
        metrics = {f"train/{k}": v for k, v in zip(stats, means, strict=True)}
        metrics["train/loss"] = (metrics["train/policy_loss"] + cfg.vf_coef * metrics["train/value_loss"]
                                 - cfg.ent_coef * metrics["train/entropy"])
        metrics["train/explained_variance"] = float(explained_variance(storage.values, storage.returns,
                                                                       storage.valid))
        metrics["train/epochs"] = len(stats["approx_kl"]) / cfg.num_minibatches
        metrics["train/value_warmup"] = float(warmup)
        return metrics


def train_ppo(policy: torch.nn.Module, env: Any, config: PPOConfig, run_dir: str | Path,
              reference: torch.nn.Module | None = None) -> dict[str, float]:
    """Train `policy` with PPO in `env` (a NEXT_STEP vector env); logs and checkpoints go to `run_dir`.
    Returns the metrics of the last update."""
    return PPOTrainer(policy, env, config, run_dir, reference=reference).train()
