"""The frozen encoders of a run: the VAE that turns images into x0 and the text encoder that turns captions into the
module's conditioning. The latent family and the text kind (sing_core.kinds) decide which.

- family "sd": SD-1.x/2.x's VAE (x0 = 0.18215 · posterior mean), diffusers' AutoencoderKL: from a diffusers folder,
  or from an SD-1.x/2.x single-file checkpoint (LDM layout) offline through sing_train.sd_vae.
- family "sdxl": SDXL's VAE (0.13025) by diffusers' AutoencoderKL, from an SDXL diffusers folder or single file.
- text "clip_l" (768) / "openclip_h" (1024): the last hidden state after the final norm of the text encoder given
  (a diffusers SD-1.x/SD-2.x folder or its text_encoder/ through transformers; an SD-1.x checkpoint or clip_l file
  through sing_core's CLIP-L; an SD-2.x checkpoint file through sing_core.text.open_text_encoder).
- text "sdxl" (2048): SDXL's own conditioning, CLIP-L's penultimate hidden state ⊕ bigG's penultimate (diffusers'
  StableDiffusionXLPipeline.encode_prompt without the pooled part, which the module does not read).

diffusers and transformers are imported here only when a folder or an SDXL file asks for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sing_core.kinds import CLIP_L, OPENCLIP_H, SD, SDXL, SDXL_TEXT, TEXT_WIDTHS, VAE_SCALING_FACTORS

WIDTH_TO_TEXT = {TEXT_WIDTHS[CLIP_L]: CLIP_L, TEXT_WIDTHS[OPENCLIP_H]: OPENCLIP_H}


class EncoderError(ValueError):
    """A VAE or text encoder that cannot serve this run; the message names the file, the cause and the fix."""


@dataclass
class FrozenText:
    kind: str  # sing_core.kinds text kind; a tiny test encoder of another width is named by its width's nearest use
    width: int
    encode: Callable[[Sequence[str]], torch.Tensor]  # prompts → [B, 77, width]
    source: str
    bundle: dict = field(default_factory=dict)  # save_module's text_encoder_state / _config (CLIP-L files only)


@dataclass
class FrozenVae:
    family: str
    scale_factor: float
    downsampling: int
    encode: Callable[[torch.Tensor], torch.Tensor]  # RGB [B, 3, H, W] in [-1, 1] → x0 [B, 4, H/f, W/f]
    source: str


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file()


def _config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _scale_check(family: str, scale: float, source: str) -> None:
    expected = VAE_SCALING_FACTORS[family]
    if abs(scale - expected) > 1e-6:
        raise EncoderError(
            f"{source}: a VAE with scaling_factor {scale}; --family {family} latents are {expected} × the posterior "
            f"mean: pass the checkpoint of that family (sd: SD-1.x/2.x, sdxl: SDXL) or the other --family"
        )


def _diffusers_vae(folder: Path, family: str, device: torch.device, dtype: torch.dtype) -> FrozenVae:
    from diffusers import AutoencoderKL

    subfolder = "vae" if (folder / "vae").is_dir() else None
    vae = AutoencoderKL.from_pretrained(folder, subfolder=subfolder).to(device, dtype).eval().requires_grad_(False)
    scale = float(vae.config.scaling_factor)
    _scale_check(family, scale, str(folder))
    return _wrap_autoencoder(vae, family, scale, str(folder))


def _wrap_autoencoder(vae, family: str, scale: float, source: str) -> FrozenVae:
    parameter = next(vae.parameters())

    @torch.no_grad()
    def encode(images: torch.Tensor) -> torch.Tensor:
        # The posterior MEAN (see sing_train.encode for why not a sample), in the VAE's precision, returned float32.
        mean = vae.encode(images.to(parameter.device, parameter.dtype)).latent_dist.mean
        return (mean * scale).float()

    return FrozenVae(family, scale, 2 ** (len(vae.config.block_out_channels) - 1), encode, source)


def _sdxl_single_file(path: Path, device: torch.device):
    from diffusers import StableDiffusionXLPipeline

    try:
        return StableDiffusionXLPipeline.from_single_file(str(path), unet=None).to(device)
    except Exception as error:  # diffusers' own errors (offline config fetch, unknown keys) name no fix for us
        raise EncoderError(
            f"{path}: diffusers could not read it as an SDXL checkpoint ({type(error).__name__}: {error}); convert "
            "it once to a diffusers folder (StableDiffusionXLPipeline.from_single_file(...).save_pretrained(DIR), "
            "on a machine that reaches huggingface.co) and pass that folder"
        ) from error


def load_vae(
    checkpoint: Path | None, family: str, device: torch.device, dtype: torch.dtype = torch.float32
) -> FrozenVae:
    if checkpoint is None:
        raise EncoderError(
            "images need a VAE: pass --checkpoint (an SD-1.x/2.x checkpoint or diffusers folder for --family sd, an "
            "SDXL one for --family sdxl)"
        )
    if not checkpoint.exists():
        raise EncoderError(f"--checkpoint {checkpoint}: no such file or folder")
    if is_diffusers_folder(checkpoint) or (checkpoint / "config.json").is_file():
        return _diffusers_vae(checkpoint, family, device, dtype)
    if family == SDXL:
        pipe = _sdxl_single_file(checkpoint, device)
        vae = pipe.vae.to(device, dtype).eval().requires_grad_(False)
        scale = float(vae.config.scaling_factor)
        _scale_check(family, scale, str(checkpoint))
        return _wrap_autoencoder(vae, family, scale, str(checkpoint))
    from sing_train.sd_vae import SdVaeError, load_sd_vae

    try:
        vae = load_sd_vae(checkpoint, device, dtype)
    except SdVaeError as error:
        raise EncoderError(str(error)) from error
    return _wrap_autoencoder(vae, family, float(vae.config.scaling_factor), str(checkpoint))


def _transformers_text(folder: Path, tokenizer: Path | None, device: torch.device) -> FrozenText:
    """A transformers CLIPTextModel folder (SD-1.5's or SD-2's text_encoder/): last hidden state, final norm applied."""
    from transformers import CLIPTextModel, CLIPTokenizer

    model = CLIPTextModel.from_pretrained(folder).to(device).eval().requires_grad_(False)
    tokenizer_dir = tokenizer or next(
        (p for p in (folder.parent / "tokenizer", folder) if (p / "vocab.json").is_file()), None
    )
    if tokenizer_dir is None:
        raise EncoderError(
            f"{folder}: no tokenizer beside it (looked for ../tokenizer/ and vocab.json there); pass --tokenizer with "
            "the diffusers tokenizer/ folder"
        )
    tok = CLIPTokenizer.from_pretrained(tokenizer_dir)
    width = model.config.hidden_size

    @torch.no_grad()
    def encode(prompts: Sequence[str]) -> torch.Tensor:
        ids = tok(list(prompts), padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        return model(ids.to(device)).last_hidden_state.float()

    # SD-2's OpenCLIP ViT-H is 1024 wide with gelu; OpenAI's CLIP-L 768 wide with quick_gelu (tiny test encoders
    # keep the activation of the one they stand for)
    kind = WIDTH_TO_TEXT.get(width, OPENCLIP_H if model.config.hidden_act == "gelu" else CLIP_L)
    return FrozenText(kind, width, encode, str(folder))


def _sdxl_text(source: Path, device: torch.device) -> FrozenText:
    """SDXL's conditioning: both encoders' penultimate hidden states (output_hidden_states, [-2]), concatenated."""
    if is_diffusers_folder(source):
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        text_1 = CLIPTextModel.from_pretrained(source, subfolder="text_encoder")
        text_2 = CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder_2")
        tokenizers = [CLIPTokenizer.from_pretrained(source, subfolder=s) for s in ("tokenizer", "tokenizer_2")]
    else:
        pipe = _sdxl_single_file(source, device)
        text_1, text_2, tokenizers = pipe.text_encoder, pipe.text_encoder_2, [pipe.tokenizer, pipe.tokenizer_2]
    encoders = [m.to(device).eval().requires_grad_(False) for m in (text_1, text_2)]
    width = sum(m.config.hidden_size for m in encoders)

    @torch.no_grad()
    def encode(prompts: Sequence[str]) -> torch.Tensor:
        parts = []
        for tok, model in zip(tokenizers, encoders, strict=True):
            ids = tok(list(prompts), padding="max_length", max_length=77, truncation=True, return_tensors="pt")
            parts.append(model(ids.input_ids.to(device), output_hidden_states=True).hidden_states[-2].float())
        return torch.cat(parts, dim=-1)

    return FrozenText(SDXL_TEXT, width, encode, str(source))


def load_text(
    family: str,
    checkpoint: Path | None,
    text_encoder: Path | None,
    tokenizer: Path | None,
    init: Path | None,
    expected_width: int | None,
    device: torch.device,
) -> FrozenText:
    """The run's text encoder: SDXL's own for --family sdxl, else --text-encoder, --checkpoint or the one in --init."""
    if family == SDXL:
        source = text_encoder or checkpoint
        if source is None:
            raise EncoderError("--family sdxl reads SDXL's own text encoders: pass --checkpoint with the SDXL model")
        text = _sdxl_text(source, device)
    else:
        text = _sd_text(checkpoint, text_encoder, tokenizer, init, expected_width, device)
    if expected_width is not None and text.width != expected_width:
        raise EncoderError(
            f"{text.source}: its text is {text.width} wide, the network reads {expected_width}; pass the text "
            "encoder the network was made for, or a network of this width (--preset tiny takes the encoder's)"
        )
    return text


def _sd_text(checkpoint, text_encoder, tokenizer, init, expected_width, device) -> FrozenText:
    path, why = text_encoder, ""
    if path is None and checkpoint is not None:
        path, why = checkpoint, " (--text-encoder defaults to --checkpoint)"
    if path is None and init is not None and init.suffix == ".safetensors":
        path, why = init, " (--text-encoder defaults to the text encoder bundled in --init)"
    if path is None:
        raise EncoderError(
            "no text encoder: pass --text-encoder (a clip_l.safetensors, an SD-1.x checkpoint, or a diffusers "
            "text_encoder/ folder: SD-1.5's CLIP-L or SD-2's OpenCLIP ViT-H), or --checkpoint with an SD model"
        )
    if path.is_dir() and is_diffusers_folder(path):
        return _transformers_text(path / "text_encoder", tokenizer or path / "tokenizer", device)
    if path.is_dir() and _config(path).get("model_type") == "clip_text_model":
        return _transformers_text(path, tokenizer, device)
    if _is_sd2_checkpoint(path):
        return _open_clip_file(path, tokenizer, device)
    from sing_core.text import ClipTextEncoder

    try:
        encoder = ClipTextEncoder.load(path, device, tokenizer=tokenizer, expected_hidden_size=expected_width)
    except ValueError as error:  # the loaders' errors name the file and the fix; add where the path came from
        raise EncoderError(f"{error}{why}") from error
    width = encoder.model.config.hidden_size
    bundle = {
        "text_encoder_state": {k: v.to("cpu") for k, v in encoder.model.state_dict().items()},
        "text_encoder_config": encoder.model.config.to_dict(),
    }
    return FrozenText(CLIP_L, width, encoder.encode, str(path), bundle)


def _is_sd2_checkpoint(path: Path) -> bool:
    """An SD-2.x single file: its text encoder in open_clip's layout (cond_stage_model.model.*)."""
    if not path.is_file() or path.suffix != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return any(k.startswith("cond_stage_model.model.") for k in handle.keys())  # noqa: SIM118


