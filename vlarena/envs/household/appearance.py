"""How the household world looks: its objects as renderer objects, redrawn from the world state.

    look = HouseholdLook.build(households, device)       # one scene slot per env (S = B)
    tensors = look.scene_tensors                          # for Renderer / motion (furniture collides)
    look.update(world)                                    # positions and colours from the world state
    slot = look.target(instance, depth, row)              # the world slot at the view centre, -1: none

Every world slot is one renderer object: furniture keeps its catalog shape; small objects, desk
lamps and faucets get the shape, size and colour in `LOOKS`. `update` places each object from the
world state, vectorised over envs:

- on a receptacle: standing on its top at the object's own offset (fractions of the receptacle's
  half extents), or on the object under it (an apple in a bowl) one level up;
- inside an openable receptacle (Fridge, Microwave, Cabinet, Drawer): in its front half at half
  its height, drawn only while it is open. An open receptacle is drawn as its back quarter (the
  door swung away, the inside visible) in a darker shade: open things look open;
- held, or inside something closed: not drawn (parked far away);
- switched on: lamps glow (LAMP_ON_RGB), a running microwave is lit (MICROWAVE_ON_RGB);
- sliced: half its height, in SLICED_RGB (the cut side).
Heated, cooled and cleaned do not show, as in ALFRED.

`target` is the interaction rule: the object seen nearest the view centre (the centre column of the
given row: the view centre after LookUp/LookDown) within a 17 x 17 pixel window, at most `REACH`
(1.5 m) away; with `allowed`, only objects the action applies to count (PickupObject: pickupable
ones, ...). ALFRED's agents name the object with an interaction mask; the window and the affordance
filter stand in for that mask, so a 5 cm egg on a table can be picked from the usual 15-degree
horizons without the table being picked instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlarena.datasets.alfred.objects import TYPE_INDEX
from vlarena.datasets.alfred.scenes import HouseholdScene
from vlarena.datasets.catalog import CATEGORY_NAMES, COLOURS, SHAPES
from vlarena.envs.household.world import HouseholdWorld
from vlarena.envs.scene_tensors import PARKED, SceneTensors

REACH = 1.5  # metres: ALFRED's visibility distance for interactions
WINDOW = 8  # pixels: the centre window's half size (a 17 x 17 box of a 64 px wide view)
# (shape, footprint width m, height m, colour) of the objects that are not furniture
LOOKS: dict[str, tuple[str, float, float, str]] = {
    "Apple": ("cylinder", 0.09, 0.09, "red"), "Bread": ("box", 0.22, 0.12, "brown"),
    "Tomato": ("cylinder", 0.08, 0.07, "red"), "Potato": ("cylinder", 0.09, 0.07, "brown"),
    "Lettuce": ("cylinder", 0.16, 0.13, "green"), "Egg": ("cylinder", 0.05, 0.06, "white"),
    "Knife": ("box", 0.25, 0.03, "grey"), "ButterKnife": ("box", 0.2, 0.02, "grey"),
    "Spoon": ("box", 0.16, 0.02, "grey"), "Fork": ("box", 0.18, 0.02, "grey"),
    "Book": ("box", 0.22, 0.05, "blue"), "CellPhone": ("box", 0.14, 0.02, "black"),
    "KeyChain": ("box", 0.08, 0.02, "yellow"), "CreditCard": ("box", 0.09, 0.01, "orange"),
    "Pencil": ("box", 0.17, 0.01, "yellow"), "Pen": ("box", 0.14, 0.01, "blue"),
    "RemoteControl": ("box", 0.18, 0.03, "black"), "Vase": ("cylinder", 0.12, 0.28, "purple"),
    "AlarmClock": ("box", 0.12, 0.1, "pink"), "Watch": ("box", 0.05, 0.02, "black"),
    "SoapBar": ("box", 0.09, 0.03, "pink"), "Cloth": ("box", 0.2, 0.02, "blue"),
    "Statue": ("cylinder", 0.1, 0.3, "grey"), "Candle": ("cylinder", 0.07, 0.15, "white"),
    "Bowl": ("cylinder", 0.18, 0.08, "white"), "Cup": ("cylinder", 0.08, 0.1, "blue"),
    "Mug": ("cylinder", 0.09, 0.1, "yellow"), "Pan": ("cylinder", 0.28, 0.06, "black"),
    "Plate": ("cylinder", 0.24, 0.02, "white"), "Pot": ("cylinder", 0.24, 0.16, "grey"),
    "Box": ("box", 0.3, 0.2, "brown"),
    "DeskLamp": ("cylinder", 0.16, 0.45, "yellow"), "Faucet": ("cylinder", 0.05, 0.25, "grey"),
}
LAMP_ON_RGB = (255.0, 245.0, 170.0)
MICROWAVE_ON_RGB = (255.0, 180.0, 60.0)
SLICED_RGB = (235.0, 215.0, 170.0)
OPEN_SHADE = 0.45  # colour factor of an open receptacle
ON_TOP_SPREAD = 0.7  # offsets reach this fraction of the receptacle's half extents


def _wall_side(center: tuple[float, float], half: tuple[float, float], room: tuple[float, float, float, float]
               ) -> tuple[float, float]:
    """Unit vector from an object towards the room wall it stands against (its back)."""
    x0, y0, x1, y1 = room
    gaps = {(-1.0, 0.0): center[0] - half[0] - x0, (1.0, 0.0): x1 - center[0] - half[0],
            (0.0, -1.0): center[1] - half[1] - y0, (0.0, 1.0): y1 - center[1] - half[1]}
    return min(gaps, key=gaps.__getitem__)


@dataclass
class HouseholdLook:
    scene_tensors: SceneTensors
    home_center: torch.Tensor  # (B, N, 2) furniture centres (small objects: their footprint, re-placed)
    home_half: torch.Tensor  # (B, N, 2)
    home_z: torch.Tensor  # (B, N, 2)
    home_rgb: torch.Tensor  # (B, N, 3)
    offset: torch.Tensor  # (B, N, 2)
    back: torch.Tensor  # (B, N, 2) towards the wall behind (openables)
    height: torch.Tensor  # (B, N) small objects' heights
    small: torch.Tensor  # (B, N) bool: placed by update (not furniture)

    @classmethod
    def build(cls, households: Sequence[HouseholdScene], device: str | torch.device = "cpu",
              num_slots: int | None = None) -> HouseholdLook:
        scenes = [h.scene for h in households]
        n = max(max(len(h.objects) for h in households), num_slots or 0)
        tensors = SceneTensors.from_scenes(scenes, device, min_objects=n)
        b = len(households)
        center = np.full((b, n, 2), PARKED, np.float32)
        half = np.full((b, n, 2), 0.01, np.float32)
        z = np.zeros((b, n, 2), np.float32)
        rgb = np.zeros((b, n, 3), np.float32)
        shape = np.zeros((b, n), np.int64)
        offset = np.zeros((b, n, 2), np.float32)
        back = np.zeros((b, n, 2), np.float32)
        height = np.zeros((b, n), np.float32)
        small = np.zeros((b, n), bool)
        for i, h in enumerate(households):
            i0, j0, i1, j1 = h.scene.rooms[0].bounds
            cs = h.scene.cell_size
            room = (j0 * cs, i0 * cs, j1 * cs, i1 * cs)
            for slot, o in enumerate(h.objects):
                offset[i, slot] = o.offset
                if o.furniture >= 0 and o.type != "Faucet":
                    f = h.scene.objects[o.furniture]
                    center[i, slot], half[i, slot], z[i, slot] = f.center, f.half_extents, f.z_range
                    rgb[i, slot] = COLOURS[f.colour]
                    shape[i, slot] = SHAPES.index(f.shape)
                    back[i, slot] = _wall_side(f.center, f.half_extents, room)
                    continue
                kind, width, tall, colour = LOOKS[o.type]
                half[i, slot] = width / 2 if kind == "cylinder" else (width / 2, width / 4)
                height[i, slot] = tall
                rgb[i, slot] = COLOURS[colour]
                shape[i, slot] = SHAPES.index(kind)
                small[i, slot] = True
                if o.type == "Faucet":  # at the back edge of its sink, standing on it
                    f = h.scene.objects[o.furniture]
                    side = np.array(_wall_side(f.center, f.half_extents, room), np.float32)
                    center[i, slot] = np.asarray(f.center, np.float32) + side * (np.asarray(f.half_extents) - 0.05)
                    z[i, slot] = (f.z_range[1], f.z_range[1] + tall)
                    small[i, slot] = False  # fixed in place
        # the world's slots are the renderer's objects: one scene slot per env, slot order kept
        for name, value in (("obj_center", center), ("obj_half", half), ("obj_z", z), ("obj_rgb", rgb),
                            ("obj_shape", shape)):
            getattr(tensors, name)[:, :n] = torch.from_numpy(value).to(device)
        for i, h in enumerate(households):
            for slot, o in enumerate(h.objects):
                if o.furniture < 0 or o.type == "Faucet":  # semantic ids past the furniture catalog
                    tensors.obj_category[i, slot] = len(CATEGORY_NAMES) + TYPE_INDEX[o.type]
        tensors.obj_valid[:, :n] = torch.tensor([[k < len(h.objects) for k in range(n)] for h in households],
                                                device=device)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(device)

        return cls(tensors, t(center), t(half), t(z), t(rgb), t(offset), t(back), t(height), t(small))

    def update(self, world: HouseholdWorld) -> None:
        """Redraw every object from `world` (positions, footprints, colours) into `scene_tensors`."""
        st = self.scene_tensors
        n = self.home_center.shape[1]
        center, half, z = self.home_center.clone(), self.home_half.clone(), self.home_z.clone()
        rgb = self.home_rgb.clone()
        openable = world.has("openable", world.otype)
        inside = world.gather(openable, world.parent, False)
        for _ in range(2):  # objects on furniture, then objects on those (an apple in a bowl)
            pc = world.gather_rows(center, world.parent)
            ph = world.gather_rows(half, world.parent)
            pz = world.gather_rows(z, world.parent)
            on_top = pc + self.offset * ph * ON_TOP_SPREAD
            in_front = pc - world.gather_rows(self.back, world.parent) * ph * 0.5 + self.offset * ph * 0.3
            top = torch.stack([pz[..., 1], pz[..., 1] + self.height], -1)
            mid = (pz[..., :1] + pz[..., 1:]) / 2
            within = torch.cat([mid, mid + self.height[..., None]], -1)
            placed = self.small & (world.parent >= 0)
            center = torch.where(placed[..., None], torch.where(inside[..., None], in_front, on_top), center)
            z = torch.where(placed[..., None], torch.where(inside[..., None], within, top), z)
        is_open = openable & world.is_open
        along = self.back.abs()
        center = torch.where(is_open[..., None], center + self.back * half * 0.75, center)
        half = torch.where(is_open[..., None], half * (1 - along * 0.75), half)
        rgb = torch.where(is_open[..., None], rgb * OPEN_SHADE, rgb)
        light = world.has("light", world.otype) & world.is_on
        rgb = torch.where(light[..., None], rgb.new_tensor(LAMP_ON_RGB), rgb)
        running = (world.otype == TYPE_INDEX["Microwave"]) & world.is_on
        rgb = torch.where(running[..., None], rgb.new_tensor(MICROWAVE_ON_RGB), rgb)
        sliced = world.sliced
        z = torch.where(sliced[..., None], torch.stack([z[..., 0], (z[..., 0] + z[..., 1]) / 2], -1), z)
        rgb = torch.where(sliced[..., None], rgb.new_tensor(SLICED_RGB), rgb)
        center = torch.where(world.hidden()[..., None], torch.full_like(center, PARKED), center)
        st.obj_center[:, :n] = center
        st.obj_half[:, :n] = half
        st.obj_z[:, :n] = z
        st.obj_rgb[:, :n] = rgb

    def target(self, instance: torch.Tensor, depth: torch.Tensor, row: torch.Tensor | int,
               allowed: torch.Tensor | None = None, window: int = WINDOW) -> torch.Tensor:
        """(B,) world slot to interact with, -1 for none: among the pixels of the centre window (rows
        row +- window, columns centre +- window) that see an object within REACH metres (and, with
        `allowed` (B, N) bool, an allowed one), the one nearest the view centre."""
        b, h, w = instance.shape
        n = self.home_center.shape[1]
        dev = instance.device
        rows = torch.as_tensor(row, device=dev).expand(b).long()
        off = torch.arange(-window, window + 1, device=dev)
        rr = (rows[:, None, None] + off[None, :, None]).expand(b, off.numel(), off.numel())
        cc = (w // 2 + off)[None, None, :].expand_as(rr)
        inside = (rr >= 0) & (rr < h)
        idx = torch.arange(b, device=dev)[:, None, None].expand_as(rr)
        seen = instance[idx, rr.clamp(0, h - 1), cc].long()
        near = depth.reshape(b, h, w)[idx, rr.clamp(0, h - 1), cc] <= REACH
        ok = inside & near & (seen >= 0) & (seen < n)
        if allowed is not None:
            ok &= allowed.gather(1, seen.clamp(0, n - 1).flatten(1)).reshape_as(ok)
        dist = (off[None, :, None] ** 2 + off[None, None, :] ** 2).expand_as(rr).float()
        score = torch.where(ok, dist, torch.full_like(dist, float("inf"))).flatten(1)
        best = score.argmin(1)
        pick = seen.flatten(1).gather(1, best[:, None])[:, 0]
        return torch.where(torch.isfinite(score.gather(1, best[:, None])[:, 0]), pick, torch.full_like(pick, -1))
