"""The ALFRED env's semantic map (what the agent has seen, on the grid) and the policy's map input."""

from __future__ import annotations

import pytest
import torch

from tests.policy_helpers import tiny_config
from vlarena.datasets.alfred.objects import TYPE_INDEX
from vlarena.envs.alfred_env import ACTIONS, AlfredEnvConfig, AlfredVectorEnv
from vlarena.envs.household.navigate import STEP, Camera
from vlarena.envs.household.semantic_map import CHANNELS, SemanticMap
from vlarena.policies import VLAPolicy

SIZE = 15


@pytest.fixture(scope="module")
def env():
    return AlfredVectorEnv(num_envs=2, split="valid_unseen", num_episodes=2, semantic_map=SIZE)


def test_egocentric_turns_with_the_agent_and_puts_far_cells_on_the_border():
    smap = SemanticMap(4, 12, 12, Camera())
    smap.seen[:, 5, 8, 3] = True  # 3 cells east (+j) of the agent at (5, 5)
    smap.seen[:, 5, 0, 4] = True  # 5 cells west: past the edge of a 7-cell crop
    i = j = torch.full((4,), 5)
    k = torch.arange(4)  # facing east, north, west, south
    ego = smap.egocentric(i, j, k, 7)
    assert ego.shape == (4, 7, 7, CHANNELS) and ego.dtype == torch.uint8
    c = 3
    # east is ahead (row c - 3), to the right (col c + 3), behind (row c + 3), to the left (col c - 3)
    expect = {0: (c - 3, c), 1: (c, c + 3), 2: (c + 3, c), 3: (c, c - 3)}
    for b, (row, col) in expect.items():
        assert torch.nonzero(ego[b, :, :, 3]).tolist() == [[row, col]]
    # west, 5 cells away, is clamped onto the border in its direction: behind when facing east, ahead facing west
    assert torch.nonzero(ego[0, :, :, 4]).tolist() == [[6, c]]
    assert torch.nonzero(ego[2, :, :, 4]).tolist() == [[0, c]]
    assert int(ego.sum()) == 8


def test_reset_forgets_and_resize_keeps_the_marks():
    smap = SemanticMap(2, 4, 4, Camera())
    smap.seen[:, 1, 2, 0] = True
    smap.resize(6, 5)
    assert smap.seen.shape == (2, 6, 5, CHANNELS) and smap.seen[:, 1, 2, 0].all() and int(smap.seen.sum()) == 2
    smap.reset(torch.tensor([True, False]))
    assert int(smap.seen[0].sum()) == 0 and bool(smap.seen[1, 1, 2, 0])


