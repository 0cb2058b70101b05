"""VLN-CE episodes (jacobkrantz/VLN-CE, habitat dataset type "VLN-CE-v1"): frames, conversion from
R2R episodes, and the episode and ground-truth file formats (numpy + scipy).

Episode file (`{split}.json` or `.json.gz`; version: VLN-CE-v1, as `VLNCEDatasetV1.from_json` reads
it; the file holds no version field):

    {"episodes": [{"episode_id": int, "trajectory_id": int, "scene_id": str,
                   "start_position": [x, y, z], "start_rotation": [x, y, z, w],
                   "info": {"geodesic_distance": float},
                   "goals": [{"position": [x, y, z], "radius": 3.0}],
                   "reference_path": [[x, y, z], ...],
                   "instruction": {"instruction_text": str, "instruction_tokens": [int, ...]}}, ...],
     "instruction_vocab": {"word_list": [...], ...}}

Ground truth (`{split}_gt.json[.gz]`): {"<episode_id>": {"locations": [[x, y, z], ...],
"forward_steps": int, "actions": [int, ...]}} (see `vlnce_gt`).

Frames. VLN-CE positions are habitat world coordinates: y up, and the agent's default forward is
-z. Matterport (and vlarena's scene frame: x east, y north, z up) map to habitat by

    habitat (x, y, z) = (x, z, -y),        scene (x, y, z) = (x_h, -z_h, y_h),

a rotation, so converting there and back is exact (only signs and order change). Habitat
positions are on the floor (the agent's base): vlarena viewpoints are cameras `CAMERA_HEIGHT` above
the floor, so `r2r_to_vlnce` lowers them by that much first. `start_rotation` is a unit
quaternion [x, y, z, w] (habitat's order) turning the agent about +y_h by phi, counter-clockwise
seen from above; its forward is (-sin phi, 0, -cos phi) in habitat = (-sin phi, cos phi) in the
scene, so  theta_scene = phi + pi/2  and  heading_r2r = -phi.

Tokens follow habitat's `datasets.utils.tokenize` as meant (habitat passes keep=("'s") as a
string, which also splits before every "s"; we do not): lower case, a space put before "'s", ","
and "?" dropped, then split at (and keeping, stripped) runs of characters other than letters,
digits, "_" and "-", so "bed's" gives "bed", "'", "s". Token ids index `instruction_vocab.word_list`
(0 "<pad>", 1 "<unk>"), padded with 0 to `MAX_TOKENS` (VLN-CE's 200).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlarena.datasets.geodesic import GridGraph
from vlarena.datasets.jsonio import Records, is_int, is_number, read_json, short, write_json
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navgraph_build import CAMERA_HEIGHT
from vlarena.datasets.navigation import navigable_mask
from vlarena.datasets.r2r import R2REpisode, heading_to_scene
from vlarena.datasets.scene import Scene

VLNCE_FORMAT = "VLN-CE-v1"
GOAL_RADIUS = 3.0  # metres, VLN-CE's success distance
MAX_TOKENS = 200
PAD, UNK, START, END = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, START, END)
_SPLIT = re.compile(r"([^\w-]+)")

Vec3 = tuple[float, float, float]


# ---- frames -----------------------------------------------------------------------------------
def to_habitat(p: Sequence[float]) -> Vec3:
    """Scene / Matterport (x, y, z), z up -> habitat (x, z, -y), y up. Exact."""
    return (float(p[0]), float(p[2]), -float(p[1]))


def from_habitat(p: Sequence[float]) -> Vec3:
    """Habitat (x, y, z), y up -> scene / Matterport (x, -z, y), z up. Exact."""
    return (float(p[0]), -float(p[2]), float(p[1]))


def heading_to_quaternion(theta: float) -> tuple[float, float, float, float]:
    """Scene heading (radians from +x, counter-clockwise) -> habitat rotation [x, y, z, w]."""
    phi = theta - math.pi / 2
    return (0.0, math.sin(phi / 2), 0.0, math.cos(phi / 2))


def quaternion_to_heading(q: Sequence[float]) -> float:
    """Habitat rotation [x, y, z, w] -> scene heading in (-pi, pi] of the agent's forward (-z)
    projected on the floor (any unit quaternion; pure yaw in VLN-CE)."""
    x, y, z, w = (float(v) for v in q)
    # forward = R(q) (0, 0, -1): minus the third column of the rotation matrix
    fx = -2 * (x * z + w * y)
    fz = -(1 - 2 * (x * x + y * y))
    theta = math.atan2(-fz, fx)  # scene (x, y) = habitat (x, -z)
    return math.pi if theta == -math.pi else theta


# ---- tokens -----------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    text = text.lower().replace("'s", " 's")
    for ch in ",?":
        text = text.replace(ch, "")
    return [t.strip() for t in _SPLIT.split(text) if t.strip()]


def build_vocab(texts: Iterable[str]) -> list[str]:
    """The word list: the special tokens, then every token of `texts` in sorted order."""
    words = sorted({t for text in texts for t in tokenize(text)} - set(SPECIAL_TOKENS))
    return list(SPECIAL_TOKENS) + words


def encode(text: str, vocab: Sequence[str] | Mapping[str, int], max_tokens: int = MAX_TOKENS) -> list[int]:
    index = vocab if isinstance(vocab, Mapping) else {w: k for k, w in enumerate(vocab)}
    ids = [index.get(t, index[UNK]) for t in tokenize(text)][:max_tokens]
    return ids + [index[PAD]] * (max_tokens - len(ids))


def vocab_dict(word_list: Sequence[str]) -> dict[str, Any]:
    """`instruction_vocab` as the VLN-CE releases write it (readers need only `word_list`)."""
    words = list(word_list)
    index = {w: k for k, w in enumerate(words)}
    return {"word_list": words, "word2idx_dict": index, "itos": words, "stoi": index, "num_vocab": len(words),
            "UNK_INDEX": index.get(UNK, 1), "PAD_INDEX": index.get(PAD, 0)}


# ---- episodes ---------------------------------------------------------------------------------
@dataclass
class VLNCEGoal:
    position: Vec3  # habitat frame
    radius: float | None = GOAL_RADIUS


@dataclass
class VLNCEEpisode:
    """One VLN-CE episode as the file holds it (habitat frame; see the module docstring)."""

    episode_id: int | str
    trajectory_id: int | str | None
    scene_id: str
    start_position: Vec3
    start_rotation: tuple[float, float, float, float]  # [x, y, z, w]
    goals: list[VLNCEGoal]
    reference_path: list[Vec3]
    instruction_text: str
    instruction_tokens: list[int] | list[str] | None = None
    info: dict = field(default_factory=dict)

    @property
    def scan(self) -> str:
        """The scene name: the file name of `scene_id` without its extension (as VLN-CE does)."""
        return Path(self.scene_id).stem

    @property
    def geodesic_distance(self) -> float | None:
        return self.info.get("geodesic_distance")

    def start_pose(self) -> tuple[float, float, float]:
        """(x, y, heading) in the scene frame: the start's floor point and heading (radians, CCW from +x)."""
        x, y, _ = from_habitat(self.start_position)
        return x, y, quaternion_to_heading(self.start_rotation)

    def reference_path_scene(self) -> np.ndarray:
        """[K, 3] reference path points in the scene frame (floor level)."""
        return np.array([from_habitat(p) for p in self.reference_path], dtype=np.float64).reshape(-1, 3)

    def to_dict(self) -> dict[str, Any]:
        instruction: dict[str, Any] = {"instruction_text": self.instruction_text}
        if self.instruction_tokens is not None:
            instruction["instruction_tokens"] = list(self.instruction_tokens)
        return {
            "episode_id": self.episode_id,
            "trajectory_id": self.trajectory_id,
            "scene_id": self.scene_id,
            "start_position": [float(v) for v in self.start_position],
            "start_rotation": [float(v) for v in self.start_rotation],
            "info": dict(self.info),
            "goals": [{"position": [float(v) for v in g.position], "radius": g.radius} for g in self.goals],
            "reference_path": [[float(v) for v in p] for p in self.reference_path],
            "instruction": instruction,
        }


