"""The batched ALFRED-style env: the expert's actions finish every episode; failed actions count and end it."""

from __future__ import annotations

import pytest
import torch

from vlarena.envs.alfred_env import ACTIONS, FIRST_INTERACTION, AlfredEnvConfig, AlfredVectorEnv
from vlarena.envs.household.generate import generate_split
from vlarena.envs.household.navigate import HORIZONS, STEP


@pytest.fixture(scope="module")
def env():
    return AlfredVectorEnv(num_envs=2, split="valid_unseen", num_episodes=2)


def test_the_expert_finishes_every_episode(env):
    obs, info = env.reset(options={"episode_id": [0, 1]})
    assert obs["rgb"].shape == (2, 64, 64, 3) and obs["rgb"].dtype == torch.uint8
    assert obs["depth"].shape == (2, 64, 64, 1) and len(obs["instruction"]) == 2
    assert info["expert_valid"].all() and (info["goal_conditions"] < info["total_goal_conditions"]).all()
    ended = {}
    total_reward = torch.zeros(2)
    worked = torch.zeros(2, dtype=torch.long)  # the expert's interactions never fail
    assert obs["progress"].argmax(1).tolist() == [0, 0]
    for t in range(400):
        action = info["expert_action"]
        obs, reward, terminated, truncated, info = env.step(action)
        total_reward += reward * torch.tensor([b not in ended for b in range(2)])
        worked += action >= FIRST_INTERACTION
        for b in set(range(2)) - set(ended):  # `progress`: one-hot of the interactions that worked
            assert obs["progress"][b].sum() == 1 and int(obs["progress"][b].argmax()) == int(worked[b])
        for b in range(2):
            if b not in ended and bool(info["done"][b]):
                ended[b] = (t, bool(terminated[b]), bool(info["success"][b]), int(info["failures"][b]))
        if len(ended) == 2:
            break
    assert all(term and success and fails == 0 for _, term, success, fails in ended.values()), ended
    lengths = [len(env.episodes[b]["plan"]["low_actions"]) for b in range(2)]
    assert lengths[0] != lengths[1]
    assert [ended[b][0] for b in range(2)] == lengths  # the recorded actions, then STOP
    assert (total_reward > 4).all()  # goal conditions + the success bonus outweigh the step penalties
    assert not env._experts[0]._fields and not env._experts[1]._fields  # replaying the record needs no field


def test_the_recorded_actions_are_shortest_routes_by_the_distance_fields(env):
    """Each recorded navigation action lowers the distance to the next interaction's goal poses by one, and
    each recorded interaction happens at distance 0: the replay answers are ones the fields would give."""
    env.reset(options={"episode_id": [0, 1]})
    expert = env._experts[1]
    assert expert.recorded
    step = {1: lambda i, j, h, v: (i + STEP[h][0], j + STEP[h][1], h, v), 2: lambda i, j, h, v: (i, j, (h + 1) % 4, v),
            3: lambda i, j, h, v: (i, j, (h - 1) % 4, v), 4: lambda i, j, h, v: (i, j, h, v - 1),
            5: lambda i, j, h, v: (i, j, h, v + 1)}
    for (pose, k), action in expert.recorded.items():
        d = expert.field(k)
        if action >= FIRST_INTERACTION:
            assert d[pose] == 0 and expert.steps[k][0] == action - FIRST_INTERACTION
        else:
            assert d[step[action](*pose)] == d[pose] - 1


def test_failed_actions_change_nothing_count_and_end_the_episode(env):
    obs, info = env.reset(options={"episode_id": [0, 0]})
    slice_ = ACTIONS.index("SliceObject")  # nothing sliceable in hand's reach with empty hands
    before = {k: v.clone() for k, v in env.world.__dict__.items()}
    for n in range(1, 11):
        obs, reward, terminated, truncated, info = env.step(torch.full((2,), slice_))
        assert info["failed_action"].all() and info["failures"].tolist() == [n, n]
        assert info["expert_valid"].all()  # a failed action changes nothing: the plan still holds
    assert truncated.all() and not terminated.any() and not info["success"].any()
    assert (obs["progress"][:, 0] == 1).all()  # failed interactions are not progress
    assert obs["last_action"].argmax(1).tolist() == [slice_] * 2 and obs["last_action"].sum().item() == 2
    assert obs["last_action_failed"].tolist() == [[1.0], [1.0]]
    for k, v in before.items():
        assert torch.equal(getattr(env.world, k), v), k
    with pytest.raises(ValueError, match=r"action 13 of env 0 is outside the action space"):
        env.step(torch.tensor([13, 0]))


