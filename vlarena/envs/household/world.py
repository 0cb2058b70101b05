"""The batched household world: objects, their states, and ALFRED's interaction actions.

    world = HouseholdWorld.from_types([["Apple", "CounterTop", "Fridge"], ...], device="cpu")
    ok = world.interact(action, target)      # (B,) action ids from INTERACTIONS, (B,) object slots or -1

State (B envs, N object slots, padding slots have otype -1), all tensors on one device:

    otype    (B, N) long   index into OBJECT_TYPES
    parent   (B, N) long   slot of the receptacle the object is in or on; -1: none (fixed, or held)
    partner  (B, N) long   a Faucet's SinkBasin slot; -1 otherwise
    held     (B,)   long   slot the agent holds; -1: empty-handed
    is_open, is_on, sliced, heated, cooled, cleaned   (B, N) bool

`interact` applies one interaction per env, vectorised (no Python loop over envs). Where its
preconditions fail it changes nothing and returns False: ALFRED's failed action. Preconditions
(AI2-THOR's, as ALFRED uses them):

    PickupObject(t)     t pickupable, hands empty, t not inside a closed receptacle
    PutObject(t)        holding h, t a receptacle other than h, open if openable; a movable
                        receptacle does not go into another movable receptacle
    OpenObject(t)       t openable and closed, and not switched on (a running microwave)
    CloseObject(t)      t openable and open; closing a Fridge cools what is inside it
    ToggleObjectOn(t)   t toggleable and off, and closed if openable; a Microwave heats what is
                        inside it, a Faucet cleans what is in its SinkBasin
    ToggleObjectOff(t)  t toggleable and on
    SliceObject(t)      t sliceable and not sliced, holding a slicer (Knife, ButterKnife)

"Inside r" is two levels deep: an apple in a bowl in the fridge is inside the fridge. Held objects
carry their contents (their contents keep `parent` = the held object).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlarena.datasets.alfred.objects import FLAGS, OBJECT_TYPES, TYPE_INDEX, object_type

INTERACTIONS: tuple[str, ...] = ("PickupObject", "PutObject", "OpenObject", "CloseObject", "ToggleObjectOn",
                                 "ToggleObjectOff", "SliceObject")
PICKUP, PUT, OPEN, CLOSE, TOGGLE_ON, TOGGLE_OFF, SLICE = range(len(INTERACTIONS))
STATES: tuple[str, ...] = ("is_open", "is_on", "sliced", "heated", "cooled", "cleaned")
ACTION_AFFORDANCE: tuple[str, ...] = ("pickupable", "receptacle", "openable", "openable", "toggleable", "toggleable",
                                      "sliceable")  # what each interaction's object must be

# affordance table: (num types, num flags) bool, looked up by otype
_AFFORD = torch.tensor([[getattr(t, f) for f in FLAGS] for t in OBJECT_TYPES], dtype=torch.bool)


@dataclass
class HouseholdWorld:
    otype: torch.Tensor
    parent: torch.Tensor
    partner: torch.Tensor
    held: torch.Tensor
    is_open: torch.Tensor
    is_on: torch.Tensor
    sliced: torch.Tensor
    heated: torch.Tensor
    cooled: torch.Tensor
    cleaned: torch.Tensor

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_types(cls, types: Sequence[Sequence[str]], parents: Sequence[Sequence[int]] | None = None,
                   device: str | torch.device = "cpu", num_slots: int | None = None) -> HouseholdWorld:
        """A world of B envs from each env's object type names (slot order) and optional parent slots,
        with `num_slots` slots per env (default: the most objects of any env).
        Faucets are paired with the SinkBasin of their env (an env with a Faucet needs exactly one)."""
        b, n = len(types), max((len(t) for t in types), default=0)
        if num_slots is not None:
            if num_slots < n:
                raise ValueError(f"num_slots ({num_slots}) must be at least the most objects of an env ({n})")
            n = num_slots
        otype = torch.full((b, n), -1, dtype=torch.long)
        parent = torch.full((b, n), -1, dtype=torch.long)
        partner = torch.full((b, n), -1, dtype=torch.long)
        for i, names in enumerate(types):
            ids = [TYPE_INDEX[object_type(name).name] for name in names]
            otype[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            if parents is not None:
                if len(parents[i]) != len(names):
                    raise ValueError(f"env {i}: {len(parents[i])} parents for {len(names)} objects")
                parent[i, :len(names)] = torch.tensor(list(parents[i]), dtype=torch.long)
            sinks = [j for j, name in enumerate(names) if name == "SinkBasin"]
            for j, name in enumerate(names):
                if name == "Faucet":
                    if len(sinks) != 1:
                        raise ValueError(f"env {i}: a Faucet needs exactly one SinkBasin in its env, found {len(sinks)}")
                    partner[i, j] = sinks[0]
        zeros = torch.zeros((b, n), dtype=torch.bool)
        world = cls(otype, parent, partner, torch.full((b,), -1, dtype=torch.long),
                    *(zeros.clone() for _ in STATES))
        world.check()
        return world.to(device)

    def to(self, device: str | torch.device) -> HouseholdWorld:
        return HouseholdWorld(**{k: v.to(device) for k, v in self.__dict__.items()})

    def clone(self) -> HouseholdWorld:
        return HouseholdWorld(**{k: v.clone() for k, v in self.__dict__.items()})

    def check(self) -> None:
        """Structural checks with errors that name the env and slot (parents must be receptacles)."""
        real = self.otype >= 0
        bad = real & (self.parent >= 0) & ~self.has("receptacle", self.gather(self.otype, self.parent))
        bad |= (self.parent >= self.otype.shape[1]) | (self.parent == torch.arange(self.otype.shape[1]))
        bad |= real & (self.parent >= 0) & self.has("movable", self.otype) & \
            self.has("movable", self.gather(self.otype, self.parent))
        if bad.any():
            i, j = (int(v) for v in bad.nonzero()[0])
            raise ValueError(f"env {i} slot {j} ({OBJECT_TYPES[int(self.otype[i, j])].name}): its parent slot "
                             f"{int(self.parent[i, j])} is not a receptacle that can hold it")

    # ---- lookups ------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.otype.shape[0]

    @staticmethod
    def gather(values: torch.Tensor, index: torch.Tensor, fill: int | bool = -1) -> torch.Tensor:
        """values[b, index[b, ...]] with `fill` where index is -1 (values (B, N), index (B,) or (B, N))."""
        squeeze = index.dim() == 1
        idx = index[:, None] if squeeze else index
        out = values.gather(1, idx.clamp(min=0))
        out = torch.where(idx >= 0, out, torch.as_tensor(fill, dtype=values.dtype, device=values.device))
        return out[:, 0] if squeeze else out

    @staticmethod
    def gather_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """values[b, index[b, n], :] for values (B, N, D) and index (B, N); rows where index is -1 read slot 0."""
        idx = index.clamp(min=0)[..., None].expand(*index.shape, values.shape[-1])
        return values.gather(1, idx)

    @staticmethod
    def has(flag: str, otype: torch.Tensor) -> torch.Tensor:
        """The affordance `flag` of object types `otype` (any shape; -1 -> False)."""
        table = _AFFORD.to(otype.device)
        return table[otype.clamp(min=0), FLAGS.index(flag)] & (otype >= 0)

    def affordances(self) -> torch.Tensor:
        """(A, B, N) bool: objects of a kind that each of the A INTERACTIONS applies to (state aside)."""
        return torch.stack([self.has(f, self.otype) for f in ACTION_AFFORDANCE], 0)

    def allowed(self, action: torch.Tensor) -> torch.Tensor:
        """(B, N) bool: objects of a kind that INTERACTIONS[action[b]] applies to (state aside)."""
        return self.affordances()[action.clamp(0, len(INTERACTIONS) - 1),
                                  torch.arange(self.batch_size, device=action.device)]

    def inside(self, receptacle: torch.Tensor) -> torch.Tensor:
        """(B, N) bool: objects in `receptacle` (B,) slots, directly or inside something in it."""
        r = receptacle[:, None]
        grand = self.gather(self.parent, self.parent)
        return (r >= 0) & ((self.parent == r) | (grand == r))

    def hidden(self) -> torch.Tensor:
        """(B, N) bool: objects inside a closed receptacle (or inside something inside one) and the held one."""
        closed = self.has("openable", self.otype) & ~self.is_open
        in_closed = self.gather(closed, self.parent, False) | self.gather(closed, self.gather(self.parent, self.parent),
                                                                          False)
        held = torch.zeros_like(in_closed)
        held.scatter_(1, self.held.clamp(min=0)[:, None], (self.held >= 0)[:, None])
        return in_closed | held | self.gather(held, self.parent, False)

    # ---- the interactions ---------------------------------------------------------------------
    def interact(self, action: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Apply INTERACTIONS[action[b]] to slot target[b] in every env b; (B,) bool: which succeeded."""
        b = self.batch_size
        if action.shape != (b,) or target.shape != (b,):
            raise ValueError(f"action and target must have shape ({b},), got {tuple(action.shape)} and "
                             f"{tuple(target.shape)}")
        if ((action < 0) | (action >= len(INTERACTIONS))).any():
            raise ValueError(f"interaction ids must be in [0, {len(INTERACTIONS)}) ({list(INTERACTIONS)}), got "
                             f"{action.tolist()}")
        rows = torch.arange(b, device=target.device)
        t = target.clamp(min=0)
        tt = self.gather(self.otype, target)  # target's type, -1 where no target
        valid = (target >= 0) & (target < self.otype.shape[1]) & (tt >= 0) & (target != self.held)
        hands_empty = self.held < 0
        is_open, is_on, sliced = (s[rows, t] for s in (self.is_open, self.is_on, self.sliced))
        openable, toggleable = self.has("openable", tt), self.has("toggleable", tt)
        held_type = self.gather(self.otype, self.held)
        accessible = ~self.hidden()[rows, t]

        ok = torch.zeros(b, dtype=torch.bool, device=target.device)
        ok |= (action == PICKUP) & self.has("pickupable", tt) & hands_empty & accessible
        ok |= (action == PUT) & ~hands_empty & self.has("receptacle", tt) & (~openable | is_open) & accessible & \
            ~(self.has("movable", held_type) & self.has("movable", tt))
        ok |= (action == OPEN) & openable & ~is_open & ~is_on
        ok |= (action == CLOSE) & openable & is_open
        ok |= (action == TOGGLE_ON) & toggleable & ~is_on & (~openable | ~is_open)
        ok |= (action == TOGGLE_OFF) & toggleable & is_on
        ok |= (action == SLICE) & self.has("sliceable", tt) & ~sliced & self.has("slicer", held_type) & accessible
        ok &= valid

        def done(ids: int) -> torch.Tensor:
            return ok & (action == ids)

        # effects, each on the envs where that action succeeded
        put = done(PUT)
        held_slot = self.held.clamp(min=0)
        self.parent[rows[put], held_slot[put]] = target[put]
        pick = done(PICKUP)
        self.parent[rows[pick], t[pick]] = -1
        self.held = torch.where(pick, target, torch.where(put, torch.full_like(self.held, -1), self.held))
        for ids, state, value in ((OPEN, self.is_open, True), (CLOSE, self.is_open, False),
                                  (TOGGLE_ON, self.is_on, True), (TOGGLE_OFF, self.is_on, False),
                                  (SLICE, self.sliced, True)):
            mask = done(ids)
            state[rows[mask], t[mask]] = value
        self.cooled |= self.inside(torch.where(done(CLOSE) & self.has("cooler", tt), target, -1))
        on = done(TOGGLE_ON)
        self.heated |= self.inside(torch.where(on & self.has("heater", tt), target, -1))
        sink = self.gather(self.partner, target)
        self.cleaned |= self.inside(torch.where(on & self.has("cleaner", tt), sink, -1))
        return ok