@dataclass
class VLNCEDataset:
    episodes: list[VLNCEEpisode]
    vocab: list[str]  # instruction_vocab.word_list


def floor_point(position: Sequence[float]) -> np.ndarray:
    """The floor point under a vlarena viewpoint (scene frame): z lowered by CAMERA_HEIGHT."""
    p = np.asarray(position, dtype=np.float64).copy()
    p[2] -= CAMERA_HEIGHT
    return p


def r2r_to_vlnce(episodes: Sequence[R2REpisode], graphs: Mapping[str, NavGraph], scenes: Mapping[str, Scene],
                 vocab: Sequence[str], first_episode_id: int = 1,
                 scene_id_format: str = "vlarena/{scan}/{scan}.json") -> list[VLNCEEpisode]:
    """One VLN-CE episode per (R2R episode, instruction), in order, with consecutive integer
    `episode_id`s from `first_episode_id`; `trajectory_id` is the R2R `path_id`. `geodesic_distance`
    is the grid geodesic between the start and goal cells (`geodesic.GridGraph`)."""
    index = {w: k for k, w in enumerate(vocab)}
    for tok in (PAD, UNK):
        if tok not in index:
            raise ValueError(f"vocab must contain {tok!r} (see build_vocab)")
    grids: dict[str, tuple[GridGraph, float]] = {}
    out = []
    eid = first_episode_id
    for ep in episodes:
        if ep.scan not in graphs or ep.scan not in scenes:
            raise ValueError(f"episode path_id {ep.path_id}: scan {ep.scan!r} needs a graph and a scene")
        graph, scene = graphs[ep.scan], scenes[ep.scan]
        if ep.scan not in grids:
            grids[ep.scan] = (GridGraph(navigable_mask(scene), scene.cell_size), scene.cell_size)
        grid, cs = grids[ep.scan]
        pts = [floor_point(graph.positions[graph.index[vp]]) for vp in ep.path]
        a, b = (tuple(int(v) for v in np.floor(p[[1, 0]] / cs)) for p in (pts[0], pts[-1]))
        geo = grid.path_length(a, b)
        if not math.isfinite(geo):
            raise ValueError(f"episode path_id {ep.path_id}: goal unreachable from the start on the navigable grid")
        path = [to_habitat(p) for p in pts]
        rotation = heading_to_quaternion(heading_to_scene(ep.heading))
        for text in ep.instructions:
            out.append(VLNCEEpisode(
                episode_id=eid, trajectory_id=ep.path_id, scene_id=scene_id_format.format(scan=ep.scan),
                start_position=path[0], start_rotation=rotation, goals=[VLNCEGoal(path[-1], GOAL_RADIUS)],
                reference_path=list(path), instruction_text=text, instruction_tokens=encode(text, index),
                info={"geodesic_distance": float(geo)}))
            eid += 1
    return out


