"""Tiny random diffusers pipelines and modules built offline from configs, and a probe of the UNet's first input.

The tokenizer is SD-1.5's CLIP vocabulary, read from the bpe_simple_vocab_16e6.txt.gz that the openai-clip package
ships and written as a Hugging Face tokenizer folder; every model is random and a few thousand parameters wide, so
the real pipeline code runs on the CPU in milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from pathlib import Path

import torch

from sing_core.text.bpe_vocab import read_bpe_gz, write_tokenizer_folder
from sing_core.text.vocab_sources import package_bpe_gz_files

SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
# SD-1.5's scheduler config as released (PNDM, leading spacing with steps_offset 1: t0 = 981 for 50 steps).
SD15_SCHEDULER = {**SD_SCHEDULE, "skip_prk_steps": True, "steps_offset": 1, "set_alpha_to_one": False,
                  "clip_sample": False, "prediction_type": "epsilon", "timestep_spacing": "leading"}
MODULE_WIDTH = 32  # the tiny stand-in for CLIP-L's 768
SD2_WIDTH = 48  # the tiny stand-in for SD-2's OpenCLIP ViT-H (1024)
UNET = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "norm_num_groups": 16,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": 4,
}
SD2_UNET = {**UNET, "attention_head_dim": (2, 4), "use_linear_projection": True, "upcast_attention": True}


def tokenizer_folder(folder: Path) -> Path:
    write_tokenizer_folder(read_bpe_gz(package_bpe_gz_files()[0]), folder)
    return folder


def clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, model_max_length=77, pad_token="<|endoftext|>")


def clip_text_model(width: int, seed: int, hidden_act: str = "quick_gelu"):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77, hidden_act=hidden_act)
    return CLIPTextModel(config).eval()


def vae(seed: int = 0, scaling_factor: float = 0.18215, latent_channels: int = 4):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3, norm_num_groups=16,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         latent_channels=latent_channels, scaling_factor=scaling_factor).eval()


def unet(config: dict, width: int, seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**config, cross_attention_dim=width).eval()


def sd1_pipeline(tokenizer_dir: Path, pipeline_class_name: str = "StableDiffusionPipeline", **extra):
    """SD-1 shape: CLIP-L-like text encoder as wide as the module reads, eps prediction, SD-1.5's PNDM config."""
    import diffusers

    pipe = getattr(diffusers, pipeline_class_name)(
        vae=vae(), text_encoder=clip_text_model(MODULE_WIDTH, seed=1), tokenizer=clip_tokenizer(tokenizer_dir),
        unet=unet(UNET, MODULE_WIDTH, seed=2), scheduler=diffusers.PNDMScheduler.from_config(SD15_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fresh(pipe):
    """Another pipeline of the same class around the same models, with its own copy of the scheduler."""
    parts = {**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler)}
    if "requires_safety_checker" in inspect.signature(type(pipe)).parameters:
        parts["requires_safety_checker"] = False
    made = type(pipe)(**parts)
    made.set_progress_bar_config(disable=True)
    return made


def sd2_pipeline(tokenizer_dir: Path):
    """SD-2 shape: a wider (OpenCLIP-like, gelu) text encoder, linear projections, v-prediction."""
    import diffusers

    scheduler = diffusers.DDIMScheduler.from_config({**SD15_SCHEDULER, "prediction_type": "v_prediction"})
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae(), text_encoder=clip_text_model(SD2_WIDTH, seed=3, hidden_act="gelu"),
        tokenizer=clip_tokenizer(tokenizer_dir), unet=unet(SD2_UNET, SD2_WIDTH, seed=4), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


SDXL_TEXT_WIDTH = 64  # the tiny stand-in for SDXL's 2048: CLIP-L 32 ⊕ bigG 32
# SDXL base 1.0's scheduler config as released: SD-1.5's schedule, Euler, leading spacing with steps_offset 1.
SDXL_SCHEDULER = {**SD_SCHEDULE, "steps_offset": 1, "prediction_type": "epsilon", "timestep_spacing": "leading",
                  "interpolation_type": "linear", "use_karras_sigmas": False}


def text_time_unet(seed: int, aesthetics: bool = False):
    """SDXL's UNet shape: size conditioning added to the time embedding (6 ids, or 5 with the refiner's score)."""
    ids = 5 if aesthetics else 6
    return unet({**SD2_UNET, "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
                 "projection_class_embeddings_input_dim": ids * 8 + 32}, SDXL_TEXT_WIDTH, seed=seed)


def bigg_model(seed: int = 5):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32)).eval()


