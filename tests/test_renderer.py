import math

import numpy as np
import pytest
import torch

from tests.helpers import box_room
from vlarena.datasets.catalog import (
    CATEGORY_NAMES,
    CEILING_RGB,
    DOOR_RGB,
    ROOM_STYLES,
    SEM_CEILING,
    SEM_FLOOR,
    SEM_OBJECT_BASE,
    SEM_WALL,
)
from vlarena.datasets.scene import FLOOR, WALL, Door, Room, Scene, SceneObject
from vlarena.envs import renderer as renderer_module
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors

CS = 0.25


def two_rooms(left: str = "kitchen", right: str = "bedroom", door: bool = True, objects=()) -> Scene:
    """Two 4 x 4 m rooms side by side along x, split by a one-cell wall at x in [4.25, 4.5].

    Left interior x in [0.25, 4.25], right x in [4.5, 8.5]; y in [0.25, 4.25]. The door opening is
    the wall cells at y in [2.0, 2.5] (rows 8 and 9).
    """
    rows, cols = 18, 35
    cells = np.full((rows, cols), WALL, dtype=np.uint8)
    room_ids = np.full((rows, cols), -1, dtype=np.int16)
    cells[1:17, 1:17] = FLOOR
    room_ids[1:17, 1:17] = 0
    cells[1:17, 18:34] = FLOOR
    room_ids[1:17, 18:34] = 1
    doors = []
    if door:
        cells[8:10, 17] = FLOOR
        doors = [Door((0, 1), ((8, 17), (9, 17)))]
    objs = [SceneObject(k, o.get("category", "fridge"), o.get("colour", "red"), o.get("shape", "box"),
                        tuple(o["center"]), tuple(o.get("half_extents", (0.3, 0.3))), tuple(o.get("z_range", (0.0, 1.0))),
                        o.get("room", 0)) for k, o in enumerate(objects)]
    rooms = [Room(0, left, (1, 1, 17, 17)), Room(1, right, (1, 18, 17, 34))]
    return Scene("two_rooms", 0, CS, 2.7, cells, room_ids, rooms, doors, objs)


def render(scene_or_pool, pose, **cfg):
    st = scene_or_pool if isinstance(scene_or_pool, SceneTensors) else SceneTensors.from_scenes([scene_or_pool])
    r = Renderer(st, RenderConfig(**cfg))
    p = torch.tensor(pose, dtype=torch.float32).view(-1, 3)
    return r.render(torch.zeros(p.shape[0], dtype=torch.long), p)


def camera(width, height, hfov_deg=90.0):
    t = math.tan(math.radians(hfov_deg) / 2)
    u = t * (1 - (2 * np.arange(width) + 1) / width)
    v = t * height / width * (1 - (2 * np.arange(height) + 1) / height)
    return u, v


def rect_depth(x, y, heading, u, lo=(0.25, 0.25), hi=(4.25, 4.25)):
    """Exact z-depth of each column ray to the walls of an empty rectangular room."""
    dx = math.cos(heading) - u * math.sin(heading)
    dy = math.sin(heading) + u * math.cos(heading)
    with np.errstate(divide="ignore"):
        sx = np.where(dx > 0, (hi[0] - x) / dx, (lo[0] - x) / dx)
        sy = np.where(dy > 0, (hi[1] - y) / dy, (lo[1] - y) / dy)
    return np.minimum(np.where(dx == 0, np.inf, sx), np.where(dy == 0, np.inf, sy))


# ---- walls -----------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [0.6, 2.0, 3.9])
@pytest.mark.parametrize("heading", [0.0, math.pi / 2, math.pi, -math.pi / 2])
def test_wall_ahead_axis_headings(x, heading):
    # walk the axis: the wall straight ahead is perpendicular, so every column has the same z-depth
    c, s = math.cos(heading), math.sin(heading)
    pose = (2.25 + (x - 2.25) * c, 2.25 + (x - 2.25) * s, heading)
    out = render(box_room(), pose, width=32, height=16)
    expected = 4.25 - x
    d = out["depth"][0, 8, 12:20, 0]
    assert d.numpy() == pytest.approx(np.full(8, expected), abs=0.02)
    assert (out["semantic"][0, 8, 12:20] == SEM_WALL).all()


