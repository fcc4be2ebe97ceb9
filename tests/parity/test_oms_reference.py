"""Our engine against One More Step's own code (github mhh0318/OneMoreStep), through a recording of it.

The reference runs only with diffusers 0.23.1 and transformers 4.35 and has no license file, so its code is not here:
tests/parity/record_oms_reference.py ran it in a throwaway environment and wrote data/oms_reference.safetensors
(the reference's commit, versions and seeds are in its metadata). It ran the reference's UNet2DConditionWoCTModel,
saved with its own save_pretrained into a release folder of the "b" layout (oms_tiny_release), and its
OMSPipeline.__call__ (oms_text_encode, prepare_latents, plain CFG against "", oms_step) for two prompts at w = 1
and w = 2; the recording holds the module's input x_T and embeddings, its output v, the fresh noise z oms_step drew
and the latents it handed to the host pipeline.

Here the release folder is rebuilt byte for byte (the weights from their seed; the sha256 of the file as the
reference saved it is recorded) and read by OUR loader as downloaded. Then:
- x̂0: SingModule.predict_x0 with the folder's kind (OMS: x̂0 = −v, plain CFG against "") equals the reference's
  −(v_u + w·(v_c − v_u)) within 1e-4.
- The start: the reference's x_t0 = √ᾱ(t0)·x̂0 + (1 − ᾱ(t0))·z draws FRESH noise z and scales it by the posterior's
  variance (1 − ᾱ) where its standard deviation √(1 − ᾱ) belongs; sing_core takes the deterministic step with the
  host's own noise x1 = x_T, x_t0 = √ᾱ·x̂0 + √(1 − ᾱ)·x1 (ddim_start; sigma_start in σ form). At SNR 0 the two are
  the same distribution up to that 0.4 % of noise scale, and reusing x1 keeps a seed's image. So the noise terms
  differ by design and what is compared is the image term: our √ᾱ·x̂0 equals the reference's x_t0 − (1 − ᾱ)·z.
- The recording is still current: diffusers 0.42's UNet2DConditionModel with the time path removed (the same weights)
  gives the recorded v, transformers 5's CLIPTextModel the recorded embeddings and its CLIPTokenizer the recorded
  token ids, diffusers 0.42's DDIMScheduler the recorded t0 and ᾱ(t0).
- Where OMS_REFERENCE_PYTHON and OMS_REFERENCE_DIR name the throwaway environment and a checkout of the reference,
  the reference is run again and must reproduce the recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import diffusers  # the recomputation: missing, the parity tier fails (requirements/test.txt installs it), never skips
import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D
from oms_tiny_release import (
    GUIDANCE_SCALES,
    MODULE_SEED,
    NUM_INFERENCE_STEPS,
    TEXT_SEED,
    read_recording,
    seeded_state,
    state_sha256,
    vocabulary_sha256,
    write_release,
    write_sd2_text_folder,
)

from sing_core import ddim_start, load_module, sd_alphas_cumprod, sigma_from_alpha_cumprod, sigma_start
from sing_core.kinds import OMS, OPENCLIP_H, SD, ModuleKind
from sing_core.text.bpe_vocab import read_bpe_gz
from sing_core.text.vocab_sources import package_bpe_gz_files

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "data" / "oms_reference.safetensors"
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def recording():
    return read_recording(RECORDING)


@pytest.fixture(scope="module")
def tensors(recording):
    return recording[0]


@pytest.fixture(scope="module")
def metadata(recording):
    return recording[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory, metadata):
    return write_release(tmp_path_factory.mktemp("oms") / "oms_b_tiny", metadata)


@pytest.fixture(scope="module")
def module(release):
    return load_module(release)


def reference_x0(tensors, tag: str, guidance: float) -> torch.Tensor:
    """The reference's guided x̂0 from its recorded module output: −(v_u + w·(v_c − v_u)), "" first in its batch."""
    v_uncond, v_cond = tensors[f"{tag}.v"].double().chunk(2)
    return -(v_uncond + guidance * (v_cond - v_uncond))


def test_recording_names_its_reference(metadata):
    versions = json.loads(metadata["versions"])
    assert (versions["diffusers"], versions["transformers"]) == ("0.23.1", "4.35.2")
    assert len(metadata["reference_commit"]) == 40
    assert json.loads(metadata["seeds"])["module"] == MODULE_SEED
    assert RECORDING.stat().st_size < 2_000_000


