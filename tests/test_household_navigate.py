"""The expert's way to an interaction pose: it exists, it never walks into furniture, and from its end the full
view's interaction rule picks the object the expert aimed at."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from vlarena.datasets.alfred.scenes import generate_household
from vlarena.envs.household.appearance import HouseholdLook
from vlarena.envs.household.navigate import (
    HORIZONS,
    START_HORIZON,
    STEP,
    UNREACHABLE,
    Camera,
    blocked_table,
    distance_field,
    goal_poses,
    next_pose,
    plan_to,
    pose_tensor,
)
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld
from vlarena.envs.motion import MotionConfig
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors


@pytest.fixture(scope="module")
def kitchen():
    hs = generate_household(5, room_type="kitchen")
    look = HouseholdLook.build([hs])
    slots = hs.slots()
    world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
    look.update(world)
    free, blocked = blocked_table(SceneTensors.from_scenes([hs.scene]), 0, MotionConfig(turn_deg=90.0))
    return hs, look, world, free, blocked


def walk(start, actions, blocked):
    i, j, k, h = start
    for a in actions:
        if a == "MoveAhead":
            assert not blocked[i, j, k], "the expert walked into something"
            i, j = i + STEP[k][0], j + STEP[k][1]
        elif a in ("RotateLeft", "RotateRight"):
            k = (k + (1 if a == "RotateLeft" else -1)) % 4
        else:
            h += 1 if a == "LookDown" else -1
    return i, j, k, h


@pytest.mark.parametrize("target, action", [(1, "PutObject"), (11, "PickupObject"), (7, "ToggleObjectOn"),
                                            (12, "PickupObject"), (0, "OpenObject")])
def test_the_expert_reaches_a_pose_where_the_view_picks_its_object(kitchen, target, action):
    hs, look, world, free, blocked = kitchen
    cam = Camera()
    narrow = Renderer(look.scene_tensors, cam.window_config())
    act = INTERACTIONS.index(action)
    goals = goal_poses(look, narrow, cam, world, 0, target, act, free)
    assert goals.any() and not (goals & ~free[..., None, None]).any()
    start = (5, 5, 0, START_HORIZON)  # near the south-west corner of the kitchen, facing east
    assert bool(free[5, 5])
    plan = plan_to(start, goals, blocked)
    assert plan is not None and len(plan) > 0
    i, j, k, h = walk(start, plan, blocked)
    assert bool(goals[i, j, k, h])
    full = Renderer(look.scene_tensors, RenderConfig(width=cam.width, height=cam.render_height,
                                                     hfov_deg=cam.hfov_deg))
    pose = pose_tensor(torch.tensor([i]), torch.tensor([j]), torch.tensor([k]), look.scene_tensors.cell_size)
    out = full.render(torch.tensor([0]), pose, outputs=("depth", "instance"))
    allowed = world.allowed(torch.tensor([act]))
    assert look.target(out["instance"], out["depth"], int(cam.centre_row(h)), allowed).tolist() == [target]


def test_no_goal_pose_means_no_plan(kitchen):
    _, _, _, free, blocked = kitchen
    none = torch.zeros(*blocked.shape, 7, dtype=torch.bool)
    assert plan_to((5, 5, 0, START_HORIZON), none, blocked) is None


def bfs_length(start, goals, blocked):
    """Reference: the fewest actions by breadth-first search over poses (None if unreachable)."""
    r, c, _, nh = goals.shape
    seen, queue = {start: 0}, deque([start])
    while queue:
        s = queue.popleft()
        if goals[s]:
            return seen[s]
        i, j, k, h = s
        nxt = [(i, j, (k + 1) % 4, h), (i, j, (k - 1) % 4, h), (i, j, k, h - 1), (i, j, k, h + 1)]
        if not blocked[i, j, k]:
            nxt.append((i + STEP[k][0], j + STEP[k][1], k, h))
        for t in nxt:
            if t not in seen and 0 <= t[0] < r and 0 <= t[1] < c and 0 <= t[3] < nh:
                seen[t] = seen[s] + 1
                queue.append(t)
    return None


def test_plan_to_is_shortest_walks_first_and_sets_the_camera_last():
    """Routes are as short as a breadth-first search's; among equally short routes the expert moves ahead
    whenever that stays shortest, and every LookUp / LookDown comes after the last move and turn."""
    g = torch.Generator().manual_seed(0)
    routes = 0
    for _ in range(10):
        blocked = torch.rand(6, 7, 4, generator=g) < 0.3
        goals = torch.rand(6, 7, 4, len(HORIZONS), generator=g) < 0.02
        d = distance_field(goals, blocked)
        for _ in range(20):
            pose = tuple(int(torch.randint(0, n, (1,), generator=g)) for n in (6, 7, 4, len(HORIZONS)))
            route = plan_to(pose, goals, blocked)
            want = bfs_length(pose, goals, blocked)
            assert (UNREACHABLE if want is None else want) == int(d[pose]), pose
            if route is None:
                assert want is None
                continue
            assert len(route) == want and goals[walk(pose, route, blocked)]
            looks = [n for n, a in enumerate(route) if a in ("LookUp", "LookDown")]
            assert looks == list(range(len(route) - len(looks), len(route))), route
            ahead = next_pose(pose, "MoveAhead")
            if route and not blocked[pose[:3]] and 0 <= ahead[0] < 6 and 0 <= ahead[1] < 7:
                assert (route[0] == "MoveAhead") == (bfs_length(ahead, goals, blocked) == want - 1), (pose, route)
            routes += bool(route)
    assert routes > 50  # the random cases mostly have somewhere to go
