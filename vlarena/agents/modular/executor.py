"""One episode of the modular agent: its task's interaction steps carried out on the map it builds.

    ex = Executor(steps)                                   # subgoals.interaction_steps(spec)
    action = ex.act(cells, (i, j, k), h, segmentation, depth, failed)   # every step (alfred_env.ACTIONS index)

It turns once around first (`look_around`), then, for the current interaction step:
1. **act** when the env's own rule (appearance.HouseholdLook.target: among the centre window's pixels within
   REACH whose object the interaction applies to, the one nearest the centre) picks an object of one of the
   step's types, read off the segmentation (a pick_two step skips the instance it used; a sliced task's
   pickup takes the instance it sliced; picking up a movable receptacle takes the one it filled); an
   OpenObject of something it opened is skipped;
2. else **go** to the nearest pose (cell and heading) whose cone (`cone`: 1-5 cells ahead, near the centre
   line; straight ahead only for the small, movable receptacles) holds a mapped cell of such an object; there, LookUp/LookDown towards the object's pixels in the
   centre columns, and give the pose up when that does not bring it into the window;
3. else **explore**: go to the nearest mapped floor cell that faces an unmapped one (a frontier);
4. else look over the surfaces (fixed receptacles), then open what can be opened, one by one (what it looks
   for may be inside); else STOP (the episode fails).
Obstacles: cells marked as wall or object, the cells next to a wall mark (on the maps of 8 episodes all of
them collide: the agent's radius is 0.18 m) and, while a route exists without them, the cells next to an object
mark (a fifth of them collide); unmapped cells are assumed free until seen, and a cell that a MoveAhead into
failed is an obstacle from then on. Routes: breadth-first search from the agent, MoveAhead before the turns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vlarena.agents.modular.subgoals import SURFACES, Step
from vlarena.datasets.alfred.objects import FLAGS, OBJECT_TYPES
from vlarena.envs.household.appearance import REACH, WINDOW
from vlarena.envs.household.navigate import HORIZONS, STEP
from vlarena.envs.household.world import ACTION_AFFORDANCE, CLOSE, OPEN, PICKUP, PUT, SLICE

STOP, MOVE_AHEAD, FIRST_INTERACTION = 0, 1, 6  # alfred_env.ACTIONS
ROTATE_LEFT, LOOK_UP, LOOK_DOWN = 2, 4, 5
MAX_AHEAD = 5  # cells: the farthest a goal pose's object lies ahead
MOVABLE = frozenset(i for i, t in enumerate(OBJECT_TYPES) if t.movable)  # small receptacles: faced head-on
OPENABLE = frozenset(i for i, t in enumerate(OBJECT_TYPES) if t.openable)
# (types + 1) -> affordance flag, for the env's target rule; index 0 is "no object"
_AFFORD = torch.tensor([[False] * len(FLAGS)] + [[getattr(t, f) for f in FLAGS] for t in OBJECT_TYPES])


def window_pick(segmentation: torch.Tensor, depth: torch.Tensor, action: int) -> tuple[int, int]:
    """(type, instance) the env's interaction `action` would act on in this view (-1, -1 for none):
    appearance.HouseholdLook.target's rule on the agent's own segmentation."""
    h, w = segmentation.shape[:2]
    r0, c0 = h // 2, w // 2
    seg = segmentation[r0 - WINDOW:r0 + WINDOW + 1, c0 - WINDOW:c0 + WINDOW + 1].long()
    d = depth[r0 - WINDOW:r0 + WINDOW + 1, c0 - WINDOW:c0 + WINDOW + 1, 0]
    ok = (seg[..., 1] > 0) & (d <= REACH) & _AFFORD[seg[..., 0], FLAGS.index(ACTION_AFFORDANCE[action])]
    if not bool(ok.any()):
        return -1, -1
    off = torch.arange(-WINDOW, WINDOW + 1)
    dist = torch.where(ok, (off[:, None] ** 2 + off[None, :] ** 2).float(), float("inf"))
    best = int(dist.flatten().argmin())
    t, inst = seg.reshape(-1, 2)[best].tolist()
    return t - 1, inst - 1


CONE = tuple((a, side) for a in range(1, MAX_AHEAD + 1) for side in ((0,) if a <= 2 else (-1, 0, 1)))


def cone(pose: tuple[int, int, int], narrow: bool = False) -> list[tuple[int, int]]:
    """The cells a pose faces: 1..MAX_AHEAD cells ahead, near the view's centre line (0 cells aside up to 2
    ahead, 1 cell aside from 3)."""
    i, j, k = pose
    (di, dj), (li, lj) = STEP[k], STEP[(k + 1) % 4]
    return [(i + a * di + side * li, j + a * dj + side * lj) for a, side in CONE if not (narrow and side)]


def facing(targets: torch.Tensor, narrow: bool = False) -> torch.Tensor:
    """(R, C, 4) bool: poses whose cone holds a `targets` (R, C) cell."""
    r, c = targets.shape
    out = torch.zeros(r, c, 4, dtype=torch.bool)
    pad = MAX_AHEAD + 1
    big = torch.zeros(r + 2 * pad, c + 2 * pad, dtype=torch.bool)
    big[pad:pad + r, pad:pad + c] = targets
    for k in range(4):
        for oi, oj in cone((pad, pad, k), narrow):
            out[..., k] |= big[oi:oi + r, oj:oj + c]
    return out


def ahead(mask: torch.Tensor) -> torch.Tensor:
    """(R, C, 4): `mask` (R, C) at the cell one MoveAhead from (i, j) with heading k (True beyond the grid)."""
    r, c = mask.shape
    out = torch.ones(r, c, 4, dtype=torch.bool)
    for k, (di, dj) in enumerate(STEP):
        src_i, dst_i = slice(max(di, 0), r + min(di, 0)), slice(max(-di, 0), r + min(-di, 0))
        src_j, dst_j = slice(max(dj, 0), c + min(dj, 0)), slice(max(-dj, 0), c + min(-dj, 0))
        out[dst_i, dst_j, k] = mask[src_i, src_j]
    return out


class Executor:
    def __init__(self, steps: list[Step], look_around: int = 4):
        self.steps, self.look_around = steps, look_around
        self.s = 0  # the step being done
        self.t = 0  # actions taken
        self.blocked_cells: set[tuple[int, int]] = set()  # cells a MoveAhead into failed
        self.given_up: set[tuple[int, int, int]] = set()  # goal poses of the current step (or frontiers)
        self.tried: dict[tuple[int, int, int], set[int]] = {}  # horizons tried at a goal pose
        self.opened: set[int] = set()
        self.used: set[int] = set()  # instances picked up
        self.sliced: set[int] = set()  # instances the agent sliced
        self.put_into = -1  # the instance the agent last put something into
        self.seen_used: list[tuple[int, int, int]] = []  # poses that saw only an instance used before in front
        self.scanned: list[tuple[int, int, int]] = []  # goal poses of this step whose horizons all failed
        self._last: tuple[int, tuple[int, int, int], int] | None = None  # (action, pose, instance)
        self._searching = False  # the last action opened something to look inside
        self.margin = False  # plan a cell away from objects (_with_margin)
        self.heading = -1  # the object type the last action heads for or acts on (-1: none, or several)

    def act(self, cells: torch.Tensor, pose: tuple[int, int, int], h: int, segmentation: torch.Tensor,
            depth: torch.Tensor, failed: bool) -> int:
        self._learn(failed)
        self._frame, self._h = (segmentation, depth), h
        self.heading = -1
        a = self._choose(cells, pose, h)
        if a < FIRST_INTERACTION:
            self._last = (a, pose, -1)
        self.t += 1
        return a

    def executed(self, action: int) -> None:
        """The env ran `action` instead of the one `act` returned (a student driving, as in DAgger): a move,
        turn or look is remembered as this pose's action (a failed MoveAhead then marks its cell); an interaction
        it did not choose is forgotten (the world may have changed in a way the steps do not know), and an
        interaction it chose that did not run may be tried again at this pose and horizon."""
        if self._last is None or action == self._last[0]:
            return
        mine, pose, _ = self._last
        if mine >= FIRST_INTERACTION:
            self.tried.get(pose, set()).discard(self._h)
            self._searching = False
        self._last = (action, pose, -1) if action < FIRST_INTERACTION else None

    def _learn(self, failed: bool) -> None:
        if self._last is None:
            return
        action, where, inst = self._last
        if action == MOVE_AHEAD and failed:
            i, j, k = where
            self.blocked_cells.add((i + STEP[k][0], j + STEP[k][1]))
        elif action >= FIRST_INTERACTION and not failed:
            kind = action - FIRST_INTERACTION
            if kind == OPEN:
                self.opened.add(inst)
            elif kind == CLOSE:
                self.opened.discard(inst)
            elif kind == SLICE:
                self.sliced.add(inst)
            elif kind == PICKUP:
                self.used.add(inst)
            elif kind == PUT:
                self.put_into = inst
            if self._searching:  # opened to look inside: the step goes on, on the map as it now is
                self._forget()
            else:
                self._next_step()
        self._last, self._searching = None, False

    def _may_take(self, step: Step, inst: int) -> bool:
        """Whether `inst` may be the step's object: not one used before (pick_two), one it sliced (a sliced
        task's pickup), the movable receptacle it filled (picking up the mrecep)."""
        filled = step.action == PICKUP and step.types <= MOVABLE and self.put_into >= 0
        return not (step.new_instance and inst in self.used) and (not step.sliced or inst in self.sliced) and \
            (not filled or inst == self.put_into)

    def _next_step(self) -> None:
        self.s += 1
        self._forget()

    def _forget(self) -> None:
        self.given_up.clear()
        self.tried.clear()
        self.scanned.clear()

    def _choose(self, cells: torch.Tensor, pose: tuple[int, int, int], h: int) -> int:
        if self.t < self.look_around:
            return ROTATE_LEFT
        while self.s < len(self.steps):
            step = self.steps[self.s]
            t, inst = window_pick(*self._frame, step.action)
            self.heading = next(iter(step.types)) if len(step.types) == 1 else -1
            if t in step.types and self._may_take(step, inst):
                if step.action == OPEN and inst in self.opened:
                    self._next_step()
                    continue
                tried = self.tried.setdefault(pose, set())
                if h not in tried:
                    tried.add(h)
                    self._last = (FIRST_INTERACTION + step.action, pose, inst)
                    return FIRST_INTERACTION + step.action
            if step.new_instance and t in step.types and inst in self.used:  # one used before lies in front: not here
                self.seen_used.append(pose)
            action = self._with_margin(self._go, cells, pose, h, step.types, self.seen_used)
            if action is None:
                self.heading = -1
                action = self._with_margin(self._explore, cells, pose)
            if action is None:  # look over the surfaces things lie on, closer than exploring saw them
                action = self._go(cells, pose, h, SURFACES, self.scanned)
            if action is None:
                action = self._search(cells, pose, h)
            return STOP if action is None else action
        return STOP

    def _search(self, cells: torch.Tensor, pose: tuple[int, int, int], h: int) -> int | None:
        """Open what can be opened and has not been, one by one (the target may be inside)."""
        t, inst = window_pick(*self._frame, OPEN)
        if t >= 0 and inst not in self.opened and h not in self.tried.setdefault(pose, set()):
            self.tried[pose].add(h)
            self._last = (FIRST_INTERACTION + OPEN, pose, inst)
            self._searching = True
            return FIRST_INTERACTION + OPEN
        return self._go(cells, pose, h, OPENABLE)

    def _go(self, cells: torch.Tensor, pose: tuple[int, int, int], h: int, types: frozenset[int],
            avoid: list[tuple[int, int, int]] = ()) -> int | None:
        """Towards (or, there, the horizons of) a pose facing a mapped object of `types`, not one in front of
        the poses `avoid`; None when there is none to go to."""
        obstacle = self.obstacles(cells, pose)
        targets = cells[..., [2 + t for t in types]].any(-1)
        r, c = targets.shape
        for p in avoid:
            for i, j in cone(p):
                if 0 <= i < r and 0 <= j < c:
                    targets[i, j] = False
        goals = facing(targets, narrow=types <= MOVABLE) & ~obstacle[..., None]
        for p in self.given_up:
            goals[p] = False
        if bool(goals[pose]):
            tried = self.tried.setdefault(pose, set())
            tried.add(h)
            look = self._aim(types, h)
            if look is not None and h + (1 if look == LOOK_DOWN else -1) not in tried:
                return look
            self.given_up.add(pose)
            self.scanned.append(pose)
            goals[pose] = False
        return self._descend(goals, obstacle, pose)

    def _aim(self, types: frozenset[int], h: int) -> int | None:
        """LookUp / LookDown to bring the nearest in-reach pixels of `types` in the centre columns into the
        centre window; None when there are none or they are in it already (this pose will not do)."""
        seg, depth = self._frame
        hh, w = seg.shape[:2]
        cols = slice(w // 2 - WINDOW, w // 2 + WINDOW + 1)
        mine = torch.isin(seg[:, cols, 0].long() - 1, torch.tensor(sorted(types))) & (depth[:, cols, 0] <= REACH)
        rows = mine.any(1).nonzero().flatten()
        if rows.numel() == 0:
            return None
        centre = hh // 2
        row = int(rows[(rows - centre).abs().argmin()])
        if row < centre - WINDOW and h > 0:
            return LOOK_UP
        if row > centre + WINDOW and h < len(HORIZONS) - 1:
            return LOOK_DOWN
        return None

    def _explore(self, cells: torch.Tensor, pose: tuple[int, int, int]) -> int | None:
        obstacle = self.obstacles(cells, pose)
        frontier = cells[..., 0, None] & ~ahead(cells.any(-1)) & ~obstacle[..., None]
        for p in self.given_up:
            frontier[p] = False
        if bool(frontier[pose]):
            self.given_up.add(pose)
            frontier[pose] = False
        return self._descend(frontier, obstacle, pose)

    def _descend(self, goals: torch.Tensor, obstacle: torch.Tensor, pose: tuple[int, int, int]) -> int | None:
        """The first action of a fewest-action route (MoveAhead, RotateLeft, RotateRight) from `pose` to a
        `goals` (R, C, 4) pose around the `obstacle` (R, C) cells, by breadth-first search from the agent (it
        stops at the nearest goal); None when the agent is at one or none can be reached. Among equally short
        routes it walks first, as household.navigate.descend does."""
        if not bool(goals.any()) or bool(goals[pose]):
            return None
        goal, wall = goals.numpy(), (ahead(obstacle) | obstacle[..., None]).numpy()  # MoveAhead would collide
        r, c = wall.shape[:2]
        first = {pose: -1}
        frontier = [pose]
        while frontier:
            nxt = []
            for p in frontier:
                i, j, k = p
                moves = ((ROTATE_LEFT, (i, j, (k + 1) % 4)), (ROTATE_LEFT + 1, (i, j, (k - 1) % 4)))
                if not wall[p]:
                    moves = ((MOVE_AHEAD, (i + STEP[k][0], j + STEP[k][1], k)), *moves)
                for action, q in moves:
                    if q in first or not (0 <= q[0] < r and 0 <= q[1] < c):
                        continue
                    first[q] = action if first[p] < 0 else first[p]
                    if goal[q]:
                        return first[q]
                    nxt.append(q)
            frontier = nxt
        return None

    def _with_margin(self, plan: Callable[..., int | None], *args: Any) -> int | None:
        """`plan(*args)` keeping a cell away from objects (a fifth of the cells next to them collide), else
        without."""
        self.margin = True
        action = plan(*args)
        self.margin = False
        return plan(*args) if action is None else action

    def obstacles(self, cells: torch.Tensor, pose: tuple[int, int, int]) -> torch.Tensor:
        """(R, C) cells marked as wall or object, next to a wall mark (the agent's radius, 0.18 m, does not fit
        there), next to an object mark while `margin` is set, or that a MoveAhead into failed; never the
        agent's own cell."""
        out = cells[..., 2:].any(-1)
        near = torch.nn.functional.max_pool2d(torch.stack([cells[..., 1], out]).float(), 3, 1, 1) > 0  # (2, R, C)
        out = out | near[0] | (near[1] if self.margin else False)
        for p in self.blocked_cells:
            out[p] = True
        out[pose[0], pose[1]] = False
        return out
