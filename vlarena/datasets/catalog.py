"""What apartments are made of: room types, colours and object categories.

Pure data (no torch). The renderer turns these into looks; the scene generator places them.
Ids are positions in the tuples below and are part of the scene format (version 1): append,
never reorder.
"""

from __future__ import annotations

from dataclasses import dataclass

# Semantic ids written by the renderer: 0..3 are surfaces, objects are 4 + category id.
SEM_NONE, SEM_WALL, SEM_FLOOR, SEM_CEILING = 0, 1, 2, 3
SEM_OBJECT_BASE = 4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (50, 160, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "white": (235, 235, 235),
    "black": (30, 30, 30),
    "brown": (120, 75, 40),
    "grey": (128, 128, 128),
    "orange": (235, 130, 30),
    "purple": (130, 60, 160),
    "pink": (240, 140, 180),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)


@dataclass(frozen=True)
class RoomStyle:
    """How a room type looks. Patterns: 0 plain, 1 checker tiles, 2 planks/stripes, 3 wainscot."""

    wall_rgb: tuple[int, int, int]
    floor_rgb: tuple[int, int, int]
    floor_pattern: int
    wall_pattern: int


ROOM_STYLES: dict[str, RoomStyle] = {
    "kitchen": RoomStyle((230, 225, 200), (200, 200, 195), 1, 0),
    "bedroom": RoomStyle((170, 190, 225), (150, 110, 70), 2, 0),
    "bathroom": RoomStyle((200, 235, 235), (235, 235, 240), 1, 3),
    "living_room": RoomStyle((235, 215, 170), (165, 120, 80), 2, 3),
    "dining_room": RoomStyle((205, 160, 140), (140, 95, 60), 2, 0),
    "office": RoomStyle((190, 200, 180), (110, 110, 120), 0, 3),
    "hallway": RoomStyle((215, 215, 215), (175, 150, 120), 2, 0),
    "laundry": RoomStyle((215, 230, 205), (185, 185, 175), 1, 0),
    "closet": RoomStyle((200, 185, 160), (120, 100, 80), 0, 0),
}
ROOM_TYPES: tuple[str, ...] = tuple(ROOM_STYLES)
DOOR_RGB = (95, 65, 40)  # door frames and thresholds
CEILING_RGB = (245, 245, 240)


@dataclass(frozen=True)
class Category:
    """An object category: its shape, size ranges (metres) and where it goes."""

    name: str
    shape: str  # "box" or "cylinder"
    size: tuple[float, float]  # footprint width range (box: both sides drawn from it; cylinder: diameter)
    depth: tuple[float, float]  # box depth range (ignored for cylinders)
    height: tuple[float, float]  # (bottom, top) of the object above the floor
    rooms: tuple[str, ...]
    colours: tuple[str, ...]
    against_wall: bool


