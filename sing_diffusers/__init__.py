"""sing_diffusers: learned start modules (SingDiffusion, One More Step) for diffusers Stable Diffusion 1.x/2.x and
SDXL pipelines, on sing_core unchanged.

    import torch, diffusers, sing_diffusers
    pipe = diffusers.StableDiffusionPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5")
    module = sing_diffusers.load_module("models/SingDiffusion/singdiffusion-sd15", pipe)
    out = sing_diffusers.generate(pipe, module, "solid black background", generator=torch.Generator().manual_seed(1))
    out.images[0].save("black.png")

SDXL with One More Step's module, reading SD-2's OpenCLIP ViT-H from any SD-2.x checkpoint file or folder:

    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
    module = sing_diffusers.load_module("models/SingDiffusion/oms_b_openclip_xl", pipe,
                                        text_encoder="models/Stable-diffusion/v2-1_768-ema-pruned.safetensors")
    out = sing_diffusers.generate(pipe, module, "a car", module_prompt="red car", module_guidance_scale=1.5)

start_latents(pipe, module, ...) gives the latents alone, to pass to the pipeline yourself. Every scheduler whose
first point can be read (SUPPORTED_SCHEDULERS) starts exactly there; the rest are refused. docs/python.md has it all.
"""

from sing_diffusers.first_point import SUPPORTED as SUPPORTED_SCHEDULERS
from sing_diffusers.first_point import FirstPoint, read_first_point
from sing_diffusers.generate import generate
from sing_diffusers.loading import LoadedModule, load_module
from sing_diffusers.refusals import SingDiffusersError
from sing_diffusers.start import ZeroTerminalSnrWarning, start_latents

__all__ = [
    "SUPPORTED_SCHEDULERS",
    "FirstPoint",
    "LoadedModule",
    "SingDiffusersError",
    "ZeroTerminalSnrWarning",
    "generate",
    "load_module",
    "read_first_point",
    "start_latents",
]
