"""ObjectNav warm-up episodes: "go to the <colour> <object> in the <room>".

A goal is every object matching the description (colour, category, room type), so an instruction
is never ambiguous: stopping within the success distance of any matching object succeeds.
Episodes are generated deterministically from (scene, seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlarena.datasets.catalog import readable
from vlarena.datasets.geodesic import GridGraph, cell_centers
from vlarena.datasets.navigation import navigable_mask, object_goal_cells
from vlarena.datasets.scene import Scene

TEMPLATES = (
    "Go to the {colour} {object} in the {room}.",
    "Find the {colour} {object} in the {room}.",
    "Walk to the {colour} {object} in the {room} and stop there.",
    "Navigate to the {colour} {object} that is in the {room}.",
    "Head over to the {colour} {object} in the {room}.",
)
GOAL_CELL_RADIUS = 0.75  # metres from a goal object's footprint; below the success distance of 1.0 m


@dataclass(frozen=True)
class ObjectNavEpisode:
    episode_id: str
    scene_id: str
    start_position: tuple[float, float]
    start_heading: float
    goal_object_ids: tuple[int, ...]
    instruction: str
    geodesic_distance: float


def goal_groups(scene: Scene) -> dict[tuple[str, str, str], tuple[int, ...]]:
    """Objects grouped by their description (colour, category, room type), in object order."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for o in scene.objects:
        groups.setdefault((o.colour, o.category, scene.rooms[o.room].type), []).append(o.id)
    return {k: tuple(v) for k, v in groups.items()}


class GoalFields:
    """Distance fields of one scene's goal descriptions, computed once each."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.navigable = navigable_mask(scene)
        self.graph = GridGraph(self.navigable, scene.cell_size)
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def field(self, object_ids: tuple[int, ...]) -> np.ndarray:
        """Metres to the nearest navigable cell within GOAL_CELL_RADIUS of any of the objects."""
        if object_ids not in self._cache:
            goal = object_goal_cells(self.scene, object_ids, radius=GOAL_CELL_RADIUS, navigable=self.navigable)
            self._cache[object_ids] = self.graph.distance_field(goal)
        return self._cache[object_ids]


def generate_episodes(scene: Scene, num_episodes: int, seed: int, min_distance: float = 1.5,
                      max_distance: float = 30.0, fields: GoalFields | None = None) -> list[ObjectNavEpisode]:
    """`num_episodes` episodes in `scene`, spread over its goal descriptions."""
    if num_episodes <= 0:
        raise ValueError(f"num_episodes must be a positive int, got {num_episodes}")
    rng = np.random.default_rng([seed, scene.seed])
    fields = fields or GoalFields(scene)
    xs, ys = cell_centers(scene.shape, scene.cell_size)
    candidates = []
    for key, ids in goal_groups(scene).items():
        dist = fields.field(ids)
        starts = np.argwhere(fields.navigable & (dist >= min_distance) & (dist <= max_distance))
        if len(starts):
            candidates.append((key, ids, dist, starts))
    if not candidates:
        raise ValueError(f"scene {scene.scene_id} has no reachable ObjectNav goal")
    episodes = []
    for n in range(num_episodes):
        (colour, category, room), ids, dist, starts = candidates[int(rng.integers(len(candidates)))]
        i, j = starts[int(rng.integers(len(starts)))]
        text = TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(
            colour=colour, object=readable(category), room=readable(room))
        episodes.append(ObjectNavEpisode(
            episode_id=f"{scene.scene_id}_{n:04d}",
            scene_id=scene.scene_id,
            start_position=(float(xs[i, j]), float(ys[i, j])),
            start_heading=float(rng.uniform(-np.pi, np.pi)),
            goal_object_ids=ids,
            instruction=text,
            geodesic_distance=float(dist[i, j]),
        ))
    return episodes