def test_rebuilt_release_is_the_folder_the_reference_saved(release, metadata):
    weights = release / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == metadata["module_file_sha256"]
    state = seeded_state(json.loads(metadata["module_shapes"]), MODULE_SEED, torch.float16)
    assert state_sha256(state) == metadata["module_state_sha256"]


@pytest.mark.parametrize("subfolder", ["", "oms_module"])
def test_release_folder_loads_as_an_sd_latent_oms_module_reading_openclip_h(release, subfolder):
    loaded = load_module(release / subfolder if subfolder else release)
    assert loaded.kind == ModuleKind(OMS, SD, OPENCLIP_H)
    assert loaded.cross_attention_dim == 64  # the tiny encoder's width: read from the config, not TEXT_WIDTHS


@pytest.mark.parametrize("guidance", GUIDANCE_SCALES)
def test_x0_equals_the_reference(module, tensors, guidance):
    tag = f"w{guidance:g}"
    x0_hat = module.predict_x0(tensors[f"{tag}.x_T"], tensors[f"{tag}.cond"], tensors[f"{tag}.uncond"], guidance)
    difference = (x0_hat.double() - reference_x0(tensors, tag, guidance)).abs().max().item()
    assert difference < TOLERANCE, f"w = {guidance}: max |x̂0 − reference| = {difference:.2e}"


def test_guidance_changes_x0(tensors):
    """w = 2 must differ from w = 1 by far more than the tolerance, or the two cases would not test guidance."""
    assert (reference_x0(tensors, "w2", 2.0) - reference_x0(tensors, "w1", 1.0)).abs().max() > 100 * TOLERANCE


def test_schedule_gives_the_reference_t0_and_alpha(tensors):
    t0 = int(tensors["t0"])
    assert t0 == 951  # DDIM, 20 steps, "leading" spacing, steps_offset 1
    ours = sd_alphas_cumprod()[t0]
    assert abs(ours.item() - tensors["alpha_cumprod_t0"].item()) < 1e-7  # the reference's ᾱ is float32


@pytest.mark.parametrize("guidance", GUIDANCE_SCALES)
def test_start_image_term_equals_the_reference_mean(module, tensors, guidance):
    tag = f"w{guidance:g}"
    x_T, z, x_t0_ref = (tensors[f"{tag}.{name}"].double() for name in ("x_T", "z", "x_t0"))
    alpha = sd_alphas_cumprod()[int(tensors["t0"])]
    # What the reference adds is fresh noise times the variance (1 − ᾱ), not the standard deviation √(1 − ᾱ).
    reference_mean = x_t0_ref - (1.0 - alpha) * z
    x0_hat = module.predict_x0(tensors[f"{tag}.x_T"], tensors[f"{tag}.cond"], tensors[f"{tag}.uncond"], guidance)

    ours_vp = ddim_start(x0_hat.double(), x_T, alpha) - (1.0 - alpha).sqrt() * x_T
    assert (ours_vp - reference_mean).abs().max().item() < TOLERANCE
    sigma = sigma_from_alpha_cumprod(alpha)
    ours_sigma = sigma_start(x0_hat.double(), x_T, sigma) - sigma * x_T  # σ form: x_t0 / √ᾱ
    assert (ours_sigma - reference_mean / alpha.sqrt()).abs().max().item() < TOLERANCE / alpha.sqrt().item()
    # The whole start: our noise term is the host's x1 at √(1 − ᾱ), the reference's fresh z at (1 − ᾱ).
    ours = ddim_start(x0_hat.double(), x_T, alpha)
    assert torch.allclose(ours - x_t0_ref, (1.0 - alpha).sqrt() * x_T - (1.0 - alpha) * z, atol=TOLERANCE)


def without_time(model):
    """The time path removed the way the reference's module has none: resnets see no time embedding."""
    for block in model.modules():
        if isinstance(block, ResnetBlock2D):
            block.time_emb_proj = None
            block.time_embedding_norm = None
    return model


def test_recording_is_current_with_diffusers_unet(tensors, metadata):
    """diffusers 0.42's UNet2DConditionModel, the same weights, no time path: the recorded v (both sides)."""
    config = json.loads(json.loads(metadata["files"])["oms_module/config.json"])
    unet = diffusers.UNet2DConditionModel.from_config(config).eval()
    state = {k: v.float() for k, v in seeded_state(json.loads(metadata["module_shapes"]), MODULE_SEED,
                                                    torch.float16).items()}
    missing, unexpected = unet.load_state_dict(state, strict=False)
    assert not unexpected
    assert missing
    assert all(key.startswith("time_embedding.") or ".time_emb_proj." in key for key in missing)
    without_time(unet)
    for guidance in GUIDANCE_SCALES:
        tag = f"w{guidance:g}"
        x_T = tensors[f"{tag}.x_T"]
        embeddings = torch.cat([tensors[f"{tag}.uncond"], tensors[f"{tag}.cond"]])
        with torch.no_grad():
            v = unet(torch.cat([x_T, x_T]), torch.ones(()), embeddings).sample
        assert (v - tensors[f"{tag}.v"]).abs().max().item() < TOLERANCE