@pytest.mark.parametrize("heading_deg", [17.0, 45.0, 100.0, 200.0, 301.0])
@pytest.mark.parametrize("hfov", [60.0, 90.0, 150.0])
def test_wall_depth_every_column_any_heading(heading_deg, hfov):
    u, _ = camera(48, 9, hfov)
    h = math.radians(heading_deg)
    out = render(box_room(), (1.1, 3.3, h), width=48, height=9, hfov_deg=hfov, max_depth=100.0)
    expected = rect_depth(1.1, 3.3, h, u)
    assert out["depth"][0, 4, :, 0].numpy() == pytest.approx(expected, abs=0.02)


def test_long_rays_beyond_first_chunk_of_crossings():
    # a 30 m corridor: rays along it cross > 32 grid lines (the cast continues in later chunks)
    hall = box_room(30.0, 2.0, room_type="hallway")
    u, _ = camera(64, 3)
    for x, heading in ((1.0, 0.0), (1.0, 0.03), (29.0, math.pi - 0.02)):
        out = render(hall, (x, 1.25, heading), width=64, height=3, max_depth=100.0)
        expected = rect_depth(x, 1.25, heading, u, hi=(30.25, 2.25))
        assert out["depth"][0, 1, :, 0].numpy() == pytest.approx(expected, abs=0.02)
        assert expected.max() > 20


def test_small_chunks_give_the_same_walls():
    scene = two_rooms(objects=[{"center": (6.0, 2.0)}])
    poses = [(1.0, 1.0, 0.3), (2.0, 2.2, 0.05), (7.0, 3.0, 3.5)]
    a = render(scene, poses, width=40, height=20)
    b = render(scene, poses, width=40, height=20, wall_chunk=3)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---- objects ---------------------------------------------------------------------------------