CATEGORIES: tuple[Category, ...] = (
    Category("fridge", "box", (0.7, 0.9), (0.6, 0.75), (0.0, 1.8), ("kitchen",), ("white", "grey", "black"), True),
    Category("stove", "box", (0.6, 0.8), (0.6, 0.7), (0.0, 0.9), ("kitchen",), ("white", "black", "grey"), True),
    Category("counter", "box", (1.2, 2.0), (0.55, 0.65), (0.0, 0.9), ("kitchen",), ("white", "brown", "grey"), True),
    Category("sink", "box", (0.6, 0.9), (0.5, 0.6), (0.0, 0.85), ("kitchen", "bathroom", "laundry"), ("white", "grey"), True),
    Category("microwave", "box", (0.45, 0.55), (0.35, 0.45), (0.9, 1.2), ("kitchen",), ("black", "white", "grey"), True),
    Category("dining_table", "box", (1.2, 1.8), (0.8, 1.0), (0.0, 0.75), ("dining_room", "kitchen"), ("brown", "white", "black"), False),
    Category("chair", "box", (0.45, 0.55), (0.45, 0.55), (0.0, 0.95), ("dining_room", "kitchen", "office", "living_room"), ("red", "blue", "brown", "black", "green", "yellow"), False),
    Category("sofa", "box", (1.8, 2.3), (0.85, 1.0), (0.0, 0.85), ("living_room",), ("red", "blue", "grey", "green", "brown", "purple"), True),
    Category("armchair", "box", (0.8, 1.0), (0.8, 0.95), (0.0, 0.9), ("living_room", "bedroom", "office"), ("red", "blue", "green", "yellow", "purple", "orange"), False),
    Category("coffee_table", "box", (0.9, 1.2), (0.5, 0.7), (0.0, 0.45), ("living_room",), ("brown", "black", "white"), False),
    Category("tv", "box", (1.0, 1.4), (0.1, 0.15), (0.6, 1.3), ("living_room", "bedroom"), ("black",), True),
    Category("tv_stand", "box", (1.2, 1.6), (0.4, 0.5), (0.0, 0.55), ("living_room", "bedroom"), ("brown", "black", "white"), True),
    Category("bookshelf", "box", (0.8, 1.2), (0.3, 0.4), (0.0, 2.0), ("living_room", "office", "bedroom", "hallway"), ("brown", "white", "black"), True),
    Category("bed", "box", (1.4, 1.8), (1.9, 2.1), (0.0, 0.6), ("bedroom",), ("white", "blue", "pink", "green", "purple", "yellow"), True),
    Category("nightstand", "box", (0.4, 0.5), (0.4, 0.5), (0.0, 0.6), ("bedroom",), ("brown", "white", "black"), True),
    Category("wardrobe", "box", (1.0, 1.6), (0.55, 0.65), (0.0, 2.1), ("bedroom", "closet", "hallway"), ("brown", "white", "grey"), True),
    Category("dresser", "box", (0.9, 1.3), (0.45, 0.55), (0.0, 1.0), ("bedroom", "closet"), ("brown", "white", "black"), True),
    Category("desk", "box", (1.1, 1.5), (0.6, 0.75), (0.0, 0.75), ("office", "bedroom"), ("brown", "white", "black", "grey"), True),
    Category("toilet", "box", (0.4, 0.45), (0.65, 0.75), (0.0, 0.75), ("bathroom",), ("white",), True),
    Category("bathtub", "box", (0.7, 0.8), (1.5, 1.7), (0.0, 0.55), ("bathroom",), ("white", "blue"), True),
    Category("shower", "box", (0.8, 0.9), (0.8, 0.9), (0.0, 2.0), ("bathroom",), ("white", "grey", "blue"), True),
    Category("washing_machine", "box", (0.6, 0.65), (0.6, 0.65), (0.0, 0.85), ("laundry", "bathroom"), ("white", "grey"), True),
    Category("dryer", "box", (0.6, 0.65), (0.6, 0.65), (0.0, 0.85), ("laundry",), ("white", "grey"), True),
    Category("laundry_basket", "cylinder", (0.45, 0.55), (0.0, 0.0), (0.0, 0.55), ("laundry", "bathroom", "bedroom", "closet"), ("blue", "white", "brown", "pink"), False),
    Category("plant", "cylinder", (0.35, 0.55), (0.0, 0.0), (0.0, 1.3), ROOM_TYPES, ("green",), False),
    Category("lamp", "cylinder", (0.3, 0.4), (0.0, 0.0), (0.0, 1.6), ("living_room", "bedroom", "office", "hallway"), ("yellow", "white", "black", "orange"), False),
    Category("trash_can", "cylinder", (0.3, 0.4), (0.0, 0.0), (0.0, 0.6), ("kitchen", "office", "bathroom", "laundry"), ("grey", "black", "blue", "green"), False),
    Category("stool", "cylinder", (0.35, 0.45), (0.0, 0.0), (0.0, 0.7), ("kitchen", "dining_room", "laundry"), ("red", "black", "brown", "yellow"), False),
    Category("cabinet", "box", (0.8, 1.2), (0.4, 0.5), (0.0, 1.2), ("kitchen", "dining_room", "office", "laundry", "hallway"), ("brown", "white", "grey"), True),
    Category("piano", "box", (1.4, 1.6), (0.55, 0.65), (0.0, 1.3), ("living_room",), ("black", "brown", "white"), True),
    Category("shoe_rack", "box", (0.8, 1.0), (0.3, 0.35), (0.0, 0.5), ("hallway", "closet"), ("brown", "white", "black"), True),
    Category("fish_tank", "box", (0.8, 1.0), (0.35, 0.45), (0.7, 1.2), ("living_room", "office"), ("blue",), True),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
CATEGORY_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
SHAPES: tuple[str, ...] = ("box", "cylinder")


def readable(name: str) -> str:
    """`living_room` -> `living room`, for instructions."""
    return name.replace("_", " ")
