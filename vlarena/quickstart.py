"""`vlarena quickstart`: `vlarena train experiment=quickstart`, then the same split scored for the random and
oracle agents (the floors, in run_dir/floors/<agent>/summary.json), a table of SR and SPL, and a GIF of a few
evaluated episodes of the trained policy (run_dir/episodes.gif). Overrides work as for `vlarena train`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

FLOOR_AGENTS = ("random", "oracle")
GIF_EPISODES = 4


def run_quickstart(cfg: DictConfig, output_dir: str) -> dict[str, Any]:
    from vlarena.agents.checkpoint import latest_checkpoint
    from vlarena.agents.episode_gif import record_episodes
    from vlarena.agents.fixed import FixedAgentConfig
    from vlarena.agents.policy_agent import PolicyAgent
    from vlarena.hydra_main import EvalConfig, run_eval
    from vlarena.policies import VLAPolicy
    from vlarena.run_train import TrainConfig, make_env, train_main_body

    config = TrainConfig.from_hydra(cfg)
    if not config.eval.enabled:
        raise ValueError("vlarena quickstart evaluates the trained policy: eval.enabled must stay true")
    result = train_main_body(cfg, output_dir)
    out = Path(config.run_dir or output_dir)
    split = config.eval.split
    table = {config.name: result["eval"]}
    for name in FLOOR_AGENTS:
        table[name] = run_eval(EvalConfig(env_name=config.env_name, env_kwargs=config.env_kwargs,
                                          agent=FixedAgentConfig(name=name), split=split,
                                          num_envs=config.eval.num_envs, device=config.device, progress=False),
                               out / "floors" / name)
    print(f"\n{config.env_name} {split}, {result['eval']['num_episodes']} episodes")
    print(f"{'agent':<16}{'SR':>8}{'SPL':>8}")
    for name, summary in table.items():
        print(f"{name:<16}{summary['success_rate']:>8.3f}{summary['spl']:>8.3f}")
    policy = VLAPolicy.from_pretrained(latest_checkpoint(out), device=config.device)
    env = make_env(config, split, GIF_EPISODES, config.device)
    gif = record_episodes(env, PolicyAgent(policy).act, list(env.episode_ids)[:GIF_EPISODES], out / "episodes.gif")
    env.close()
    print(f"wrote {out / f'eval_{split}' / 'summary.json'}, the floors in {out / 'floors'} and {gif}")
    return {"table": table, "gif": str(gif)}