@pytest.mark.parametrize("hfov", [60.0, 90.0, 120.0])
def test_box_straight_ahead(hfov):
    # box x in [2.7, 3.3], y in [1.95, 2.55], top 1.0 m below the camera (1.25 m): side and top visible
    scene = box_room(objects=[{"center": (3.0, 2.25), "half_extents": (0.3, 0.3), "z_range": (0.0, 1.0),
                               "category": "stove"}])
    w, h = 64, 64
    u, v = camera(w, h, hfov)
    out = render(scene, (1.0, 2.25, 0.0), width=w, height=h, hfov_deg=hfov)
    sem, inst, depth = out["semantic"][0], out["instance"][0], out["depth"][0, :, :, 0]
    sem_box = SEM_OBJECT_BASE + CATEGORY_NAMES.index("stove")
    side = (v >= -1.25 / 1.7 + 1e-3) & (v <= -0.25 / 1.7 - 1e-3)
    top = (v > -0.25 / 1.7 + 1e-3) & (v < -0.25 / 2.3 - 1e-3)
    clear = (v > -0.25 / 2.3 + 1e-3) | (v < -1.25 / 1.7 - 1e-3)
    for col in (w // 2 - 1, w // 2):
        assert (sem[side, col] == sem_box).all() and (inst[side, col] == 0).all()
        assert depth[side, col].numpy() == pytest.approx(np.full(side.sum(), 1.7), abs=0.02)
        assert (sem[top, col] == sem_box).all()
        assert depth[top, col].numpy() == pytest.approx(-0.25 / v[top], abs=0.02)
        assert (inst[clear, col] == -1).all()
    # horizontal extent: the front face spans |u| <= 0.3 / 1.7
    row = int(np.argmax(side))
    inside = np.abs(u) < 0.3 / 1.7 - 1e-3
    outside = np.abs(u) > 0.3 / 1.7 + 1e-3
    assert (inst[row, inside] == 0).all() and (inst[row, outside] == -1).all()
    assert side.sum() > 10 and top.sum() >= 1


def test_cylinder_taller_than_camera_and_its_shading():
    scene = box_room(objects=[{"center": (3.0, 2.25), "half_extents": (0.3, 0.3), "z_range": (0.0, 2.0),
                               "shape": "cylinder", "category": "lamp", "colour": "yellow"}])
    w, h = 64, 64
    u, v = camera(w, h)
    out = render(scene, (1.0, 2.25, 0.0), width=w, height=h)
    sem, depth = out["semantic"][0], out["depth"][0, :, :, 0]
    covered = (v >= -1.25 / 1.7 + 1e-3) & (v <= 0.75 / 1.7 - 1e-3)
    # exact entry of the centre rays into the circle
    for col in (w // 2 - 1, w // 2):
        a = 1 + u[col] ** 2
        b = 2.0
        disc = b * b - a * (4.0 - 0.09)
        s_in = (b - math.sqrt(disc)) / a
        assert (sem[covered, col] == SEM_OBJECT_BASE + CATEGORY_NAMES.index("lamp")).all()
        assert depth[covered, col].numpy() == pytest.approx(np.full(covered.sum(), s_in), abs=0.02)
        assert (sem[v > 0.75 / 1.7 + 1e-3, col] != SEM_OBJECT_BASE + CATEGORY_NAMES.index("lamp")).all()
    # round: the centre of the cylinder faces the camera and is lit more than its silhouette
    rgb = out["rgb"][0].int()
    row = h // 2 + 4
    obj_cols = np.nonzero((out["instance"][0, row] == 0).numpy())[0]
    centre = rgb[row, w // 2].sum()
    rim = min(rgb[row, obj_cols[0]].sum(), rgb[row, obj_cols[-1]].sum())
    assert centre > rim + 20
    # yellow: red and green channels well above blue
    assert rgb[row, w // 2, 0] > rgb[row, w // 2, 2] + 80 and rgb[row, w // 2, 1] > rgb[row, w // 2, 2] + 80


def test_elevated_object_shows_its_bottom_and_floor_below():
    # an object floating from 1.5 to 2.0 m (above the camera): its bottom face is visible, floor below
    # box x in [2.0, 4.0]: seen from x = 1.0, its front face is 1 m away and its back edge 3 m
    scene = box_room(objects=[{"center": (3.0, 2.25), "half_extents": (1.0, 0.3), "z_range": (1.5, 2.0)}])
    w, h = 32, 96
    _, v = camera(w, h)
    out = render(scene, (1.0, 2.25, 0.0), width=w, height=h)
    sem, depth = out["semantic"][0, :, w // 2], out["depth"][0, :, w // 2, 0]
    obj = SEM_OBJECT_BASE
    side = (v >= 0.25 / 1.0 + 1e-3) & (v <= 0.75 / 1.0 - 1e-3)
    bottom = (v > 0.25 / 3.0 + 1e-3) & (v < 0.25 / 1.0 - 1e-3)
    assert (sem[side] == obj).all() and (sem[bottom] == obj).all() and bottom.sum() >= 2
    assert depth[side].numpy() == pytest.approx(np.ones(side.sum()), abs=0.02)
    assert depth[bottom].numpy() == pytest.approx(0.25 / v[bottom], abs=0.02)
    assert (sem[v < 0.25 / 3.0 - 1e-3] != obj).all()
    assert (sem[v < -1.25 / 3.25 - 1e-3] == SEM_FLOOR).all()


def test_object_behind_wall_is_hidden_and_visible_through_door():
    # object in the right room; the camera in the left room looks at the wall between them
    scene = two_rooms(door=True, objects=[{"center": (5.5, 1.0), "room": 1, "z_range": (0.0, 2.0)},
                                          {"center": (6.5, 2.25), "room": 1, "z_range": (0.0, 2.0)}])
    out = render(scene, (2.0, 1.0, 0.0), width=64, height=32)
    assert (out["instance"][0] != 0).all()  # hidden by the wall at x = 4.25
    assert (out["semantic"][0, 16, 24:40] == SEM_WALL).all()
    assert out["depth"][0, 16, 31, 0].item() == pytest.approx(2.25, abs=0.02)
    # through the door (y in [2.0, 2.5]) the second object is seen at its front face x = 6.2
    out = render(scene, (2.0, 2.25, 0.0), width=64, height=32)
    assert (out["instance"][0, 16, 31:33] == 1).all()
    assert out["depth"][0, 16, 31, 0].item() == pytest.approx(4.2, abs=0.02)


def test_nearest_of_overlapping_layers_wins():
    # a wide 1 m box (x in [1.8, 2.2]) in front of a tall narrow one (x in [3.3, 3.7]); seen from
    # x = 0.8 they overlap in the image, where the front one must win, and the tall one shows above
    scene = box_room(objects=[{"center": (3.5, 2.25), "half_extents": (0.2, 0.2), "z_range": (0.0, 2.2)},
                              {"center": (2.0, 2.25), "half_extents": (0.2, 0.6), "z_range": (0.0, 1.0)}])
    _, v = camera(32, 64)
    out = render(scene, (0.8, 2.25, 0.0), width=32, height=64)
    inst = out["instance"][0, :, 16]
    front = (v > -1.25 / 1.0 + 1e-3) & (v < -0.25 / 1.4 - 1e-3)  # side and top face of the front box
    back = (v > -0.25 / 1.4 + 1e-3) & (v < 0.95 / 2.5 - 1e-3)
    both = front & (v > -1.25 / 2.5)  # rows where the back box is behind the front one
    assert both.sum() >= 5
    assert (inst[front] == 1).all() and (inst[back] == 0).all() and back.sum() >= 5


# ---- floor, ceiling, looks -------------------------------------------------------------------
def test_floor_and_ceiling_depths():
    w, h = 16, 64
    _, v = camera(w, h)
    out = render(box_room(), (1.0, 2.25, 0.0), width=w, height=h)
    sem, depth = out["semantic"][0, :, 8], out["depth"][0, :, 8, 0]
    floor = v < -1.25 / 3.25 - 1e-3
    ceil = v > 1.45 / 3.25 + 1e-3
    wall = ~floor & ~ceil & (np.abs(v + 1.25 / 3.25) > 1e-3) & (np.abs(v - 1.45 / 3.25) > 1e-3)
    assert (sem[floor] == SEM_FLOOR).all() and (sem[ceil] == SEM_CEILING).all() and (sem[wall] == SEM_WALL).all()
    assert depth[floor].numpy() == pytest.approx(-1.25 / v[floor], rel=1e-4)
    assert depth[ceil].numpy() == pytest.approx(1.45 / v[ceil], rel=1e-4)
    assert (out["rgb"][0, ceil, 8] == torch.tensor(CEILING_RGB, dtype=torch.uint8)).all()
    assert (out["instance"][0] == -1).all()


def test_max_depth_clamps_depth_not_colour():
    hall = box_room(30.0, 2.0, room_type="hallway")
    near = render(hall, (1.0, 1.25, 0.0), width=32, height=32, max_depth=3.0)
    far = render(hall, (1.0, 1.25, 0.0), width=32, height=32, max_depth=100.0)
    assert near["depth"].max().item() == pytest.approx(3.0)
    assert far["depth"].max().item() > 20
    assert torch.equal(near["rgb"], far["rgb"]) and torch.equal(near["semantic"], far["semantic"])
    assert torch.equal(near["depth"], far["depth"].clamp(max=3.0))


def test_room_types_look_different():
    w, h = 32, 64
    _, v = camera(w, h)
    upper = int(np.argmax(v < 1.45 / 3.25 - 0.02))  # first wall row below the ceiling
    looks = {}
    for rt in ("kitchen", "bedroom", "bathroom", "office"):
        out = render(box_room(room_type=rt), (1.0, 2.25, 0.0), width=w, height=h)
        rgb = out["rgb"][0]
        # an x-facing wall is drawn in the room's own wall colour, unshaded
        assert tuple(rgb[upper, w // 2].tolist()) == ROOM_STYLES[rt].wall_rgb
        looks[rt] = (tuple(rgb[upper, w // 2].tolist()), tuple(rgb[h - 1, :].flatten().tolist()))
        # wainscot (pattern 3): a darker band low on the wall; plain walls: none
        low = int(np.argmax(v < (0.9 - 1.25) / 3.25 - 0.01))
        darker = rgb[low, w // 2].int().sum() < rgb[upper, w // 2].int().sum() - 30
        assert darker == (ROOM_STYLES[rt].wall_pattern == 3), rt
    walls = {k: a for k, (a, _) in looks.items()}
    floors = {k: b for k, (_, b) in looks.items()}
    assert len(set(walls.values())) == 4 and len(set(floors.values())) == 4


def test_floor_patterns_and_door_threshold():
    # kitchen: checker tiles (two colours); office: plain (one colour); a door threshold in DOOR_RGB
    w, h = 64, 64
    for rt, n_colours in (("kitchen", 2), ("office", 1)):
        out = render(box_room(room_type=rt), (2.25, 2.25, 0.0), width=w, height=h)
        floor = out["semantic"][0] == SEM_FLOOR
        colours = {tuple(c) for c in out["rgb"][0][floor].tolist()}
        assert len(colours) == n_colours, rt
    out = render(two_rooms(), (3.0, 2.25, 0.0), width=w, height=h)
    floor = out["semantic"][0] == SEM_FLOOR
    colours = {tuple(c) for c in out["rgb"][0][floor].tolist()}
    assert DOOR_RGB in colours
    # looking along the wall from inside the door opening: the jambs are door-coloured walls
    out = render(two_rooms(), (4.375, 2.25, math.pi / 2 - 0.3), width=w, height=h)
    wall = out["semantic"][0] == SEM_WALL
    jamb = tuple(round(c * 0.8) for c in DOOR_RGB)  # seen on y-facing (darker) faces
    assert jamb in {tuple(c) for c in out["rgb"][0][wall].tolist()}


# ---- batching, shapes, config ----------------------------------------------------------------
def test_batch_equals_rendering_each_alone(monkeypatch):
    scenes = [box_room(objects=[{"center": (3.0, 2.0), "shape": "cylinder"}]),
              two_rooms(objects=[{"center": (2.0, 3.0)}, {"center": (6.0, 1.5), "room": 1, "category": "bed"}]),
              box_room(30.0, 2.0, room_type="hallway")]
    st = SceneTensors.from_scenes(scenes)
    r = Renderer(st, RenderConfig(width=40, height=24))
    idx = torch.tensor([0, 1, 2, 1, 0])
    pose = torch.tensor([[1.0, 1.0, 0.4], [2.0, 2.2, 0.0], [3.0, 1.0, 3.1], [7.0, 3.0, -2.0], [4.0, 4.0, 4.0]])
    batch = r.render(idx, pose)
    for b in range(len(idx)):
        alone = r.render(idx[b:b + 1], pose[b:b + 1])
        for key in batch:
            assert torch.equal(batch[key][b:b + 1], alone[key]), (b, key)
    # different scenes / poses give different pictures
    assert not torch.equal(batch["rgb"][0], batch["rgb"][4])
    # eager mode shades big batches a few agents at a time: same pictures
    monkeypatch.setattr(renderer_module, "_EAGER_PIXELS", 2000)
    chunked = r.render(idx, pose)
    for key in batch:
        assert torch.equal(batch[key], chunked[key]), key


@pytest.mark.parametrize("hw", [(48, 80), (1, 1), (256, 256), (5, 3), (64, 16)])
def test_shapes_and_dtypes(hw):
    h, w = hw
    scene = box_room(objects=[{"center": (3.0, 2.25), "z_range": (0.0, 2.0)}])
    out = render(scene, [(1.0, 2.25, 0.0), (2.0, 2.0, 2.0)], width=w, height=h)
    assert out["rgb"].shape == (2, h, w, 3) and out["rgb"].dtype == torch.uint8
    assert out["depth"].shape == (2, h, w, 1) and out["depth"].dtype == torch.float32
    assert out["semantic"].shape == (2, h, w) and out["semantic"].dtype == torch.int32
    assert out["instance"].shape == (2, h, w) and out["instance"].dtype == torch.int32
    d = out["depth"]
    assert torch.isfinite(d).all() and (d > 0).all() and (d <= 10.0).all()
    allowed = {SEM_WALL, SEM_FLOOR, SEM_CEILING, SEM_OBJECT_BASE}
    assert set(out["semantic"].unique().tolist()) <= allowed
    assert set(out["instance"].unique().tolist()) <= {-1, 0}
    if (h, w) == (1, 1):  # the single ray looks straight ahead at the box's front face
        assert out["depth"][0, 0, 0, 0].item() == pytest.approx(1.7, abs=0.02)


def test_outputs_subset_float64_pose_and_reused_buffers():
    scene = box_room(objects=[{"center": (3.0, 2.25)}])
    st = SceneTensors.from_scenes([scene])
    r = Renderer(st, RenderConfig(width=24, height=16, reuse_buffers=True))
    idx = torch.zeros(2, dtype=torch.long)
    pose = torch.tensor([[1.0, 2.25, 0.0], [2.0, 1.0, 1.0]], dtype=torch.float64)
    a = r.render(idx, pose)
    a_rgb = a["rgb"].clone()
    b = r.render(idx, pose + torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64))
    assert b["rgb"].data_ptr() == a["rgb"].data_ptr()  # the same buffer, overwritten
    fresh = Renderer(st, RenderConfig(width=24, height=16)).render(idx, pose.float())
    assert torch.equal(fresh["rgb"], a_rgb)
    empty = r.render(idx[:0], pose[:0])
    assert empty["rgb"].shape == (0, 16, 24, 3) and empty["instance"].shape == (0, 16, 24)
    only = r.render(idx, pose, outputs=("rgb", "depth"))
    assert set(only) == {"rgb", "depth"} and torch.equal(only["depth"], fresh["depth"])
    with pytest.raises(ValueError, match="outputs"):
        r.render(idx, pose, outputs=("normals",))
    with pytest.raises(ValueError, match=r"pose \[B, 3\]"):
        r.render(idx, pose[:, :2])


@pytest.mark.parametrize("field, value, match", [
    ("width", -3, "width must be a positive int, got -3"),
    ("height", 0, "height must be a positive int, got 0"),
    ("width", 2.5, "width must be a positive int"),
    ("hfov_deg", 180.0, r"hfov_deg must be a number in \(0, 180\)"),
    ("hfov_deg", 0, r"hfov_deg must be a number in \(0, 180\)"),
    ("camera_height", -1.0, "camera_height must be a positive finite number"),
    ("max_depth", float("nan"), "max_depth must be a positive finite number"),
    ("max_layers", 0, "max_layers must be a positive int"),
    ("compile", "yes", "compile must be a bool"),
])
def test_bad_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        RenderConfig(**{field: value})
    cfg = RenderConfig()
    setattr(cfg, field, value)  # a config mutated after construction is checked again
    with pytest.raises(ValueError, match=match):
        Renderer(SceneTensors.from_scenes([box_room()]), cfg)


def test_camera_above_walls_rejected():
    with pytest.raises(ValueError, match=r"camera_height must be in \(0, 2.7\)"):
        Renderer(SceneTensors.from_scenes([box_room()]), RenderConfig(camera_height=2.7))


# ---- devices and compilation -----------------------------------------------------------------
def _pool_and_poses():
    scenes = [two_rooms(objects=[{"center": (2.0, 3.0), "shape": "cylinder"}, {"center": (6.0, 1.5), "room": 1}]),
              box_room(objects=[{"center": (3.0, 2.25), "z_range": (0.9, 1.2)}], room_type="bathroom")]
    g = torch.Generator().manual_seed(0)
    idx = torch.tensor([0, 1, 0, 1, 0, 1])
    pose = torch.rand(6, 3, generator=g) * torch.tensor([3.5, 3.5, 6.28]) + torch.tensor([0.5, 0.5, 0.0])
    return scenes, idx, pose


def _compare(a, b, min_equal=0.999):
    for key in ("rgb", "semantic", "instance"):
        same = (a[key].cpu() == b[key].cpu()).float().mean().item()
        assert same >= min_equal, (key, same)
    close = ((a["depth"].cpu() - b["depth"].cpu()).abs() < 1e-3).float().mean().item()
    assert close >= min_equal


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    scenes, idx, pose = _pool_and_poses()
    cpu = Renderer(SceneTensors.from_scenes(scenes), RenderConfig(width=64, height=48)).render(idx, pose)
    gpu = Renderer(SceneTensors.from_scenes(scenes, device="cuda"), RenderConfig(width=64, height=48))
    out = gpu.render(idx.cuda(), pose.cuda())
    assert out["rgb"].is_cuda
    _compare(cpu, out)
    compiled = Renderer(SceneTensors.from_scenes(scenes, device="cuda"), RenderConfig(width=64, height=48, compile=True))
    _compare(cpu, compiled.render(idx.cuda(), pose.cuda()))  # Triton kernels from torch.compile


@pytest.mark.slow
def test_compiled_matches_eager():
    scenes, idx, pose = _pool_and_poses()
    st = SceneTensors.from_scenes(scenes)
    eager = Renderer(st, RenderConfig(width=32, height=24)).render(idx, pose)
    renderer = Renderer(st, RenderConfig(width=32, height=24, compile=True))
    _compare(eager, renderer.render(idx, pose))
    # an odd batch size runs padded to the compiled size 6 and is sliced back
    five = renderer.render(idx[:5], pose[:5])
    assert five["rgb"].shape[0] == 5
    _compare({k: v[:5] for k, v in eager.items()}, five)
