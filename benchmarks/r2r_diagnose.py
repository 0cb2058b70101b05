"""Where an R2R graph policy goes wrong, and whether it looks at its panorama.

    python benchmarks/r2r_diagnose.py <run>/checkpoints/step_<N> [--split val_unseen] [--out diag.json]

1. Teacher forcing (the expert's actions are executed, the policy's argmax is scored at every step of
   every episode): accuracy by the expert's move, named as the instructions name turns (`path_facts`:
   straight under 40 degrees, around over 150, else left or right), with the policy's error kinds; and
   accuracy on steps where the expert's turn class holds one candidate ("unambiguous") or several, and what
   could tell apart the candidates of those ambiguous steps (`ambiguous_steps`, see `ambiguity_anatomy`).
2. Free rollouts (the policy's argmax is executed), success rate:
   - `policy`: as evaluated (`vlarena eval` gives the same number);
   - `other_panorama`: each env gets another env's panorama, rgb and depth (a policy that ignores its vision
     keeps its SR);
   - `fix_same_class`: a move in the expert's turn class but to another candidate is replaced by the
     expert's (what telling apart candidates that the instruction names alike would buy);
   - `fix_turn_class`: a move of another turn class (not STOP) is replaced by the expert's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter

import torch

from vlarena.datasets.catalog import CATEGORY_NAMES
from vlarena.datasets.instructions import OBJECT_WORDS
from vlarena.datasets.jsonio import write_json
from vlarena.datasets.path_facts import AROUND_DEG, STRAIGHT_DEG
from vlarena.envs.r2r_graph import R2RGraphVectorEnv
from vlarena.envs.r2r_graph_tables import objects_near
from vlarena.policies import VLAPolicy

MODES = ("policy", "other_panorama", "fix_same_class", "fix_turn_class")


def turn_class(obs: dict, row: int, action: int) -> str:
    """STOP, or the instructions' name for the turn of moving to candidate `action` - 1."""
    if action == 0:
        return "stop"
    sin, cos = obs["candidates"][row, action - 1, :2].tolist()
    deg = math.degrees(math.atan2(sin, cos))
    return "straight" if abs(deg) < STRAIGHT_DEG else "around" if abs(deg) > AROUND_DEG else \
        "left" if deg > 0 else "right"


def run(policy: VLAPolicy, env: R2RGraphVectorEnv, episodes: int, mode: str) -> dict:
    """`mode` "teacher" (teacher forcing) or one of MODES (free rollouts), on the split's first `episodes`
    episodes, each once, a batch of `env.num_envs` at a time (as `vlarena eval` assigns them)."""
    ids = env.episode_ids[:episodes]
    steps, wrong, ambiguous, anatomy, successes, near = Counter(), Counter(), Counter(), Counter(), [], {}
    for first in range(0, len(ids), env.num_envs):
        chunk = ids[first:first + env.num_envs]
        obs, info = env.reset(options={"episode_id": chunk + [chunk[-1]] * (env.num_envs - len(chunk))})
        active = torch.arange(env.num_envs) < len(chunk)
        state = policy.initial_state(env.num_envs)
        with torch.no_grad():
            while active.any():
                seen = dict(obs, rgb=obs["rgb"].roll(1, dims=0), depth=obs["depth"].roll(1, dims=0)) \
                    if mode == "other_panorama" else obs
                act, _, _, state = policy.act(seen, state, deterministic=True)
                expert = info["expert_action"]
                for i in active.nonzero().flatten().tolist():
                    e, p = int(expert[i]), int(act[i])
                    ec, pc = turn_class(obs, i, e), turn_class(obs, i, p)
                    if mode == "teacher":
                        steps[ec] += 1
                        wrong[(ec, "ok" if e == p else "same_class" if ec == pc else pc)] += 1
                        valid = obs["candidate_mask"][i].nonzero().flatten().add(1).tolist()
                        alike = [c for c in valid if turn_class(obs, i, c) == ec] if e > 0 else []
                        ambiguous[("ambiguous" if len(alike) > 1 else "unambiguous", e == p)] += 1
                        if len(alike) > 1:
                            anatomy.update(ambiguity_anatomy(env, obs, i, e, alike, near))
                    elif e != p and ((mode == "fix_same_class" and ec == pc)
                                     or (mode == "fix_turn_class" and ec != pc and "stop" not in (ec, pc))):
                        act[i] = e
                obs, _, terminated, truncated, info = env.step(expert if mode == "teacher" else act)
                done = (terminated | truncated) & active
                successes += info["success"][done].tolist()
                active &= ~done
    if mode != "teacher":
        return {"success_rate": sum(successes) / len(successes)}
    total = sum(steps.values())
    return {"accuracy": sum(v for (_, k), v in wrong.items() if k == "ok") / total, "steps": total,
            "by_expert_move": {ec: {"steps": n, **{k: v / n for (c, k), v in wrong.items() if c == ec}}
                               for ec, n in steps.items()},
            **{f"{kind}_accuracy": ambiguous[(kind, True)] / max(1, ambiguous[(kind, True)] + ambiguous[(kind, False)])
               for kind in ("ambiguous", "unambiguous")},
            "ambiguous_share": sum(v for (k, _), v in ambiguous.items() if k == "ambiguous") / total,
            "ambiguous_steps": {k: v / max(1, anatomy["steps"]) for k, v in anatomy.items() if k != "steps"}}


