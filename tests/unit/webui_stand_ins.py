"""Small STAND-INS shaped like the few attributes of the webuis' objects that sing_webui's plain functions read.

Each carries only what those functions read, under the same names and meanings as in AUTOMATIC1111 v1.10.1 and
Forge at dfdcbab (a processing object's is_hr_pass, iteration, denoising_strength, mask, inpainting_fill, sampler,
sampler_name, sd_model, singdiffusion_<key>; a k-diffusion sampler's get_sigmas(p, steps); a timestep sampler's
get_timesteps(p, steps) and func; CheckpointInfo's title, shorthash, name, filename; a request's alwayson_scripts; a
script runner's alwayson_scripts with their title() and args_from). They prove our logic, not the host: what the
webui does (which object it passes, when it calls the hook, how it pads script args) is proven by the live tier
(tests/live) only.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import torch


class StandInProcessing(SimpleNamespace):
    """A StableDiffusionProcessing (p) with only the attributes given (plus is_hr_pass False and iteration 0, which
    every p has): img2img's mask and inpainting_fill, the X/Y/Z plot's p.singdiffusion_<key> are absent unless set."""

    def __init__(self, **attributes: Any):
        super().__init__(**{"is_hr_pass": False, "iteration": 0, **attributes})


class StandInKDiffusionSampler:
    """A k-diffusion sampler (A1111's KDiffusionSampler, LCM and Forge's DDPM among them) as first_point reads it:
    get_sigmas(p, steps), the schedule it will run, as a tensor. Records the steps it was asked for."""

    def __init__(self, sigmas: list[float]):
        self.sigmas = torch.tensor(sigmas)
        self.asked: list[int] = []

    def get_sigmas(self, _p, steps: int) -> torch.Tensor:
        self.asked.append(steps)
        return self.sigmas


class StandInTimestepSampler:
    """A timestep sampler (CompVisSampler: DDIM, DDIM CFG++, PLMS, UniPC) as first_point reads it: get_timesteps(p,
    steps) and func, the sampling function whose __name__ names it ("ddim", "plms", "unipc", ...)."""

    def __init__(self, timesteps: list[int], func_name: str):
        self.timesteps = torch.tensor(timesteps)
        self.asked: list[int] = []

        def func():
            raise AssertionError("first_point only reads the sampling function's name")

        func.__name__ = func_name
        self.func = func

    def get_timesteps(self, _p, steps: int) -> torch.Tensor:
        self.asked.append(steps)
        return self.timesteps


class StandInOtherSampler:
    """A sampler of neither kind (an extension's own), which first_point must refuse."""


def stand_in_opts(sgm_noise_multiplier: bool = False) -> SimpleNamespace:
    """shared.opts as first_point reads it: sgm_noise_multiplier only."""
    return SimpleNamespace(sgm_noise_multiplier=sgm_noise_multiplier)


@dataclasses.dataclass
class StandInCheckpointInfo:
    """sd_models.CheckpointInfo's title ("name.safetensors [shorthash]", the bare name before the webui hashed the
    file), shorthash (None until hashed), name and filename."""

    name: str
    shorthash: str | None = None
    filename: str = ""

    @property
    def title(self) -> str:
        return self.name if self.shorthash is None else f"{self.name} [{self.shorthash}]"


@dataclasses.dataclass
class StandInModel:
    """The loaded model (p.sd_model, sd_models.model_data.sd_model) as presets read it: its sd_checkpoint_info."""

    sd_checkpoint_info: StandInCheckpointInfo | None


@dataclasses.dataclass
class StandInRequest:
    """An API request (StableDiffusionTxt2ImgProcessingAPI and its img2img twin) as read: alwayson_scripts."""

    alwayson_scripts: dict[str, Any] | None = None


@dataclasses.dataclass
class StandInScript:
    """A loaded script as our_script reads it: title() and args_from (its first index in the script args)."""

    name: str
    args_from: int

    def title(self) -> str:
        return self.name


@dataclasses.dataclass
class StandInScriptRunner:
    """scripts.ScriptRunner as read: alwayson_scripts."""

    alwayson_scripts: list[StandInScript]
