"""The live harness itself: the webui runs, samples deterministically and sees the extension and the checkpoint."""

from pathlib import Path

import numpy as np
import pytest
from live_hosts import HOST
from webui_client import grey_level

pytestmark = pytest.mark.live


def test_webui_serves_the_tiny_checkpoint(webui, host_checkpoint):
    listed = {model["model_name"]: model for model in webui.checkpoints()}
    assert host_checkpoint.name in listed
    if HOST.writes_checkpoint_yaml:  # A1111 takes a same-named .yaml beside a checkpoint as its config
        assert listed[host_checkpoint.name]["config"].endswith(f"{host_checkpoint.name}.yaml")
    assert webui.checkpoint_in_use() == host_checkpoint.name


def test_txt2img_without_scripts_returns_one_64px_image(webui):
    result = webui.txt2img(prompt="a red cube", seed=3)
    assert len(result.images) == 1
    assert result.image.shape == (64, 64, 3)
    assert result.image.dtype == np.uint8
    assert result.info["all_seeds"] == [3]
    assert result.image.std() > 0  # a picture, not a flat fill


def test_same_seed_gives_identical_images(webui):
    first = webui.txt2img(prompt="a red cube", seed=11)
    second = webui.txt2img(prompt="a red cube", seed=11)
    assert np.array_equal(first.image, second.image)


def test_different_seed_gives_a_different_image(webui):
    first = webui.txt2img(prompt="a red cube", seed=11)
    other = webui.txt2img(prompt="a red cube", seed=12)
    assert not np.array_equal(first.image, other.image)


def test_infotext_round_trips_through_png_info(webui):
    result = webui.txt2img(prompt="a red cube", seed=5, steps=3)
    parsed = webui.png_info(result.png[0])
    assert parsed["parameters"]["Prompt"] == "a red cube"
    assert int(parsed["parameters"]["Seed"]) == 5
    assert int(parsed["parameters"]["Steps"]) == 3


def test_this_checkout_is_installed_as_an_extension(webui, extension_link):
    assert extension_link.resolve() == Path(__file__).resolve().parents[2]
    # /sdapi/v1/extensions lists only git checkouts with an "origin" remote (a worktree or an export has none);
    # the system report lists every enabled extension with its path.
    enabled = {extension["name"]: extension for extension in webui.sysinfo()["Extensions"]}
    assert Path(enabled[extension_link.name]["path"]) == extension_link


def test_tiny_checkpoint_decodes_latent_mean_to_brightness(host_checkpoint):
    # Measured by the builder in the webui's interpreter: decoded grey level for latent offsets -1, 0, +1.
    grey = host_checkpoint.report["decoded_grey_by_latent_offset"]
    assert grey["+1"] - grey["+0"] > 10
    assert grey["+0"] - grey["-1"] > 10


def test_img2img_keeps_the_brightness_of_the_input(webui):
    # The tiny VAE's encoder carries the grey level into the latent mean, so a light input stays lighter.
    dark = np.full((64, 64, 3), 40, dtype=np.uint8)
    light = np.full((64, 64, 3), 215, dtype=np.uint8)
    settings = {"prompt": "", "seed": 2, "denoising_strength": 0.3}
    assert grey_level(webui.img2img(light, **settings).image) - grey_level(webui.img2img(dark, **settings).image) > 20


def test_console_log_shows_what_a_request_printed(webui, webui_log):
    webui.txt2img(prompt="a red cube", seed=4, steps=4)
    # The webui's progress bar (tqdm on stderr) reaches the captured log while the server keeps running.
    assert "4/4" in webui_log.wait_for("Total progress")