def sdxl_pipeline(tokenizer_dir: Path, pipeline_class_name: str = "StableDiffusionXLPipeline", **extra):
    """SDXL shape: two text encoders, size conditioning (addition_embed_type "text_time"), 0.13025 latents."""
    import diffusers

    tokenizer = clip_tokenizer(tokenizer_dir)
    pipe = getattr(diffusers, pipeline_class_name)(
        vae=vae(scaling_factor=0.13025), text_encoder=clip_text_model(32, seed=7), text_encoder_2=bigg_model(),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=text_time_unet(seed=6),
        scheduler=diffusers.EulerDiscreteScheduler.from_config(SDXL_SCHEDULER), **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_refiner(tokenizer_dir: Path):
    """The SDXL refiner's shape: img2img with only the bigG encoder, asking for aesthetic scores."""
    import diffusers

    pipe = diffusers.StableDiffusionXLImg2ImgPipeline(
        vae=vae(scaling_factor=0.13025), text_encoder=None, text_encoder_2=bigg_model(), tokenizer=None,
        tokenizer_2=clip_tokenizer(tokenizer_dir), unet=text_time_unet(seed=11, aesthetics=True),
        scheduler=diffusers.EulerDiscreteScheduler.from_config(SDXL_SCHEDULER), requires_aesthetics_score=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd2_text_folder(folder: Path, tokenizer_dir: Path, seed: int = 3) -> Path:
    """A partial diffusers SD-2.x folder: only text_encoder/ (OpenCLIP-like: gelu, SD2_WIDTH) and tokenizer/ (SD-2's
    "!" padding), as the module needs it; returns the folder."""
    from transformers import CLIPTokenizer

    clip_text_model(SD2_WIDTH, seed=seed, hidden_act="gelu").save_pretrained(folder / "text_encoder")
    CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=77, pad_token="!").save_pretrained(
        folder / "tokenizer")
    return folder


# One More Step's b layout, reduced: diffusers 0.23 config keys (extra ones included: _name_or_path, subfolder),
# no time keys in the weights, fp16 safetensors.
OMS_CONFIG = {
    "_class_name": "UNet2DConditionWoCTModel",
    "_diffusers_version": "0.23.1",
    "_name_or_path": "h1t/oms_b_openclip_xl",
    "subfolder": "oms_module",
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [16, 32],
    "layers_per_block": 1,
    "attention_head_dim": [2, 4],
    "num_attention_heads": None,
    "norm_num_groups": 8,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "use_linear_projection": False,
    "addition_embed_type": None,
    "class_embed_type": None,
    "encoder_hid_dim": None,
    "time_embedding_type": "positional",
    "transformer_layers_per_block": 1,
}
OMS_PIPELINES = {"sd": ["stable_diffusion", "StableDiffusionPipeline"],
                 "sdxl": ["stable_diffusion_xl", "StableDiffusionXLPipeline"]}
# oms_text_encoder/config.json: a pointer to SD-2.1's text encoder (no weights), or SDXL's two encoders (mixclip).
OPENCLIP_H_POINTER = {"_name_or_path": "stabilityai/stable-diffusion-2-1", "subfolder": "text_encoder",
                      "architectures": ["CLIPTextModel"], "hidden_act": "gelu", "hidden_size": SD2_WIDTH,
                      "transformers_version": "4.35.0"}
MIXCLIP_POINTER = {"_class_name": "SDXLTextEncoder", "_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
                   "hidden_size": SDXL_TEXT_WIDTH}


def tiny_sing_module(config: dict, width: int, seed: int, kind=None):
    """sing_core's module of this config with random weights and an output with weight (a brightness per channel)."""
    from sing_core import SingModule, UNetConfig

    torch.manual_seed(seed)
    module = SingModule(UNetConfig.from_dict({**config, "cross_attention_dim": width}), kind=kind).eval()
    with torch.no_grad():
        module.unet.conv_out.weight.mul_(25.0)
        module.unet.conv_out.bias.copy_(torch.randn(4, generator=torch.Generator().manual_seed(seed)))
    return module


def oms_release(root: Path, family: str = "sdxl", mixclip: bool = False, seed: int = 12,
                tokenizer_dir: Path | None = None) -> Path:
    """A folder laid out as One More Step's Hugging Face releases; with tokenizer_dir, an oms_tokenizer/ too."""
    import json

    from safetensors.torch import save_file

    width = SDXL_TEXT_WIDTH if mixclip else SD2_WIDTH
    module = tiny_sing_module(OMS_CONFIG, width, seed)
    for folder in ("oms_module", "oms_text_encoder"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "OMSPipeline", "_diffusers_version": "0.23.1",
             "oms_module": ["diffusers_patch", "OMSModel"], "oms_text_encoder": ["transformers", "CLIPTextModel"],
             "oms_tokenizer": ["transformers", "CLIPTokenizer"], "sd_pipeline": OMS_PIPELINES[family]}
    (root / "model_index.json").write_text(json.dumps(index))
    (root / "oms_module" / "config.json").write_text(json.dumps({**OMS_CONFIG, "cross_attention_dim": width}))
    text_config = MIXCLIP_POINTER if mixclip else OPENCLIP_H_POINTER
    (root / "oms_text_encoder" / "config.json").write_text(json.dumps(text_config))
    state = {k: v.half().contiguous() for k, v in module.unet.state_dict().items()}
    save_file(state, str(root / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"))
    if tokenizer_dir is not None:
        from transformers import CLIPTokenizer

        CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=77, pad_token="!").save_pretrained(
            root / "oms_tokenizer")
    return root


def singdiffusion_xl_file(path: Path, seed: int = 13) -> Path:
    """A SingDiffusion-method module for SDXL latents reading SDXL's own text, as our single .safetensors."""
    from sing_core import ModuleKind, save_module

    kind = ModuleKind("singdiffusion", "sdxl", "sdxl")
    module = tiny_sing_module({**UNET, "attention_head_dim": (2, 4)}, SDXL_TEXT_WIDTH, seed, kind)
    return save_module(module, None, path, kind=kind)


def release_module(folder: Path, seed: int = 8, width: int = MODULE_WIDTH, channels: int = 4) -> Path:
    """A module folder as the authors publish it: a diffusers UNet's config.json + diffusion_pytorch_model.bin (a
    pickled state dict with the time embedding that sing_core drops)."""
    model = unet({**UNET, "in_channels": channels, "out_channels": channels}, width, seed)
    with torch.no_grad():  # a latent-sized prediction with a per-channel offset (a brightness), as a trained one has
        model.conv_out.weight.mul_(25.0)
        model.conv_out.bias.copy_(torch.randn(channels, generator=torch.Generator().manual_seed(seed)))
    model.save_pretrained(folder, safe_serialization=False)
    return folder


class FirstInputRecordedError(Exception):
    """Raised by the probe to stop sampling once the UNet's first input is recorded."""


@contextlib.contextmanager
def first_unet_input(pipe):
    """Records the sample of the pipeline's first UNet call (cond half under CFG: both halves are the same latents)
    and stops the pipeline there; use `probe.run(...)` to call the pipeline."""
    probe = _Probe(pipe)
    handle = pipe.unet.register_forward_pre_hook(probe.hook, with_kwargs=True)
    try:
        yield probe
    finally:
        handle.remove()


class _Probe:
    def __init__(self, pipe):
        self.pipe, self.sample, self.timestep, self.text = pipe, None, None, None

    def hook(self, _module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        self.text = (args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]).detach().clone()
        self.sample = sample.detach().clone()
        raise FirstInputRecordedError

    def run(self, call, *args, **kwargs) -> torch.Tensor:
        """call(*args, **kwargs) (the pipeline or sing_diffusers.generate) up to the first UNet input: its latents."""
        with contextlib.suppress(FirstInputRecordedError):
            call(*args, **kwargs)
        if self.sample is None:
            raise AssertionError("the pipeline never called its UNet")
        batch = self.sample.shape[0]
        guided = kwargs.get("guidance_scale", 7.5) > 1.0
        sample = self.sample[batch // 2:] if guided else self.sample
        if guided:  # the pipelines run [uncond; cond] on one batch: the halves must be the same latents
            assert torch.equal(self.sample[: batch // 2], sample)
        self.sample = None
        return sample[:, :4]  # an inpainting UNet's mask and masked-image channels follow the latents


def scheduler_frame(scheduler, num_inference_steps: int):
    """The scheduler's own linear map at its first step, read through its public API on a fresh copy:
    sample = a·x0 + b·noise (add_noise) and unet_input = c·sample (scale_model_input)."""
    scheduler = copy.deepcopy(scheduler)
    scheduler.set_timesteps(num_inference_steps)
    t0 = scheduler.timesteps[:1]
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    a = float(scheduler.add_noise(one, zero, t0)[0])
    b = float(scheduler.add_noise(zero, one, t0)[0])
    c = float(scheduler.scale_model_input(one, t0[0])[0])
    return a, b, c


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clip_l_embeddings(pipe, prompts: list[str]) -> torch.Tensor:
    """SD-1.5-style text conditioning the way the reference computes it for its module (tokenizer padded to its
    max length with truncation, text encoder without attention mask, last hidden state)."""
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids, attention_mask=None)[0]


def recovered_x0(u: torch.Tensor, x1: torch.Tensor, scheduler, num_inference_steps: int) -> torch.Tensor:
    """x̂0 from the UNet's first input u, through the scheduler's own maps: u = c·(a·x̂0 + b·x1)."""
    a, b, c = scheduler_frame(scheduler, num_inference_steps)
    return (u.double() / c - b * x1.double()) / a


def start_defaults() -> dict:
    """start_latents' keyword-only defaults, for calling sing_diffusers.start.plan_start (which has none)."""
    import sing_diffusers

    parameters = inspect.signature(sing_diffusers.start_latents).parameters
    return {k: p.default for k, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


DOCS = Path(__file__).resolve().parents[2] / "docs" / "python.md"
EXAMPLE_MODELS = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "models/SingDiffusion/singdiffusion-sd15")


def docs_example() -> str:
    """The code block under "## Five lines" in docs/python.md, as a reader copies it."""
    section = DOCS.read_text(encoding="utf-8").split("## Five lines", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def docs_table() -> dict[str, list[str]]:
    """The rows of the "## Schedulers tested" table: first column -> the other columns."""
    section = DOCS.read_text(encoding="utf-8").split("## Schedulers tested", 1)[1]
    rows = [line.strip().strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:] if cells[0].strip() != "---"}
