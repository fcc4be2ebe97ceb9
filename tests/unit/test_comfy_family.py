"""Which ComfyUI models a module can start (sing_comfy.family), on model facts as ComfyUI's classes give them."""

import pytest
import torch
from comfy_stand_ins import StandInEpsSampling

from sing_comfy import family
from sing_core.kinds import OMS, OPENCLIP_H, SDXL, SDXL_TEXT, ModuleKind

EPS = ("ModelSampling", "ModelSamplingDiscrete", "EPS")
SINGDIFFUSION_SD = ModuleKind()
OMS_XL = ModuleKind(OMS, SDXL, OPENCLIP_H)
OMS_XL_MIXCLIP = ModuleKind(OMS, SDXL, SDXL_TEXT)


def facts(name, latent="SD15", width=768, channels=4, sampling=EPS, bases=()):
    return family.ModelFacts(name, latent, channels, sampling, width, (name, *bases, "BASE", "object"))


SD15 = facts("SD15")
SD20 = facts("SD20", width=1024)
SDXL_MODEL = facts("SDXL", "SDXL", 2048)


@pytest.mark.parametrize(("model", "host_family"), [
    (SD15, "SD-1.x"), (SD20, "SD-2.x"), (facts("SD21UnclipH", width=1024, bases=("SD20",)), "SD-2.x"),
    (SDXL_MODEL, "SDXL"), (facts("SSD1B", "SDXL", 2048, bases=("SDXL",)), "SDXL"),
    (facts("SDXLRefiner", "SDXL", 1280), "SDXL refiner"), (facts("SD3", "SD3", 4096, 16), "SD3"),
    (facts("Flux", "Flux", 4096, 16), "Flux"), (facts("HunyuanDiT", "SDXL", 1024), "HunyuanDiT"),
])
def test_comfyuis_model_classes_are_sing_cores_host_families(model, host_family):
    assert model.host_family == host_family


@pytest.mark.parametrize(("model", "kind", "own_text", "words"), [
    (SD15, SINGDIFFUSION_SD, False, None),
    (SD20, SINGDIFFUSION_SD, True, None),
    (SD20, SINGDIFFUSION_SD, False, ("1024 wide", "768-wide", "clip input", "CLIP-L")),
    (SDXL_MODEL, SINGDIFFUSION_SD, True, ("SD-1.x/2.x latents", "SDXL", "choose an SDXL module")),
    (SDXL_MODEL, OMS_XL, True, None),
    (SDXL_MODEL, OMS_XL, False, ("2048 wide", "1024-wide", "SD-2.x checkpoint", "module_prompt")),
    (SDXL_MODEL, OMS_XL_MIXCLIP, False, None),
    (SD15, OMS_XL, True, ("SDXL latents", "SD-1.x", "an SD-1.x/2.x module")),
    (facts("SDXLRefiner", "SDXL", 1280), OMS_XL, True, ("SDXL refiner", "no start module")),
    (facts("SD3", "SD3", 4096, 16), OMS_XL, True, ("SD3", "no start module")),
    (facts("Flux", "Flux", 4096, 16), SINGDIFFUSION_SD, True, ("Flux", "no start module")),
    (facts("PlaygroundV25", "SDXL_Playground_2_5", 2048, bases=("SDXL",)), OMS_XL, True,
     ("latent format SDXL_Playground_2_5",)),
    (facts("SD15", sampling=("ModelSamplingDiscreteFlow", "CONST")), SINGDIFFUSION_SD, False, ("eps or v",)),
    (facts("SD15", channels=8), SINGDIFFUSION_SD, False, ("8-channel",)),
])
def test_which_models_a_module_can_start(model, kind, own_text, words):
    width = kind.text_width
    refusal = family.refusal(model, kind, 4, width, own_text)
    if words is None:
        assert refusal is None
    else:
        assert refusal is not None
        for word in words:
            assert word in refusal, refusal


def test_zero_terminal_snr_schedules_are_recognised():
    plain = StandInEpsSampling()
    assert family.zero_terminal_snr(plain) is None
    rescaled = StandInEpsSampling()
    rescaled.sigma_max = torch.tensor(4517.9)  # ComfyUI's rescale: ᾱ = 4.9e-8 at the top
    assert "zero terminal SNR" in family.zero_terminal_snr(rescaled)
    flagged = StandInEpsSampling()
    flagged.zsnr = True
    assert "zero terminal SNR" in family.zero_terminal_snr(flagged)
