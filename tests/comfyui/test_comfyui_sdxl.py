"""SDXL (and SD-2) with One More Step modules in a real ComfyUI: the sampler's real first input against the offline
reference.

The reference is x̂0 = −v from the module's own forward (sing_core) on the embeddings the module was given, which
the probe pack records: CLIPTextEncode of the same text with the module's text encoder (the SD-2 checkpoint's
OpenCLIP ViT-H for the openclip module, the SDXL checkpoint's own conditioning for the 2048-wide one), and "" with
it where One More Step guides; x1 is the host's own noise. Then x̂0 + σ0·x1, as for SD-1.
"""

from __future__ import annotations

import pytest
import torch
from comfy_live import read_probe
from graphs import CHECKPOINT, SD2_CHECKPOINT, SDXL_CHECKPOINT, sdxl_oms, txt2img, with_model_node
from test_comfyui_start import TOLERANCE, first_rows, stock_noise

from sing_core.checkpoint import load_module
from sing_core.start import sigma_start

pytestmark = pytest.mark.comfyui

CASES = {
    "euler_ancestral": {"sampler": "euler_ancestral"},
    "dpmpp_2m-karras": {"sampler": "dpmpp_2m", "scheduler": "karras"},
    "ddim-ddim_uniform": {"sampler": "ddim", "scheduler": "ddim_uniform"},
    "guidance2": {"guidance_scale": 2.0},
    "batch3": {"batch": 3, "seed": 12, "batch_prompts": ("a red car", "a dark night sky", "a bright beach")},
}
ZTSNR = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": "eps", "zsnr": True}}


def expected_start(record: dict, module_path, module_record: dict, guidance: float) -> torch.Tensor:
    """λ = 1: x̂0 + σ0·x1 with x̂0 = −v, plain CFG against "" where guidance ≠ 1 (OMS's default 1: no "")."""
    module = load_module(module_path)
    assert module.kind.method == "oms"
    x1, sigma0 = record["noise"], float(record["sigmas"][0])
    w = guidance or 1.0
    x0_hat = module.predict_x0(x1, module_record["positive"], module_record["empty"], w)
    return sigma_start(x0_hat, x1, sigma0)


def run_sdxl(comfy, probe_dir, tag: str, **options) -> tuple[dict, dict]:
    run = comfy.run(sdxl_oms(probe=tag, **options))
    assert run.succeeded, run.failure
    module_record = {"positive": read_probe(probe_dir, f"{tag}-module-positive")["cond.0"],
                     "empty": read_probe(probe_dir, f"{tag}-module-empty")["cond.0"]}
    return read_probe(probe_dir, tag), module_record


@pytest.mark.parametrize("case", list(CASES))
def test_openclip_module_on_sdxl_starts_at_the_reference(comfy, probe_dir, modules, case):
    options = dict(CASES[case])
    record, module_record = run_sdxl(comfy, probe_dir, f"xl-{case}", module=modules.oms_xl, **options)
    x1 = record["noise"]
    assert torch.equal(x1, stock_noise(x1.shape, options.get("seed", 1)))
    assert record["positive.0"].shape[-1] == 2048  # the sampler's own SDXL conditioning
    assert module_record["positive"].shape[-1] == 1024  # the module's SD-2 ViT-H text
    expected = expected_start(record, modules.path(modules.oms_xl), module_record, options.get("guidance_scale", 0))
    error = (first_rows(record) - expected).abs().max().item()
    assert error <= TOLERANCE, f"{case}: max |first input − x̂0 − σ0·x1| = {error:.3g}"
    sigma0 = float(record["sigmas"][0])
    assert (first_rows(record) - sigma0 * x1).abs().max().item() > 10 * TOLERANCE  # the module moved it
    if case == "batch3":  # each image its own prompt: the three module inputs, and so the three starts, differ
        assert module_record["positive"].shape[0] == 3
        rows = [expected[i] - sigma0 * x1[i] for i in range(3)]
        assert (rows[0] - rows[1]).abs().max() > 10 * TOLERANCE


def test_mixclip_module_reads_sdxls_own_conditioning(comfy, probe_dir, modules):
    record, module_record = run_sdxl(comfy, probe_dir, "xl-mixclip", module=modules.oms_xl_mixclip, module_text=None,
                                     guidance_scale=1.5)
    assert torch.equal(module_record["positive"], record["positive.0"])  # the sampler's positive, as it is
    expected = expected_start(record, modules.path(modules.oms_xl_mixclip), module_record, 1.5)
    assert (first_rows(record) - expected).abs().max().item() <= TOLERANCE


