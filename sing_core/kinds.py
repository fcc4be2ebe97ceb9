"""What a start module is: its method, the latent family it predicts and the text it reads. The one home of every
difference between SingDiffusion and One More Step, and between SD-1.x/2.x and SDXL latents.

Two published methods share one plug-in point (a time-free UNet on pure noise x1 and the prompt, one step to the
host sampler's first point):

- SingDiffusion (Zhang et al., CVPR 2024): φ predicts x0; normalized guidance x̂0 = (u + w·(c − u)) / w against
  the negative prompt; w ≤ 1 means the prompt alone.
- One More Step (Hu et al., CVPR 2024): φ predicts v at SNR 0, where v = −x0, so x̂0 = −v; plain CFG
  v = v_u + w·(v_c − v_u) against the module's own empty prompt "" whatever the negative prompt; w defaults to 1.

Latent families: "sd" (SD-1.x/2.x, VAE scale 0.18215) and "sdxl" (SDXL and its ε fine-tunes, VAE scale 0.13025).
Both have 4 channels, so a module of the wrong family runs without error and gives wrong images: it is refused.

Text kinds: "clip_l" (SD-1.5's CLIP ViT-L/14, last layer after the final norm, 768), "openclip_h" (SD-2's
OpenCLIP ViT-H/14 as SD-2 conditions on it: the penultimate block then the final norm, 1024, "!" padding) and
"sdxl" (SDXL's own conditioning: CLIP-L penultimate ⊕ OpenCLIP bigG penultimate, 2048).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # arithmetic on tensors only: the CLI's parser imports this module and stays torch-free
    import torch

SINGDIFFUSION, OMS = "singdiffusion", "oms"
METHODS = (SINGDIFFUSION, OMS)
SD, SDXL = "sd", "sdxl"
FAMILIES = (SD, SDXL)
CLIP_L, OPENCLIP_H, SDXL_TEXT = "clip_l", "openclip_h", "sdxl"
TEXT_KINDS = (CLIP_L, OPENCLIP_H, SDXL_TEXT)

# Safetensors metadata keys of our module file (sing_core.weights writes and reads them).
METHOD_KEY, FAMILY_KEY, TEXT_KEY = "singdiffusion_method", "singdiffusion_family", "singdiffusion_text"

METHOD_NAMES = {SINGDIFFUSION: "SingDiffusion", OMS: "One More Step"}
FAMILY_NAMES = {SD: "SD-1.x/2.x", SDXL: "SDXL"}
TEXT_WIDTHS = {CLIP_L: 768, OPENCLIP_H: 1024, SDXL_TEXT: 2048}
TEXT_NAMES = {
    CLIP_L: "SD-1.5's CLIP ViT-L/14 (768 wide)",
    OPENCLIP_H: "SD-2's OpenCLIP ViT-H/14 (1024 wide)",
    SDXL_TEXT: "SDXL's own two text encoders (CLIP-L ⊕ bigG, 2048 wide)",
}
VAE_SCALING_FACTORS = {SD: 0.18215, SDXL: 0.13025}

# Host checkpoint families (sing_core.host_family, the webuis' and ComfyUI's model classes) → the latent family
# whose modules serve them. Anything else (SDXL refiner, SD3, Flux, ...) has no module.
HOST_LATENT_FAMILY = {"SD-1.x": SD, "SD-2.x": SD, "SDXL": SDXL}


class ModuleKindError(ValueError):
    """A method, family or text kind that is not one of ours; the message names the value and the choices."""


def _check(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ModuleKindError(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class ModuleKind:
    """method ∈ METHODS, family ∈ FAMILIES, text ∈ TEXT_KINDS. The default is the SingDiffusion release's kind."""

    method: str = SINGDIFFUSION
    family: str = SD
    text: str = CLIP_L

    def __post_init__(self):
        _check(self.method, METHODS, "method")
        _check(self.family, FAMILIES, "latent family")
        _check(self.text, TEXT_KINDS, "text kind")

    @property
    def text_width(self) -> int:
        return TEXT_WIDTHS[self.text]

    @property
    def predicts(self) -> str:
        return "x0" if self.method == SINGDIFFUSION else "v"

    @property
    def normalized_guidance(self) -> bool:
        """SingDiffusion divides the guided x0 by w; OMS's plain CFG does not."""
        return self.method == SINGDIFFUSION

    @property
    def uncond_is_empty_prompt(self) -> bool:
        """OMS guides against "" encoded by the module's own encoder, whatever the negative prompt."""
        return self.method == OMS

    def describe(self) -> str:
        method, family = METHOD_NAMES[self.method], FAMILY_NAMES[self.family]
        return f"{method} module for {family} latents, reading {TEXT_NAMES[self.text]}"

    def to_metadata(self) -> dict[str, str]:
        return {METHOD_KEY: self.method, FAMILY_KEY: self.family, TEXT_KEY: self.text}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModuleKind:
        """Our file's metadata; files written before the keys existed are all SingDiffusion SD-1.5-latent modules."""
        default = cls()
        return cls(
            metadata.get(METHOD_KEY, default.method),
            metadata.get(FAMILY_KEY, default.family),
            metadata.get(TEXT_KEY, default.text),
        )

    def raw_to_x0(self, raw: torch.Tensor) -> torch.Tensor:
        """The network's output as an x0 prediction: x0 itself, or −v (at SNR 0, v = √ᾱ·ε − √(1−ᾱ)·x0 = −x0)."""
        return raw if self.method == SINGDIFFUSION else -raw

    def effective_guidance(self, module_guidance: float | None, cfg_scale: float | None) -> float:
        """The w the module uses. SingDiffusion: 0/None follows the host's CFG scale (the paper's setting). OMS: 0/None
        is its default 1 (the prompt alone; the reference's default), the host's CFG scale is never used."""
        if module_guidance:
            return float(module_guidance)
        if self.method == SINGDIFFUSION:
            return float(cfg_scale) if cfg_scale else 1.0
        return 1.0

    def needs_uncond(self, guidance: float) -> bool:
        """Whether the unconditional side must be computed at all for this w."""
        if self.method == SINGDIFFUSION:
            return guidance > 1.0
        return guidance != 1.0

    def guide(self, x0_cond: torch.Tensor, x0_uncond: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """Guidance in x0 space (linear, so CFG on v then x̂0 = −v equals CFG on −v)."""
        if not self.needs_uncond(guidance):
            return x0_cond
        if self.normalized_guidance:
            from sing_core.start import normalized_guidance  # imported here: this module's readers need no torch

            return normalized_guidance(x0_cond, x0_uncond, guidance)
        return x0_uncond + guidance * (x0_cond - x0_uncond)

    def refusal(self, host_family: str) -> str | None:
        """Why this module cannot serve a host checkpoint of that family ("SD-1.x", "SDXL", "SD3", ...); None if it
        can."""
        latent = HOST_LATENT_FAMILY.get(host_family)
        if latent is None:
            return (
                f"the checkpoint is {host_family}, which no start module serves (modules exist for SD-1.x/2.x and "
                "SDXL ε-prediction checkpoints); load an SD-1.x, SD-2.x or SDXL base checkpoint, or turn the module "
                "off"
            )
        if latent != self.family:
            need = "an SDXL module (e.g. One More Step's oms_b_openclip_xl)" if latent == SDXL else (
                "an SD-1.x/2.x module (SingDiffusion's, or One More Step's oms_b_openclip_15_21)"
            )
            return (
                f"the module predicts {FAMILY_NAMES[self.family]} latents and the checkpoint is {host_family} "
                f"({FAMILY_NAMES[latent]} latents); choose {need}, or an {FAMILY_NAMES[self.family]} checkpoint"
            )
        return None
