"""GRU memory with episode masks, and the ViT encoder (normalisation, resizing, weight files)."""

import pytest
import torch

from vlarena.policies import (
    CheckpointMismatchError,
    VisionConfig,
    VisionEncoder,
    load_vision_weights,
    save_vision_weights,
)
from vlarena.policies.config import MemoryConfig
from vlarena.policies.memory import GRUMemory


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_sequence_equals_steps_with_random_resets(layers):
    torch.manual_seed(layers)
    mem = GRUMemory(MemoryConfig(hidden=16, layers=layers), in_dim=8)
    t_len, b = 9, 4
    x = torch.randn(t_len, b, 8)
    masks = (torch.rand(t_len, b) > 0.3).float()
    state0 = torch.randn(b, layers, 16)
    seq_out, seq_state = mem.sequence(x, state0, masks)
    state, outs = state0, []
    for t in range(t_len):
        out, state = mem.step(x[t], state, masks[t])
        outs.append(out)
    torch.testing.assert_close(seq_out, torch.stack(outs), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(seq_state, state, atol=1e-6, rtol=1e-5)
    assert seq_state.shape == (b, layers, 16)


def test_gru_reset_clears_only_masked_rows():
    torch.manual_seed(0)
    mem = GRUMemory(MemoryConfig(hidden=8), in_dim=4)
    x, state = torch.randn(3, 4), torch.randn(3, 1, 8)
    out, _ = mem.step(x, state, torch.tensor([1.0, 0.0, 1.0]))
    fresh, _ = mem.step(x, mem.initial_state(3))
    kept, _ = mem.step(x, state)
    assert torch.equal(out[1], fresh[1]) and torch.equal(out[[0, 2]], kept[[0, 2]])
    # a reset at t=0 also ignores the incoming state in a sequence
    seq, _ = mem.sequence(x[None], state, torch.tensor([[1.0, 0.0, 1.0]]))
    torch.testing.assert_close(seq[0], out, atol=1e-6, rtol=1e-6)


def test_vision_normalisation_resize_and_depth_channel():
    enc = VisionEncoder(VisionConfig(image_size=16, patch_size=8, width=16, depth=1, heads=2, use_depth=True,
                                     max_depth=10.0))
    rgb = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    rgb[1] = 255
    depth = torch.full((2, 32, 32, 1), 10.0)
    x = enc.preprocess(rgb, depth)
    assert x.shape == (2, 4, 16, 16)
    assert torch.allclose(x[0, :3], torch.tensor(-1.0)) and torch.allclose(x[1, :3], torch.tensor(1.0))
    assert torch.allclose(x[:, 3], torch.tensor(1.0))
    tokens, pooled = enc(rgb, depth)
    assert tokens.shape == (2, 4, 16) and pooled.shape == (2, 16)
    torch.testing.assert_close(pooled, tokens.mean(1))
    with pytest.raises(ValueError, match="observation 'depth' is required"):
        enc(rgb)
    with pytest.raises(ValueError, match=r"'depth' must be float of shape \(2, 32, 32, 1\)"):
        enc(rgb, depth[:, :16])


def test_vision_weights_round_trip_and_mismatch(tmp_path):
    cfg = VisionConfig(image_size=16, patch_size=8, width=16, depth=2, heads=2)
    torch.manual_seed(0)
    src = VisionEncoder(cfg)
    save_vision_weights(src, tmp_path / "vit.safetensors")
    torch.manual_seed(1)
    dst = VisionEncoder(cfg)
    load_vision_weights(dst, tmp_path / "vit.safetensors")
    rgb = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    assert torch.equal(src(rgb)[0], dst(rgb)[0])
    via_config = VisionEncoder(VisionConfig(**{**cfg.__dict__, "weights": str(tmp_path / "vit.safetensors")}))
    assert torch.equal(via_config(rgb)[0], src(rgb)[0])
    with pytest.raises(CheckpointMismatchError) as err:
        load_vision_weights(VisionEncoder(VisionConfig(image_size=32, patch_size=8, width=16, depth=1, heads=2)),
                            tmp_path / "vit.safetensors")
    msg = str(err.value)
    assert "shape mismatch pos_embed: expected (1, 16, 16), got (1, 4, 16)" in msg
    assert "unexpected blocks.1.qkv.weight: got shape (48, 16)" in msg
    assert "vit.safetensors" in msg
    with pytest.raises(FileNotFoundError, match="nope.safetensors not found"):
        load_vision_weights(dst, tmp_path / "nope.safetensors")
