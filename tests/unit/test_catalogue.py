"""The module catalogue: every entry a valid kind with a way to get it, and the hint a host shows without a module."""

from __future__ import annotations

import pytest

from sing_core.catalogue import load_catalogue, suggest
from sing_core.cli import main
from sing_core.kinds import OMS, SINGDIFFUSION
from sing_core.oms_folder import MODEL_INDEX, MODULE_FOLDER, WEIGHTS_NAMES


def test_the_catalogue_holds_the_four_known_modules_with_their_kinds():
    catalogue = load_catalogue()
    kinds = {entry.name: (entry.kind.method, entry.kind.family, entry.kind.text) for entry in catalogue.entries}
    assert kinds == {
        "singdiffusion-sd15": (SINGDIFFUSION, "sd", "clip_l"),
        "oms_b_openclip_15_21": (OMS, "sd", "openclip_h"),
        "oms_b_openclip_xl": (OMS, "sdxl", "openclip_h"),
        "oms_l_mixclip_xl": (OMS, "sdxl", "sdxl"),
    }


def test_every_hugging_face_entry_lists_a_release_that_sing_core_reads():
    for entry in load_catalogue().entries:
        if entry.browser_only:
            assert entry.hub_repo is None
            assert "drive.google.com" in entry.download_page
            assert "github.com/PangzeCheung/SingDiffusion" in entry.source_page
            continue
        required = {f.path for f in entry.files if f.required}
        assert MODEL_INDEX in required
        assert f"{MODULE_FOLDER}/config.json" in required
        assert any(path.removeprefix(f"{MODULE_FOLDER}/") in WEIGHTS_NAMES for path in required)
        assert entry.source_page == f"https://huggingface.co/{entry.hub_repo}"
        assert entry.approx_size


def test_file_urls_follow_the_hub_layout_and_the_base_url_can_be_changed():
    catalogue = load_catalogue()
    entry = catalogue.get("oms_b_openclip_xl")
    expected = "https://huggingface.co/h1t/oms_b_openclip_xl/resolve/main/model_index.json"
    assert catalogue.file_url(entry, entry.files[0]) == expected
    assert catalogue.file_url(entry, entry.files[0], "http://127.0.0.1:9/").startswith("http://127.0.0.1:9/h1t/")


@pytest.mark.parametrize(("host_family", "fits", "not_fits"), [
    ("SD-1.x", ["singdiffusion-sd15", "oms_b_openclip_15_21"], ["oms_b_openclip_xl"]),
    ("SD-2.x", ["singdiffusion-sd15", "oms_b_openclip_15_21"], ["oms_l_mixclip_xl"]),
    ("SDXL", ["oms_b_openclip_xl", "oms_l_mixclip_xl"], ["singdiffusion-sd15", "oms_b_openclip_15_21"]),
])
def test_suggest_names_the_modules_that_fit_the_checkpoint_and_how_to_get_them(host_family, fits, not_fits):
    text = suggest(host_family)
    assert f"For this {host_family} checkpoint" in text
    for name in fits:
        assert f"- {name} (" in text
    for name in not_fits:
        assert f"- {name} (" not in text
    if host_family == "SDXL":
        assert "python -m sing_core download oms_b_openclip_xl" in text
    else:
        assert "drive.google.com" not in text  # the Drive link is in the catalogue command; the hint says how
        assert "Google Drive folder linked from the SingDiffusion README" in text


def test_suggest_for_a_family_no_module_serves_and_for_an_unknown_checkpoint():
    assert "No start module exists for Flux checkpoints" in suggest("Flux")
    assert "python -m sing_core catalogue" in suggest(None)


def test_the_catalogue_command_lists_every_module(capsys):
    assert main(["catalogue"]) == 0
    out = capsys.readouterr().out
    for entry in load_catalogue().entries:
        assert out.count(f"{entry.name}:") >= 1
    assert "drive.google.com" in out  # the Drive module's link, in full