def _open_clip_file(path: Path, tokenizer: Path | None, device: torch.device) -> FrozenText:
    """SD-2's OpenCLIP ViT-H from an SD-2.x checkpoint file, through the engine's own encoder where it has one."""
    import sing_core.text as engine_text

    open_text_encoder = getattr(engine_text, "open_text_encoder", None)
    if open_text_encoder is None:
        raise EncoderError(
            f"{path}: an SD-2.x checkpoint, whose OpenCLIP ViT-H this version reads only as a diffusers folder: pass "
            "--text-encoder with SD-2's text_encoder/ folder (stabilityai/stable-diffusion-2-1) and --tokenizer with "
            "its tokenizer/"
        )
    encoder = open_text_encoder(OPENCLIP_H, path, device=device, tokenizer=tokenizer)

    def encode(prompts: Sequence[str]) -> torch.Tensor:
        return encoder.encode(list(prompts)).float().clone()

    return FrozenText(OPENCLIP_H, encoder.hidden_size, encode, str(path))


def text_kind_for(text: FrozenText, family: str) -> str:
    """The kind written into the module: SDXL's own text for the sdxl family, else the encoder's."""
    return SDXL_TEXT if family == SDXL else text.kind


__all__ = ["SD", "SDXL", "EncoderError", "FrozenText", "FrozenVae", "load_text", "load_vae", "text_kind_for"]
