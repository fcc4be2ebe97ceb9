"""The sampler's real first input, recorded by the test-only probe pack, against sing_core's start.

For each case the probe records ComfyUI's unit noise x1, the conds and cfg the sampler holds, its sigmas and the
UNet's first input; the expected start x̂0 + σ0·x1 is computed here with sing_core from x1 and those conds.
"""

from __future__ import annotations

import pytest
import torch
from comfy_live import read_probe
from graphs import txt2img, with_model_node

from sing_core.checkpoint import load_module
from sing_core.start import sigma_start

pytestmark = pytest.mark.comfyui

TOLERANCE = 1e-3
V_PREDICTION = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": "v_prediction",
                                                                  "zsnr": False}}
CASES = {
    "euler": {},
    "euler_ancestral-karras": {"sampler": "euler_ancestral", "scheduler": "karras"},
    "dpmpp_2m-karras": {"sampler": "dpmpp_2m", "scheduler": "karras"},
    "ddim-ddim_uniform": {"sampler": "ddim", "scheduler": "ddim_uniform"},
    "uni_pc": {"sampler": "uni_pc"},
    "batch3": {"batch": 3, "seed": 11},
    "cfg1": {"cfg": 1.0},
    "guidance3": {"guidance_scale": 3.0},
    "strength0.5": {"strength": 0.5},
    "KSamplerAdvanced": {"sampler_node": "KSamplerAdvanced", "sampler": "dpmpp_2m", "scheduler": "karras"},
    "SamplerCustom": {"sampler_node": "SamplerCustom", "sampler": "euler_ancestral"},
    "SamplerCustomAdvanced": {"sampler_node": "SamplerCustomAdvanced", "sampler": "dpmpp_2m", "scheduler": "karras"},
}


def stock_noise(shape, seed: int) -> torch.Tensor:
    """comfy.sample.prepare_noise: one CPU randn for the whole batch from torch.manual_seed(seed)."""
    return torch.randn(shape, generator=torch.manual_seed(seed), dtype=torch.float32)


def expected_start(record: dict, module_path, guidance_scale: float, strength: float = 1.0) -> torch.Tensor:
    x1, sigma0 = record["noise"], float(record["sigmas"][0])
    cfg = float(record["cfg"])
    w = guidance_scale if guidance_scale > 0 else cfg
    module = load_module(module_path)
    x0_hat = module.predict_x0(x1, record["positive.0"], record.get("negative.0"), w)
    return sigma_start(x0_hat, x1, sigma0, strength=strength)


def first_rows(record: dict) -> torch.Tensor:
    """The UNet's first input for the batch (under CFG it is the batch twice: cond and uncond rows)."""
    first, batch = record["first_input"], record["noise"].shape[0]
    assert first.shape[0] % batch == 0
    chunks = first.split(batch)
    assert all(torch.equal(chunk, chunks[0]) for chunk in chunks)
    return chunks[0]


def run_case(comfy, probe_dir, tag: str, graph: dict) -> dict:
    run = comfy.run(graph)
    assert run.succeeded, run.failure
    return read_probe(probe_dir, tag)


@pytest.mark.parametrize("case", list(CASES))
def test_first_input_is_sing_cores_start(comfy, probe_dir, modules, case):
    options = dict(CASES[case])
    seed, guidance = options.get("seed", 1), options.get("guidance_scale", 0.0)
    record = run_case(comfy, probe_dir, case, txt2img(probe=case, **options))
    x1 = record["noise"]
    assert torch.equal(x1, stock_noise(x1.shape, seed))  # the probe saw ComfyUI's own noise
    expected = expected_start(record, modules.path(modules.fitting), guidance, options.get("strength", 1.0))
    error = (first_rows(record) - expected).abs().max().item()
    assert error <= TOLERANCE, f"{case}: max |first input − x̂0 − σ0·x1| = {error:.3g}"
    # and it is not ComfyUI's own start: the module moved it
    sigma0 = float(record["sigmas"][0])
    assert (first_rows(record) - sigma0 * x1).abs().max().item() > 10 * TOLERANCE
    if case == "ddim-ddim_uniform":
        assert sigma0 < 14.6  # ddim_uniform starts below σmax, and the start still applies


def test_v_prediction_model(comfy, probe_dir, modules):
    graph = with_model_node(txt2img(probe="vpred", sampler="euler"), "vpred", V_PREDICTION)
    record = run_case(comfy, probe_dir, "vpred", graph)
    expected = expected_start(record, modules.path(modules.fitting), 0.0)
    assert (first_rows(record) - expected).abs().max().item() <= TOLERANCE


def test_the_nodes_own_text_replaces_the_samplers(comfy, probe_dir, modules):
    """positive / negative on the Apply node (here the sampler's two, swapped) are the module's text."""
    graph = txt2img(probe="own-text")
    graph["apply"]["inputs"] |= {"positive": ["neg", 0], "negative": ["pos", 0]}
    record = run_case(comfy, probe_dir, "own-text", graph)
    swapped = {**record, "positive.0": record["negative.0"], "negative.0": record["positive.0"]}
    expected = expected_start(swapped, modules.path(modules.fitting), 0.0)
    assert (first_rows(record) - expected).abs().max().item() <= TOLERANCE
    assert (first_rows(record) - expected_start(record, modules.path(modules.fitting), 0.0)).abs().max() > TOLERANCE


def test_probe_sees_comfyuis_own_start_without_the_node(comfy, probe_dir):
    record = run_case(comfy, probe_dir, "plain", txt2img(module=None, probe="plain"))
    sigma0 = float(record["sigmas"][0])
    own = record["noise"] * (1.0 + sigma0**2) ** 0.5  # max denoise: √(1 + σ0²)·x1
    assert (first_rows(record) - own).abs().max().item() <= 1e-4


@pytest.mark.parametrize(("case", "options"), [
    ("denoise0.6", {"denoise": 0.6}),
    ("add_noise-disabled", {"sampler_node": "KSamplerAdvanced", "add_noise": False}),
])
def test_start_untouched_where_it_does_not_apply(comfy, comfy_server, probe_dir, case, options):
    without = run_case(comfy, probe_dir, f"{case}-without", txt2img(module=None, probe=f"{case}-without", **options))
    since = comfy_server.log_size()
    for _ in range(2):
        with_node = run_case(comfy, probe_dir, f"{case}-with", txt2img(probe=f"{case}-with", **options))
        assert torch.equal(with_node["first_input"], without["first_input"])
    said = comfy_server.log_text(since=since).count("SingDiffusion: not applied:")
    assert said == 1  # the console says why, once


def test_seeds_reproduce_and_differ(comfy):
    images = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        run = comfy.run(txt2img(seed=seed))
        assert run.succeeded, run.failure
        images[name] = comfy.images(run)[0]
    assert (images["a"] == images["b"]).all()
    assert (images["a"] != images["c"]).any()
