"""ALFRED's object types and what can be done with them (pure data, no torch).

Names are ALFRED's (AI2-THOR's) object types, as they appear in `traj_data.json` (`pddl_params`,
`plan.high_pddl`, `plan.low_actions`). Ids are positions in `OBJECT_TYPES`: append, never reorder.

Affordances (the AI2-THOR properties ALFRED's PDDL uses):
- pickupable: can be held; `slicer`: holding it lets the agent slice (Knife, ButterKnife);
  `sliceable`: SliceObject turns it sliced (the object stays one object with `sliced` set: ALFRED's
  "AppleSliced" pieces are not separate objects here);
- receptacle: other objects can be put in/on it; `movable` receptacles (ALFRED's mrecep: Bowl, Cup,
  Mug, Pan, Plate, Pot, Box) are also pickupable and carry their contents;
- openable: Open/CloseObject (Fridge, Microwave, Cabinet, Drawer); a closed receptacle hides and
  locks its contents;
- toggleable: ToggleObjectOn/Off (DeskLamp, FloorLamp, Microwave, Faucet);
- the state changers: a Microwave switched on heats what is inside it, a Fridge closed cools what is
  inside it, a Faucet switched on cleans what is in its SinkBasin (ALFRED's thor_env post-conditions);
- light: a lamp for look_at_obj_in_light.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectType:
    name: str
    pickupable: bool = False
    receptacle: bool = False
    movable: bool = False  # a receptacle that can be picked up (mrecep)
    openable: bool = False
    toggleable: bool = False
    sliceable: bool = False
    slicer: bool = False
    heater: bool = False
    cooler: bool = False
    cleaner: bool = False  # a faucet: cleans what is in its sink basin
    light: bool = False
    phrase: str = ""  # how instructions name it ("" -> the lower-cased name)

    @property
    def words(self) -> str:
        return self.phrase or self.name.lower()


def _item(name: str, phrase: str = "", **kw: bool) -> ObjectType:
    return ObjectType(name, pickupable=True, phrase=phrase, **kw)


def _mrecep(name: str, phrase: str = "") -> ObjectType:
    return ObjectType(name, pickupable=True, receptacle=True, movable=True, phrase=phrase)


OBJECT_TYPES: tuple[ObjectType, ...] = (
    # small things to pick up
    _item("Apple", sliceable=True), _item("Bread", phrase="loaf of bread", sliceable=True),
    _item("Tomato", sliceable=True), _item("Potato", sliceable=True), _item("Lettuce", phrase="head of lettuce",
                                                                            sliceable=True),
    _item("Egg"), _item("Knife", slicer=True), _item("ButterKnife", phrase="butter knife", slicer=True),
    _item("Spoon"), _item("Fork"), _item("Book"), _item("CellPhone", phrase="phone"),
    _item("KeyChain", phrase="set of keys"), _item("CreditCard", phrase="credit card"),
    _item("Pencil"), _item("Pen"), _item("RemoteControl", phrase="remote control"), _item("Vase"),
    _item("AlarmClock", phrase="alarm clock"), _item("Watch"), _item("SoapBar", phrase="bar of soap"),
    _item("Cloth", phrase="rag"), _item("Statue"), _item("Candle"),
    # movable receptacles
    _mrecep("Bowl"), _mrecep("Cup"), _mrecep("Mug"), _mrecep("Pan"), _mrecep("Plate"), _mrecep("Pot"),
    _mrecep("Box", phrase="cardboard box"),
    # fixed receptacles and appliances
    ObjectType("CounterTop", receptacle=True, phrase="counter"),
    ObjectType("DiningTable", receptacle=True, phrase="dining table"),
    ObjectType("CoffeeTable", receptacle=True, phrase="coffee table"),
    ObjectType("SideTable", receptacle=True, phrase="side table"),
    ObjectType("Desk", receptacle=True), ObjectType("Shelf", receptacle=True),
    ObjectType("Dresser", receptacle=True), ObjectType("Sofa", receptacle=True, phrase="couch"),
    ObjectType("Bed", receptacle=True), ObjectType("GarbageCan", receptacle=True, phrase="bin"),
    ObjectType("Fridge", receptacle=True, openable=True, cooler=True),
    ObjectType("Microwave", receptacle=True, openable=True, toggleable=True, heater=True),
    ObjectType("Cabinet", receptacle=True, openable=True), ObjectType("Drawer", receptacle=True, openable=True),
    ObjectType("SinkBasin", receptacle=True, phrase="sink"),
    ObjectType("Faucet", toggleable=True, cleaner=True, phrase="tap"),
    ObjectType("DeskLamp", toggleable=True, light=True, phrase="desk lamp"),
    ObjectType("FloorLamp", toggleable=True, light=True, phrase="floor lamp"),
)
OBJECT_TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in OBJECT_TYPES)
TYPE_INDEX: dict[str, int] = {n: i for i, n in enumerate(OBJECT_TYPE_NAMES)}
FLAGS: tuple[str, ...] = ("pickupable", "receptacle", "movable", "openable", "toggleable", "sliceable", "slicer",
                          "heater", "cooler", "cleaner", "light")


def object_type(name: str, what: str = "object type") -> ObjectType:
    """The ObjectType called `name`; an unknown name is an error listing the accepted ones."""
    if name not in TYPE_INDEX:
        raise ValueError(f"unknown {what} {name!r}; accepted are {list(OBJECT_TYPE_NAMES)}")
    return OBJECT_TYPES[TYPE_INDEX[name]]


def types_with(flag: str) -> tuple[str, ...]:
    """Names of the object types that have the affordance `flag` (one of FLAGS)."""
    if flag not in FLAGS:
        raise ValueError(f"unknown affordance {flag!r}; accepted are {list(FLAGS)}")
    return tuple(t.name for t in OBJECT_TYPES if getattr(t, flag))