def test_pose_is_relative_to_the_start(env):
    """`pose`: metres ahead / left in the start's frame, sin / cos of the turn since the start, horizon / 60."""
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    start = env.pose.clone()
    horizon = torch.tensor([HORIZONS[h] / 60 for h in start[:, 3].tolist()])
    torch.testing.assert_close(obs["pose"], torch.stack([torch.zeros(2), torch.zeros(2), torch.zeros(2),
                                                         torch.ones(2), horizon], 1))
    assert obs["last_action"].shape == (2, len(ACTIONS)) and not obs["last_action"].any()  # nothing done yet
    assert obs["last_action_failed"].shape == (2, 1) and not obs["last_action_failed"].any()
    moved = torch.zeros(2)
    for a in ("MoveAhead", "RotateLeft", "MoveAhead", "MoveAhead", "LookUp"):
        before = env.pose.clone()
        obs, _, _, _, info = env.step(torch.full((2,), ACTIONS.index(a)))
        if a == "MoveAhead":
            went = (env.pose[:, :2] != before[:, :2]).any(1)
            moved += went.float()
            assert obs["last_action_failed"][:, 0].tolist() == (~went).float().tolist()  # a blocked MoveAhead failed
        assert (obs["last_action"][:, ACTIONS.index(a)] == 1).all() and (obs["last_action"].sum(1) == 1).all()
    assert moved.sum() >= 2  # some MoveAheads went through
    ahead, left = obs["pose"][:, 0], obs["pose"][:, 1]
    assert obs["pose"].shape == (2, 5) and obs["pose"].dtype == torch.float32
    torch.testing.assert_close(obs["pose"][:, 2:4], torch.tensor([[1.0, 0.0]] * 2), atol=1e-6, rtol=0)  # 90° left
    # the walked distance is the successful MoveAheads' (0.25 m each), split between ahead and left
    torch.testing.assert_close(ahead.abs() + left.abs(), 0.25 * moved)
    assert ((ahead >= 0) & (left >= 0)).all()
    torch.testing.assert_close(obs["pose"][:, 4], torch.tensor([HORIZONS[h] / 60 for h in env.pose[:, 3].tolist()]))


def test_the_expert_recovers_from_wandering_and_gives_up_after_an_unplanned_interaction(env):
    """From wherever random navigation leaves the agent the expert still finishes the task; after an
    interaction the plan did not ask for (one that changed the world) the expert has no answer."""
    g = torch.Generator().manual_seed(0)
    obs, info = env.reset(options={"episode_id": [0, 1]})
    for _ in range(12):
        obs, reward, terminated, truncated, info = env.step(torch.randint(1, 6, (2,), generator=g))
    assert info["expert_valid"].all() and not info["done"].any()
    done = torch.zeros(2, dtype=torch.bool)
    success = torch.zeros(2, dtype=torch.bool)
    for _ in range(400):
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert (done | info["expert_valid"]).all()
        success |= info["success"] & ~done
        done |= info["done"]
        if done.all():
            break
    assert success.all()
    # an interaction that changed the world but is not the plan's next one (here: on another object)
    obs, info = env.reset(options={"episode_id": [0, 0]})
    action, obj = env._experts[0].steps[0]
    env._follow_plan(torch.tensor([True, True]), torch.tensor([action, action]), torch.tensor([obj + 1, obj]))
    assert env.plan_step.tolist() == [0, 1] and env.on_plan.tolist() == [False, True]
    assert env._expert()[0] == -1 and env._expert()[1] >= 0
    # off the plan no object is the goal; on it, the plan's second interaction's object is
    assert env._target_type().tolist() == [-1, int(env.world.otype[1, env._experts[0].steps[1][1]])]


def test_the_target_type_is_the_object_type_of_the_plans_next_interaction(env):
    """info["expert_target_type"] follows the expert through the plan: the type of the object of interaction k
    (k = interactions done), the semantic_map channel 2 + type, and -1 once the plan is done."""
    obs, info = env.reset(options={"episode_id": [0, 1]})
    steps = [env._experts[int(e)].steps for e in env.ep]
    done_k = [0, 0]
    ended = torch.zeros(2, dtype=torch.bool)
    seen_types = set()
    for _ in range(400):
        for b in range(2):
            if ended[b]:
                continue
            want = int(env.world.otype[b, steps[b][done_k[b]][1]]) if done_k[b] < len(steps[b]) else -1
            assert int(info["expert_target_type"][b]) == want
            seen_types.add(want)
        action = info["expert_action"]
        for b in range(2):
            done_k[b] += int(action[b]) >= FIRST_INTERACTION
        obs, _, _, _, info = env.step(action)
        ended |= info["done"]
        if ended.all():
            break
    assert ended.all() and -1 in seen_types and len(seen_types) >= 3
    assert info["expert_target_type"].dtype == torch.long


