import math

import numpy as np
import pytest
import torch

from tests.helpers import box_room
from vlarena.envs.motion import FORWARD, STOP, TURN_LEFT, TURN_RIGHT, MotionConfig, apply_actions, collides
from vlarena.envs.scene_tensors import SceneTensors


def run(scene, pose, actions, config=None):
    config = config or MotionConfig()
    st = SceneTensors.from_scenes([scene])
    idx = torch.zeros(1, dtype=torch.long)
    p = torch.tensor([pose], dtype=torch.float32)
    flags = []
    for a in actions:
        p, c = apply_actions(st, idx, p, torch.tensor([a]), config)
        flags.append(bool(c[0]))
    return p[0], flags


def test_forward_stops_at_wall_without_touching_it():
    # interior x in [0.25, 4.25]; east wall face at x = 4.25
    pose, flags = run(box_room(), (1.0, 2.0, 0.0), [FORWARD] * 20)
    assert pose[0].item() == pytest.approx(4.0)  # 4.0 + 0.18 <= 4.25, 4.25 + 0.18 > 4.25
    assert not any(flags[:12]) and all(flags[12:])  # 1.0 -> 4.0 takes 12 steps, then every FORWARD collides


def test_forward_blocked_by_object_and_cylinder():
    box = box_room(objects=[{"center": (3.0, 2.0), "half_extents": (0.3, 0.3)}])
    pose, _ = run(box, (1.0, 2.0, 0.0), [FORWARD] * 20)
    assert pose[0].item() == pytest.approx(2.5)  # face at 2.7: 2.5 + 0.18 <= 2.7 < 2.75 + 0.18
    cyl = box_room(objects=[{"center": (3.0, 2.0), "half_extents": (0.3, 0.3), "shape": "cylinder"}])
    pose, _ = run(cyl, (1.0, 2.0, 0.0), [FORWARD] * 20)
    assert pose[0].item() == pytest.approx(2.5)


def test_turns_and_stop():
    pose, flags = run(box_room(), (2.0, 2.0, 0.0), [TURN_LEFT, TURN_LEFT, TURN_RIGHT, STOP])
    assert pose[2].item() == pytest.approx(math.radians(15))
    assert pose[:2].tolist() == pytest.approx([2.0, 2.0])
    assert not any(flags)
    pose, _ = run(box_room(), (2.0, 2.0, math.pi / 2), [FORWARD])
    assert pose[:2].tolist() == pytest.approx([2.0, 2.25], abs=1e-6)


def test_configurable_steps_and_substeps():
    cfg = MotionConfig(forward_step=1.0, turn_deg=30.0)
    # a thin object (5 cm) between start and end of a 1 m move: must not be jumped over
    thin = box_room(objects=[{"center": (1.7, 2.0), "half_extents": (0.025, 0.5)}])
    pose, flags = run(thin, (1.0, 2.0, 0.0), [FORWARD], cfg)
    assert flags == [True] and pose[0].item() == pytest.approx(1.0)
    pose, _ = run(box_room(), (2.0, 2.0, 0.0), [TURN_RIGHT], cfg)
    assert pose[2].item() == pytest.approx(-math.radians(30))


@pytest.mark.parametrize("bad", [{"forward_step": 0}, {"turn_deg": -5}, {"agent_radius": float("nan")},
                                 {"turn_deg": 180}])
def test_bad_motion_config(bad):
    with pytest.raises(ValueError, match="motion."):
        MotionConfig(**bad)


def test_collides_matches_geometry():
    st = SceneTensors.from_scenes([box_room(objects=[{"center": (2.0, 2.0), "half_extents": (0.5, 0.25)}])])
    pts = torch.tensor([[0.42, 1.0], [0.44, 1.0], [2.0, 2.44], [2.0, 2.42], [2.69, 2.0], [2.67, 2.0], [3.0, 3.0]])
    got = collides(st, torch.zeros(len(pts), dtype=torch.long), pts, 0.18).tolist()
    assert got == [True, False, False, True, False, True, False]
    assert np.isfinite(pts.numpy()).all()