# ---- the episode file -------------------------------------------------------------------------
def parse_vlnce(data: object, source: str) -> VLNCEDataset:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a VLN-CE file must hold a JSON object with 'episodes', got {type(data).__name__}")
    if "episodes" not in data or not isinstance(data["episodes"], list):
        raise ValueError(f"{source}: field 'episodes' must be a list of episode records, got "
                         f"{short(data.get('episodes', 'nothing'))}")
    vocab: list[str] = []
    if "instruction_vocab" in data:
        v = data["instruction_vocab"]
        words = v.get("word_list") if isinstance(v, dict) else None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{source}: field 'instruction_vocab.word_list' must be a list of strings")
        vocab = list(words)
    r = Records(source, "episode_id")
    episodes = []
    for k, rec in enumerate(data["episodes"]):
        rec = r.record(k, rec)
        eid = r.get(k, rec, "episode_id")
        if not (is_int(eid) or isinstance(eid, str)):
            r.fail(k, rec, "episode_id", f"must be an int or a string, got {short(eid)}")
        tid = rec.get("trajectory_id")
        if tid is not None and not (is_int(tid) or isinstance(tid, str)):
            r.fail(k, rec, "trajectory_id", f"must be an int or a string, got {short(tid)}")
        scene_id = r.string(k, rec, "scene_id")
        start = r.vector(k, rec, "start_position", 3)
        rot = r.vector(k, rec, "start_rotation", 4)
        if abs(math.sqrt(sum(v * v for v in rot)) - 1.0) > 1e-3:
            r.fail(k, rec, "start_rotation", f"must be a unit quaternion [x, y, z, w], got {rot}")
        info = rec.get("info") or {}
        if not isinstance(info, dict):
            r.fail(k, rec, "info", f"must be an object, got {short(info)}")
        if "geodesic_distance" in info and not is_number(info["geodesic_distance"]):
            r.fail(k, rec, "info.geodesic_distance", f"must be a finite number, got {short(info['geodesic_distance'])}")
        goals_raw = rec.get("goals") or []
        if not isinstance(goals_raw, list):
            r.fail(k, rec, "goals", f"must be a list of {{position, radius}}, got {short(goals_raw)}")
        goals = []
        for m, g in enumerate(goals_raw):
            if not isinstance(g, dict):
                r.fail(k, rec, f"goals[{m}]", f"must be an object with 'position', got {short(g)}")
            pos = r.vector(k, rec, f"goals[{m}].position", 3, value=g.get("position", "nothing"))
            radius = g.get("radius")
            if radius is not None and not is_number(radius):
                r.fail(k, rec, f"goals[{m}].radius", f"must be a number or null, got {short(radius)}")
            goals.append(VLNCEGoal(tuple(pos), None if radius is None else float(radius)))
        ref = r.get(k, rec, "reference_path")
        if not isinstance(ref, list) or not ref:
            r.fail(k, rec, "reference_path", f"must be a non-empty list of [x, y, z] points, got {short(ref)}")
        path = [tuple(r.vector(k, rec, f"reference_path[{m}]", 3, value=p)) for m, p in enumerate(ref)]
        instr = r.get(k, rec, "instruction")
        if not isinstance(instr, dict):
            r.fail(k, rec, "instruction", f"must be an object with 'instruction_text', got {short(instr)}")
        text = instr.get("instruction_text")
        if not isinstance(text, str) or not text.strip():
            r.fail(k, rec, "instruction.instruction_text", f"must be a non-empty string, got {short(text)}")
        tokens = instr.get("instruction_tokens")
        if tokens is not None and not (isinstance(tokens, list) and (all(is_int(t) for t in tokens)
                                                                     or all(isinstance(t, str) for t in tokens))):
            r.fail(k, rec, "instruction.instruction_tokens", f"must be a list of ints or of strings, got {short(tokens)}")
        episodes.append(VLNCEEpisode(eid, tid, scene_id, tuple(start), tuple(rot), goals, path, text,
                                     None if tokens is None else list(tokens), dict(info)))
    ids = [e.episode_id for e in episodes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        k = ids.index(dup, ids.index(dup) + 1)
        r.fail(k, data["episodes"][k], "episode_id", f"repeats the episode_id of record {ids.index(dup)}")
    return VLNCEDataset(episodes, vocab)


def read_vlnce(path: str | Path) -> VLNCEDataset:
    """Episodes and vocabulary of a VLN-CE episode file (.json or .json.gz)."""
    return parse_vlnce(read_json(path, "a VLN-CE episode file"), str(path))


def write_vlnce(episodes: Sequence[VLNCEEpisode], vocab: Sequence[str], path: str | Path) -> Path:
    """Validate and write a VLN-CE episode file atomically (gzip when `path` ends in .gz)."""
    data = {"episodes": [e.to_dict() for e in episodes], "instruction_vocab": vocab_dict(vocab)}
    parse_vlnce(data, str(path))
    return write_json(path, data)
