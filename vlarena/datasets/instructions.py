"""R2R-style English instructions written from what lies along a navigation-graph path (numpy only).

`path_facts` reads the path against the scene: the rooms it passes through (in order), the turn
made at each viewpoint, the doors it crosses, the objects beside it and the place where it stops.
`generate_instructions` turns those facts into `n` different instructions by drawing templates,
synonyms, landmarks, omissions and sentence aggregation from an `rng`.

Guarantees (tested in tests/test_instructions.py):

- An instruction mentions only rooms the path passes through, objects within `LANDMARK_RADIUS`
  of it (sampled path points in the object's own room, so never through a wall) or the stop
  object within `STOP_RADIUS` of the goal, turns made on it and doors it crosses; a colour named
  with an object is that object's colour. No numbers, distances or viewpoint ids.
- The stop place is always described: the goal room and, when one exists, the stop object.
- Turns: the heading change at a viewpoint (counter-clockwise positive, as the scene's heading)
  is `straight` under `STRAIGHT_DEG`, `around` over `AROUND_DEG`, else `left` (positive) or
  `right`. The first turn is taken relative to `start_heading` and is unknown without it.
- The same rng state gives the same instructions; the `n` instructions are distinct strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from vlarena.datasets.catalog import CATEGORY_NAMES, COLOUR_NAMES, ROOM_TYPES, readable
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.path_facts import (  # noqa: F401  (re-exported: the facts instructions are written from)
    AROUND_DEG,
    LANDMARK_RADIUS,
    STOP_RADIUS,
    STRAIGHT_DEG,
    LandmarkFact,
    PathFacts,
    RoomVisit,
    TurnFact,
    path_facts,
)
from vlarena.datasets.scene import Scene

MAX_INSTRUCTIONS = 10  # the most distinct instructions `generate_instructions` guarantees per path

# Surface names. The first is `catalog.readable(name)`; the others are synonyms.
ROOM_WORDS: dict[str, tuple[str, ...]] = {t: (readable(t),) for t in ROOM_TYPES} | {
    "hallway": ("hallway", "corridor", "hall"), "living_room": ("living room", "lounge"),
    "laundry": ("laundry", "laundry room"), "office": ("office", "study")}
OBJECT_WORDS: dict[str, tuple[str, ...]] = {c: (readable(c),) for c in CATEGORY_NAMES} | {
    "sofa": ("sofa", "couch"), "tv": ("tv", "television"), "fridge": ("fridge", "refrigerator"),
    "trash_can": ("trash can", "bin"), "bookshelf": ("bookshelf", "bookcase"), "plant": ("plant", "potted plant")}
_NAMED = tuple(re.compile(r"\b(" + "|".join(re.escape(w) for w in OBJECT_WORDS[c]) + r")\b") for c in CATEGORY_NAMES)


def named_categories(text: str) -> list[float]:
    """1.0 for each category of `CATEGORY_NAMES` that `text` names by one of its `OBJECT_WORDS` (whole words, any
    case), else 0.0."""
    text = text.lower()
    return [1.0 if p.search(text) else 0.0 for p in _NAMED]


TURN_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("turn left", "make a left", "hang a left", "take a left", "go left", "turn to the left"),
    "right": ("turn right", "make a right", "hang a right", "take a right", "go right", "turn to the right"),
    "around": ("turn around", "turn back", "spin around"),
    "straight": ("go straight", "continue straight", "keep going straight", "walk straight ahead"),
}
TEMPLATE_FAMILIES: tuple[str, ...] = (
    "exit", "enter", "transit", "hallway", "door", "turn", "turn_at_landmark", "straight", "landmark_past",
    "landmark_side", "landmark_attached", "stop_object", "stop_room", "split", "merged")

_MOVE = ("walk", "go", "head", "move")
_STOP = ("stop", "wait", "halt", "come to a stop", "stand still")
_NEAR = ("next to", "by", "beside", "near", "close to")
_STARTERS = ("Then ", "Next, ", "After that, ", "Now ", "From there, ")


# ---- composition ----------------------------------------------------------------------------
class _Composer:
    """One instruction: per-room units (verb phrases) in path order, then sentence aggregation."""

    def __init__(self, scene: Scene, facts: PathFacts, rng: np.random.Generator, stop_variant: int | None):
        self.scene, self.f, self.rng, self.stop_variant = scene, facts, rng, stop_variant
        self.families: set[str] = set()
        self.names: dict[str, str] = {}
        self.last_turn = ""  # the last turn phrase used, so that two turns in a row read differently
        self.door_said = False  # the first leg's exit already went "through the door"
        self.entered_goal_room = False  # the last unit before the stop entered the goal room

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def room(self, rtype: str) -> str:
        if rtype not in self.names:
            self.names[rtype] = self.pick(ROOM_WORDS[rtype])
        return "the " + self.names[rtype]

    def obj(self, category: str, colour: str, room: int, object_id: int) -> str:
        # Name the colour always when another object of this category stands in the same room.
        twin = any(o.category == category and o.room == room and o.id != object_id for o in self.scene.objects)
        name = self.pick(OBJECT_WORDS[category])
        return f"the {colour} {name}" if twin or self.chance(0.55) else f"the {name}"

    def turn(self, direction: str, at: str | None = None) -> str:
        phrase = self.pick(TURN_WORDS[direction])
        if phrase == self.last_turn:
            phrase = self.pick(TURN_WORDS[direction])
        self.last_turn = phrase
        self.families.add("straight" if direction == "straight" else "turn")
        if at is None:
            return phrase
        self.families.add("turn_at_landmark")
        return self.pick((f"{phrase} at {at}", f"at {at}, {phrase}", f"when you reach {at}, {phrase}"))

    def landmark(self, lm: LandmarkFact) -> str:
        o = self.obj(lm.category, lm.colour, lm.room, lm.object_id)
        if lm.side and self.chance(0.5):
            self.families.add("landmark_side")
            return self.pick((f"pass {o} on your {lm.side}", f"{self.pick(_MOVE)} past {o} on your {lm.side}",
                              f"keep {o} on your {lm.side}"))
        self.families.add("landmark_past")
        return self.pick((f"{self.pick(_MOVE)} past {o}", f"pass {o}", f"continue past {o}", f"keep going past {o}"))

    def attach(self, unit: str, lm: LandmarkFact) -> str:
        self.families.add("landmark_attached")
        o = self.obj(lm.category, lm.colour, lm.room, lm.object_id)
        if lm.side:
            return self.pick((f"{unit} past {o}", f"{unit}, passing {o} on your {lm.side}",
                              f"{unit} with {o} on your {lm.side}"))
        return self.pick((f"{unit} past {o}", f"{unit}, passing {o}"))

    def transit(self, v: RoomVisit, single: bool) -> str:
        r = self.room(v.type)
        if v.type == "hallway":
            self.families.add("hallway")
            return self.pick((f"{self.pick(_MOVE)} down {r}", f"go along {r}", f"follow {r}", f"continue down {r}"))
        self.families.add("transit")
        if single:
            return self.pick((f"{self.pick(_MOVE)} across {r}", f"cross {r}", f"{self.pick(_MOVE)} through {r}"))
        return self.pick((f"{self.pick(_MOVE)} through {r}", f"cross {r}", f"pass through {r}"))

    def enter(self, v: RoomVisit, door: bool, same_type: bool) -> list[str]:
        r = ("the next " + self.names.setdefault(v.type, self.pick(ROOM_WORDS[v.type]))) if same_type else self.room(v.type)
        self.families.add("enter")
        if door and self.chance(0.6):
            self.families.add("door")
            if self.chance(0.5):
                return [self.pick((f"go through the door into {r}", f"walk through the doorway into {r}",
                                   f"pass through the door to {r}", f"enter {r} through the door"))]
            return [self.pick(("go through the door", "walk through the doorway", "pass through the door")),
                    self.pick((f"enter {r}", f"step into {r}"))]
        return [self.pick((f"enter {r}", f"go into {r}", f"walk into {r}", f"step into {r}", f"head into {r}"))]

    def exit(self, v: RoomVisit, door: bool) -> str:
        r = self.room(v.type)
        self.families.add("exit")
        if door and self.chance(0.4):
            self.families.add("door")
            self.door_said = True
            return self.pick((f"leave {r} through the door", f"exit {r} by the door", f"walk out the door of {r}",
                              "go out through the door"))
        return self.pick((f"leave {r}", f"exit {r}", f"walk out of {r}", f"go out of {r}", f"head out of {r}",
                          f"get out of {r}"))

    def stop(self) -> str:
        s = self.f.stop
        draws = self.rng.integers(1 << 30, size=3)
        r = self.room(s.room_type)
        if s.object_id is not None:
            self.families.add("stop_object")
            o = self.obj(s.category, s.colour, s.room, s.object_id)
            forms = (("{v} in the doorway of {r}, {p} {o}", "{v} at the door of {r} {p} {o}") if s.in_doorway else
                     ("{v} {p} {o} in {r}", "{v} in {r} {p} {o}",
                      "once inside, {v} {p} {o}" if self.entered_goal_room else "once you are in {r}, {v} {p} {o}",
                      "{v} when you are {p} {o} in {r}"))
            sizes = (len(_STOP), len(_NEAR), len(forms))
        else:
            self.families.add("stop_room")
            forms = (("{v} in the doorway of {r}", "{v} at the door of {r}") if s.in_doorway else
                     ("{v} in {r}", "{v} inside {r}", "{v} there" if self.entered_goal_room else "once you are in {r}, {v}"))
            sizes = (len(_STOP), 1, len(forms))
            o = ""
        if self.stop_variant is not None:
            draws = np.unravel_index(self.stop_variant % math.prod(sizes), sizes)
        v, p, form = _STOP[draws[0] % sizes[0]], _NEAR[draws[1] % len(_NEAR)], forms[draws[2] % sizes[2]]
        return form.format(v=v, p=p, o=o, r=r)

    def units(self) -> list[str]:
        f, out = self.f, []
        visits = f.rooms
        door_into = {k for k in range(1, len(visits))
                     if any(visits[k - 1].end <= d.arc <= visits[k].start for d in f.doors)}
        stop_cat = f.stop.category
        # Landmark choice: per visit at most two, never the stop object's category, some dropped.
        chosen: dict[int, list[LandmarkFact]] = {}
        for k, v in enumerate(visits):
            cands = [lm for lm in f.landmarks if lm.room == v.room and v.start - 0.5 <= lm.arc <= v.end + 0.5
                     and lm.category != stop_cat and lm.object_id != f.stop.object_id]
            if cands:
                order = self.rng.permutation(len(cands))[: int(self.rng.integers(0, 3))]
                chosen[k] = sorted((cands[i] for i in order), key=lambda lm: lm.arc)
        turns_in: dict[int, list[TurnFact]] = {}
        for t in f.turns:
            if t.direction == "straight" and (abs(t.angle) > 20.0 or not self.chance(0.25)):
                continue
            k = next((i for i, v in enumerate(visits) if t.arc < v.end + 1e-6), len(visits) - 1)
            turns_in.setdefault(k, []).append(t)
        for k, v in enumerate(visits):
            first, last = k == 0, k == len(visits) - 1
            if not first and (not last or self.chance(0.6)):
                same = visits[k - 1].type == v.type
                door = k in door_into and not (k == 1 and self.door_said)
                if last or same or self.chance(0.5):
                    out += self.enter(v, door, same)
                elif door and self.chance(0.4):
                    self.families.add("door")
                    out.append(self.pick(("go through the door", "walk through the doorway")))
            lms = list(chosen.get(k, []))
            items: list[tuple[float, str]] = []
            for t in turns_in.get(k, []):
                if t.direction == "straight" and self.last_turn in TURN_WORDS["straight"]:
                    continue
                at = next((lm for lm in lms if abs(lm.arc - t.arc) < 1.0 and lm.side is None), None)
                if at is not None and self.chance(0.7):
                    lms.remove(at)
                    items.append((t.arc, self.turn(t.direction, self.obj(at.category, at.colour, at.room,
                                                                          at.object_id))))
                else:
                    items.append((t.arc, self.turn(t.direction)))
            lm_items = [(lm.arc, lm) for lm in lms]
            if (not first and not last) or (first and last):
                early = [it for it in items if it[0] < v.start + 1.0]
                items = [it for it in items if it[0] >= v.start + 1.0]
                out += [u for _, u in early]
                unit = self.transit(v, first and last)
                if lm_items and all(a >= lm_items[0][0] for a, _ in items) and self.chance(0.6):
                    unit = self.attach(unit, lm_items.pop(0)[1])
                out.append(unit)
            items += [(a, self.landmark(lm)) for a, lm in lm_items]
            out += [u for _, u in sorted(items, key=lambda it: it[0])]
            self.entered_goal_room = last and not items and not (first and last) and bool(out) and \
                out[-1].endswith(self.room(v.type))
            if first and not last:
                out.append(self.exit(v, 1 in door_into))
        out.append(self.stop())
        return out

    def compose(self) -> str:
        units = self.units()
        if len(units) > 1 and self.chance(0.3):
            self.families.add("split")
            sents = [units[0]] + [(self.pick(_STARTERS) + u if self.chance(0.35) else u) for u in units[1:]]
        else:
            self.families.add("merged")
            sents, i = [], 0
            while i < len(units):
                size = int(self.rng.integers(1, 4))
                chunk = units[i:i + size]
                # "at the lamp, turn left" and "when you reach ..." read well only opening a sentence.
                cut = next((c for c in range(1, len(chunk)) if chunk[c].startswith(("at ", "when "))), len(chunk))
                chunk, size = chunk[:cut], cut
                i += size
                if len(chunk) == 1:
                    sents.append(chunk[0])
                elif len(chunk) == 2:
                    sents.append(self.pick(("{} and {}", "{}, then {}", "{} and then {}")).format(*chunk))
                else:
                    sents.append(self.pick(("{}, {} and {}", "{}, {}, then {}", "{}, then {} and {}")).format(*chunk))
        return " ".join(s[0].upper() + s[1:] + "." for s in sents)


def compose_instruction(scene: Scene, facts: PathFacts, rng: np.random.Generator,
                        stop_variant: int | None = None) -> tuple[str, frozenset[str]]:
    """One instruction for `facts` and the template families (`TEMPLATE_FAMILIES`) it used."""
    c = _Composer(scene, facts, rng, stop_variant)
    text = c.compose()
    return text, frozenset(c.families)


def generate_instructions(scene: Scene, graph: NavGraph, path: list[int], rng: np.random.Generator, n: int = 3,
                          start_heading: float | None = None) -> list[str]:
    """`n` distinct English instructions for `path` (viewpoint indices into `graph`).

    Deterministic given the state of `rng`. `n` must be in [1, MAX_INSTRUCTIONS].
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_INSTRUCTIONS:
        raise ValueError(f"n must be an int in [1, {MAX_INSTRUCTIONS}], got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    facts = path_facts(scene, graph, path, start_heading)
    out: list[str] = []
    for _ in range(8 * n):
        text, _ = compose_instruction(scene, facts, rng)
        if text not in out:
            out.append(text)
            if len(out) == n:
                return out
    # Rare (very short paths): replay one draw with each stop phrasing; these strings all differ.
    seed = int(rng.integers(1 << 62))
    for variant in range(10 * MAX_INSTRUCTIONS):
        text, _ = compose_instruction(scene, facts, np.random.default_rng(seed), stop_variant=variant)
        if text not in out:
            out.append(text)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not write {n} distinct instructions for path {path}")  # unreachable for n <= 10


# ---- reading an instruction back --------------------------------------------------------------
@dataclass(frozen=True)
class Mentions:
    rooms: tuple[str, ...]  # room types, in order of mention
    objects: tuple[tuple[str | None, str], ...]  # (colour or None, category)
    turns: tuple[str, ...]  # "left", "right", "around", "straight"
    doors: int  # how many times a door or doorway is named


def _alternation(words: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, str]]:
    lookup = {w: key for key, ws in words.items() for w in ws}
    return "|".join(re.escape(w) for w in sorted(lookup, key=len, reverse=True)), lookup


