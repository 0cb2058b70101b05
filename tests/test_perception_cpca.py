"""CPC|A: the action-conditioned contrastive auxiliary loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlarena.perception.cpca import CPCA


def test_one_step_case_equals_infonce_over_the_valid_frames():
    torch.manual_seed(0)
    cpca = CPCA(belief_dim=3, target_dim=4, num_actions=2, steps=1)
    belief, targets = torch.randn(2, 2, 3), torch.randn(2, 2, 4)
    actions = torch.tensor([[0, 1], [1, 0]])
    masks, valid = torch.ones(2, 2), torch.ones(2, 2)
    h0 = torch.tanh(cpca.init(belief[0]))[None]
    pred = cpca.predict(cpca.gru(cpca.action_embed(actions[0])[None], h0)[0][0])
    logits = F.normalize(pred, dim=1) @ F.normalize(targets.reshape(4, 4), dim=1).t() / cpca.temperature
    expected = F.cross_entropy(logits, torch.tensor([2, 3]))  # frame t + 1 of env b is row 1 * B + b
    torch.testing.assert_close(cpca(belief, targets, actions, masks, valid), expected)


def test_no_prediction_crosses_an_episode_start_or_an_invalid_step():
    torch.manual_seed(0)
    cpca = CPCA(belief_dim=3, target_dim=4, num_actions=2, steps=3)
    belief, targets = torch.randn(5, 2, 3), torch.randn(5, 2, 4)
    actions = torch.zeros(5, 2, dtype=torch.long)
    # every step starts a new episode: no usable pair, the loss is 0
    assert cpca(belief, targets, actions, torch.zeros(5, 2), torch.ones(5, 2)).item() == 0.0
    # env 1 invalid everywhere: its frames are neither predicted nor negatives
    masks = torch.ones(5, 2)
    masks[2, 0] = 0
    valid = torch.ones(5, 2)
    valid[:, 1] = 0
    base = cpca(belief, targets, actions, masks, valid)
    moved = targets.clone()
    moved[:, 1] = torch.randn(5, 4)  # invalid env: not even a negative
    torch.testing.assert_close(cpca(belief, moved, actions, masks, valid), base)


def test_cpca_learns_action_dependent_futures():
    torch.manual_seed(0)
    t, b, d, n_act = 8, 16, 16, 4
    codes = torch.randn(n_act, d)  # the frame after action a looks like codes[a]
    cpca = CPCA(belief_dim=d, target_dim=d, num_actions=n_act, steps=2, hidden=32)
    opt = torch.optim.Adam(cpca.parameters(), lr=3e-3)
    masks, valid = torch.ones(t, b), torch.ones(t, b)

    def batch():
        actions = torch.randint(0, n_act, (t, b))
        targets = torch.cat([torch.randn(1, b, d), codes[actions[:-1]]]) + 0.05 * torch.randn(t, b, d)
        return targets, actions

    first = None
    for _ in range(150):
        targets, actions = batch()
        loss = cpca(targets, targets, actions, masks, valid)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # chance is log(T * B) = 4.85; frames after the same action are near-duplicates, so the floor is about
    # log(T * B / n_act) = 3.47 for j = 1
    assert first > 4.0 and loss.item() < 3.8 and loss.item() < first - 1.0


def test_cpca_rejects_mismatched_inputs():
    cpca = CPCA(belief_dim=3, target_dim=4, num_actions=2)
    with pytest.raises(ValueError, match="share"):
        cpca(torch.randn(4, 2, 3), torch.randn(4, 3, 4), torch.zeros(4, 2, dtype=torch.long), torch.ones(4, 2),
             torch.ones(4, 2))
    with pytest.raises(ValueError, match="targets have dim 5"):
        cpca(torch.randn(4, 2, 3), torch.randn(4, 2, 5), torch.zeros(4, 2, dtype=torch.long), torch.ones(4, 2),
             torch.ones(4, 2))


def test_a_belief_whose_futures_all_cross_an_episode_start_gets_no_gradient():
    torch.manual_seed(0)
    cpca = CPCA(belief_dim=3, target_dim=4, num_actions=2, steps=2)
    belief = torch.randn(5, 2, 3, requires_grad=True)
    masks = torch.ones(5, 2)
    masks[2, 0] = 0  # env 0: a new episode starts at step 2, so step 1's futures (2, 3) are in another episode
    cpca(belief, torch.randn(5, 2, 4), torch.zeros(5, 2, dtype=torch.long), masks, torch.ones(5, 2)).backward()
    assert belief.grad[1, 0].abs().sum() == 0
    assert belief.grad[0, 0].abs().sum() > 0 and belief.grad[1, 1].abs().sum() > 0  # step 0 -> 1 is fine
