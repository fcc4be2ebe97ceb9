"""Settings > SingDiffusion in a real browser: the module dropdown, its refresh button, the CLIP-L choices."""

from __future__ import annotations

import shutil

import pytest
from webui_page import open_settings_section

pytestmark = pytest.mark.browser

MODULE_SETTING = "setting_singdiffusion_default_module"
CLIP_SETTING = "setting_singdiffusion_clip_l"


def test_the_settings_section_lists_the_module_and_clip_l_files(page, sing_module, host_checkpoint):
    open_settings_section(page, "SingDiffusion")
    assert sing_module.name in page.dropdown_choices(MODULE_SETTING)
    clip_choices = page.dropdown_choices(CLIP_SETTING)
    assert clip_choices[0] == "Automatic"
    assert f"Stable-diffusion/{host_checkpoint.name}.safetensors" in clip_choices  # an SD-1.x checkpoint
    labels = page.text("settings_singdiffusion")  # what the user sees of the section
    for label in ("Default module", "CLIP-L text encoder file", "Device", "Precision", "Memory",
                  "Print module timings in the console"):
        assert label in labels
    page.screenshot("settings.png", "settings_singdiffusion")


def test_the_refresh_button_finds_a_module_copied_in_while_the_server_runs(page, data_dir, sing_module):
    open_settings_section(page, "SingDiffusion")
    copied = data_dir / "models" / "SingDiffusion" / "browser-copied"
    shutil.copytree(sing_module.folder, copied)
    try:
        assert "browser-copied" not in page.dropdown_choices(MODULE_SETTING)
        page.click("refresh_singdiffusion_default_module")
        choices = page.wait(lambda _: "browser-copied" in (listed := page.dropdown_choices(MODULE_SETTING)) and listed,
                            what="the refreshed module dropdown to list browser-copied")
        assert sing_module.name in choices
    finally:
        shutil.rmtree(copied)
