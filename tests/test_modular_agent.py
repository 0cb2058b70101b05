"""The modular ALFRED agent: its interaction steps solve every task type, its map frame, its replica of the env's
interaction target, its language module, and whole episodes in the env."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_household_plans import SCENE, SPECS, world_for

from vlarena.agents.modular.agent import MIN_MAP, ModularAgent, true_parser
from vlarena.agents.modular.executor import window_pick
from vlarena.agents.modular.grid import StartFrameGrid
from vlarena.agents.modular.parser import TaskParser, exact_match, instruction_rows
from vlarena.agents.modular.subgoals import interaction_steps
from vlarena.datasets.alfred.objects import TYPE_INDEX
from vlarena.envs.alfred_env import AlfredEnvConfig, AlfredVectorEnv, load_episodes
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.world import CLOSE, OPEN, PICKUP, PUT, SLICE, TOGGLE_OFF, TOGGLE_ON


def _act_on_first_fitting(world, step, used, sliced) -> bool:
    for slot, (name, _) in enumerate(SCENE):
        if TYPE_INDEX[name] not in step.types or (step.new_instance and slot in used) or \
                (step.sliced and slot not in sliced):
            continue
        if bool(world.interact(torch.tensor([step.action]), torch.tensor([slot]))[0]):
            used |= {slot} if step.action == PICKUP else set()
            sliced |= {slot} if step.action == SLICE else set()
            return True
    return False


def test_interaction_steps_solve_every_task_type_on_any_fitting_instances():
    """Each step acts on the first instance of its types that it can act on (as the agent does on whatever it
    finds first), honouring new_instance and sliced; where none can be acted on, openables are opened first
    (the agent's search), and an OpenObject of something open is skipped. Every step succeeds and every goal condition holds."""
    openables = [slot for slot, (name, _) in enumerate(SCENE) if name in ("Fridge", "Microwave", "Cabinet")]
    for spec in SPECS:
        world, goals = world_for([spec]), TaskGoals.from_specs([spec])
        used, sliced = set(), set()
        for step in interaction_steps(spec):
            if step.action == OPEN and any(bool(world.is_open[0, slot]) for slot in openables
                                           if TYPE_INDEX[SCENE[slot][0]] in step.types):
                continue  # the agent skips opening what it opened already
            if not _act_on_first_fitting(world, step, used, sliced):
                for slot in openables:
                    world.interact(torch.tensor([OPEN]), torch.tensor([slot]))
                assert _act_on_first_fitting(world, step, used, sliced), (spec, step)
        satisfied, total = goal_conditions(world, goals)
        assert int(satisfied[0]) == int(total[0]), spec


def test_heat_steps_follow_alfreds_microwave_sequence():
    steps = interaction_steps(SPECS[6])  # heat a potato, then into the fridge
    assert [s.action for s in steps] == [PICKUP, OPEN, PUT, CLOSE, TOGGLE_ON, TOGGLE_OFF, OPEN, PICKUP, OPEN, PUT]
    assert steps[1].types == {TYPE_INDEX["Microwave"]} and steps[-1].types == {TYPE_INDEX["Fridge"]}


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_start_frame_grid_turns_and_shifts_the_egocentric_crop(turns):
    """A mark 2 cells ahead and 1 to the right of an agent 3 cells ahead and 1 left of its start, turned `turns`
    quarter turns left, lies where the start frame puts it (x ahead of the start, y to its left)."""
    size = 15
    crop = torch.zeros(size, size, 2, dtype=torch.uint8)
    crop[size // 2 - 2, size // 2 + 1, 1] = 1
    theta = turns * math.pi / 2
    pose = torch.tensor([0.75, 0.25, math.sin(theta), math.cos(theta), 0.5])
    cells, (i, j, k) = StartFrameGrid(size).place(crop, pose)
    c = size // 2
    assert (i, j, k) == (c + 1, c + 3, turns)
    fwd = [(1, 0), (0, 1), (-1, 0), (0, -1)][turns]  # (dx, dy) of the agent's heading in the start frame
    right = (fwd[1], -fwd[0])
    x, y = 3 + 2 * fwd[0] + right[0], 1 + 2 * fwd[1] + right[1]
    assert cells[..., 1].nonzero().tolist() == [[c + y, c + x]]


def test_window_pick_is_the_envs_interaction_target():
    env = AlfredVectorEnv(num_envs=4, split="valid_unseen", num_episodes=4, segmentation=True)
    obs, info = env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(40):
        for action in range(7):
            frame = env.renderer.render(torch.arange(4), env._render_pose(), outputs=("depth", "instance"))
            slot = env.look.target(frame["instance"], frame["depth"], env.camera.centre_row(env.pose[:, 3]),
                                   env.world.allowed(torch.full((4,), action)))
            for b in range(4):
                t, inst = window_pick(obs["segmentation"][b], obs["depth"][b], action)
                assert inst == int(slot[b])
                assert t == (int(env.world.otype[b, inst]) if inst >= 0 else -1)
                checked += inst >= 0
        obs, _, _, _, info = env.step(info["expert_action"].clamp(min=0) if bool(torch.rand(1, generator=gen) < 0.7)
                                      else torch.randint(1, 6, (4,), generator=gen))
    assert checked > 50  # the check saw objects, not only empty windows


def test_modular_agent_solves_unseen_episodes_with_the_true_tasks():
    env = AlfredVectorEnv(num_envs=2, split="valid_unseen", num_episodes=2, segmentation=True, semantic_map=MIN_MAP)
    agent = ModularAgent(true_parser(env))
    obs, info = env.reset(options={"episode_id": env.episode_ids})
    done, success = torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    while not bool(done.all()):
        obs, _, _, _, info = env.step(agent.act(obs, info))
        success |= info["success"] & ~done
        done |= info["done"]
    assert success.all(), success


def test_modular_agent_refuses_an_env_without_its_observations():
    env = AlfredVectorEnv(num_envs=1, split="valid_unseen", num_episodes=1, semantic_map=31)
    obs, info = env.reset(seed=0)
    with pytest.raises(ValueError, match="segmentation"):
        ModularAgent(true_parser(env)).act(obs, info)


def test_parser_learns_tasks_and_always_answers_a_valid_one(tmp_path):
    rows = instruction_rows([e for e in load_episodes(AlfredEnvConfig(split="train", num_episodes=20)) if e])
    untrained = TaskParser.train(rows[:1], epochs=0, log=False)
    for spec in untrained.parse([text for text, _ in rows[:20]]):
        spec.check()  # decoding keeps every argument to what the task type accepts
    parser = TaskParser.train(rows, epochs=15, batch=8, log=False)
    assert exact_match(parser, rows) >= 0.9
    parser.save(tmp_path / "p")
    again = TaskParser.load(tmp_path / "p")
    assert again.parse([t for t, _ in rows]) == parser.parse([t for t, _ in rows])
    from vlarena.cli import main

    assert main(["eval", "env=alfred", f"checkpoint={tmp_path / 'p'}", "split=valid_unseen",
                 "env.kwargs.num_episodes=2", "num_envs=2", f"out_dir={tmp_path / 'eval'}"]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["agent"] == "modular" and summary["num_episodes"] == 2
    (tmp_path / "p" / "parser.json").write_text(json.dumps({"vocab": []}))
    with pytest.raises(ValueError, match="not a saved task parser"):
        TaskParser.load(tmp_path / "p")


def test_executor_picks_up_the_receptacle_it_filled_and_faces_small_ones_head_on():
    from vlarena.agents.modular.executor import Executor, cone

    spec = SPECS[8]  # apple into a bowl, the bowl onto the side table
    ex = Executor(interaction_steps(spec))
    pick_bowl = ex.steps[2]
    assert pick_bowl.action == PICKUP and pick_bowl.types == {TYPE_INDEX["Bowl"]}
    assert ex._may_take(pick_bowl, 12) and ex._may_take(pick_bowl, 13)  # nothing filled yet: any bowl
    ex._last = (6 + PUT, (0, 0, 0), 12)  # the apple went into bowl 12
    ex._learn(failed=False)
    assert ex.put_into == 12 and ex.s == 1
    assert ex._may_take(pick_bowl, 12) and not ex._may_take(pick_bowl, 13)
    assert cone((10, 10, 0), narrow=True) == [(10, 10 + a) for a in range(1, 6)]  # heading 0: +j, no side cells
    assert len(cone((10, 10, 0))) == 2 + 3 * 3