_OBJ_ALT, _OBJ_LOOKUP = _alternation(OBJECT_WORDS)
_ROOM_ALT, _ROOM_LOOKUP = _alternation(ROOM_WORDS)
_TURN_ALT, _TURN_LOOKUP = _alternation(TURN_WORDS)
_MENTION_RE = re.compile(rf"\b(?:(?:(?P<colour>{'|'.join(COLOUR_NAMES)})\s+)?(?P<obj>{_OBJ_ALT})|(?P<room>{_ROOM_ALT})"
                         rf"|(?P<turn>{_TURN_ALT})|(?P<door>door|doorway))\b")


def parse_mentions(text: str) -> Mentions:
    """The rooms, objects (with colours), turns and doors an instruction names, read with the
    vocabularies `ROOM_WORDS`, `OBJECT_WORDS` and `TURN_WORDS` (longest phrase first)."""
    rooms, objects, turns, doors = [], [], [], 0
    for m in _MENTION_RE.finditer(text.lower()):
        if m["obj"]:
            objects.append((m["colour"], _OBJ_LOOKUP[m["obj"]]))
        elif m["room"]:
            rooms.append(_ROOM_LOOKUP[m["room"]])
        elif m["turn"]:
            turns.append(_TURN_LOOKUP[m["turn"]])
        else:
            doors += 1
    return Mentions(tuple(rooms), tuple(objects), tuple(turns), doors)