def test_recording_is_current_with_transformers_text_encoder(tensors, metadata):
    """transformers 5's CLIPTextModel, the same weights, the recorded token ids: the recorded embeddings."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = json.loads(json.loads(metadata["files"])["text_encoder/config.json"])
    model = CLIPTextModel(CLIPTextConfig(**config)).eval()
    state = seeded_state(json.loads(metadata["text_shapes"]), TEXT_SEED)
    assert state_sha256(state) == metadata["text_state_sha256"]
    # The files keep transformers 4's "text_model." prefix; transformers 5's CLIPTextModel has none.
    model.load_state_dict({k.removeprefix("text_model."): v for k, v in state.items()}, strict=True)
    with torch.no_grad():
        embeddings = model(input_ids=tensors["text.ids"]).last_hidden_state
    assert (embeddings - tensors["text.embeddings"]).abs().max().item() < TOLERANCE
    batch = len(json.loads(metadata["module_prompts"]))
    assert torch.equal(tensors["w1.cond"], tensors["text.embeddings"][:batch])  # the module read this encoder


def test_recording_is_current_with_transformers_tokenizer(tmp_path, tensors, metadata):
    """transformers 5's CLIPTokenizer with the reference tokenizer's configs and CLIP's vocabulary: the recorded ids.
    In both versions the pad token "!" is a special token, so a "!" typed in a prompt is read as id 0."""
    from transformers import CLIPTokenizer

    gz_files = package_bpe_gz_files()
    assert gz_files, "no bpe_simple_vocab_16e6.txt.gz: install requirements/test.txt (openai-clip)"
    vocabulary = read_bpe_gz(gz_files[0])
    assert vocabulary_sha256(vocabulary) == metadata["vocabulary_sha256"]
    folder = write_sd2_text_folder(tmp_path / "sd2_tiny", metadata, vocabulary)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    ids = tokenizer(json.loads(metadata["text_prompts"]), padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids
    assert torch.equal(ids, tensors["text.ids"])
    assert (ids[:, -1] == 0).all()  # "!" padding


def test_recording_is_current_with_diffusers_scheduler(tensors):
    scheduler = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    scheduler.set_timesteps(NUM_INFERENCE_STEPS)
    t0 = int(scheduler.timesteps[0])
    assert t0 == int(tensors["t0"])
    assert scheduler.alphas_cumprod[t0].item() == pytest.approx(tensors["alpha_cumprod_t0"].item(), abs=1e-9)


REFERENCE_ENV = ("OMS_REFERENCE_PYTHON", "OMS_REFERENCE_DIR")


@pytest.mark.skipif(
    not all(os.environ.get(name) for name in REFERENCE_ENV),
    reason="re-running One More Step's own code needs OMS_REFERENCE_PYTHON (its throwaway environment: diffusers "
    "0.23.1, transformers 4.35.2) and OMS_REFERENCE_DIR (a checkout of mhh0318/OneMoreStep; OMS_REFERENCE_COMMIT "
    "where it is not a git checkout); see tests/parity/record_oms_reference.py",
)
def test_reference_rerun_reproduces_the_recording(tmp_path, tensors, metadata):
    out = tmp_path / "rerun.safetensors"
    result = subprocess.run(
        [os.environ["OMS_REFERENCE_PYTHON"], str(HERE / "record_oms_reference.py"), str(out)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    rerun, rerun_metadata = read_recording(out)
    assert sorted(rerun) == sorted(tensors)
    for key, recorded in tensors.items():
        difference = (rerun[key].double() - recorded.double()).abs().max().item()
        assert difference < 1e-5, f"{key}: the reference now gives {difference:.2e} away from the recording"
    for key in ("files", "module_shapes", "text_shapes", "module_file_sha256", "text_file_sha256",
                "vocabulary_sha256", "reference_files_sha256"):
        assert rerun_metadata[key] == metadata[key], f"{key} changed: review, then re-record"
