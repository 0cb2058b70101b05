"""Random and expert floors of the ALFRED-style task on valid_seen and valid_unseen.

    python benchmarks/alfred_floors.py --episodes 20 --out outputs/alfred_floors

Writes each split's episodes with `vlarena data alfred`'s generator into OUT/data, evaluates the
oracle (the env's expert) and the random agent on them (OUT/<split>_<agent>/summary.json) and prints
SR, GC, PLW SR and PLW GC, overall and per task type.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vlarena.agents.evaluate_alfred import evaluate_alfred, oracle_act, random_act
from vlarena.envs.alfred_env import AlfredVectorEnv
from vlarena.envs.household.generate import generate_split

KEYS = ("success_rate", "goal_condition_success", "plw_success_rate", "plw_goal_condition_success")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--out", default="outputs/alfred_floors")
    args = parser.parse_args()
    out = Path(args.out)
    print("| split | agent | task type | SR | GC | PLW SR | PLW GC | episodes |")
    print("|---|---|---|---|---|---|---|---|")
    for split in ("valid_seen", "valid_unseen"):
        t0 = time.time()
        generate_split(split, args.episodes, out / "data")
        made = time.time() - t0
        env = AlfredVectorEnv(num_envs=args.num_envs, split=split, data_dir=str(out / "data"))
        for name, act in (("random", random_act(seed=0)), ("oracle", oracle_act)):
            s = evaluate_alfred(env, act, out / f"{split}_{name}", {"agent": name})
            for kind, m in [("all", s), *sorted(s["per_task_type"].items())]:
                print(f"| {split} | {name} | {kind} | " + " | ".join(f"{m[k]:.3f}" for k in KEYS)
                      + f" | {m['num_episodes']} |")
        print(f"<!-- {split}: {args.episodes} episodes generated in {made:.0f} s -->")


if __name__ == "__main__":
    main()
