"""The expert's high-level plan for a task (ALFRED's `plan.high_pddl`) and its interactions; pure data.

    plan = high_level_plan(spec, objects)         # objects: [(type name, parent index or -1), ...]
    for sub in plan: sub.interactions             # [(interaction, object index), ...] in order

Subgoals are ALFRED's: GotoLocation, PickupObject, PutObject, ToggleObject, HeatObject, CoolObject,
CleanObject, SliceObject, and the closing NoOp. A GotoLocation names where the next object is (its
outermost receptacle, or itself when it stands on the floor); the env expands it into navigation
actions. Every other subgoal expands here into ALFRED's low-level interactions, with openable
receptacles opened before and closed after use (every openable starts closed):

    PickupObject(o)       [Open(c)] Pickup(o) [Close(c)]            c: o's receptacle if openable
    PutObject(o, r)       [Open(c)] [Open(r)] Put(r) [Close(r)] [Close(c)]  c: r's receptacle if openable
    HeatObject(o)         Open(mw) Put(mw) Close(mw) ToggleOn(mw) ToggleOff(mw) Open(mw) Pickup(o) Close(mw)
    CoolObject(o)         Open(fr) Put(fr) Close(fr) Open(fr) Pickup(o) Close(fr)
    CleanObject(o)        Put(sink) ToggleOn(faucet) ToggleOff(faucet) Pickup(o)
    SliceObject(o)        Slice(o)                                   (holding a knife)
    ToggleObject(l)       ToggleOn(l)

Sliced tasks first fetch a knife, slice the target(s) where they lie, and put the knife down on
the (last) target's receptacle before going on, as ALFRED's expert does. A target must lie on or in a
receptacle; GotoLocation is not repeated when the agent is already there. Instances: the first objects of each needed
type in list order (the scene generator puts the intended ones first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vlarena.datasets.alfred.objects import object_type, types_with
from vlarena.datasets.alfred.tasks import STATE_CHANGE, TaskSpec

HIGH_LEVEL_ACTIONS: tuple[str, ...] = ("GotoLocation", "PickupObject", "PutObject", "ToggleObject", "HeatObject",
                                       "CoolObject", "CleanObject", "SliceObject", "NoOp")
APPLIANCE = {"heated": "HeatObject", "cooled": "CoolObject", "cleaned": "CleanObject"}


@dataclass(frozen=True)
class Subgoal:
    action: str
    args: tuple[str, ...]  # ALFRED's discrete_action args: lower-case object types
    objects: tuple[int, ...]  # the object indices the args name
    interactions: tuple[tuple[str, int], ...] = field(default=())

    def to_high_pddl(self, high_idx: int) -> dict:
        return {"high_idx": high_idx, "discrete_action": {"action": self.action, "args": list(self.args)},
                "planner_action": {"action": self.action, "objectIds": list(self.objects)}}


class _Planner:
    def __init__(self, spec: TaskSpec, objects: Sequence[tuple[str, int]]):
        self.spec = spec
        self.types = [object_type(t).name for t, _ in objects]
        self.parent = [int(p) for _, p in objects]
        self.plan: list[Subgoal] = []
        self.at = -1  # where the last GotoLocation went

    def find(self, names: Sequence[str], role: str, count: int = 1, exclude: Sequence[int] = ()) -> list[int]:
        found = [i for i, t in enumerate(self.types) if t in names and i not in exclude][:count]
        if len(found) < count:
            raise ValueError(f"the scene has {len(found)} object(s) of type {' or '.join(names)} for {role} "
                             f"of {self.spec.task_type}; it needs {count}")
        return found

    def location(self, i: int) -> int:
        while self.parent[i] >= 0:
            i = self.parent[i]
        return i

    def goto(self, i: int) -> None:
        where = self.location(i)
        if self.at == where:
            return  # already there
        self.at = where
        self.plan.append(Subgoal("GotoLocation", (self.types[where].lower(),), (where,)))

    def add(self, action: str, objs: Sequence[int], interactions: list[tuple[str, int]]) -> None:
        self.plan.append(Subgoal(action, tuple(self.types[i].lower() for i in objs), tuple(objs), tuple(interactions)))

    def openable(self, i: int) -> bool:
        return i >= 0 and object_type(self.types[i]).openable

    def wrap(self, c: int, steps: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """`steps`, between opening and closing `c` when it is openable."""
        return [("OpenObject", c), *steps, ("CloseObject", c)] if self.openable(c) else steps

    def pickup(self, o: int) -> None:
        self.add("PickupObject", [o], self.wrap(self.parent[o], [("PickupObject", o)]))
        self.parent[o] = -1

    def put(self, o: int, r: int) -> None:
        steps = self.wrap(r, [("PutObject", r)])
        self.add("PutObject", [o, r], self.wrap(self.parent[r], steps))  # r may stand in a closed receptacle
        self.parent[o] = r

    def fetch(self, o: int) -> None:
        self.goto(o)
        self.pickup(o)

    def slice_all(self, targets: Sequence[int]) -> None:
        knife = self.find(types_with("slicer"), "the knife")[0]
        self.fetch(knife)
        for o in targets:
            if self.parent[o] < 0:
                raise ValueError(f"object {o} ({self.types[o]}) must lie on or in a receptacle to be sliced")
            self.goto(o)
            self.add("SliceObject", [o], self.wrap(self.parent[o], [("SliceObject", o)]))
        self.put(knife, self.parent[targets[-1]])

    def change_state(self, o: int, state: str) -> None:
        if state == "cleaned":
            sink = self.find(("SinkBasin",), "cleaning")[0]
            faucet = self.find(("Faucet",), "cleaning")[0]
            self.goto(sink)
            steps = [("PutObject", sink), ("ToggleObjectOn", faucet), ("ToggleObjectOff", faucet), ("PickupObject", o)]
        else:
            app = self.find(types_with("heater" if state == "heated" else "cooler"), f"the {state} step")[0]
            self.goto(app)
            steps = [("OpenObject", app), ("PutObject", app), ("CloseObject", app)]
            if state == "heated":
                steps += [("ToggleObjectOn", app), ("ToggleObjectOff", app)]
            steps += [("OpenObject", app), ("PickupObject", o), ("CloseObject", app)]
        self.add(APPLIANCE[state], [o], steps)

    def build(self) -> list[Subgoal]:
        spec = self.spec
        kind = spec.task_type
        count = 2 if kind == "pick_two_obj_and_place" else 1
        targets = self.find((spec.object_target,), "object_target", count)
        parent = self.find((spec.parent_target,), "parent_target")[0] if spec.parent_target else -1
        mrecep = self.find((spec.mrecep_target,), "mrecep_target")[0] if spec.mrecep_target else -1
        lamp = self.find((spec.toggle_target,), "toggle_target")[0] if spec.toggle_target else -1
        if spec.object_sliced:
            self.slice_all(targets)
        if kind == "look_at_obj_in_light":
            self.fetch(targets[0])
            self.goto(lamp)
            self.add("ToggleObject", [lamp], [("ToggleObjectOn", lamp)])
        elif kind == "pick_and_place_with_movable_recep":
            self.fetch(targets[0])
            self.goto(mrecep)
            self.put(targets[0], mrecep)
            self.pickup(mrecep)
            self.goto(parent)
            self.put(mrecep, parent)
        else:
            for o in targets:
                already = self.parent[o] >= 0 and self.types[self.parent[o]] == spec.parent_target
                if already and kind not in STATE_CHANGE:
                    continue  # in place already (a sliced target sliced where it lies)
                self.fetch(o)
                if kind in STATE_CHANGE:
                    self.change_state(o, STATE_CHANGE[kind])
                self.goto(parent)
                self.put(o, parent)
        self.plan.append(Subgoal("NoOp", (), ()))
        return self.plan


def high_level_plan(spec: TaskSpec, objects: Sequence[tuple[str, int]]) -> list[Subgoal]:
    """ALFRED's high-level plan for `spec` in a scene with `objects` ((type, parent index) in slot order).
    A needed object absent from the scene is an error naming its type and role."""
    spec.check()
    return _Planner(spec, objects).build()
