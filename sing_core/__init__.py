"""sing_core: the host-independent engine of learned starts (torch and safetensors only).

A start module replaces the Gaussian start of SD-1.x/2.x and SDXL sampling with one DDIM step from t = 1, where a
time-free network φ(x1, c) predicts the clean latent x̂0: SingDiffusion's (Zhang, Yin, Li, Xie, CVPR 2024; x0) or
One More Step's (Hu et al., CVPR 2024; v at SNR 0). sing_core.kinds holds every difference between the methods and
the latent families. Hosts (the webui adapter, ComfyUI, diffusers, the CLI) use this package unchanged; it imports no
webui, gradio, diffusers or transformers module.
"""

from sing_core.checkpoint import ModuleInfo, describe, load_module, save_module
from sing_core.config import ConfigError, UNetConfig
from sing_core.kinds import ModuleKind
from sing_core.module import SingModule
from sing_core.schedule import alpha_cumprod_from_sigma, sd_alphas_cumprod, sigma_from_alpha_cumprod
from sing_core.start import ddim_start, normalized_guidance, sigma_start, unit_noise_start
from sing_core.weights import CheckpointError, short_hash

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ModuleInfo",
    "ModuleKind",
    "SingModule",
    "UNetConfig",
    "alpha_cumprod_from_sigma",
    "ddim_start",
    "describe",
    "load_module",
    "normalized_guidance",
    "save_module",
    "sd_alphas_cumprod",
    "short_hash",
    "sigma_from_alpha_cumprod",
    "sigma_start",
    "unit_noise_start",
]
