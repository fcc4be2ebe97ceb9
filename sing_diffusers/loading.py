"""A SingDiffusion module for a diffusers pipeline: sing_core's module on the pipeline's device, with its CLIP-L."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from sing_core import SingModule
from sing_core import load_module as load_sing_module
from sing_diffusers.text import TextEncoder, bundled_clip_l, clip_l_from


@dataclass(eq=False)
class LoadedModule:
    """sing_core's SingModule and, once known, the SD-1.5 CLIP-L it reads prompts with (text_encoder="module")."""

    sing: SingModule
    clip_l: TextEncoder | None = None
    _bundled_checked: bool = field(default=False, repr=False)

    def module_clip_l(self) -> TextEncoder | None:
        """The CLIP-L given at load time, else the one bundled in the module file (loaded once), else None."""
        if self.clip_l is None and not self._bundled_checked:
            self._bundled_checked = True
            self.clip_l = bundled_clip_l(self.sing.path, self.sing.cross_attention_dim, self.sing.device)
        return self.clip_l


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
    clip_l: Any = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> LoadedModule:
    """The module at `path` (a release folder or one of our .safetensors files), by default on `pipe`'s device in its
    UNet's dtype (fp32 without a pipe).

    clip_l: SD-1.5's CLIP-L for text_encoder="module" — a path (clip_l.safetensors, an SD-1.x checkpoint, a diffusers
    SD-1.x folder or its text_encoder/ folder), an SD-1.x pipeline, or anything with .encode(prompts). Without it the
    module file's bundled encoder is used, else an SD-1.x pipeline's own CLIP-L; an SD-2 pipeline needs one of these.
    """
    unet = getattr(pipe, "unet", None)
    if device is None:
        device = pipe._execution_device if pipe is not None else "cpu"
    if dtype is None:
        dtype = unet.dtype if unet is not None else torch.float32
    sing = load_sing_module(path, device=device, dtype=dtype)
    text = None if clip_l is None else clip_l_from(clip_l, sing.cross_attention_dim, sing.device, f"module {sing.name}")
    return LoadedModule(sing, text)
