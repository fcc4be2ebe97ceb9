"""sing_diffusers: SingDiffusion for diffusers Stable Diffusion 1.x/2.x pipelines, on sing_core unchanged.

    import torch, diffusers, sing_diffusers
    pipe = diffusers.StableDiffusionPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5")
    module = sing_diffusers.load_module("models/SingDiffusion/singdiffusion-sd15", pipe)
    out = sing_diffusers.generate(pipe, module, "solid black background", generator=torch.Generator().manual_seed(1))
    out.images[0].save("black.png")

start_latents(pipe, module, ...) gives the latents alone, to pass to the pipeline yourself. Every scheduler whose
first point can be read (SUPPORTED_SCHEDULERS) starts exactly there; the rest are refused. docs/python.md has it all.
"""

from sing_diffusers.first_point import SUPPORTED as SUPPORTED_SCHEDULERS
from sing_diffusers.first_point import FirstPoint, read_first_point
from sing_diffusers.generate import generate
from sing_diffusers.loading import LoadedModule, load_module
from sing_diffusers.refusals import SingDiffusersError
from sing_diffusers.start import start_latents

__all__ = [
    "SUPPORTED_SCHEDULERS",
    "FirstPoint",
    "LoadedModule",
    "SingDiffusersError",
    "generate",
    "load_module",
    "read_first_point",
    "start_latents",
]
