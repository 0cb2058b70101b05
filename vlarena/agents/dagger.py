"""DAgger (Ross et al. 2011) as R2R's student forcing, and the core that behaviour cloning (bc.py) runs.

    metrics = train_dagger(policy, env, DAggerConfig(total_steps=1_000_000, beta_decay=0.75), run_dir="runs/dagger")

Each update u, in DAgger iteration k = u // beta_every:

    1. beta_k = beta0 * beta_decay ** k        (exponential, the default; "linear": from beta0 to
                                                beta_final over beta_steps iterations; "constant": beta0)
    2. roll out T steps of B envs: at every step the student proposes a_s ~ pi(. | s) (or its argmax),
       the env's expert labels the state with a* = info["expert_action"], and the env executes a*
       with probability beta_k, else a_s. States come from the mixture, labels always from the expert.
    3. for epochs: for minibatches of whole env sequences (the GRU sees each episode from its start):
          loss = -E_valid[log pi(a* | s)] - ent_coef * entropy
       and an Adam step with grad-norm clipping.

Goal supervision (`goal_coef` > 0, for a policy with a map planner, policy.map_plan): the env's
info["expert_target_type"] (the object type of the plan's next interaction, ALFRED-v0's; -1: none) is kept
per step, and goal_coef times the cross-entropy of the planner's goal logits against it joins the loss (the
subgoal supervision of ALFRED's auxiliary losses, which behaviour cloning alone does not give the planner).

Unlabelled states: an env whose expert has no answer for a state (a discrete `expert_action` of -1, as
ALFRED-v0's after an interaction its plan did not ask for) gets the student's action there, and the step
is left out of the loss and the accuracy. `expert_decides` (Discrete action ids) keeps the student from
reaching such states: where it proposes one of those actions and the expert's label differs, the expert's
action runs instead (the proposal is still scored and trained against the label). ALFRED-v0's interactions
(6-12) make the world follow the plan, so every state keeps its label while the student drives the moves.

beta = 1 is behaviour cloning with teacher forcing (bc.py); beta = 0 is pure student forcing
(Anderson et al. 2018, R2R). This is online DAgger: each update learns from its own fresh rollout,
as R2R's student forcing does, not from the aggregate of every past rollout (VLN-CE's DAgger keeps
that aggregate on disk; not done here). The value head is not trained.

Logged per update: train/loss (the cross-entropy), train/expert_prob (mean pi(a* | s)),
train/accuracy (how often the student's proposal equals a* on valid steps: the argmax accuracy when
student_action="argmax", the sample agreement when "sample"; measured on the rollout, before the
update), train/beta, train/expert_executed (fraction of steps that ran a*), train/entropy, train/grad_norm;
with goal_coef, train/goal_loss and train/goal_accuracy (the planner's argmax goal against the label).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F

from vlarena.agents.rollout import masked_mean, weighted_mean
from vlarena.agents.trainer import AgentConfig, Trainer

BETA_SCHEDULES = ("exponential", "linear", "constant")
STUDENT_ACTIONS = ("sample", "argmax")
TEACHERS = ("expert", "modular")  # modular: agents.modular.teacher.ModularTeacher labels ALFRED-v0's states
GOAL_LABEL = "expert_target_type"  # the env's info key that goal_coef supervises the map planner with
LANDMARK_LABELS = {"landmark_near": "candidate_landmarks", "landmark_named": "instruction_landmarks"}  # (R2R-v0's)


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"agent.{name} must be a positive int, got {value!r}")


@dataclass
class ImitationConfig(AgentConfig):
    """Settings of every imitation agent (bc, dagger)."""

    epochs: int = 1  # passes over each rollout
    num_minibatches: int = 1  # groups of envs (whole sequences); at most num_envs
    ent_coef: float = 0.0
    goal_coef: float = 0.0  # weight of the map planner's goal cross-entropy against info[GOAL_LABEL]; 0: none
    landmark_coef: float = 0.0  # weight of the landmark heads' losses (policy.candidates.landmarks); 0: none
    # one weight per Discrete action: each label's cross-entropy counts this much (torch's CrossEntropyLoss weight,
    # a weighted mean); empty: all 1
    action_weights: tuple[float, ...] = ()
    teacher: str = "expert"  # who labels the states: the env's expert, or (ALFRED-v0) the modular agent

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.teacher not in TEACHERS:
            raise ValueError(f"agent.teacher must be one of {list(TEACHERS)}, got {self.teacher!r}")
        _positive_int("epochs", self.epochs)
        _positive_int("num_minibatches", self.num_minibatches)
        self.action_weights = tuple(self.action_weights)
        if self.action_weights and (not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
                                            for w in self.action_weights) or not any(self.action_weights)):
            raise ValueError(f"agent.action_weights must be numbers >= 0, not all 0, one per Discrete action; got "
                             f"{list(self.action_weights)!r}")
        for name in ("ent_coef", "goal_coef", "landmark_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"agent.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DAggerConfig(ImitationConfig):
    beta0: float = 1.0  # probability of executing the expert's action in iteration 0
    beta_schedule: str = "exponential"
    beta_decay: float = 0.75  # exponential: beta_k = beta0 * beta_decay ** k (VLN-CE's p = 0.75)
    beta_final: float = 0.0  # linear: beta_k goes from beta0 to beta_final ...
    beta_steps: int = 10  # ... over beta_steps iterations, then stays
    beta_every: int = 10  # updates per DAgger iteration k
    student_action: str = "sample"  # sample (R2R's student forcing) | argmax
    expert_decides: tuple[int, ...] = ()  # Discrete actions the student runs only where the expert's label agrees

    def __post_init__(self) -> None:
        super().__post_init__()
        self.expert_decides = tuple(self.expert_decides)
        if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in self.expert_decides):
            raise ValueError(f"agent.expert_decides must be a list of Discrete action ids (ints >= 0), got "
                             f"{list(self.expert_decides)!r}")
        for name in ("beta0", "beta_decay", "beta_final"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"agent.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"agent.beta_schedule must be one of {list(BETA_SCHEDULES)}, got {self.beta_schedule!r}")
        if self.student_action not in STUDENT_ACTIONS:
            raise ValueError(f"agent.student_action must be one of {list(STUDENT_ACTIONS)}, "
                             f"got {self.student_action!r}")
        _positive_int("beta_steps", self.beta_steps)
        _positive_int("beta_every", self.beta_every)


def mixing_beta(config: DAggerConfig, update: int) -> float:
    """beta of the DAgger iteration that update `update` (0-based) belongs to."""
    k = update // config.beta_every
    if config.beta_schedule == "exponential":
        return config.beta0 * config.beta_decay ** k
    if config.beta_schedule == "linear":
        return config.beta0 + (config.beta_final - config.beta0) * min(k / config.beta_steps, 1.0)
    return config.beta0


class DAggerTrainer(Trainer):
    name = "dagger"
    config: DAggerConfig

    def __init__(self, policy: torch.nn.Module, env: Any, config: DAggerConfig, run_dir: str | Path):
        if config.goal_coef > 0 and getattr(getattr(policy, "map_encoder", None), "planner", None) is None:
            raise ValueError(f"agent.goal_coef ({config.goal_coef}) supervises the goal choice of the policy's map "
                             "planner: it needs policy.map_key and policy.map_plan > 0")
        if config.landmark_coef > 0 and getattr(policy, "landmarks", None) is None:
            raise ValueError(f"agent.landmark_coef ({config.landmark_coef}) trains the policy's landmark heads: it needs "
                             "policy.candidates.landmarks > 0 (R2R-v0: 32, with env.kwargs.landmark_labels=true)")
        space = getattr(env, "single_action_space", None)
        n = int(space.n) if isinstance(space, gym.spaces.Discrete) else None
        if config.expert_decides and (n is None or max(config.expert_decides) >= n):
            raise ValueError(f"agent.expert_decides {list(config.expert_decides)} names actions of a Discrete action "
                             f"space; the env's is {space}")
        if config.action_weights and len(config.action_weights) != n:
            raise ValueError(f"agent.action_weights has {len(config.action_weights)} weights; it needs one per action "
                             f"of a Discrete action space, and the env's is {space}")
        super().__init__(policy, env, config, run_dir)
        self.mix_generator = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.expert_decides = torch.tensor(config.expert_decides, dtype=torch.long, device=self.device)
        self.action_weights = (torch.tensor(config.action_weights, dtype=torch.float32, device=self.device)
                               if config.action_weights else None)

    def generators(self) -> dict[str, torch.Generator]:
        return {**super().generators(), "mixing": self.mix_generator}

    def iteration(self) -> dict[str, float]:
        beta = mixing_beta(self.config, self.counters["update"])
        return {**self.collect(beta), **self.learn(), "train/beta": beta}

    # ---- 2: roll out the mixture, label with the expert ---------------------------------------------
    def collect(self, beta: float) -> dict[str, float]:
        cfg, run, storage, policy = self.config, self.runner, self.storage, self.policy
        assert run is not None and storage is not None
        storage.reset(run.state)
        matches = torch.zeros((), device=self.device)
        executed = torch.zeros((), device=self.device)
        labels = torch.zeros((), device=self.device)
        for _ in range(cfg.num_steps):
            obs, masks, valid = run.policy_obs(), run.masks, run.valid
            expert = run.expert_action()
            step_labels = None
            if cfg.goal_coef > 0:
                if GOAL_LABEL not in run.info:
                    raise ValueError(f"agent.goal_coef needs info[{GOAL_LABEL!r}] from the env (ALFRED-v0 gives it); "
                                     f"info holds {sorted(run.info)}")
                step_labels = {"goal_type": run.info[GOAL_LABEL]}
            if cfg.landmark_coef > 0:
                missing = [k for k in LANDMARK_LABELS.values() if k not in run.info]
                if missing:
                    raise ValueError(f"agent.landmark_coef needs info{missing} from the env (R2R-v0 gives them with "
                                     f"env.kwargs.landmark_labels=true); info holds {sorted(run.info)}")
                step_labels = {**(step_labels or {}), **{k: run.info[v] for k, v in LANDMARK_LABELS.items()}}
            with torch.no_grad(), self.autocast():
                student, _, _, state = policy.act(obs, run.state, deterministic=cfg.student_action == "argmax",
                                                  masks=masks)
            expert = expert.to(student.dtype)
            known = labelled(expert)
            use_expert = self.expert_mask(beta) & known
            if cfg.expert_decides:  # a proposal of one of these actions that the expert would not take: the expert's
                decides = torch.isin(student, self.expert_decides)
                use_expert = use_expert | (known & decides & (student != expert))
            action = torch.where(use_expert.view(-1, *[1] * (student.dim() - 1)), expert, student)
            storage.insert(obs, masks, valid, action, expert_actions=expert, labels=step_labels)
            scored = valid * known.float()
            matches += ((student == expert).reshape(self.num_envs, -1).all(dim=1).float() * scored).sum()
            executed += (use_expert.float() * valid).sum()
            labels += scored.sum()
            reward, terminated, truncated = run.step(action, state)
            storage.insert_result(reward, terminated, truncated)
        n = storage.valid.sum().clamp(min=1)
        return {"train/accuracy": float(matches / labels.clamp(min=1)), "train/expert_executed": float(executed / n),
                "train/labelled": float(labels / n)}

    def expert_mask(self, beta: float) -> torch.Tensor:
        """True [B] where the expert's action is executed (probability beta)."""
        if beta >= 1.0:
            return torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        if beta <= 0.0:
            return torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return torch.rand(self.num_envs, generator=self.mix_generator, device=self.device) < beta

    # ---- 3: cross-entropy on the expert's labels ------------------------------------------------------
    def learn(self) -> dict[str, float]:
        cfg, storage, policy = self.config, self.storage, self.policy
        assert storage is not None
        goal, landmark = cfg.goal_coef > 0, cfg.landmark_coef > 0
        names = ("loss", "expert_prob", "entropy", "grad_norm", *(("goal_loss", "goal_accuracy") if goal else ()),
                 *(("landmark_loss",) if landmark else ()))
        stats: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for _ in range(cfg.epochs):
            for mb in storage.minibatches(cfg.num_minibatches, self.generator):
                assert mb.expert_actions is not None
                known = labelled(mb.flat(mb.expert_actions))
                targets = torch.where(known.view(-1, *[1] * (mb.expert_actions.dim() - 2)),
                                      mb.expert_actions.reshape(known.shape[0], *mb.expert_actions.shape[2:]), 0)
                with self.autocast():
                    log_prob, entropy, _, *extras = policy.evaluate_actions(mb.obs, targets, mb.state0, mb.masks,
                                                                            return_features=goal or landmark)
                valid = mb.flat(mb.valid) * known.float()
                weight = valid if self.action_weights is None else valid * self.action_weights[targets.long()]
                nll = weighted_mean(-log_prob.float(), weight)
                ent = masked_mean(entropy.float(), valid)
                loss = nll - cfg.ent_coef * ent
                if goal:
                    goal_loss, goal_accuracy = goal_cross_entropy(extras[0]["map_goal_logits"],
                                                                  mb.labels["goal_type"], mb.valid)
                    loss = loss + cfg.goal_coef * goal_loss
                    stats["goal_loss"].append(goal_loss.detach())
                    stats["goal_accuracy"].append(goal_accuracy)
                if landmark:
                    landmark_loss = landmark_bce(extras[0], mb.labels, mb.valid, mb.obs["candidate_mask"])
                    loss = loss + cfg.landmark_coef * landmark_loss
                    stats["landmark_loss"].append(landmark_loss.detach())
                grad_norm = self.optimizer_step(loss)
                stats["loss"].append(nll.detach())
                stats["expert_prob"].append(masked_mean(log_prob.detach().float().exp(), valid))
                stats["entropy"].append(ent.detach())
                stats["grad_norm"].append(grad_norm.float())
        means = torch.stack([torch.stack(v).mean() for v in stats.values()]).tolist()
        return {f"train/{k}": v for k, v in zip(stats, means, strict=True)}