def test_episodes_from_a_data_folder(tmp_path):
    generate_split("test", 1, tmp_path)
    env = AlfredVectorEnv(num_envs=1, split="test", data_dir=str(tmp_path))
    assert env.episode_ids == ["trial_test_00000"]
    with pytest.raises(ValueError, match="no episodes in .*valid_seen: write them with `vlarena data alfred"):
        AlfredVectorEnv(num_envs=1, split="valid_seen", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="env.split must be one of"):
        AlfredEnvConfig(split="val")


def test_evaluation_scores_the_oracle_perfectly_and_random_poorly(env, tmp_path):
    import json

    from vlarena.agents.evaluate_alfred import evaluate_alfred, oracle_act, random_act

    oracle = evaluate_alfred(env, oracle_act, tmp_path / "oracle", {"agent": "oracle"})
    assert oracle["num_episodes"] == 2
    for key in ("success_rate", "goal_condition_success", "plw_success_rate", "plw_goal_condition_success"):
        assert oracle[key] == 1.0, key
    rows = [json.loads(line) for line in (tmp_path / "oracle" / "episodes.jsonl").read_text().splitlines()]
    assert [r["num_actions"] for r in rows] == [len(e["plan"]["low_actions"]) for e in env.episodes]
    assert set(oracle["per_task_type"]) == {e["task_type"] for e in env.episodes}
    rand = evaluate_alfred(env, random_act(seed=0), tmp_path / "random", {"agent": "random"})
    assert rand["success_rate"] == 0.0 and rand["goal_condition_success"] < 0.5
    assert json.loads((tmp_path / "random" / "summary.json").read_text())["agent"] == "random"


def test_envs_that_go_on_keep_their_world_when_another_restarts(tmp_path):
    """valid_seen episodes 0-3 on 4 envs: episode 2 ends first and restarts while episode 0's agent holds
    the object it is about to put down (a stale drawing of the rebuilt batch once made that put fail)."""
    from vlarena.agents.evaluate_alfred import evaluate_alfred, oracle_act

    env = AlfredVectorEnv(num_envs=4, split="valid_seen", num_episodes=4)
    summary = evaluate_alfred(env, oracle_act, tmp_path, {"agent": "oracle"})
    assert summary["success_rate"] == 1.0 and summary["num_episodes"] == 4


def test_registered_single_env_passes_check_env_and_eval_cli(tmp_path, capsys):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    import vlarena.envs  # noqa: F401
    from vlarena.cli import main

    single = gym.make("vlarena/ALFRED-v0", split="valid_unseen", num_episodes=1)
    check_env(single.unwrapped, skip_render_check=True)
    vec = gym.make_vec("vlarena/ALFRED-v0", num_envs=2, split="valid_unseen", num_episodes=1)
    assert vec.single_action_space.n == 13
    out = tmp_path / "eval"
    assert main(["eval", "env=alfred", "agent=oracle", "split=valid_unseen", "env.kwargs.num_episodes=2",
                 "num_envs=2", f"out_dir={out}"]) == 0
    assert "success_rate=1.000 goal_condition_success=1.000" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "env=alfred", "agent=forward", "split=valid_unseen", "env.kwargs.num_episodes=1", "num_envs=1",
              f"out_dir={out}"])
    assert exit_.value.code == 2
    assert "accepted are oracle, random or checkpoint" in capsys.readouterr().err


def test_look_around_turns_once_around_then_follows_the_plan():
    env = AlfredVectorEnv(num_envs=2, split="valid_unseen", num_episodes=2, look_around=4)
    obs, info = env.reset(options={"episode_id": [0, 1]})
    start = env.pose.clone()
    actions, ended = [], {}
    for t in range(400):
        actions.append(info["expert_action"])
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        if t == 3:
            assert torch.equal(env.pose, start)  # four quarter turns: back where it started
        for b in range(2):
            if b not in ended and bool(info["done"][b]):
                ended[b] = (t, bool(info["success"][b]))
        if len(ended) == 2:
            break
    assert (torch.stack(actions[:4]) == ACTIONS.index("RotateLeft")).all()
    assert ended == {b: (len(env.episodes[b]["plan"]["low_actions"]) + 4, True) for b in range(2)}
    with pytest.raises(ValueError, match="env.look_around must be an int >= 0"):
        AlfredEnvConfig(look_around=-1)
