"""The household world drawn by the renderer: open things look open, hidden things are not drawn, lamps glow,
and the interaction target is what the view centre sees within 1.5 m."""

from __future__ import annotations

import math

import pytest
import torch

from vlarena.datasets.alfred.scenes import generate_household
from vlarena.envs.household.appearance import LAMP_ON_RGB, HouseholdLook
from vlarena.envs.household.world import OPEN, PICKUP, TOGGLE_ON, HouseholdWorld
from vlarena.envs.renderer import RenderConfig, Renderer

W, H = 64, 128  # a tall frame: rows below the middle are what LookDown brings to the view centre


@pytest.fixture(scope="module")
def kitchen():
    hs = generate_household(5, room_type="kitchen")
    assert [o.type for o in hs.objects[:2]] == ["Fridge", "CounterTop"] and hs.objects[13].type == "Bowl"
    assert hs.objects[13].parent == 0  # the bowl starts in the fridge
    return hs


def setup(hs):
    look = HouseholdLook.build([hs])
    slots = hs.slots()
    world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
    renderer = Renderer(look.scene_tensors, RenderConfig(width=W, height=H))
    return look, world, renderer


def view(look, world, renderer, pose):
    look.update(world)
    renderer.refresh_objects()
    return renderer.render(torch.tensor([0]), torch.tensor([pose], dtype=torch.float32))


def column(out):
    return out["instance"][0, :, W // 2].tolist()


def test_an_open_fridge_shows_what_is_inside(kitchen):
    look, world, renderer = setup(kitchen)
    pose = [6.5, 3.39, 0.0]  # 0.6 m in front of the fridge (east wall), facing it
    closed = view(look, world, renderer, pose)
    assert 13 not in column(closed) and set(column(closed)) <= {0, -1}
    fridge_rgb = closed["rgb"][0, H // 2, W // 2].float()
    assert bool(world.interact(torch.tensor([OPEN]), torch.tensor([0]))[0])
    opened = view(look, world, renderer, pose)
    rows = [r for r, k in enumerate(column(opened)) if k == 13]
    assert rows and min(rows) > H // 2  # the bowl, below eye level
    assert (opened["rgb"][0, H // 2, W // 2].float() < 0.6 * fridge_rgb).all()  # the open fridge looks dark inside
    assert look.target(opened["instance"], opened["depth"], rows[0]).tolist() == [13]
    assert look.target(opened["instance"], opened["depth"], H // 2).tolist() == [0]
    assert bool(world.interact(torch.tensor([PICKUP]), torch.tensor([13]))[0])
    held = view(look, world, renderer, pose)
    assert 13 not in column(held)  # held things are not drawn


def test_targets_beyond_reach_are_none(kitchen):
    look, world, renderer = setup(kitchen)
    far = view(look, world, renderer, [4.0, 3.39, 0.0])  # 3.1 m from the fridge
    assert 0 in column(far)
    assert look.target(far["instance"], far["depth"], H // 2).tolist() == [-1]


def test_a_lamp_that_is_on_glows():
    hs = next(h for h in (generate_household(s, room_type="living_room") for s in range(20))
              if any(o.type == "FloorLamp" for o in h.objects))
    lamp = next(k for k, o in enumerate(hs.objects) if o.type == "FloorLamp")
    look, world, _ = setup(hs)
    look.update(world)
    before = look.scene_tensors.obj_rgb[0, lamp].clone()
    assert bool(world.interact(torch.tensor([TOGGLE_ON]), torch.tensor([lamp]))[0])
    look.update(world)
    assert look.scene_tensors.obj_rgb[0, lamp].tolist() == list(LAMP_ON_RGB) != before.tolist()
    assert math.isclose(float(look.scene_tensors.obj_center[0, lamp, 0]), float(look.home_center[0, lamp, 0]))