def mentioned_categories(text: str) -> set[int]:
    """Indices (catalog.CATEGORY_NAMES) of the object categories an instruction names, by any of their words."""
    text = text.lower()
    return {k for k, name in enumerate(CATEGORY_NAMES)
            if any(re.search(rf"\b{re.escape(w)}s?\b", text) for w in OBJECT_WORDS[name])}


def ambiguity_anatomy(env: R2RGraphVectorEnv, obs: dict, row: int, expert: int, alike: list[int],
                      near: dict | None = None) -> Counter:
    """What could tell apart the candidates `alike` (1-based, the expert's turn class, several) at an ambiguous
    step: whether they all lie within 30 degrees of each other; whether the room type of the viewpoint they lead to
    singles out the expert's (privileged: what perfect room recognition could use); whether an object the
    instruction names lies within LANDMARK_RADIUS of the expert's viewpoint and of no other's (privileged: perfect
    landmark recognition); whether geometric rules pick the expert's (the longest edge; the smallest turn).
    `near` caches `objects_near` by scene index over the calls of one run."""
    feats = obs["candidates"][row]
    angle = {c: math.degrees(math.atan2(*feats[c - 1, :2].tolist())) for c in alike}
    s = int(env.scene_idx[row])
    vps = env.candidate_viewpoints()[row].tolist()
    rooms = env.tables.room_type[s, vps].tolist()
    near = {} if near is None else near
    if s not in near:
        near[s] = objects_near(env.data.scenes[s], env.data.graphs[s])
    named = mentioned_categories(obs["instruction"][row])
    landmarks = {c: {k for k in named if near[s][vps[c - 1], k]} for c in alike}
    others = set().union(*(landmarks[c] for c in alike if c != expert))
    return Counter({"steps": 1, "within_30_degrees": max(angle.values()) - min(angle.values()) < 30.0,
                    "room_singles_out_expert": all(rooms[c - 1] != rooms[expert - 1] for c in alike if c != expert),
                    "landmark_singles_out_expert": bool(landmarks[expert] - others),
                    "longest_edge_is_expert": max(alike, key=lambda c: float(feats[c - 1, 2])) == expert,
                    "smallest_turn_is_expert": min(alike, key=lambda c: abs(angle[c])) == expert})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a policy directory (checkpoints/step_<N>)")
    parser.add_argument("--split", default="val_unseen")
    parser.add_argument("--episodes", type=int, default=None, help="the split's first N episodes (default: all)")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    policy = VLAPolicy.from_pretrained(args.checkpoint).eval()
    height, width = policy.config.vision.image_hw
    env = R2RGraphVectorEnv(num_envs=args.num_envs, split=args.split, views=4, width=width // 4, height=height,
                            room_features="room" in policy.observation_space.spaces)
    episodes = args.episodes or len(env.episode_ids)
    results = {"checkpoint": args.checkpoint, "split": args.split, "episodes": episodes,
               "teacher_forcing": run(policy, env, episodes, "teacher"),
               **{mode: run(policy, env, episodes, mode)["success_rate"] for mode in MODES}}
    print(json.dumps(results, indent=1))
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
