"""Household scenes for the ALFRED-style task: one furnished room (as ALFRED's floor plans are) plus
the small objects that lie on or in its furniture (numpy only, seeded).

    hs = generate_household(seed)            # hs.scene: the room and its furniture (a vlarena Scene)
    hs.objects                               # [HouseholdObject]: task-level objects in slot order
    hs.slots()                               # [(ALFRED type, parent slot)] for the planner and the world

Room types are ALFRED's four: kitchen, living room, bedroom, bathroom. Furniture comes from the
simulator's catalog and is placed by its furnisher (navigation stays possible); each piece that
ALFRED knows becomes a fixed object (`FURNITURE`: counter -> CounterTop, nightstand -> SideTable,
lamp -> FloorLamp, ...). A sink gets its Faucet, a desk or side table may get a
DeskLamp. Then 8-14 small objects of the room's kinds (`SMALL`) go on or in random receptacles that
take them (`PLACES`) and have room (`CAPACITY`: 2 in an openable, 4 on anything else, so that each
stays in sight), several of a kind now and then (for pick_two_obj_and_place). Every openable
starts closed, every toggleable off.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vlarena.datasets.alfred.objects import object_type
from vlarena.datasets.catalog import CATEGORY_BY_NAME
from vlarena.datasets.furnish import SAMPLES, Furnisher
from vlarena.datasets.generate import CELL_SIZE, WALL_HEIGHT
from vlarena.datasets.layout import make_plan
from vlarena.datasets.scene import Scene

ROOM_TYPES = ("kitchen", "living_room", "bedroom", "bathroom")
FURNITURE: dict[str, str] = {
    "counter": "CounterTop", "fridge": "Fridge", "microwave": "Microwave", "sink": "SinkBasin",
    "dining_table": "DiningTable", "cabinet": "Cabinet", "trash_can": "GarbageCan", "sofa": "Sofa",
    "coffee_table": "CoffeeTable", "nightstand": "SideTable", "lamp": "FloorLamp", "bed": "Bed", "desk": "Desk",
    "dresser": "Dresser"}
# (no Shelf: the catalog's bookshelf is a 2 m solid box, and things on its top would be out of sight)
# furniture per room type: (catalog category, required)
ROOM_FURNITURE: dict[str, tuple[tuple[str, bool], ...]] = {
    "kitchen": (("fridge", True), ("counter", True), ("sink", True), ("microwave", True), ("cabinet", False),
                ("dining_table", False), ("trash_can", False)),
    "living_room": (("sofa", True), ("coffee_table", True), ("lamp", True), ("nightstand", False),
                    ("cabinet", False)),
    "bedroom": (("bed", True), ("desk", True), ("nightstand", False), ("dresser", False), ("lamp", False)),
    "bathroom": (("sink", True), ("cabinet", False), ("trash_can", False)),
}
SMALL: dict[str, tuple[str, ...]] = {
    "kitchen": ("Apple", "Bread", "Tomato", "Potato", "Lettuce", "Egg", "Knife", "ButterKnife", "Spoon", "Fork",
                "Bowl", "Cup", "Mug", "Pan", "Plate", "Pot"),
    "living_room": ("Book", "RemoteControl", "KeyChain", "CreditCard", "Vase", "Statue", "Box", "Watch", "CellPhone",
                    "Candle", "Bowl", "Plate"),
    "bedroom": ("Book", "CellPhone", "AlarmClock", "Pen", "Pencil", "KeyChain", "CreditCard", "Mug", "Bowl", "Cloth",
                "Box", "Watch"),
    "bathroom": ("SoapBar", "Cloth", "Candle", "Cup", "Vase"),
}
# where small objects may start: receptacle types (the big appliances take food and dishes only)
PLACES: dict[str, tuple[str, ...]] = {
    "Fridge": ("Apple", "Bread", "Tomato", "Potato", "Lettuce", "Egg", "Bowl", "Cup", "Mug", "Plate", "Pot", "Pan"),
    "Microwave": ("Apple", "Bread", "Tomato", "Potato", "Egg", "Bowl", "Cup", "Mug", "Plate"),
    "SinkBasin": ("Apple", "Tomato", "Potato", "Lettuce", "Spoon", "Fork", "Knife", "ButterKnife", "Bowl", "Cup",
                  "Mug", "Plate", "Pan", "Pot", "SoapBar", "Cloth"),
    "GarbageCan": ("Apple", "Bread", "Tomato", "Potato", "Lettuce", "Egg", "Cloth", "Pencil", "Pen", "SoapBar"),
}
MIN_SMALL, MAX_SMALL = 8, 14
CAPACITY = {True: 2, False: 4}  # small objects a receptacle starts with: openable, other
ATTEMPTS = 60


@dataclass(frozen=True)
class HouseholdObject:
    type: str  # ALFRED object type
    parent: int  # slot of the receptacle it starts on/in, -1 for furniture
    furniture: int  # index into scene.objects for furniture, -1 for small objects
    offset: tuple[float, float] = (0.0, 0.0)  # position on the parent's top, as fractions of its half extents


@dataclass
class HouseholdScene:
    scene: Scene
    room_type: str
    objects: list[HouseholdObject]

    def slots(self) -> list[tuple[str, int]]:
        return [(o.type, o.parent) for o in self.objects]


def _furnish(rng: np.random.Generator, room_type: str) -> tuple[Scene, list[HouseholdObject]] | None:
    plan = make_plan(rng, 1)
    plan = dataclasses.replace(plan, rooms=[dataclasses.replace(plan.rooms[0], type=room_type)])
    furnisher = Furnisher(rng, plan, CELL_SIZE, WALL_HEIGHT)
    if not furnisher.valid:
        return None
    objects: list[HouseholdObject] = []
    for name, required in ROOM_FURNITURE[room_type]:
        if furnisher.place(0, CATEGORY_BY_NAME[name], SAMPLES * (3 if required else 1)):
            objects.append(HouseholdObject(FURNITURE[name], -1, len(furnisher.objects) - 1))
        elif required:
            return None
    for slot in range(len(objects)):
        kind = objects[slot].type
        if kind == "SinkBasin":
            objects.append(HouseholdObject("Faucet", -1, objects[slot].furniture, (0.0, 0.8)))
        elif kind in ("Desk", "SideTable") and not any(o.type == "DeskLamp" for o in objects) and rng.random() < 0.8:
            objects.append(HouseholdObject("DeskLamp", slot, -1, _offset(rng)))
    scene = Scene(scene_id="", seed=0, cell_size=CELL_SIZE, wall_height=WALL_HEIGHT, cells=plan.cells,
                  room_ids=plan.room_ids, rooms=plan.rooms, doors=plan.doors, objects=furnisher.objects)
    return scene, objects


def _offset(rng: np.random.Generator) -> tuple[float, float]:
    return (round(float(rng.uniform(-0.7, 0.7)), 2), round(float(rng.uniform(-0.7, 0.7)), 2))


def _places_for(kind: str, objects: list[HouseholdObject]) -> list[int]:
    """Slots of the receptacles `kind` may start on or in."""
    out = []
    for slot, o in enumerate(objects):
        t = object_type(o.type)
        if not t.receptacle or t.movable or o.furniture < 0:
            continue
        if o.type in PLACES and kind not in PLACES[o.type]:
            continue
        out.append(slot)
    return out


def generate_household(seed: int, room_type: str | None = None, scene_id: str | None = None) -> HouseholdScene:
    """The household scene for `seed` (room type drawn from ROOM_TYPES unless given)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if room_type is not None and room_type not in ROOM_TYPES:
        raise ValueError(f"room_type must be one of {list(ROOM_TYPES)}, got {room_type!r}")
    rng = np.random.default_rng(int(seed))
    kind = room_type or ROOM_TYPES[int(rng.integers(len(ROOM_TYPES)))]
    for _ in range(ATTEMPTS):
        made = _furnish(rng, kind)
        if made is None:
            continue
        scene, objects = made
        small = SMALL[kind]
        for _ in range(int(rng.integers(MIN_SMALL, MAX_SMALL + 1))):
            name = small[int(rng.integers(len(small)))]
            places = [p for p in _places_for(name, objects)
                      if sum(o.parent == p for o in objects) < CAPACITY[object_type(objects[p].type).openable]]
            if places:
                objects.append(HouseholdObject(name, places[int(rng.integers(len(places)))], -1, _offset(rng)))
        scene = dataclasses.replace(scene, scene_id=scene_id or f"house_{seed:05d}", seed=int(seed))
        return HouseholdScene(scene, kind, objects)
    raise RuntimeError(f"generate_household({seed}): no {kind} fitted its furniture in {ATTEMPTS} attempts")
