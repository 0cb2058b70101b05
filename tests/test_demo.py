import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from vlarena.cli import main
from vlarena.datasets.generate import generate_scene
from vlarena.envs.topdown import draw_map


def test_map_shows_rooms_objects_and_path():
    scene = generate_scene(5)
    o = scene.objects[0]
    img = np.asarray(draw_map(scene, path=[(2.0, 2.0), (3.0, 2.0)], goal_objects=[o.id], pixels_per_cell=4))
    rows, cols = scene.shape
    assert img.shape == (rows * 4, cols * 4, 3)
    # the object's centre pixel has its colour (north up: y grows upwards in the image)
    from vlarena.datasets.catalog import COLOURS
    x, y = o.center
    px, py = int(x / scene.cell_size * 4), int(rows * 4 - y / scene.cell_size * 4)
    assert tuple(img[py, px]) == COLOURS[o.colour]
    # the path is drawn in red
    assert (np.abs(img.astype(int) - (220, 0, 0)).sum(axis=-1) == 0).any()


def test_demo_command_writes_gif_and_map(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--resolution", "32"]) == 0
    out = capsys.readouterr().out
    assert "success=True" in out
    frames = imageio.mimread(tmp_path / "demo.gif")
    assert len(frames) > 5
    assert frames[0].shape[1] > frames[0].shape[0]  # view beside map
    assert Image.open(tmp_path / "map.png").size[0] > 100


@pytest.mark.parametrize("argv, message", [
    (["demo", "--task", "Nope"], "unknown task 'Nope'"),
    (["demo", "--resolution", "-3"], "resolution must be a positive int, got -3"),
])
def test_demo_bad_input(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
