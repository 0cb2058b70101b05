"""A task's interactions by object type, for an agent that knows the task but not the scene (FILM's
"templates": the task type and its arguments fix the sequence of interactions; where the objects are,
the agent finds out). A PickupObject of a sliced task takes an instance the agent sliced.

    steps = interaction_steps(TaskSpec("pick_cool_then_place_in_recep", "Apple", parent_target="CounterTop"))
    steps[0]   # Step(action=PICKUP, types=frozenset({TYPE_INDEX["Apple"]}))

Each Step names an interaction (household.world.INTERACTIONS index) and the object types it may act on.
Receptacles that are openable are opened before a PutObject into them and left open (no goal asks for
them closed); the Faucet is left running after it has cleaned; a sliced task fetches a Knife or ButterKnife,
slices the target (both, for pick_two) where it lies and puts the knife down on whatever surface is in front of it. The
state changes follow ALFRED's expert: the fridge cools what is in it when it is closed, the microwave heats
while switched on with its door closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlarena.datasets.alfred.objects import OBJECT_TYPES, TYPE_INDEX, object_type, types_with
from vlarena.datasets.alfred.tasks import TaskSpec
from vlarena.envs.household.world import CLOSE, OPEN, PICKUP, PUT, SLICE, TOGGLE_OFF, TOGGLE_ON


@dataclass(frozen=True)
class Step:
    action: int  # household.world.INTERACTIONS index
    types: frozenset[int]  # object types (objects.TYPE_INDEX) it may act on
    new_instance: bool = False  # a PickupObject that must take an instance not already used (pick_two)
    sliced: bool = False  # a PickupObject that must take an instance the agent sliced


def _types(*names: str) -> frozenset[int]:
    return frozenset(TYPE_INDEX[n] for n in names)


SLICERS = _types(*types_with("slicer"))
SURFACES = frozenset(i for i, t in enumerate(OBJECT_TYPES) if t.receptacle and not t.movable and not t.openable
                     and t.name != "SinkBasin")  # where a knife may be put down


def _put(receptacle: str) -> list[Step]:
    r = _types(receptacle)
    return ([Step(OPEN, r)] if object_type(receptacle).openable else []) + [Step(PUT, r)]


def _pick(name: str, new_instance: bool = False, sliced: bool = False) -> list[Step]:
    return [Step(PICKUP, _types(name), new_instance, sliced)]


def interaction_steps(spec: TaskSpec) -> list[Step]:
    """The interactions that complete `spec` (checked), by object type, in order."""
    spec.check()
    o, r, kind = spec.object_target, spec.parent_target, spec.task_type
    steps: list[Step] = []
    two, sliced = kind == "pick_two_obj_and_place", spec.object_sliced
    if sliced:
        steps += [Step(PICKUP, SLICERS)] + [Step(SLICE, _types(o))] * (2 if two else 1) + [Step(PUT, SURFACES)]
    steps += _pick(o, sliced=sliced)
    if kind == "pick_and_place_simple":
        steps += _put(r)
    elif two:
        steps += _put(r) + _pick(o, new_instance=True, sliced=sliced) + _put(r)
    elif kind == "look_at_obj_in_light":
        steps += [Step(TOGGLE_ON, _types(spec.toggle_target))]
    elif kind == "pick_clean_then_place_in_recep":
        steps += _put("SinkBasin") + [Step(TOGGLE_ON, _types("Faucet"))] + _pick(o, sliced=sliced) + _put(r)
    elif kind == "pick_heat_then_place_in_recep":
        mw = _types("Microwave")
        steps += [Step(OPEN, mw), Step(PUT, mw), Step(CLOSE, mw), Step(TOGGLE_ON, mw), Step(TOGGLE_OFF, mw),
                  Step(OPEN, mw)] + _pick(o, sliced=sliced) + _put(r)
    elif kind == "pick_cool_then_place_in_recep":
        fr = _types("Fridge")
        steps += [Step(OPEN, fr), Step(PUT, fr), Step(CLOSE, fr), Step(OPEN, fr)] + _pick(o, sliced=sliced) + _put(r)
    elif kind == "pick_and_place_with_movable_recep":
        steps += _put(spec.mrecep_target) + _pick(spec.mrecep_target) + _put(r)
    return steps
