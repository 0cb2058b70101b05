"""Pure scene and episode data: procedural apartments, nav graphs, R2R episodes and instructions, file formats
(R2R, VLN-CE, Matterport connectivity, predictions) and the dataset cache (no torch)."""

from vlarena.datasets.catalog import (
    CATEGORIES,
    CATEGORY_BY_NAME,
    CATEGORY_NAMES,
    CEILING_RGB,
    COLOUR_NAMES,
    COLOURS,
    DOOR_RGB,
    ROOM_STYLES,
    ROOM_TYPES,
    SEM_CEILING,
    SEM_FLOOR,
    SEM_NONE,
    SEM_OBJECT_BASE,
    SEM_WALL,
    SHAPES,
    Category,
    RoomStyle,
    readable,
)
from vlarena.datasets.connectivity import read_connectivity, write_connectivity
from vlarena.datasets.generate import generate_scene
from vlarena.datasets.instructions import generate_instructions
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navgraph_build import build_nav_graph
from vlarena.datasets.navigation import (
    AGENT_RADIUS,
    GOAL_RADIUS,
    NAV_CLEARANCE,
    free_space,
    is_connected,
    navigable_mask,
    object_distance,
    object_goal_cells,
)
from vlarena.datasets.predictions import score_prediction_file
from vlarena.datasets.r2r import R2REpisode, read_r2r, write_r2r
from vlarena.datasets.r2r_splits import SPLITS, R2RDataset, R2RSplitConfig, make_r2r_splits
from vlarena.datasets.scene import FLOOR, OUTSIDE, SCENE_FORMAT_VERSION, WALL, Door, Room, Scene, SceneObject
from vlarena.datasets.store import data_dir, generate_r2r, load_r2r
from vlarena.datasets.vlnce import read_vlnce, write_vlnce

__all__ = [
    "SPLITS",
    "NavGraph",
    "R2RDataset",
    "R2REpisode",
    "R2RSplitConfig",
    "build_nav_graph",
    "data_dir",
    "generate_instructions",
    "generate_r2r",
    "load_r2r",
    "make_r2r_splits",
    "read_connectivity",
    "read_r2r",
    "read_vlnce",
    "score_prediction_file",
    "write_connectivity",
    "write_r2r",
    "write_vlnce",
    "AGENT_RADIUS",
    "CATEGORIES",
    "CATEGORY_BY_NAME",
    "CATEGORY_NAMES",
    "CEILING_RGB",
    "COLOURS",
    "COLOUR_NAMES",
    "DOOR_RGB",
    "FLOOR",
    "GOAL_RADIUS",
    "NAV_CLEARANCE",
    "OUTSIDE",
    "ROOM_STYLES",
    "ROOM_TYPES",
    "SCENE_FORMAT_VERSION",
    "SEM_CEILING",
    "SEM_FLOOR",
    "SEM_NONE",
    "SEM_OBJECT_BASE",
    "SEM_WALL",
    "SHAPES",
    "WALL",
    "Category",
    "Door",
    "Room",
    "RoomStyle",
    "Scene",
    "SceneObject",
    "free_space",
    "generate_scene",
    "is_connected",
    "navigable_mask",
    "object_distance",
    "object_goal_cells",
    "readable",
]
