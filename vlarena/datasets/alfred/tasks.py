"""ALFRED's seven task types and their parameters (`pddl_params` of traj_data.json); pure data.

    spec = TaskSpec("pick_heat_then_place_in_recep", object_target="Potato", parent_target="CounterTop")
    spec.check()        # errors name the parameter and what is accepted

Goal conditions (counted as ALFRED's `goal_conditions_met` counts them, alfred/env/tasks.py; one
more for `object_sliced`: some target object is sliced). "Target objects" are the objects of
type `object_target`, only sliced ones when `object_sliced`:

    pick_and_place_simple              1: a target object is in/on a `parent_target`
    pick_two_obj_and_place             2: min(number of target objects in/on a parent, 2)
    look_at_obj_in_light               2: a `toggle_target` lamp is on; the agent holds a target object
    pick_clean_then_place_in_recep     3: a target object in/on a parent; one is cleaned; one is both
    pick_heat_then_place_in_recep      3: the same with heated
    pick_cool_then_place_in_recep      3: the same with cooled
    pick_and_place_with_movable_recep  3: a target object in a `mrecep_target`; such a mrecep in/on a
                                          parent; a target object in a mrecep that is in/on a parent

A task succeeds when all its goal conditions hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vlarena.datasets.alfred.objects import object_type

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple", "pick_two_obj_and_place", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_and_place_with_movable_recep")
BASE_GOAL_CONDITIONS: dict[str, int] = {
    "pick_and_place_simple": 1, "pick_two_obj_and_place": 2, "look_at_obj_in_light": 2,
    "pick_clean_then_place_in_recep": 3, "pick_heat_then_place_in_recep": 3, "pick_cool_then_place_in_recep": 3,
    "pick_and_place_with_movable_recep": 3}
STATE_CHANGE: dict[str, str] = {"pick_clean_then_place_in_recep": "cleaned", "pick_heat_then_place_in_recep": "heated",
                                "pick_cool_then_place_in_recep": "cooled"}


@dataclass(frozen=True)
class TaskSpec:
    """One task: its type and ALFRED's pddl_params (empty strings where a task type has no such role)."""

    task_type: str
    object_target: str
    parent_target: str = ""
    toggle_target: str = ""
    mrecep_target: str = ""
    object_sliced: bool = False

    @property
    def num_goal_conditions(self) -> int:
        return BASE_GOAL_CONDITIONS[self.task_type] + int(self.object_sliced)

    def pddl_params(self) -> dict[str, Any]:
        """ALFRED's `pddl_params` block."""
        out = asdict(self)
        del out["task_type"]
        return out

    @classmethod
    def from_pddl(cls, task_type: str, params: dict[str, Any]) -> TaskSpec:
        known = {"object_target", "parent_target", "toggle_target", "mrecep_target", "object_sliced"}
        missing = sorted(known - set(params))
        if missing:
            raise ValueError(f"pddl_params lacks {missing}; it needs {sorted(known)}")
        spec = cls(task_type, **{k: params[k] for k in known})
        spec.check()
        return spec

    def check(self) -> None:
        """Each parameter present where the task type needs it, absent where it does not, and of a fitting type."""
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {list(TASK_TYPES)}, got {self.task_type!r}")
        if not isinstance(self.object_sliced, bool):
            raise ValueError(f"object_sliced must be a bool, got {self.object_sliced!r}")
        obj = object_type(self.object_target, "object_target")
        if not obj.pickupable or obj.movable:
            raise ValueError(f"object_target must be a pickupable object that is not a movable receptacle, got "
                             f"{self.object_target!r}")
        if self.object_sliced and not obj.sliceable:
            raise ValueError(f"object_sliced needs a sliceable object_target, got {self.object_target!r}")
        look = self.task_type == "look_at_obj_in_light"
        mrecep = self.task_type == "pick_and_place_with_movable_recep"
        self._role("parent_target", not look, "receptacle", movable=False)
        self._role("toggle_target", look, "light")
        self._role("mrecep_target", mrecep, "movable")

    def _role(self, name: str, needed: bool, flag: str, movable: bool | None = None) -> None:
        value = getattr(self, name)
        if not needed:
            if value:
                raise ValueError(f"{name} must be empty for {self.task_type}, got {value!r}")
            return
        kind = object_type(value, name) if value else None
        if kind is None or not getattr(kind, flag) or (movable is not None and kind.movable != movable):
            what = {"receptacle": "a fixed receptacle", "light": "a lamp", "movable": "a movable receptacle"}[flag]
            raise ValueError(f"{name} must be {what} for {self.task_type}, got {value!r}")
