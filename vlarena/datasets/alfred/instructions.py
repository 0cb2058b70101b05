"""ALFRED-style language from a task and its plan: a goal description (`task_desc`) and one step
instruction per high-level subgoal (`high_descs`; the closing NoOp has none), wording drawn at
random from templates (seeded: the same rng state gives the same words).

    task_desc, high_descs = describe(spec, plan, random.Random(0))
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from vlarena.datasets.alfred.objects import object_type
from vlarena.datasets.alfred.planner import Subgoal
from vlarena.datasets.alfred.tasks import TaskSpec

GOALS: dict[str, tuple[str, ...]] = {
    "pick_and_place_simple": ("Put {a_obj} {on} the {parent}.", "Place {a_obj} {on} the {parent}.",
                              "Move {a_obj} to the {parent}."),
    "pick_two_obj_and_place": ("Put two {objs} {on} the {parent}.", "Place two {objs} {on} the {parent}.",
                               "Move a pair of {objs} to the {parent}."),
    "look_at_obj_in_light": ("Examine {a_obj} under the light of the {lamp}.", "Look at {a_obj} by the {lamp}.",
                             "Inspect {a_obj} with the {lamp} switched on."),
    "pick_clean_then_place_in_recep": ("Put a clean {obj} {on} the {parent}.", "Wash {a_obj} and put it {on} the "
                                       "{parent}.", "Rinse {a_obj} and place it {on} the {parent}."),
    "pick_heat_then_place_in_recep": ("Put a heated {obj} {on} the {parent}.", "Heat {a_obj} and put it {on} the "
                                      "{parent}.", "Warm up {a_obj} and place it {on} the {parent}."),
    "pick_cool_then_place_in_recep": ("Put a chilled {obj} {on} the {parent}.", "Cool {a_obj} and put it {on} the "
                                      "{parent}.", "Chill {a_obj} and place it {on} the {parent}."),
    "pick_and_place_with_movable_recep": ("Put {a_obj} in a {mrecep} {on} the {parent}.",
                                          "Move {a_obj} in a {mrecep} to the {parent}.",
                                          "Place a {mrecep} with {a_obj} in it {on} the {parent}."),
}
STEPS: dict[str, tuple[str, ...]] = {
    "GotoLocation": ("Walk to the {0}.", "Go to the {0}.", "Head over to the {0}.", "Turn around and go to the {0}.",
                     "Make your way to the {0}."),
    "PickupObject": ("Pick up the {0}.", "Take the {0}.", "Grab the {0}{from_}.", "Pick the {0} up{from_}."),
    "PutObject": ("Put the {0} {on} the {1}.", "Place the {0} {on} the {1}.", "Set the {0} down {on} the {1}."),
    "ToggleObject": ("Turn on the {0}.", "Switch the {0} on.", "Turn the {0} on."),
    "HeatObject": ("Heat the {0} in the microwave.", "Warm the {0} up in the microwave.",
                   "Cook the {0} in the microwave, then take it out."),
    "CoolObject": ("Cool the {0} in the fridge.", "Chill the {0} in the fridge, then take it out.",
                   "Put the {0} in the fridge to cool it, then take it out."),
    "CleanObject": ("Rinse the {0} in the sink.", "Wash the {0} in the sink.", "Clean the {0} under the tap."),
    "SliceObject": ("Slice the {0}.", "Cut the {0} into slices.", "Use the knife to slice the {0}."),
}
INSIDE = ("Fridge", "Microwave", "Cabinet", "Drawer", "SinkBasin", "GarbageCan", "Bowl", "Cup", "Mug", "Pot", "Pan",
          "Box")


def words(name: str) -> str:
    return object_type(name).words


def preposition(name: str) -> str:
    return "in" if name in INSIDE else "on"


def article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def plural(phrase: str) -> str:
    head, _, rest = phrase.partition(" of ")
    head = head + ("es" if head.endswith(("sh", "ch", "x", "s", "o")) else "s")
    return f"{head} of {rest}" if rest else head


def _object_phrase(spec: TaskSpec) -> str:
    return ("sliced " if spec.object_sliced else "") + words(spec.object_target)


def goal_description(spec: TaskSpec, rng: random.Random) -> str:
    obj = _object_phrase(spec)
    fields = {"obj": obj, "a_obj": article(obj), "objs": plural(obj), "on": preposition(spec.parent_target)}
    for role in ("parent", "lamp", "mrecep"):
        name = {"parent": spec.parent_target, "lamp": spec.toggle_target, "mrecep": spec.mrecep_target}[role]
        fields[role] = words(name) if name else ""
    return rng.choice(GOALS[spec.task_type]).format(**fields)


def step_instruction(sub: Subgoal, type_names: Sequence[str], parents: Sequence[int], rng: random.Random) -> str:
    """The instruction for one subgoal; `type_names`/`parents` describe the scene at that point of the plan."""
    names = [type_names[i] for i in sub.objects]
    phrases = [words(n) for n in names]
    extra = {"on": preposition(names[-1]) if names else "", "from_": ""}
    if sub.action == "PickupObject" and parents[sub.objects[0]] >= 0:
        source = type_names[parents[sub.objects[0]]]
        extra["from_"] = f" {'from' if preposition(source) == 'on' else 'out of'} the {words(source)}"
    return rng.choice(STEPS[sub.action]).format(*phrases, **extra)


def describe(spec: TaskSpec, plan: Sequence[Subgoal], objects: Sequence[tuple[str, int]],
             rng: random.Random) -> tuple[str, list[str]]:
    """(task_desc, high_descs): the goal and one instruction per subgoal but the final NoOp."""
    types = [t for t, _ in objects]
    parents = [p for _, p in objects]
    steps = []
    for sub in plan:
        if sub.action == "NoOp":
            continue
        steps.append(step_instruction(sub, types, parents, rng))
        if sub.action == "PickupObject":
            parents[sub.objects[0]] = -1
        elif sub.action == "PutObject":
            parents[sub.objects[0]] = sub.objects[1]
    return goal_description(spec, rng), steps
