"""Drawing ALFRED-style tasks that a household scene can hold (numpy rng, seeded).

    spec = sample_task(hs, rng)                        # any of the task types the scene allows
    spec = sample_task(hs, rng, "pick_cool_then_place_in_recep")
    feasible_task_types(hs)                            # the types it allows

What each type needs from the scene (besides a target that is a pickupable, not a movable receptacle):
a fixed receptacle of a type no target starts on (all but look_at); two targets of one type
(pick_two); a lamp (look_at); a SinkBasin with its Faucet (clean), a Microwave (heat), a Fridge (cool),
a movable receptacle (movable_recep). Heat and cool targets are food or drink vessels' contents
(the kitchen's foods). `object_sliced` is drawn with probability 0.3 where the target is sliceable
and a knife is in the scene.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from vlarena.datasets.alfred.objects import object_type, types_with
from vlarena.datasets.alfred.scenes import HouseholdScene
from vlarena.datasets.alfred.tasks import TASK_TYPES, TaskSpec

FOOD = ("Apple", "Bread", "Tomato", "Potato", "Lettuce", "Egg")
APPLIANCE = {"pick_clean_then_place_in_recep": "SinkBasin", "pick_heat_then_place_in_recep": "Microwave",
             "pick_cool_then_place_in_recep": "Fridge"}
SLICED_PROB = 0.3


def _targets(hs: HouseholdScene, task_type: str) -> list[str]:
    counts = Counter(o.type for o in hs.objects if o.furniture < 0)
    kinds = [k for k in counts if object_type(k).pickupable and not object_type(k).movable]
    if task_type == "pick_two_obj_and_place":
        kinds = [k for k in kinds if counts[k] >= 2]
    if task_type in ("pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep"):
        kinds = [k for k in kinds if k in FOOD]
    return sorted(kinds)


def _parents(hs: HouseholdScene, target: str) -> list[str]:
    """Fixed receptacle types that no target instance starts on."""
    fixed = sorted({o.type for o in hs.objects if o.furniture >= 0 and object_type(o.type).receptacle})
    starts = {hs.objects[o.parent].type for o in hs.objects if o.type == target and o.parent >= 0}
    return [p for p in fixed if p not in starts]


def feasible_task_types(hs: HouseholdScene) -> list[str]:
    present = {o.type for o in hs.objects}
    out = []
    for kind in TASK_TYPES:
        targets = _targets(hs, kind)
        if not targets:
            continue
        if kind == "look_at_obj_in_light" and not present & set(types_with("light")):
            continue
        if kind in APPLIANCE and APPLIANCE[kind] not in present:
            continue
        if kind == "pick_and_place_with_movable_recep" and not present & set(types_with("movable")):
            continue
        if kind != "look_at_obj_in_light" and not any(_parents(hs, t) for t in targets):
            continue
        out.append(kind)
    return out


def sample_task(hs: HouseholdScene, rng: np.random.Generator, task_type: str | None = None) -> TaskSpec:
    """A task of `task_type` (or of a random feasible type) in `hs`; infeasible types are an error naming them."""
    feasible = feasible_task_types(hs)
    if task_type is None:
        if not feasible:
            raise ValueError(f"scene {hs.scene.scene_id} ({hs.room_type}) allows no task type")
        task_type = feasible[int(rng.integers(len(feasible)))]
    elif task_type not in feasible:
        raise ValueError(f"scene {hs.scene.scene_id} ({hs.room_type}) cannot hold a {task_type} task; it allows "
                         f"{feasible}")

    def pick(options: list[str]) -> str:
        return options[int(rng.integers(len(options)))]

    present = {o.type for o in hs.objects}
    targets = _targets(hs, task_type)
    if task_type != "look_at_obj_in_light":
        targets = [t for t in targets if _parents(hs, t)]
    target = pick(targets)
    sliced = (object_type(target).sliceable and bool(present & set(types_with("slicer")))
              and rng.random() < SLICED_PROB)
    if task_type == "look_at_obj_in_light":
        return TaskSpec(task_type, target, toggle_target=pick(sorted(present & set(types_with("light")))),
                        object_sliced=sliced)
    parents = _parents(hs, target)
    if task_type in APPLIANCE:  # not back into the appliance that changes it
        parents = [p for p in parents if p != APPLIANCE[task_type]] or parents
    mrecep = pick(sorted(present & set(types_with("movable")))) if task_type.endswith("movable_recep") else ""
    return TaskSpec(task_type, target, parent_target=pick(parents), mrecep_target=mrecep, object_sliced=sliced)
