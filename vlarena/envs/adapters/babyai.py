"""BabyAI (MiniGrid) through the instruction adapter, with MiniGrid's `BabyAIBot` as the expert.

    env = make_babyai("BabyAI-GoToLocal-v0")            # or gym.make("vlarena/BabyAI-GoToLocal-v0")
    obs, info = env.reset(seed=0)                       # obs: rgb (56, 56, 3) uint8, instruction str
    obs, reward, terminated, truncated, info = env.step(info["expert_action"])

Image choice (documented): by default the agent sees MiniGrid's egocentric partial view (the 7x7
cells in front of it, `RGBImgPartialObsWrapper`) rendered at 8 px a tile, so 56x56 RGB with no
resampling, the same egocentric setting as the vlarena simulator and the BabyAI paper's agent.
`view="full"` renders the whole grid top-down (`RGBImgObsWrapper`, the agent drawn as a triangle).
Another `size` picks the smallest tile that covers it and area-resamples down.
`image="symbolic"` puts MiniGrid's symbolic encoding (object index, colour index, state per cell;
uint8, 7x7) under `rgb`, upsampled by nearest neighbour so each cell is a block of pixels.

Expert: `BabyAIBotExpert` re-creates the bot on every reset and calls `bot.replan(action_taken)` after
every step with the action actually taken, so it also advises a policy that strays (DAgger). If
the bot cannot go on (a box it had to reach was opened, `DisappearedBoxError`, or one of its
internal assertions), it is re-created from the current state, which re-plans from scratch; the
number of such restarts is in `expert.restarts`.

Quiet: BabyAI levels print "Sampling rejected: ..." each time they redraw an unsolvable layout during a
reset; the env made here swallows that output (`QuietReset`), so progress bars and logs stay readable.

Success: MiniGrid gives reward > 0 only when the instruction is completed, so `info["success"]` is
`terminated and reward > 0`. Actions: MiniGrid's `Discrete(7)` (left, right, forward, pickup, drop,
toggle, done), passed through.

minigrid is an optional dependency (`pip install 'vlarena[babyai]'`); it is imported only when a
BabyAI env is built.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import gymnasium as gym

from vlarena.envs.adapters.instruction_env import InstructionEnvAdapter, check_size, success_on_positive_reward

IMAGE_MODES = ("rgb", "symbolic")
VIEWS = ("partial", "full")


def _import_minigrid() -> None:
    try:
        import minigrid  # noqa: F401  (registers the BabyAI env ids with gymnasium)
    except ImportError as exc:
        raise ImportError("BabyAI envs need the minigrid package: pip install 'vlarena[babyai]'") from exc


class BabyAIBotExpert:
    """MiniGrid's `BabyAIBot` as an adapter expert (see the module doc for the restart rule)."""

    def __init__(self) -> None:
        self.bot: Any = None
        self.restarts = 0

    def reset(self, env: gym.Env) -> int:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        self.bot = BabyAIBot(env.unwrapped)
        return int(self.bot.replan())

    def step(self, env: gym.Env, action: Any) -> int:
        from minigrid.utils.baby_ai_bot import DisappearedBoxError

        if self.bot is None:
            raise RuntimeError("BabyAIBotExpert.step before reset: the adapter resets the expert on env.reset()")
        try:
            return int(self.bot.replan(int(action)))
        except (DisappearedBoxError, AssertionError):
            self.restarts += 1
            return self.reset(env)


class QuietReset(gym.Wrapper):
    """Swallows what the wrapped env prints to stdout during `reset` (BabyAI's "Sampling rejected" lines)."""

    def reset(self, **kwargs: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.reset(**kwargs)


def make_babyai(env_id: str = "BabyAI-GoToLocal-v0", image: str = "rgb", view: str = "partial",
                size: tuple[int, int] | None = (56, 56), expert: bool = True, render_mode: str | None = None,
                extra_keys: tuple[str, ...] = (), **env_kwargs: Any) -> InstructionEnvAdapter:
    """A BabyAI env in the vlarena observation contract, `info["expert_action"]` from `BabyAIBot`.

    `env_kwargs` go to `gym.make(env_id, ...)` (e.g. `max_steps`). `size=None` keeps the native image
    size (56x56 for the partial RGB view, 7x7 for symbolic). `extra_keys=("direction",)` passes the
    agent's heading through.
    """
    size = check_size(size)
    _import_minigrid()
    from minigrid.wrappers import RGBImgObsWrapper, RGBImgPartialObsWrapper

    if image not in IMAGE_MODES:
        raise ValueError(f"image must be one of {IMAGE_MODES}, got {image!r}")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if image == "symbolic" and view == "full":
        raise ValueError("image='symbolic' comes with MiniGrid's partial view only; use view='partial'")
    if not env_id.startswith("BabyAI-"):
        raise ValueError(f"env_id must be a BabyAI env id (BabyAI-...-v0), got {env_id!r}")
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("BabyAI-"))
        raise ValueError(f"unknown BabyAI env id {env_id!r}; registered are {known}")
    env = QuietReset(gym.make(env_id, render_mode=render_mode, **env_kwargs))
    resample = "area"
    if image == "rgb":
        if view == "partial":
            cells_h = cells_w = env.unwrapped.agent_view_size
        else:
            cells_h, cells_w = env.unwrapped.height, env.unwrapped.width
        tile = 8 if size is None else max(1, math.ceil(size[0] / cells_h), math.ceil(size[1] / cells_w))
        env = (RGBImgPartialObsWrapper if view == "partial" else RGBImgObsWrapper)(env, tile_size=tile)
    else:
        resample = "nearest"  # symbolic codes must not be averaged
    return InstructionEnvAdapter(env, image_key="image", instruction_key="mission", size=size, resample=resample,
                                 extra_keys=extra_keys, expert=BabyAIBotExpert() if expert else None,
                                 success_fn=success_on_positive_reward)


def make_babyai_gotolocal(**kwargs: Any) -> InstructionEnvAdapter:
    """`vlarena/BabyAI-GoToLocal-v0`: `make_babyai("BabyAI-GoToLocal-v0", **kwargs)`."""
    return make_babyai("BabyAI-GoToLocal-v0", **kwargs)