def test_openclip_module_on_sd2_reads_the_samplers_own_conditioning(comfy, probe_dir, modules):
    """SD-2's conditioning is the OpenCLIP ViT-H text One More Step's openclip modules read: no clip input needed at
    its default guidance."""
    run = comfy.run(txt2img(checkpoint=SD2_CHECKPOINT, module=modules.oms_sd, probe="sd2-oms", sampler="dpmpp_2m",
                            scheduler="karras"))
    assert run.succeeded, run.failure
    record = read_probe(probe_dir, "sd2-oms")
    assert record["positive.0"].shape[-1] == 1024
    module = load_module(modules.path(modules.oms_sd))
    x1, sigma0 = record["noise"], float(record["sigmas"][0])
    expected = sigma_start(module.predict_x0(x1, record["positive.0"]), x1, sigma0)
    assert (first_rows(record) - expected).abs().max().item() <= TOLERANCE
    assert (first_rows(record) - sigma0 * x1).abs().max().item() > 10 * TOLERANCE


def test_module_prompt_changes_only_the_modules_side(comfy, probe_dir, modules):
    plain, plain_module = run_sdxl(comfy, probe_dir, "xl-prompt-off", module=modules.oms_xl)
    record, module_record = run_sdxl(comfy, probe_dir, "xl-prompt-on", module=modules.oms_xl,
                                     module_prompt="at night, dark")
    assert torch.equal(record["positive.0"], plain["positive.0"])  # the sampler's prompt is untouched
    assert torch.equal(record["noise"], plain["noise"])
    assert not torch.equal(module_record["positive"], plain_module["positive"])
    expected = expected_start(record, modules.path(modules.oms_xl), module_record, 0)
    assert (first_rows(record) - expected).abs().max().item() <= TOLERANCE
    assert (first_rows(record) - first_rows(plain)).abs().max().item() > 10 * TOLERANCE


def test_module_prompt_without_clip_names_the_input(comfy, modules):
    graph = sdxl_oms(probe="xl-no-clip", module=modules.oms_xl, module_prompt="red car")
    del graph["apply"]["inputs"]["clip"]
    run = comfy.run(graph)
    assert not run.succeeded
    assert "module_prompt" in run.error["exception_message"]
    assert "clip input" in run.error["exception_message"]
    assert comfy.run(txt2img(seed=22)).succeeded


@pytest.mark.parametrize(("checkpoint_name", "module_attr", "words"), [
    (SDXL_CHECKPOINT, "fitting", ("SD-1.x/2.x latents", "SDXL", "choose an SDXL module")),
    (CHECKPOINT, "oms_xl", ("SDXL latents", "SD-1.x", "an SD-1.x/2.x module")),
])
def test_a_module_of_the_other_latent_family_is_refused(comfy, modules, checkpoint_name, module_attr, words):
    run = comfy.run(txt2img(checkpoint=checkpoint_name, module=getattr(modules, module_attr)))
    assert not run.succeeded
    assert run.error["node_type"] == "SingDiffusionApply"
    for word in words:
        assert word in run.error["exception_message"], run.error["exception_message"]
    assert comfy.run(txt2img(seed=23)).succeeded  # the server keeps serving


def test_zero_terminal_snr_skips_the_module(comfy, comfy_server, probe_dir, modules):
    without = comfy.run(with_model_node(sdxl_oms(probe="ztsnr-without", module=None), "zsnr", ZTSNR))
    assert without.succeeded, without.failure
    since = comfy_server.log_size()
    run = comfy.run(with_model_node(sdxl_oms(probe="ztsnr-with", module=modules.oms_xl), "zsnr", ZTSNR))
    assert run.succeeded, run.failure
    with_node, plain = read_probe(probe_dir, "ztsnr-with"), read_probe(probe_dir, "ztsnr-without")
    assert float(with_node["sigmas"][0]) > 1000  # ComfyUI's zero-terminal-SNR schedule
    assert torch.equal(with_node["first_input"], plain["first_input"])
    assert "zero terminal SNR" in comfy_server.log_text(since=since)
