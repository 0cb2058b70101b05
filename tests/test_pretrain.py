"""Simulator captions, `vlarena pretrain` on a tiny dataset, and loading its encoder into a policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import TINY_PANORAMA_VIT, TINY_R2R, box_room
from vlarena.agents.pretrain import ENCODER_FILE, PretrainConfig, run_pretrain
from vlarena.agents.pretrain_objectives import MethodConfig, augment
from vlarena.datasets.scene import SceneObject
from vlarena.envs.captions import caption_panorama, column_directions, render_caption_set
from vlarena.envs.r2r_data import R2RDataConfig
from vlarena.policies import PolicyConfig
from vlarena.policies.vision import VisionEncoder

VISION = TINY_PANORAMA_VIT


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return {**TINY_R2R, "data_dir": str(tmp_path_factory.mktemp("data"))}


def test_column_directions_of_a_four_view_panorama():
    d = column_directions(4, 4)
    # views centred at +135, +45, -45, -135 degrees (left to right); each spans 90 degrees
    assert d.tolist() == [3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2, 3, 3]


def _obj(i: int, category: str, colour: str) -> SceneObject:
    return SceneObject(i, category, colour, "box", (1.0, 1.0), (0.2, 0.2), (0.0, 1.0), 0)


def test_caption_names_objects_by_direction_and_size():
    scene = box_room()
    scene.objects = [_obj(0, "fridge", "white"), _obj(1, "chair", "red"), _obj(2, "counter", "grey"),
                     _obj(3, "plant", "green")]
    directions = np.repeat(np.array([3, 1, 0, 2]), 4)  # 4 columns each: behind, left, ahead, right
    inst = np.full((4, 16), -1)
    inst[:, 8:12] = 0  # the fridge fills "ahead"
    inst[:2, 4:6] = 1  # the chair: left
    inst[2:, 9] = 2  # the counter: ahead, smaller than the fridge's remaining pixels
    inst[0, 13] = 3  # the plant: one pixel, below min_fraction
    text = caption_panorama(scene, "kitchen", inst, directions, view_pixels=16, min_fraction=0.1)
    assert text == "a kitchen with a white fridge and a grey counter ahead, a red chair on the left"
    assert caption_panorama(scene, "office", np.full((4, 16), -1), directions, 16) == "an empty office"


def test_caption_set_is_seeded_and_matches_the_frames(dataset):
    data = R2RDataConfig(**dataset)
    a = render_caption_set("val_unseen", data, num_frames=12, width=16, height=16, seed=3)
    b = render_caption_set("val_unseen", data, num_frames=12, width=16, height=16, seed=3)
    assert a.rgb.shape == (12, 16, 64, 3) and a.rgb.dtype == torch.uint8
    assert a.captions == b.captions and torch.equal(a.rgb, b.rgb)
    assert all(c.startswith(("a ", "an ")) for c in a.captions)
    assert len(set(a.captions)) > 1


def test_caption_set_of_single_views_of_a_given_width(dataset):
    # ObjectNav's camera: one 90-degree view; every column then looks "ahead"
    assert column_directions(1, 4, hfov_deg=90.0).tolist() == [0, 0, 0, 0]
    assert column_directions(2, 4, hfov_deg=60.0).tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    one = render_caption_set("val_unseen", R2RDataConfig(**dataset), num_frames=12, views=1, width=16, height=16,
                             seed=3, hfov_deg=90.0)
    assert one.rgb.shape == (12, 16, 16, 3)
    assert not any(w in c for c in one.captions for w in ("on the left", "on the right", "behind"))
    assert any(c.endswith(" ahead") for c in one.captions)
    with pytest.raises(ValueError, match="hfov_deg"):
        render_caption_set("val_unseen", R2RDataConfig(**dataset), num_frames=4, views=1, width=16, height=16)


def test_augment_keeps_shape_and_range_and_differs_per_call():
    x = torch.rand(4, 3, 16, 64) * 2 - 1
    g = torch.Generator().manual_seed(0)
    y1, y2 = augment(x, g), augment(x, g)
    assert y1.shape == x.shape and y1.min() >= -1 and y1.max() <= 1
    assert not torch.allclose(y1, y2)


def _cfg(dataset, method: str, epochs: int = 8, **kw) -> PretrainConfig:
    return PretrainConfig(method=MethodConfig(name=method, decoder_dim=32, decoder_depth=1, embed_dim=32,
                                              text_dim=32, text_depth=1, queue_size=64),
                          vision=dict(VISION), dataset=dataset, num_frames=96, width=16, height=16,
                          batch_size=16, lr=2e-3, eval_frames=20, retrieval_candidates=10, progress=False, epochs=epochs, **kw)


@pytest.mark.parametrize("method", ["clip", "mae", "moco", "vqvae"])
def test_pretraining_lowers_its_loss_and_writes_a_loadable_encoder(dataset, tmp_path, method):
    torch.set_num_threads(1)
    epochs = 20 if method == "moco" else 8  # MoCo's loss first rises while its queue fills with real keys
    summary = run_pretrain(_cfg(dataset, method, epochs=epochs), tmp_path)
    assert summary["steps"] == epochs * 6
    assert summary["final_loss"] < summary["first_loss"] * 0.9
    assert np.isfinite(summary["eval_loss"])
    if method == "clip":
        assert 0.0 <= summary["retrieval_top1"] <= summary["retrieval_top5"] <= 1.0
        assert summary["retrieval_frames"] == 20
    # the policy config loads it: same tensors as the file
    config = PolicyConfig.preset("cpu", vision={**VISION, "weights": str(tmp_path / ENCODER_FILE)})
    loaded = VisionEncoder(config.vision)
    torch.manual_seed(0)  # the initialisation the run started from (seed 0)
    fresh = VisionEncoder(PolicyConfig.preset("cpu", vision=dict(VISION)).vision)
    assert any(not torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), fresh.state_dict().values(),
                                                      strict=True))
    from vlarena.policies.checkpoint import load_tensors

    saved, meta = load_tensors(tmp_path / ENCODER_FILE)
    assert meta["format"] == "vlarena.vision_encoder"
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, saved[k])


class _Lookup(torch.nn.Module):
    """Retrieval stub: frame i (all pixels i) embeds as one-hot i, caption "c<j>" as one-hot j shifted by `shift`
    within its group of 10."""

    def __init__(self, n: int, shift: int):
        super().__init__()
        self.vision = VisionEncoder(PolicyConfig.preset("cpu", vision={"image_size": 4, "patch_size": 4}).vision)
        self.text_head = torch.nn.Linear(1, 1)
        self.n, self.shift = n, shift

    def embed_images(self, pixels):
        return torch.nn.functional.one_hot(((pixels[:, 0, 0, 0] + 1) * 127.5).round().long(), self.n).float()

    def embed_texts(self, captions):
        j = torch.tensor([int(c[1:]) for c in captions])
        idx = j // 10 * 10 + (j % 10 + self.shift) % 10  # stays in its group of 10
        return torch.nn.functional.one_hot(idx, self.n).float()


def test_caption_retrieval_counts_top1_and_top5_within_groups():
    from vlarena.agents.pretrain import caption_retrieval
    from vlarena.envs.captions import CaptionSet

    n = 20
    rgb = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 4, 4, 3).clone()
    data = CaptionSet(rgb, [f"c{i}" for i in range(n)], ["s"] * n, "val_unseen")
    right = caption_retrieval(_Lookup(n, 0), data, candidates=10)
    assert right == {"retrieval_top1": 1.0, "retrieval_top5": 1.0, "retrieval_frames": 20}
    wrong = caption_retrieval(_Lookup(n, 1), data, candidates=10)  # each frame prefers another frame's caption
    assert wrong["retrieval_top1"] == 0.0
    data.captions[1] = "c0"  # frames 0 and 1 share a caption: either pick is right for both
    assert caption_retrieval(_Lookup(n, 0), data, candidates=10)["retrieval_top1"] == 1.0
    with pytest.raises(ValueError, match="at least 100 frames"):
        caption_retrieval(_Lookup(n, 0), data)


def test_pretrain_config_errors(dataset, tmp_path):
    with pytest.raises(ValueError, match="method.name must be one of"):
        MethodConfig(name="simclr")
    with pytest.raises(ValueError, match="queue_size 4096 is larger than the dataset"):
        PretrainConfig(method=MethodConfig(name="moco"), num_frames=1000, dataset=dataset)
    square = _cfg(dataset, "mae")
    square.vision = VisionEncoder(PolicyConfig.preset("cpu", vision={"image_size": 32, "patch_size": 8}).vision).config
    with pytest.raises(ValueError, match="frames of 16x64"):
        run_pretrain(square, tmp_path)


def test_preset_sections_override_field_by_field():
    gpu = PolicyConfig.preset("gpu", vision={"weights": None})
    assert gpu.vision.width == 384 and gpu.vision.depth == 6


def test_pretrain_command_writes_the_run_and_names_bad_options(dataset, tmp_path, capsys):
    from vlarena.cli import main

    data = ["dataset.scenes={seen:2,val_unseen:1,test:1}", f"dataset.data_dir={dataset['data_dir']}",
            "dataset.paths_per_scene={train:6,val_seen:3,val_unseen:6,test:4}"]
    vision = "vision={image_size:[16,64],patch_size:8,width:32,depth:1,heads:2,mlp_ratio:2.0}"
    args = ["pretrain", "method=mae", *data, vision, "width=16", "height=16", "num_frames=32", "epochs=1",
            "batch_size=16", "eval_frames=8", "progress=false", f"run_dir={tmp_path / 'run'}"]
    assert main(args) == 0
    assert {"encoder.safetensors", "summary.json", "config.yaml", "metrics.jsonl"} <= {
        p.name for p in (tmp_path / "run").iterdir()}
    assert "policy.vision.weights=" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([*args[:-1], "method.name=simclr", f"run_dir={tmp_path / 'bad'}"])
    assert e.value.code == 2 and "method.name must be one of ['clip', 'mae', 'moco', 'vqvae']" in capsys.readouterr().err
