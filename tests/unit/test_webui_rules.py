"""The webui adapter's own decisions (sing_webui.rules): which checkpoints and text sources it serves and which
status a failure gives, on plain values; no webui is imported."""

import subprocess
import sys
from pathlib import Path

import pytest

from sing_core.args import ArgsError
from sing_core.host_family import HostFamilyError
from sing_core.kinds import ModuleKind
from sing_core.library import ModuleEntry, ModuleGoneError, UnknownModuleError
from sing_core.presets import PresetError
from sing_core.weights import CheckpointError
from sing_webui import rules
from sing_webui.preset_rules import NotFoundError
from sing_webui.sampler_start import UnknownSamplerError

ROOT = Path(__file__).resolve().parents[2]
# sing_webui's modules that CI imports: the decisions, apart from the glue that needs a webui
PLAIN_MODULES = ("sing_webui.rules", "sing_webui.sampler_start", "sing_webui.resolve", "sing_webui.preset_rules")


def test_the_plain_decisions_import_no_webui():
    code = f"import sys, {', '.join(PLAIN_MODULES)}; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert all(f"'{module}'" in loaded for module in PLAIN_MODULES)
    assert all(f"'{name}" not in loaded for name in ("modules", "gradio", "fastapi", "backend", "modules_forge"))


SD = ModuleKind()  # SingDiffusion's release: SD-1.x/2.x latents, CLIP-L
OMS_SD = ModuleKind("oms", "sd", "openclip_h")
OMS_XL = ModuleKind("oms", "sdxl", "openclip_h")
OMS_MIX = ModuleKind("oms", "sdxl", "sdxl")


@pytest.mark.parametrize(("family", "kind"), [("SD-1.x", SD), ("SD-2.x", SD), ("SD-2.x", OMS_SD), ("SDXL", OMS_XL),
                                              ("SDXL", OMS_MIX)])
def test_served_families_with_the_modules_latent_fit(family, kind):
    assert rules.fit_refusal(family, 4, kind, 4, "m [abc]") is None


@pytest.mark.parametrize("family", ["SDXL refiner", "SD3", "Flux", "Chroma", "StableCascade"])
@pytest.mark.parametrize("kind", [SD, OMS_XL])
def test_other_families_are_refused_with_what_to_do(family, kind):
    message = rules.fit_refusal(family, 4, kind, 4, "m [abc]")
    assert f"module m [abc] cannot serve the loaded checkpoint: the checkpoint is {family}" in message
    assert "load an SD-1.x, SD-2.x or SDXL base checkpoint, or turn the module off" in message


@pytest.mark.parametrize(("family", "kind", "says"), [
    ("SDXL", SD, "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL (SDXL latents); choose an SDXL"),
    ("SD-1.x", OMS_XL, "the module predicts SDXL latents and the checkpoint is SD-1.x (SD-1.x/2.x latents); choose"),
])
def test_a_module_of_the_other_latent_family_is_refused_naming_both(family, kind, says):
    assert says in rules.fit_refusal(family, 4, kind, 4, "m [abc]")


def test_a_latent_width_mismatch_names_both_widths():
    message = rules.fit_refusal("SD-1.x", 8, SD, 4, "m [abc]")
    assert "module m [abc] predicts 4-channel latents but the loaded checkpoint uses 8-channel latents" in message


@pytest.mark.parametrize(
    ("choice", "family", "width", "clip_skip", "kind", "expected"),
    [
        ("auto", "SD-1.x", 768, 1, SD, "host"),
        ("auto", "SD-1.x", 768, 2, SD, "module"),  # CLIP skip 2 is not the space the module was trained in
        ("auto", "SD-1.x", 32, 1, SD, "module"),
        ("auto", "SD-2.x", 1024, 1, SD, "module"),
        ("host", "SD-1.x", 768, 2, SD, "host"),  # asked for: the webui's own rows, CLIP skip and all
        ("module", "SD-1.x", 768, 1, SD, "module"),
        ("module", "SD-2.x", None, 1, SD, "module"),
        ("auto", "SD-2.x", 1024, 1, OMS_SD, "host"),  # SD-2's own conditioning is ViT-H
        ("auto", "SD-2.x", 1024, 2, OMS_SD, "host"),  # SD-2's conditioning ignores CLIP skip
        ("auto", "SD-1.x", 768, 1, OMS_SD, "module"),
        ("auto", "SDXL", 2048, 1, OMS_XL, "module"),  # ViT-H from a file: SDXL conditions on CLIP-L ⊕ bigG
        ("auto", "SDXL", 2048, 1, OMS_MIX, "host"),
        ("module", "SDXL", 2048, 1, OMS_MIX, "host"),  # mixclip's own encoders are the SDXL checkpoint's
    ],
)
def test_text_source(choice, family, width, clip_skip, kind, expected):
    assert rules.text_source(choice, family, width, kind, kind.text_width if width else 1024, clip_skip) == expected


@pytest.mark.parametrize(("family", "width", "says"), [("SD-2.x", None, "of no known width"),
                                                       ("SD-1.x", 32, "32 wide")])
def test_host_text_where_it_does_not_fit_is_refused_saying_why(family, width, says):
    with pytest.raises(rules.RefusalError) as refused:
        rules.text_source("host", family, width, SD, 768, 1)
    message = str(refused.value)
    assert "text source 'host' needs an SD-1.x checkpoint whose text conditioning is 768 wide" in message
    assert f"the loaded checkpoint is {family} and its text conditioning is {says}" in message
    assert "Use text source 'module' or 'auto'" in message


