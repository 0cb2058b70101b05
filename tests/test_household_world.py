"""Each interaction's preconditions and effects in the batched household world; failures change nothing."""

from __future__ import annotations

import pytest
import torch

from vlarena.envs.household.world import (
    CLOSE,
    INTERACTIONS,
    OPEN,
    PICKUP,
    PUT,
    SLICE,
    STATES,
    TOGGLE_OFF,
    TOGGLE_ON,
    HouseholdWorld,
)

TYPES = ["CounterTop", "Fridge", "Microwave", "SinkBasin", "Faucet", "Apple", "Knife", "Bowl", "Plate", "DeskLamp",
         "Egg"]
PARENTS = [-1, -1, -1, -1, -1, 0, 0, 0, 0, -1, 1]  # the egg is in the (closed) fridge
COUNTER, FRIDGE, MICROWAVE, SINK, FAUCET, APPLE, KNIFE, BOWL, PLATE, LAMP, EGG = range(len(TYPES))


def world(n=1):
    return HouseholdWorld.from_types([TYPES] * n, [PARENTS] * n)


def step(w, action, target):
    return bool(w.interact(torch.tensor([action]), torch.tensor([target]))[0])


def snapshot(w):
    return {k: v.clone() for k, v in w.__dict__.items()}


def assert_fails_unchanged(w, action, target):
    before = snapshot(w)
    assert not step(w, action, target), (INTERACTIONS[action], target)
    for k, v in before.items():
        assert torch.equal(getattr(w, k), v), k


def test_pickup_and_put():
    w = world()
    assert_fails_unchanged(w, PICKUP, COUNTER)  # not pickupable
    assert_fails_unchanged(w, PICKUP, -1)       # nothing in view
    assert_fails_unchanged(w, PUT, COUNTER)     # hands empty
    assert_fails_unchanged(w, PICKUP, EGG)      # inside the closed fridge
    assert step(w, PICKUP, APPLE) and int(w.held[0]) == APPLE and int(w.parent[0, APPLE]) == -1
    assert_fails_unchanged(w, PICKUP, KNIFE)    # hands full
    assert_fails_unchanged(w, PUT, FRIDGE)      # closed
    assert_fails_unchanged(w, PUT, KNIFE)       # not a receptacle
    assert_fails_unchanged(w, PUT, APPLE)       # the held object itself
    assert step(w, PUT, BOWL) and int(w.held[0]) == -1 and int(w.parent[0, APPLE]) == BOWL
    assert step(w, PICKUP, BOWL)                # the bowl carries the apple
    assert int(w.parent[0, APPLE]) == BOWL and bool(w.hidden()[0, APPLE]) and bool(w.hidden()[0, BOWL])
    assert_fails_unchanged(w, PUT, PLATE)       # a movable receptacle into another
    assert step(w, PUT, COUNTER) and w.hidden()[0].nonzero().flatten().tolist() == [EGG]  # only the egg in the fridge


def test_open_close_and_cooling():
    w = world()
    assert_fails_unchanged(w, CLOSE, FRIDGE)    # already closed
    assert_fails_unchanged(w, OPEN, COUNTER)    # not openable
    assert step(w, OPEN, FRIDGE) and bool(w.is_open[0, FRIDGE])
    assert_fails_unchanged(w, OPEN, FRIDGE)     # already open
    assert step(w, PICKUP, APPLE) and step(w, PUT, FRIDGE)
    assert not w.cooled.any()
    assert step(w, CLOSE, FRIDGE)
    assert w.cooled[0].nonzero().flatten().tolist() == [APPLE, EGG]  # what is inside, not the fridge


def test_toggle_heating_and_cleaning():
    w = world()
    assert step(w, PICKUP, BOWL) and step(w, OPEN, MICROWAVE)
    assert_fails_unchanged(w, TOGGLE_ON, MICROWAVE)  # open
    assert step(w, PUT, MICROWAVE) and step(w, CLOSE, MICROWAVE)
    assert step(w, TOGGLE_ON, MICROWAVE)
    assert w.heated[0].nonzero().flatten().tolist() == [BOWL]
    assert_fails_unchanged(w, OPEN, MICROWAVE)       # running
    assert_fails_unchanged(w, TOGGLE_ON, MICROWAVE)  # already on
    assert step(w, TOGGLE_OFF, MICROWAVE) and not bool(w.is_on[0, MICROWAVE])
    assert_fails_unchanged(w, TOGGLE_OFF, MICROWAVE)
    assert_fails_unchanged(w, TOGGLE_ON, APPLE)      # not toggleable

    assert step(w, PICKUP, PLATE) and step(w, PUT, SINK)
    assert step(w, TOGGLE_ON, FAUCET)
    assert w.cleaned[0].nonzero().flatten().tolist() == [PLATE]
    assert step(w, TOGGLE_ON, LAMP) and bool(w.is_on[0, LAMP]) and not w.cleaned[0, LAMP]


def test_slicing_needs_a_knife_in_hand():
    w = world()
    assert_fails_unchanged(w, SLICE, APPLE)          # empty hands
    assert step(w, PICKUP, BOWL)
    assert_fails_unchanged(w, SLICE, APPLE)          # a bowl is no knife
    assert step(w, PUT, COUNTER) and step(w, PICKUP, KNIFE)
    assert_fails_unchanged(w, SLICE, BOWL)           # not sliceable
    assert_fails_unchanged(w, SLICE, EGG)            # not sliceable, and hidden
    assert step(w, SLICE, APPLE) and bool(w.sliced[0, APPLE])
    assert_fails_unchanged(w, SLICE, APPLE)          # already sliced


def test_envs_act_independently_and_bad_input_is_refused():
    w = world(3)
    ok = w.interact(torch.tensor([PICKUP, OPEN, SLICE]), torch.tensor([APPLE, FRIDGE, APPLE]))
    assert ok.tolist() == [True, True, False]
    assert w.held.tolist() == [APPLE, -1, -1] and w.is_open[:, FRIDGE].tolist() == [False, True, False]
    assert set(STATES) <= set(w.__dict__)
    with pytest.raises(ValueError, match=r"action and target must have shape \(3,\)"):
        w.interact(torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="interaction ids must be in \\[0, 7\\)"):
        w.interact(torch.tensor([0, 9, 0]), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="unknown object type 'Banana'"):
        HouseholdWorld.from_types([["Banana"]])
    with pytest.raises(ValueError, match="slot 1 \\(Apple\\): its parent slot 0 is not a receptacle"):
        HouseholdWorld.from_types([["Knife", "Apple"]], [[-1, 0]])
    with pytest.raises(ValueError, match="a Faucet needs exactly one SinkBasin"):
        HouseholdWorld.from_types([["Faucet"]])