def goal_cross_entropy(logits: torch.Tensor, goal: torch.Tensor,
                       valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy, argmax accuracy) of goal logits (T, B, K) against labels (T, B) over the valid steps
    whose label is >= 0 (-1: no goal)."""
    logits, goal = logits.float().flatten(0, 1), goal.flatten().long()
    if bool((goal >= logits.shape[-1]).any()):
        raise ValueError(f"goal labels must be < {logits.shape[-1]} (the map planner's object types), got "
                         f"{int(goal.max())}")
    keep = valid.flatten() * (goal >= 0).float()
    ce = F.cross_entropy(logits, goal.clamp(min=0), reduction="none")
    return masked_mean(ce, keep), masked_mean((logits.argmax(-1) == goal).float(), keep).detach()


def landmark_bce(extras: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], valid: torch.Tensor,
                 candidate_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the landmark heads (policies/landmarks.py) against the env's labels, over the valid
    steps (T, B) and, for the objects near each candidate (T, B, C, K), over its real candidates (T, B, C): the sum
    of the two means."""
    near, named = extras["landmark_near"].float(), extras["landmark_named"].float()
    near_loss = F.binary_cross_entropy_with_logits(near, labels["landmark_near"].to(near.dtype), reduction="none")
    named_loss = F.binary_cross_entropy_with_logits(named, labels["landmark_named"].to(named.dtype), reduction="none")
    valid = valid.to(near.device)
    keep = valid[..., None] * (candidate_mask.to(near.device) != 0).float()
    return masked_mean(near_loss.mean(-1), keep) + masked_mean(named_loss.mean(-1), valid)


def labelled(expert: torch.Tensor) -> torch.Tensor:
    """(B,) bool: rows where the expert answered (discrete actions: no -1 anywhere in the row; continuous: all)."""
    if expert.is_floating_point():
        return torch.ones(expert.shape[0], dtype=torch.bool, device=expert.device)
    return (expert >= 0).reshape(expert.shape[0], -1).all(dim=1)


def train_dagger(policy: torch.nn.Module, env: Any, config: DAggerConfig, run_dir: str | Path) -> dict[str, float]:
    """Train `policy` with DAgger in `env` (a NEXT_STEP vector env with info["expert_action"]); logs and
    checkpoints go to `run_dir`. Returns the metrics of the last update."""
    return DAggerTrainer(policy, env, config, run_dir).train()