def test_an_sdxl_text_module_needs_the_sdxl_checkpoints_conditioning():
    with pytest.raises(rules.RefusalError, match="needs an SDXL checkpoint whose text conditioning is 2048 wide"):
        rules.text_source("auto", "SDXL", 1280, OMS_MIX, 2048, 1)


@pytest.mark.parametrize(("last_alpha", "marker", "skips"), [(0.0047, False, False), (4.9e-8, False, True),
                                                            (0.0047, True, True)])
def test_a_zero_terminal_snr_schedule_skips_the_module_saying_why(last_alpha, marker, skips):
    reason = rules.ztsnr_reason(last_alpha, marker)
    assert (reason is not None) is skips
    if skips:
        assert "zero terminal SNR" in reason
        assert "did nothing" in reason


def test_img2img_applies_only_from_nothing():
    assert "denoising strength 0.75 starts from the image" in rules.img2img_skip_reason(0.75, True, 2)
    assert "no mask, or masked content" in rules.img2img_skip_reason(1.0, False, 2)
    assert "no mask, or masked content" in rules.img2img_skip_reason(1.0, True, 1)  # fill: original
    assert rules.img2img_skip_reason(1.0, True, rules.FILL_LATENT_NOISE) is None
    assert rules.img2img_skip_reason(1.0, True, rules.FILL_LATENT_NOTHING) is None


def test_passes_that_do_not_start_from_nothing_are_left_alone():
    assert rules.pass_skip_reason(False, False, False) is None
    assert "hires fix pass" in rules.pass_skip_reason(True, False, False)
    assert "ADetailer" in rules.pass_skip_reason(False, True, False)
    assert "already started" in rules.pass_skip_reason(False, False, True)  # Forge's hires pass calls it twice


@pytest.mark.parametrize(("error", "status"), [
    (ArgsError("'enabled' must be true or false"), 422),
    (UnknownModuleError("SingDiffusion module 'x' is not installed"), 422),
    (LookupError("the 'module' text source needs SD-1.5's CLIP-L"), 422),
    (FileNotFoundError("the CLIP-L file 'x' is not a file under /models"), 500),  # the server's files
    (rules.RefusalError("text source 'host' needs ..."), 422),
    (UnknownSamplerError("sampler 'x' is neither a k-diffusion nor a timestep sampler"), 422),
    (RuntimeError("CUDA out of memory"), 500),
    (CheckpointError("m.bin: not a SingDiffusion module"), 500),  # a broken file in the server's folders
    (HostFamilyError("model.ckpt: load it in the webui first"), 500),
])
def test_failures_map_to_the_request_or_the_server(error, status):
    assert rules.failure_status(error) == status
    message = rules.failure_message(error)
    assert message == (str(error) if status == 422 else f"{type(error).__name__}: {error}")


def module_entry(folder: Path) -> ModuleEntry:
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    weights = folder / "diffusion_pytorch_model.bin"
    weights.write_bytes(b"w")
    return ModuleEntry("m", folder, folder.parent, weights)


def test_a_module_that_will_not_load_is_the_servers_failure(tmp_path):
    entry = module_entry(tmp_path / "m")
    error = CheckpointError(f"{entry.weights}: truncated")
    assert rules.load_failure(error, entry) == (str(error), 500)


def test_a_module_removed_between_the_lookup_and_the_load_is_the_requests(tmp_path):
    entry = module_entry(tmp_path / "m")
    entry.weights.unlink()
    message, status = rules.load_failure(FileNotFoundError(str(entry.weights)), entry)
    assert status == 422
    assert message == str(ModuleGoneError(entry))
    assert "is gone" in message
    assert "refresh the list" in message


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), LookupError("no row 3"), ArgsError("x")])
def test_once_sampling_runs_every_failure_is_the_servers(error):
    message, status = rules.sampling_failure(error, "tiny-sing [0123456789]")
    assert status == 500
    assert message == f"tiny-sing [0123456789] failed: {type(error).__name__}: {error}"


@pytest.mark.parametrize(("error", "missing", "status", "detail"), [
    (NotFoundError("no checkpoint 'x'"), (NotFoundError,), 404, "SingDiffusion: no checkpoint 'x'"),
    (UnknownModuleError("SingDiffusion module 'x' is not installed"), (NotFoundError,), 422,
     "SingDiffusion module 'x' is not installed"),  # naming a module in a preset: what cannot be saved
    (UnknownModuleError("SingDiffusion module 'x' is not installed"), (UnknownModuleError,), 404,
     "SingDiffusion module 'x' is not installed"),  # the module of a /modules/{name} URL
    (ModuleGoneError(ModuleEntry("x", Path("/m/x"), Path("/m"), Path("/m/x/w.bin"))), (UnknownModuleError,), 404,
     None),
    (ArgsError("unknown SingDiffusion argument(s) 'x'"), (NotFoundError,), 422,
     "unknown SingDiffusion argument(s) 'x'"),
    (PresetError("the preset file is read-only"), (NotFoundError,), 422, "SingDiffusion: the preset file is read-only"),
    (HostFamilyError("model.ckpt: load it first"), (NotFoundError,), 422, "SingDiffusion: model.ckpt: load it first"),
])
def test_route_refusals_are_404_for_a_name_that_matches_nothing_else_422(error, missing, status, detail):
    got_status, got_detail = rules.route_failure(error, missing)
    assert got_status == status
    assert got_detail == (detail or str(error))
