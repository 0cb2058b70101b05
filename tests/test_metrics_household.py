"""ALFRED's metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from vlarena.metrics_household import episode_row, summarize


def test_episode_weights_by_expert_length():
    fast = episode_row(True, 3, 3, num_actions=20, expert_actions=40, task_type="pick_heat_then_place_in_recep")
    assert fast["success_spl"] == 1.0  # shorter than the expert: weight capped at 1
    slow = episode_row(False, 1, 3, num_actions=80, expert_actions=40, task_type="pick_heat_then_place_in_recep")
    assert slow["success_spl"] == 0.0 and slow["goal_condition_spl"] == pytest.approx(1 / 3 * 0.5)
    stop0 = episode_row(False, 0, 2, num_actions=0, expert_actions=10, task_type="look_at_obj_in_light")
    assert stop0["goal_condition_spl"] == 0.0 and stop0["success_spl"] == 0.0
    stop0_done = episode_row(True, 1, 1, num_actions=0, expert_actions=10, task_type="pick_and_place_simple")
    assert stop0_done["success_spl"] == 1.0  # t = 0: min(1, L* / eps) = 1


def test_split_summary_by_hand():
    rows = [
        episode_row(True, 3, 3, 50, 40, "pick_heat_then_place_in_recep"),     # weight 0.8
        episode_row(False, 1, 3, 80, 40, "pick_heat_then_place_in_recep"),    # weight 0.5
        episode_row(True, 1, 1, 10, 20, "pick_and_place_simple"),             # weight 1
        episode_row(False, 0, 2, 0, 20, "look_at_obj_in_light"),              # stop at step 0
    ]
    s = summarize(rows)
    assert s["num_episodes"] == 4
    assert s["success_rate"] == pytest.approx(0.5)
    assert s["goal_condition_success"] == pytest.approx((3 + 1 + 1 + 0) / (3 + 3 + 1 + 2))
    assert s["plw_success_rate"] == pytest.approx((0.8 * 40 + 0 + 1.0 * 20 + 0) / 120)
    assert s["plw_goal_condition_success"] == pytest.approx((0.8 * 40 + (1 / 3) * 0.5 * 40 + 20 + 0) / 120)
    heat = s["per_task_type"]["pick_heat_then_place_in_recep"]
    assert heat["success_rate"] == 0.5 and heat["num_episodes"] == 2
    assert heat["goal_condition_success"] == pytest.approx(4 / 6)
    assert set(s["per_task_type"]) == {"pick_heat_then_place_in_recep", "pick_and_place_simple",
                                       "look_at_obj_in_light"}


def test_bad_rows_are_refused():
    with pytest.raises(ValueError, match="0 <= completed <= total"):
        episode_row(False, 4, 3, 10, 10, "x")
    with pytest.raises(ValueError, match="a successful episode completes all goal conditions"):
        episode_row(True, 1, 3, 10, 10, "x")
    with pytest.raises(ValueError, match="expert_actions > 0"):
        episode_row(False, 1, 3, 10, 0, "x")
    with pytest.raises(ValueError, match="at least one episode"):
        summarize([])
