"""Batched simulator, tasks and gymnasium registration.

Importing this package registers the tasks with gymnasium:
`gym.make("vlarena/ObjectNav-v0")` gives a single env (numpy observations) and
`gym.make_vec("vlarena/ObjectNav-v0", num_envs=256, device="cuda")` the native batched env
(torch tensors on the device).
"""

from __future__ import annotations

import gymnasium as gym

TASKS = {
    "ObjectNav": ("vlarena.envs.single_env:make_objectnav", "vlarena.envs.objectnav:ObjectNavVectorEnv"),
    "R2R": ("vlarena.envs.single_env:make_r2r", "vlarena.envs.r2r_graph:R2RGraphVectorEnv"),
    "R2R-CE": ("vlarena.envs.single_env:make_r2r_ce", "vlarena.envs.r2r_ce:R2RCEVectorEnv"),
    "ALFRED": ("vlarena.envs.single_env:make_alfred", "vlarena.envs.alfred_env:AlfredVectorEnv"),
}

# Third-party envs through adapters (vlarena.envs.adapters): single-env entry points only, so
# gym.make_vec vectorizes them with gymnasium's Sync/Async vector envs. Their packages (minigrid)
# are imported only when the env is made.
ADAPTER_TASKS = {
    "BabyAI-GoToLocal": "vlarena.envs.adapters.babyai:make_babyai_gotolocal",
    "BabyAI": "vlarena.envs.adapters.babyai:make_babyai",  # gym.make("vlarena/BabyAI-v0", env_id="BabyAI-...")
}


def register_all() -> None:
    for name, (single, vector) in TASKS.items():
        env_id = f"vlarena/{name}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=single, vector_entry_point=vector)
    for name, single in ADAPTER_TASKS.items():
        env_id = f"vlarena/{name}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=single)


def task_ids(adapters: bool = False) -> list[str]:
    """The native tasks' env ids (with `adapters=True`, also the third-party envs behind adapters)."""
    names = [*TASKS, *ADAPTER_TASKS] if adapters else list(TASKS)
    return [f"vlarena/{name}-v0" for name in names]


def is_native(env_id: str) -> bool:
    """Whether `env_id` has a native batched env (torch, `split=` and `device=`); adapter envs are vectorized
    by gymnasium (numpy) and take neither."""
    return env_id.removeprefix("vlarena/").removesuffix("-v0") in TASKS


def check_task(task: str, adapters: bool = False) -> str:
    """The full env id for `task` ('ObjectNav' or 'vlarena/ObjectNav-v0'); a clear error otherwise.
    `adapters=True` also accepts the adapter envs (e.g. 'BabyAI-GoToLocal')."""
    env_id = task if task.startswith("vlarena/") else f"vlarena/{task}-v0"
    if env_id not in task_ids(adapters):
        raise ValueError(f"unknown task {task!r}: accepted are {task_ids(adapters)}")
    return env_id


register_all()
