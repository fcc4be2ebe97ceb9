"""Which family a host checkpoint belongs to, read from its safetensors header (no tensor data is loaded).

Used where the webui has not loaded the checkpoint (saving a preset for another checkpoint): a preset may enable a
module only on a checkpoint the module can serve, i.e. SD-1.x or SD-2.x with the module's latent width. The key
patterns are those of the original (ldm / sgm) checkpoint layouts that the webui loads.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

SERVED_FAMILIES = ("SD-1.x", "SD-2.x")
UNET_OUT = "model.diffusion_model.out.2.weight"  # the UNet's last conv: its output channels are the latent's

# (family, a key only that family has), checked in order: SDXL and SD3 checkpoints carry UNet-like keys too.
MARKERS = (
    ("Flux", "double_blocks.0.img_attn.qkv.weight"),
    ("Flux", "model.diffusion_model.double_blocks.0.img_attn.qkv.weight"),
    ("SD3", "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"),
    ("SDXL", "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"),
    ("SDXL refiner", "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight"),
    ("SD-2.x", "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"),
    ("SD-1.x", "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"),
)


class HostFamilyError(ValueError):
    """A checkpoint whose family cannot be read; the message names the file and the cause."""


@dataclasses.dataclass(frozen=True)
class HostFamily:
    family: str  # "SD-1.x", "SD-2.x", "SDXL", "SDXL refiner", "SD3", "Flux" or "unknown"
    latent_channels: int | None  # None where the file has no ldm UNet (SD3, Flux, unknown layouts)

    def refusal(self, module_latent_channels: int) -> str | None:
        """Why a module with that latent width cannot serve this checkpoint; None when it can."""
        if self.family not in SERVED_FAMILIES:
            return (f"the checkpoint is {self.family}; SingDiffusion modules serve SD-1.x and SD-2.x checkpoints "
                    "only")
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
    return HostFamily(family, latent_channels)


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
