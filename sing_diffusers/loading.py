"""A start module for a diffusers pipeline: sing_core's module on the pipeline's device in its UNet's dtype, with
the text encoder it reads prompts with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from sing_core import SingModule
from sing_core import load_module as load_sing_module
from sing_core.kinds import CLIP_L
from sing_diffusers import hub
from sing_diffusers.refusals import SingDiffusersError, check_pipeline
from sing_diffusers.text import TextEncoder, bundled_clip_l, text_from


@dataclass(eq=False)
class LoadedModule:
    """sing_core's SingModule (its .kind says method, latent family and text) and, once known, the text encoder it
    reads prompts with (text_encoder="module")."""

    sing: SingModule
    text: TextEncoder | None = None
    _bundled_checked: bool = field(default=False, repr=False)

    @property
    def kind(self):
        return self.sing.kind

    def module_text(self) -> TextEncoder | None:
        """The encoder given at load time, else the CLIP-L bundled in the module file (loaded once), else None."""
        if self.text is None and not self._bundled_checked and self.kind.text == CLIP_L:
            self._bundled_checked = True
            self.text = bundled_clip_l(self.sing.path, self.sing.cross_attention_dim, self.sing.device)
        return self.text


def as_loaded(module: LoadedModule | SingModule) -> LoadedModule:
    if isinstance(module, LoadedModule):
        return module
    if isinstance(module, SingModule):
        return LoadedModule(module)
    raise TypeError(
        f"module must come from sing_diffusers.load_module (or sing_core.load_module), got {type(module).__name__}"
    )


def load_module(
    path: str | os.PathLike,
    pipe: Any = None,
    *,
    text_encoder: Any = None,
    clip_l: Any = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> LoadedModule:
    """The module at `path` — SingDiffusion's release folder, one of our .safetensors files, One More Step's release
    folder as downloaded or its oms_module/ — by default on `pipe`'s device in its UNet's dtype (fp32 without a
    pipe). With a pipe, a module of another latent family than the pipeline's is refused here.

    text_encoder: what the module reads prompts with (sing_diffusers.text): a path (SD-2's OpenCLIP ViT-H from an
    SD-2.x checkpoint, a diffusers SD-2.x folder or its text_encoder/, a standalone file; SD-1.5's CLIP-L from a
    clip_l.safetensors, an SD-1.x checkpoint or folder), a pipeline (its tokenizer and text encoder; for a module
    reading SDXL's 2048-wide text, an SDXL pipeline's own encode_prompt), or anything with .encode(prompts).
    clip_l: the same, the name SingDiffusion modules (SD-1.5's CLIP-L) have always taken.
    Without either: a CLIP-L bundled in the module file, else what the pipeline used lends (its own encoder where it
    is as wide as the module reads: SD-1.x for CLIP-L, SD-2.x for ViT-H, SDXL for SDXL text).
    """
    if text_encoder is not None and clip_l is not None:
        raise SingDiffusersError("give text_encoder= or clip_l= (the same thing under its older name), not both")
    unet = getattr(pipe, "unet", None)
    if device is None:
        device = pipe._execution_device if pipe is not None else "cpu"
    if dtype is None:
        dtype = unet.dtype if unet is not None else torch.float32
    if hub.is_catalogue_name(path):  # "oms_b_openclip_xl": fetched at the catalogue's revision, when asked for by name
        path = hub.fetch_from_hub(os.fspath(path))
    sing = load_sing_module(path, device=device, dtype=dtype)
    if pipe is not None:
        check_pipeline(pipe, sing.kind, sing.latent_channels)
    what = f"module {sing.name} ({sing.kind.describe()})"
    if clip_l is not None and sing.kind.text != CLIP_L:
        raise SingDiffusersError(f"{what}: clip_l= is for modules reading SD-1.5's CLIP-L; give text_encoder=")
    source = text_encoder if text_encoder is not None else clip_l
    text = None if source is None else text_from(
        source, sing.kind, sing.cross_attention_dim, sing.device, sing.path, what)
    return LoadedModule(sing, text)