def test_the_map_marks_seen_objects_where_they_stand(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    assert obs["semantic_map"].shape == (2, SIZE, SIZE, CHANNELS)
    first = int(env.semantic_map.seen.sum())
    for _ in range(4):  # look all around
        obs, *_ = env.step(torch.full((2,), ACTIONS.index("RotateLeft")))
    seen = env.semantic_map.seen.clone()
    assert int(seen.sum()) > first and seen[..., 0].any() and seen[..., 1].any()
    st, cs = env.look.scene_tensors, env.look.scene_tensors.cell_size
    marked = 0
    for b in range(2):
        for i, j, ch in torch.nonzero(seen[b, ..., 2:]).tolist():
            slots = torch.nonzero(env.world.otype[b] == ch).flatten()
            assert len(slots), f"env {b} has no {list(TYPE_INDEX)[ch]} but the map marks one"
            xy = torch.tensor([(j + 0.5) * cs, (i + 0.5) * cs])
            gap = ((xy - st.obj_center[b, slots]).abs() - st.obj_half[b, slots]).clamp(min=0).norm(dim=-1).min()
            assert gap <= cs, (b, list(TYPE_INDEX)[ch], float(gap))  # within a cell of an object of that type
            marked += 1
    assert marked >= 10
    # walls are marked where the agent cannot stand; floor within two cells of where it can (floor is seen under
    # furniture and up to the walls, which the agent's radius keeps it from)
    free = env._scene(int(env.ep[0]))[1][:seen.shape[1], :seen.shape[2]]
    near_free = torch.nn.functional.max_pool2d(free[None, None].float(), 5, stride=1, padding=2)[0, 0].bool()
    assert seen[0, ..., 0].sum() > 20 and not (seen[0, ..., 0] & ~near_free).any()
    assert seen[0, ..., 1].sum() > 20 and not (seen[0, ..., 1] & free).any()
    env.reset(options={"episode_id": [1, 0]})
    assert int(env.semantic_map.seen.sum()) < int(seen.sum())  # new episodes start a new map


def test_semantic_map_size_must_be_odd():
    with pytest.raises(ValueError, match="env.semantic_map must be 0 \\(no map\\) or an odd number"):
        AlfredEnvConfig(semantic_map=8)
    with pytest.raises(ValueError, match="env.map_collisions must be true or false, got 'yes'"):
        AlfredEnvConfig(map_collisions="yes")


@pytest.mark.parametrize("collisions", [False, True])
def test_a_failed_move_marks_the_cell_ahead_as_a_wall_with_map_collisions(collisions):
    env = AlfredVectorEnv(num_envs=1, split="valid_unseen", num_episodes=1, semantic_map=SIZE,
                          map_collisions=collisions)
    env.reset(options={"episode_id": [0]})
    c = SIZE // 2
    for _ in range(60):  # walk ahead, turning left after each bump, until a bump into a cell not seen as a wall
        before = env.semantic_map.egocentric(*env.pose[:, :3].unbind(1), SIZE)[0, c - 1, c, 1]
        obs, _, _, _, info = env.step(torch.tensor([ACTIONS.index("MoveAhead")]))
        if bool(info["failed_action"][0]) and not before:
            break
        if bool(info["failed_action"][0]):
            env.step(torch.tensor([ACTIONS.index("RotateLeft")]))
    else:
        pytest.fail("no MoveAhead into an unmarked cell in 60 steps")
    # the observation after the bump: the cell ahead of the agent is a wall exactly when collisions are marked
    assert bool(obs["semantic_map"][0, c - 1, c, 1]) == collisions
    i, j, k = env.pose[0, :3].tolist()
    di, dj = STEP[k]
    assert bool(env.semantic_map.seen[0, i + di, j + dj, 1]) == collisions


@pytest.mark.parametrize("progress_key,map_plan", [(None, 0), ("progress", 0), ("progress", 6)])
def test_the_policy_reads_the_map(env, progress_key, map_plan):
    torch.manual_seed(0)
    config = tiny_config(vision={"image_size": 64, "patch_size": 16}, map_key="semantic_map",
                         progress_key=progress_key, map_plan=map_plan)
    policy = VLAPolicy(config, env.single_observation_space, env.single_action_space)
    keys = ("rgb", "depth", "semantic_map", *([progress_key] if progress_key else []))
    assert set(keys[2:]) <= set(policy.obs_keys)
    with torch.no_grad():  # FiLM starts as the identity; give the instruction (and progress) a say
        for p in (*policy.map_encoder.embed.parameters(), *policy.map_encoder.film.parameters()):
            p.normal_()
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    steps, actions, logps = [], [], []
    state, masks = policy.initial_state(2), torch.zeros(2)
    for a in ("RotateLeft", "MoveAhead", "RotateRight"):
        action = torch.full((2,), ACTIONS.index(a))
        logps.append(policy.evaluate_actions({**obs, "instruction": [obs["instruction"]]}, action[None], state,
                                             masks[None])[0])
        _, _, _, state = policy.act(obs, state, masks=masks)
        steps.append(obs)
        actions.append(action)
        obs, *_ = env.step(action)
        masks = torch.ones(2)
    seq = {k: torch.stack([o[k] for o in steps]) for k in keys}
    seq["instruction"] = [o["instruction"] for o in steps]
    all_masks = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    lp, _, _ = policy.evaluate_actions(seq, torch.stack(actions), policy.initial_state(2), all_masks)
    torch.testing.assert_close(lp, torch.cat(logps), atol=1e-5, rtol=1e-5)
    extras = policy.evaluate_actions(seq, torch.stack(actions), policy.initial_state(2), all_masks,
                                     return_features=True)[3]
    assert ("map_goal_logits" in extras) == bool(map_plan)  # the planner's goal choice, for goal supervision
    if map_plan:
        assert extras["map_goal_logits"].shape == (3, 2, CHANNELS - 2)
    # the map (and the progress, through the words it picks) reaches the heads
    state = policy.initial_state(2)
    _, _, v0, _ = policy.act(obs, state, deterministic=True)
    _, _, v1, _ = policy.act({**obs, "semantic_map": torch.zeros_like(obs["semantic_map"])}, state, deterministic=True)
    assert not torch.allclose(v0, v1)
    if progress_key:
        later = torch.zeros_like(obs["progress"])
        later[:, 3] = 1
        _, _, v2, _ = policy.act({**obs, "progress": later}, state, deterministic=True)
        assert not torch.allclose(v0, v2)
        with pytest.raises(ValueError, match="observation 'progress' \\(policy.progress_key\\) must be a float tensor"):
            policy.act({k: v for k, v in obs.items() if k != "progress"}, state)
    with pytest.raises(ValueError, match="observation 'semantic_map' \\(policy.map_key\\) is missing"):
        policy.act({k: v for k, v in obs.items() if k != "semantic_map"}, state)


def test_bad_map_and_progress_keys_are_refused(env):
    space, actions = env.single_observation_space, env.single_action_space
    with pytest.raises(ValueError, match="policy.map_key names 'pose', which must be a \\(S, S, C\\) Box"):
        VLAPolicy(tiny_config(map_key="pose"), space, actions)
    with pytest.raises(ValueError, match="policy.progress_key \\('progress'\\) .* needs policy.map_key"):
        tiny_config(progress_key="progress")
    with pytest.raises(ValueError, match="policy.map_plan \\(8\\) plans on a map: it needs policy.map_key"):
        tiny_config(map_plan=8)
    with pytest.raises(ValueError, match="policy.map_plan must be an int >= 0"):
        tiny_config(map_key="semantic_map", map_plan=-1)
    with pytest.raises(ValueError, match="policy.progress_key names 'semantic_map', which must be a 1-D float Box"):
        VLAPolicy(tiny_config(map_key="semantic_map", progress_key="semantic_map"), space, actions)
