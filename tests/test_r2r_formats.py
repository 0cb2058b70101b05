"""File formats of the R2R family: Matterport connectivity, R2R episodes, VLN-CE episodes and
ground truth, splits. Round trips, real-shaped files, malformed files, atomic writes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlarena.datasets import generate_scene, jsonio, navigable_mask
from vlarena.datasets.connectivity import read_connectivity, visibility, write_connectivity
from vlarena.datasets.navgraph_build import CAMERA_HEIGHT, build_nav_graph
from vlarena.datasets.r2r import R2REpisode, make_episode, read_r2r, sample_paths, write_r2r
from vlarena.datasets.r2r_splits import (
    SCENE_SEED_RANGES,
    R2RSplitConfig,
    load_r2r_dataset,
    make_r2r_splits,
    write_r2r_dataset,
)
from vlarena.datasets.vlnce import (
    build_vocab,
    encode,
    from_habitat,
    heading_to_quaternion,
    quaternion_to_heading,
    r2r_to_vlnce,
    read_vlnce,
    to_habitat,
    tokenize,
    write_vlnce,
)
from vlarena.datasets.vlnce_gt import MOVE_FORWARD, STOP, read_vlnce_gt, vlnce_gt, write_vlnce_gt


def standin_instruct(scene, graph, path, rng) -> list[str]:
    """Trivial instructions (the real generator is tested in test_instructions.py)."""
    rooms = [scene.rooms[r].type for r in (graph.room_ids[v] for v in path) if r >= 0] or ["room"]
    k = int(rng.integers(1000))
    return [f"Walk {len(path) - 1} steps to the {rooms[-1]} ({k}).", f"Go to the {rooms[-1]}, variant {k}.",
            f"Head from the {rooms[0]} to the {rooms[-1]}."]


@pytest.fixture(scope="module")
def world():
    scenes, graphs, episodes = {}, {}, []
    for seed in (0, 3):
        scene = generate_scene(seed)
        graph = build_nav_graph(scene)
        scenes[scene.scene_id], graphs[scene.scene_id] = scene, graph
        for sp in sample_paths(graph, np.random.default_rng(seed), 4):
            episodes.append(make_episode(graph, sp, len(episodes), standin_instruct(
                scene, graph, sp.path, np.random.default_rng(len(episodes)))))
    return scenes, graphs, episodes


def hexid(k: int) -> str:
    return f"{k:032x}"[::-1].replace("0", "a")


# ---- Matterport connectivity ------------------------------------------------------------------
def test_connectivity_round_trip(world, tmp_path):
    scenes, graphs, _ = world
    scan, graph = next(iter(graphs.items()))
    path = write_connectivity(graph, tmp_path / "connectivity", scenes[scan])
    assert path == tmp_path / "connectivity" / f"{scan}_connectivity.json"
    back = read_connectivity(path)
    assert back.scan == scan and back.ids == graph.ids and back.edges == graph.edges
    assert np.array_equal(back.positions, graph.positions) and back.room_ids == graph.room_ids
    records = json.loads(path.read_text())
    n = len(records)
    for k, rec in enumerate(records):
        assert set(rec) == {"image_id", "pose", "included", "visible", "unobstructed", "height", "room_id"}
        pose = np.array(rec["pose"]).reshape(4, 4)
        assert np.array_equal(pose[:3, 3], graph.positions[k]) and np.array_equal(pose[3], [0, 0, 0, 1])
        rot = pose[:3, :3]
        assert np.allclose(rot @ rot.T, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)
        assert rot[:, 2] @ [0, 1, 0] == pytest.approx(1.0)  # camera forward = north = R2R heading 0
        assert rec["height"] == CAMERA_HEIGHT and rec["included"] is True
        assert len(rec["visible"]) == len(rec["unobstructed"]) == n
        assert all(v for v, u in zip(rec["visible"], rec["unobstructed"], strict=True) if u)  # visible >= unobstructed
        assert not rec["unobstructed"][k]


def test_visibility_sees_past_furniture_not_walls(world):
    scenes, graphs, _ = world
    scan, graph = next(iter(graphs.items()))
    vis = visibility(scenes[scan], graph)
    assert (vis == vis.T).all()
    n_edges = len(graph.edges)
    assert vis.sum() - len(graph) > 2 * n_edges  # more seen than reachable in one step
    room = np.array(graph.room_ids)
    cross = (room[:, None] != room[None]) & (room[:, None] >= 0) & (room[None] >= 0)
    assert (vis & cross).mean() < vis[~cross].mean()  # walls hide most of the other rooms


REAL_POSE = [-0.934268, -0.00147, -0.35657, -5.48891, 0.356526, -0.0200643, -0.93407, 1.4484,
             -0.0057812, -0.999798, 0.0192692, 1.53509, 0, 0, 0, 1]


def real_connectivity() -> list[dict]:
    """Four records shaped like Matterport3DSimulator's: 32-hex ids, unit-ish rotations, one
    excluded viewpoint, `visible` missing one unobstructed entry (as real files have)."""
    xyz = [(-5.48891, 1.4484, 1.53509), (-2.20971, -0.492952, 1.58483), (-8.74239, 1.10516, 1.52258),
           (-4.37694, 0.0314129, 0.70628)]
    unob = [[False, True, True, False], [True, False, False, True], [True, False, False, False],
            [False, True, False, False]]
    vis = [[False, True, True, True], [True, False, False, True], [False, False, False, True],
           [True, True, True, False]]  # record 2 does not list record 0 as visible
    out = []
    for k, (x, y, z) in enumerate(xyz):
        pose = list(REAL_POSE)
        pose[3], pose[7], pose[11] = x, y, z
        out.append({"image_id": hexid(k + 11), "pose": pose, "included": k != 3, "visible": vis[k],
                    "unobstructed": unob[k], "height": z - 0.0013})
    return out


def test_reads_real_shaped_connectivity(tmp_path):
    path = tmp_path / "17DRP5sb8fy_connectivity.json"
    path.write_text(json.dumps(real_connectivity()))
    g = read_connectivity(path)
    assert g.scan == "17DRP5sb8fy"
    assert g.ids == [hexid(11), hexid(12), hexid(13)]  # the excluded record is dropped
    assert g.edges == [(0, 1), (0, 2)]  # 1-3 is unobstructed but 3 is not included
    assert g.positions[1].tolist() == [-2.20971, -0.492952, 1.58483]
    assert g.room_ids == [-1, -1, -1]
    # and the official loader's reading of the same content agrees (tasks/R2R/utils.py load_nav_graphs)
    data = real_connectivity()
    ref = {(data[i]["image_id"], data[j]["image_id"]) for i, item in enumerate(data) if item["included"]
           for j, conn in enumerate(item["unobstructed"]) if conn and data[j]["included"]}
    assert {(g.ids[a], g.ids[b]) for a, b in g.edges} | {(g.ids[b], g.ids[a]) for a, b in g.edges} == ref


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d[1].pop("height"), "height", "is missing"),
    (lambda d: d[2].update(pose=d[2]["pose"][:12]), "pose", "must be 16 numbers, got 12"),
    (lambda d: d[0].update(visible=d[0]["visible"][:3]), "visible", "must be a list of 4 bools"),
    (lambda d: d[1].update(included="yes"), "included", "must be true or false"),
    (lambda d: d[2].update(unobstructed=[False, False, False, False]), "unobstructed", "undirected"),
    (lambda d: d[2].update(image_id=d[0]["image_id"]), "image_id", "repeats the id of record 0"),
    (lambda d: d[1]["pose"].__setitem__(15, 2.0), "pose", "0, 0, 0, 1"),
])
def test_connectivity_validator_names_file_record_field(tmp_path, mutate, field, message):
    data = real_connectivity()
    mutate(data)
    path = tmp_path / "scanA_connectivity.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as e:
        read_connectivity(path)
    msg = str(e.value)
    assert msg.startswith(str(path) + ": record ") and f"field '{field}' " in msg and message in msg
    assert "(image_id '" in msg


def test_connectivity_error_message_exact(tmp_path):
    data = real_connectivity()
    data[3]["pose"] = data[3]["pose"][:12]
    path = tmp_path / "x_connectivity.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as e:
        read_connectivity(path)
    assert str(e.value) == f"{path}: record 3 (image_id '{hexid(14)}'): field 'pose' must be 16 numbers, got 12"


def test_connectivity_needs_a_scan_name(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(real_connectivity()))
    with pytest.raises(ValueError, match="cannot tell the scan"):
        read_connectivity(path)
    assert read_connectivity(path, scan="abc").scan == "abc"
    (tmp_path / "bad_connectivity.json").write_text("[{")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        read_connectivity(tmp_path / "bad_connectivity.json")


# ---- R2R episodes -----------------------------------------------------------------------------
def test_r2r_round_trip(world, tmp_path):
    _, graphs, episodes = world
    path = write_r2r(episodes, tmp_path / "R2R_train.json", graphs)
    back = read_r2r(path, graphs)
    assert back == episodes
    records = json.loads(path.read_text())
    assert all(set(r) == {"distance", "scan", "path_id", "path", "heading", "instructions"} for r in records)
    gz = write_r2r(episodes, tmp_path / "R2R_train.json.gz")
    assert read_r2r(gz) == episodes


def real_r2r() -> list[dict]:
    """Records shaped like R2R_train.json (plus an `instr_encoding` key as some variants carry)."""
    return [
        {"distance": 10.86, "scan": "17DRP5sb8fy", "path_id": 4332,
         "path": [hexid(11), hexid(12)], "heading": 4.055,
         "instructions": ["Walk past the couch and stop at the door.", "Go to the door.", "Exit by the door."],
         "instr_encoding": [[12, 5, 9], [3, 4], [7, 8]]},
        {"distance": 3.2, "scan": "17DRP5sb8fy", "path_id": 17, "path": [hexid(13), hexid(11), hexid(12)],
         "heading": 0.0, "instructions": ["Turn around and walk into the hallway."]},
    ]


def test_reads_real_shaped_r2r(tmp_path):
    conn = tmp_path / "17DRP5sb8fy_connectivity.json"
    conn.write_text(json.dumps(real_connectivity()))
    graphs = {"17DRP5sb8fy": read_connectivity(conn)}
    path = tmp_path / "R2R_val_seen.json"
    path.write_text(json.dumps(real_r2r()))
    eps = read_r2r(path, graphs)
    assert [e.path_id for e in eps] == [4332, 17]
    assert eps[0].path == [hexid(11), hexid(12)] and eps[0].heading == 4.055
    assert eps[0].scene_heading == pytest.approx(math.pi / 2 - 4.055)  # in (-pi, pi]


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d[1].pop("heading"), "heading", "is missing"),
    (lambda d: d[1].update(path=[hexid(13), hexid(12)]), "path[1]", "not adjacent"),
    (lambda d: d[1].update(path=[hexid(13), "f" * 32]), "path[1]", "not in scan"),
    (lambda d: d[1].update(scan="nosuchscan"), "scan", "unknown scan 'nosuchscan'"),
    (lambda d: d[1].update(instructions=[]), "instructions", "non-empty list"),
    (lambda d: d[1].update(distance="far"), "distance", "finite number"),
])
def test_r2r_validator_names_file_record_field(tmp_path, mutate, field, message):
    conn = tmp_path / "17DRP5sb8fy_connectivity.json"
    conn.write_text(json.dumps(real_connectivity()))
    graphs = {"17DRP5sb8fy": read_connectivity(conn)}
    data = real_r2r()
    mutate(data)
    path = tmp_path / "R2R_x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as e:
        read_r2r(path, graphs)
    assert str(e.value).startswith(f"{path}: record 1 (path_id 17): field '{field}' ")
    assert message in str(e.value)


def test_r2r_writer_validates(world, tmp_path):
    _, graphs, episodes = world
    bad = [R2REpisode(**{**episodes[0].__dict__, "path": list(reversed(episodes[0].path))[:1] + ["nope"]})]
    with pytest.raises(ValueError, match="field 'path\\[1\\]'"):
        write_r2r(bad, tmp_path / "R2R_bad.json", graphs)
    with pytest.raises(ValueError, match="repeats path_id"):
        write_r2r([episodes[0], episodes[0]], tmp_path / "R2R_dup.json")
    assert not list(tmp_path.iterdir())


# ---- atomic writes ----------------------------------------------------------------------------
def test_failed_writes_leave_old_file_and_no_temp(world, tmp_path, monkeypatch):
    _, graphs, episodes = world
    path = write_r2r(episodes[:1], tmp_path / "R2R_train.json")
    before = path.read_bytes()

    def broken_dumps(*args, **kwargs):
        raise TypeError("cannot serialise")

    monkeypatch.setattr(jsonio.json, "dumps", broken_dumps)
    with pytest.raises(TypeError):
        write_r2r(episodes, path)
    monkeypatch.undo()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(jsonio.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_connectivity(next(iter(graphs.values())), tmp_path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R2R_train.json"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    with pytest.raises(ValueError, match="Out of range float values"):
        jsonio.write_json(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()


# ---- VLN-CE -----------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.tuples(*[st.floats(-1e4, 1e4)] * 3), st.floats(-math.pi, math.pi))
def test_habitat_frame_round_trip(p, theta):
    assert from_habitat(to_habitat(p)) == tuple(float(v) for v in p)  # exact
    assert to_habitat(from_habitat(p)) == tuple(float(v) for v in p)
    q = heading_to_quaternion(theta)
    assert sum(v * v for v in q) == pytest.approx(1.0)
    assert math.cos(quaternion_to_heading(q) - theta) == pytest.approx(1.0, abs=1e-12)


def rotate(q, v):
    x, y, z, w = q
    u = np.array([x, y, z])
    v = np.asarray(v, dtype=float)
    return v + 2 * w * np.cross(u, v) + 2 * np.cross(u, np.cross(u, v))


@pytest.mark.parametrize("theta", [0.0, 0.4, math.pi / 2, 2.0, -2.9])
def test_quaternion_turns_habitat_forward_onto_the_scene_heading(theta):
    q = heading_to_quaternion(theta)
    fwd = rotate(q, [0.0, 0.0, -1.0])  # habitat agents look down -z
    assert np.allclose(fwd, to_habitat((math.cos(theta), math.sin(theta), 0.0)), atol=1e-12)
    assert np.allclose(heading_to_quaternion(math.pi / 2), [0, 0, 0, 1])  # north = R2R heading 0 = identity


def test_tokens_follow_habitat_rules():
    assert tokenize("Walk past the bed's end, then stop?") == ["walk", "past", "the", "bed", "'", "s", "end", "then",
                                                                 "stop"]
    vocab = build_vocab(["Go left.", "go right"])
    assert vocab[:2] == ["<pad>", "<unk>"] and {"go", "left", "right"} <= set(vocab)
    ids = encode("go up", vocab, max_tokens=5)
    assert ids == [vocab.index("go"), 1, 0, 0, 0]


@pytest.fixture(scope="module")
def vlnce_world(world):
    scenes, graphs, episodes = world
    vocab = build_vocab(t for e in episodes for t in e.instructions)
    return scenes, graphs, episodes, vocab, r2r_to_vlnce(episodes, graphs, scenes, vocab)


def test_vlnce_episodes_from_r2r(vlnce_world):
    scenes, graphs, episodes, vocab, eps = vlnce_world
    assert len(eps) == 3 * len(episodes)
    assert [e.episode_id for e in eps] == list(range(1, len(eps) + 1))
    for k, e in enumerate(eps):
        r2r = episodes[k // 3]
        g = graphs[r2r.scan]
        assert e.trajectory_id == r2r.path_id and e.scan == r2r.scan
        assert e.instruction_text == r2r.instructions[k % 3] and len(e.instruction_tokens) == 200
        ref = e.reference_path_scene()
        want = g.positions[[g.index[v] for v in r2r.path]] - [0, 0, CAMERA_HEIGHT]
        assert np.array_equal(ref, want)  # exact: floor points under the viewpoints
        x, y, theta = e.start_pose()
        assert (x, y) == tuple(want[0, :2]) and math.cos(theta - r2r.scene_heading) == pytest.approx(1, abs=1e-12)
        assert e.goals[0].radius == 3.0 and e.goals[0].position == e.reference_path[-1]
        # straight line <= grid geodesic <= graph path (up to the octile grid's 8% over straight segments)
        assert np.linalg.norm(want[-1] - want[0]) - 1e-6 <= e.geodesic_distance <= r2r.distance * 1.0824


def test_vlnce_round_trip(vlnce_world, tmp_path):
    _, _, _, vocab, eps = vlnce_world
    for name in ("train.json", "train.json.gz"):
        path = write_vlnce(eps, vocab, tmp_path / name)
        ds = read_vlnce(path)
        assert ds.episodes == eps and ds.vocab == vocab
    raw = json.loads((tmp_path / "train.json").read_text())
    assert set(raw) == {"episodes", "instruction_vocab"}
    assert set(raw["episodes"][0]) == {"episode_id", "trajectory_id", "scene_id", "start_position",
                                       "start_rotation", "info", "goals", "reference_path", "instruction"}


def test_reads_real_shaped_vlnce(tmp_path):
    data = {"episodes": [{
        "episode_id": 1, "trajectory_id": 4, "scene_id": "mp3d/7y3sRwLe3Va/7y3sRwLe3Va.glb",
        "start_position": [-16.2666, 0.0721, 0.6556], "start_rotation": [0, 0.3719, 0, 0.9283],
        "info": {"geodesic_distance": 6.4263}, "goals": [{"position": [-12.09, 0.0721, 4.13], "radius": 3.0}],
        "reference_path": [[-16.2666, 0.0721, 0.6556], [-14.51, 0.0721, 2.02], [-12.09, 0.0721, 4.13]],
        "instruction": {"instruction_text": "Go down the hall and stop.", "instruction_tokens": [5, 9, 2, 0, 0]}}],
        "instruction_vocab": {"word_list": ["<pad>", "<unk>", "and", "x"], "num_vocab": 4, "UNK_INDEX": 1,
                              "PAD_INDEX": 0}}
    path = tmp_path / "val_seen.json"
    path.write_text(json.dumps(data))
    ds = read_vlnce(path)
    e = ds.episodes[0]
    assert e.scan == "7y3sRwLe3Va" and e.geodesic_distance == 6.4263
    assert e.start_pose()[:2] == (-16.2666, -0.6556)
    data["episodes"][0].pop("reference_path")
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        read_vlnce(path)
    assert str(err.value) == f"{path}: record 0 (episode_id 1): field 'reference_path' is missing"
    data["episodes"][0]["reference_path"] = [[0, 0, 0]]
    data["episodes"][0]["start_rotation"] = [0, 0, 1]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="field 'start_rotation' must be 4 numbers, got 3"):
        read_vlnce(path)


def test_vlnce_gt_follows_the_reference_path(vlnce_world, tmp_path):
    scenes, _, _, vocab, eps = vlnce_world
    gt = vlnce_gt(eps, scenes)
    assert set(gt) == {str(e.episode_id) for e in eps}
    for e in eps:
        t = gt[str(e.episode_id)]
        assert len(t.locations) == len(t.actions) and t.actions[-1] == STOP and STOP not in t.actions[:-1]
        assert t.forward_steps == t.actions.count(MOVE_FORWARD)
        assert t.locations[0] == e.start_position
        end = np.array(from_habitat(t.locations[-1]))
        assert np.linalg.norm(end - e.reference_path_scene()[-1]) <= 0.5
        assert all(loc[1] == 0.0 for loc in t.locations)  # on the floor
    # file round trip (gz like VLN-CE ships it)
    path = write_vlnce_gt(gt, tmp_path / "train_gt.json.gz")
    assert read_vlnce_gt(path) == gt
    raw = json.loads((Path(write_vlnce_gt(gt, tmp_path / "train_gt.json"))).read_text())
    assert set(next(iter(raw.values()))) == {"locations", "forward_steps", "actions"}
    raw[str(eps[0].episode_id)]["actions"] = [1, 9]
    (tmp_path / "bad_gt.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"record 0 \(episode_id '1'\): field 'actions' must be a list of habitat"):
        read_vlnce_gt(tmp_path / "bad_gt.json")


def test_vlnce_gt_replays_without_collision_in_the_simulator(vlnce_world):
    torch = pytest.importorskip("torch")
    from vlarena.envs.motion import MotionConfig, apply_actions
    from vlarena.envs.scene_tensors import SceneTensors

    scenes, _, _, _, eps = vlnce_world
    gt = vlnce_gt(eps[::3], scenes)
    order = list(scenes)
    tensors = SceneTensors.from_scenes([scenes[s] for s in order])
    for e in eps[::3]:
        t = gt[str(e.episode_id)]
        x, y, theta = e.start_pose()
        pose = torch.tensor([[x, y, theta]], dtype=torch.float32)
        idx = torch.tensor([order.index(e.scan)])
        for k, a in enumerate(t.actions):
            want = from_habitat(t.locations[k])
            assert abs(pose[0, 0].item() - want[0]) < 1e-3 and abs(pose[0, 1].item() - want[1]) < 1e-3
            pose, blocked = apply_actions(tensors, idx, pose, torch.tensor([a]), MotionConfig())
            assert not blocked.item(), f"episode {e.episode_id} collides at step {k}"


# ---- splits -----------------------------------------------------------------------------------
SMALL = dict(seed=3, scenes={"seen": 2, "val_unseen": 1, "test": 1},
             paths_per_scene={"train": 4, "val_seen": 2, "val_unseen": 3, "test": 3})


@pytest.fixture(scope="module")
def small_splits():
    return make_r2r_splits(R2RSplitConfig(**SMALL), standin_instruct)


def test_splits_are_disjoint_and_deterministic(small_splits):
    ds = small_splits
    for group, seeds in ds.scene_seeds.items():
        lo, hi = SCENE_SEED_RANGES[group]
        assert all(lo <= s < hi for s in seeds)
    scans = {split: {e.scan for e in eps} for split, eps in ds.episodes.items()}
    assert scans["val_seen"] <= scans["train"]
    assert not scans["train"] & scans["val_unseen"] and not scans["train"] & scans["test"]
    assert not scans["val_unseen"] & scans["test"]
    pairs = {split: {frozenset((e.path[0], e.path[-1])) for e in eps} for split, eps in ds.episodes.items()}
    assert not pairs["train"] & pairs["val_seen"]
    ids = [e.path_id for eps in ds.episodes.values() for e in eps]
    assert ids == list(range(len(ids)))
    assert [len(ds.episodes[s]) for s in ("train", "val_seen", "val_unseen", "test")] == [8, 4, 3, 3]
    again = make_r2r_splits(R2RSplitConfig(**SMALL), standin_instruct)
    assert again.episodes == ds.episodes and again.scene_seeds == ds.scene_seeds
    other = make_r2r_splits(R2RSplitConfig(**{**SMALL, "seed": 4}), standin_instruct)
    assert other.scene_seeds != ds.scene_seeds


def test_splits_write_and_load(small_splits, tmp_path):
    files = write_r2r_dataset(small_splits, tmp_path, splits=("val_unseen",))
    assert (tmp_path / "R2R_VLNCE" / "val_unseen" / "val_unseen_gt.json.gz").exists()
    assert files["val_unseen"] == tmp_path / "R2R_val_unseen.json"
    back = load_r2r_dataset(tmp_path, splits=("val_unseen",))
    assert back.episodes["val_unseen"] == small_splits.episodes["val_unseen"]
    for scan, g in small_splits.graphs.items():
        assert back.graphs[scan].edges == g.edges and np.array_equal(back.graphs[scan].positions, g.positions)
        assert back.scenes[scan] == small_splits.scenes[scan]
        assert navigable_mask(back.scenes[scan]).sum() > 0
    ve = read_vlnce(tmp_path / "R2R_VLNCE" / "val_unseen" / "val_unseen.json.gz")
    assert len(ve.episodes) == 3 * len(small_splits.episodes["val_unseen"])


def test_aug_split_adds_scenes_of_its_own_and_leaves_the_standard_splits(small_splits):
    ds = make_r2r_splits(R2RSplitConfig(**SMALL, aug_scenes=2, aug_paths_per_scene=3), standin_instruct)
    assert all(ds.episodes[s] == small_splits.episodes[s] for s in ("train", "val_seen", "val_unseen", "test"))
    aug = ds.episodes["aug"]
    assert len(aug) == 6 and len(ds.scene_seeds["aug"]) == 2
    lo, hi = SCENE_SEED_RANGES["aug"]
    assert all(lo <= s < hi for s in ds.scene_seeds["aug"])
    others = {e.scan for s in ("train", "val_seen", "val_unseen", "test") for e in ds.episodes[s]}
    assert len({e.scan for e in aug}) == 2 and not {e.scan for e in aug} & others
    last = max(e.path_id for e in small_splits.episodes["test"])
    assert [e.path_id for e in aug] == list(range(last + 1, last + 7))
    assert "aug" not in small_splits.episodes
    with pytest.raises(ValueError, match="aug_scenes must be a non-negative int"):
        R2RSplitConfig(aug_scenes=-1)


def test_splits_pass_start_heading_to_instruct():
    seen = []

    def instruct(scene, graph, path, rng, start_heading=None):
        seen.append(start_heading)
        return ["a", "b", "c"]

    cfg = R2RSplitConfig(seed=1, scenes={"seen": 1, "val_unseen": 0, "test": 0},
                         paths_per_scene={"train": 2, "val_seen": 0, "val_unseen": 0, "test": 0})
    ds = make_r2r_splits(cfg, instruct)
    assert [round(h, 12) for h in seen] == [round(e.scene_heading, 12) for e in ds.episodes["train"]]
    with pytest.raises(ValueError, match="instruct must return"):
        make_r2r_splits(cfg, lambda scene, graph, path, rng: ["only one"])


def test_splits_with_the_instruction_generator():
    mod = pytest.importorskip("vlarena.datasets.instructions")
    cfg = R2RSplitConfig(seed=2, scenes={"seen": 1, "val_unseen": 0, "test": 0},
                         paths_per_scene={"train": 3, "val_seen": 0, "val_unseen": 0, "test": 0})
    ds = make_r2r_splits(cfg, mod.generate_instructions)
    for e in ds.episodes["train"]:
        assert len(e.instructions) == 3 and len(set(e.instructions)) == 3
