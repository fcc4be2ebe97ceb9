"""The webui SingDiffusion runs in, decided once at import from what is installed, never by trying and failing.

Forge (lllyasviel/stable-diffusion-webui-forge) ships the top-level package modules_forge beside A1111's modules;
A1111 v1.10.1 has no such package. Each host module (a1111.py, forge.py) offers the same small set of readers:
the family and latent width of the loaded checkpoint, its CLIP-L, the schedule a timestep sampler uses, how the
start reaches the sampler, and where a model of ours runs and how it shares memory with the webui's own.
"""

from __future__ import annotations

import importlib
import importlib.util


def is_forge() -> bool:
    return importlib.util.find_spec("modules_forge") is not None


webui = importlib.import_module(f"{__name__}.{'forge' if is_forge() else 'a1111'}")
