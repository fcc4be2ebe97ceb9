"""Which family a host checkpoint belongs to, read from its safetensors header (no tensor data is loaded).

Used where the webui has not loaded the checkpoint (saving a preset for another checkpoint, finding an SD-2.x
checkpoint whose text encoder a module reads): a preset may enable a module only on a checkpoint the module can
serve, i.e. one of the module's latent family (sing_core.kinds: SD-1.x/2.x or SDXL) with its latent width. The key
patterns are those of the original (ldm / sgm) checkpoint layouts that the webui loads.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from sing_core.kinds import HOST_LATENT_FAMILY, ModuleKind

SERVED_FAMILIES = tuple(HOST_LATENT_FAMILY)  # "SD-1.x", "SD-2.x", "SDXL": the families some module serves
ZTSNR_MARKER = "ztsnr"  # the key zero-terminal-SNR checkpoints (NoobAI-XL v-pred) carry; the webuis read it too
UNET_OUT = "model.diffusion_model.out.2.weight"  # the UNet's last conv: its output channels are the latent's

# (family, a key only that family has), checked in order: SDXL and SD3 checkpoints carry UNet-like keys too.
MARKERS = (
    ("Flux", "double_blocks.0.img_attn.qkv.weight"),
    ("Flux", "model.diffusion_model.double_blocks.0.img_attn.qkv.weight"),
    ("SD3", "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"),
    ("SDXL", "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"),
    ("SDXL refiner", "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight"),
    # sgm's CLIP-L as the first embedder: SDXL base (the refiner's first embedder is OpenCLIP bigG)
    ("SDXL", "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"),
    ("SD-2.x", "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"),
    ("SD-1.x", "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"),
)


class HostFamilyError(ValueError):
    """A checkpoint whose family cannot be read; the message names the file and the cause."""


@dataclasses.dataclass(frozen=True)
class HostFamily:
    family: str  # "SD-1.x", "SD-2.x", "SDXL", "SDXL refiner", "SD3", "Flux" or "unknown"
    latent_channels: int | None  # None where the file has no ldm UNet (SD3, Flux, unknown layouts)
    ztsnr: bool = False  # the file carries the zero-terminal-SNR marker: it starts from pure noise itself

    def refusal(self, module_latent_channels: int, kind: ModuleKind | None = None) -> str | None:
        """Why a module with that latent width and kind (default: SingDiffusion's SD-1.5-latent release) cannot
        serve this checkpoint; None when it can. The family decision is the module kind's (ModuleKind.refusal)."""
        why = (kind or ModuleKind()).refusal(self.family)
        if why:
            return why
        if self.latent_channels != module_latent_channels:
            return (f"the checkpoint uses {self.latent_channels}-channel latents and the module predicts "
                    f"{module_latent_channels}-channel latents")
        return None


def family_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> HostFamily:
    """The family of a checkpoint given its tensor names and shapes."""
    family = next((name for name, key in MARKERS if key in shapes), "unknown")
    out = shapes.get(UNET_OUT)
    latent_channels = int(out[0]) if out else None
    if family == "unknown" and latent_channels is not None:
        family = "SD-1.x"  # an ldm UNet without a text encoder in the file: the webui loads it as SD-1
    return HostFamily(family, latent_channels, ZTSNR_MARKER in shapes)


def read_host_family(path: str | os.PathLike[str]) -> HostFamily:
    """The family of a .safetensors checkpoint from its header; .ckpt files would need unpickling, so they are
    refused with the way out (load the checkpoint in the webui, where its family is known)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise HostFamilyError(f"{path.name}: the family of a {path.suffix or 'suffix-less'} checkpoint cannot be "
                              "read without loading it; load it in the webui first")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own SafetensorError or OSError
        raise HostFamilyError(f"{path.name}: cannot read the safetensors header ({error})") from error
    return family_from_shapes(shapes)
