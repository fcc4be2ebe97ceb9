"""The SingDiffusion start inside a webui generation.

prepare() runs in Script.process, before any sampling: it resolves the arguments, the module and the text encoder,
so that every failure the user can fix is reported before work is spent. start() runs in
process_before_every_sampling: it computes x̂0 for the batch and hands the sampler its new start the webui's way
(A1111: the hook's tensor rewritten in place; Forge: p.modified_noise).
"""

from __future__ import annotations

import dataclasses
import time

import torch
from modules.processing import StableDiffusionProcessingImg2Img

from sing_core.args import SingArgs, infotext_params
from sing_core.compose import composable_x0
from sing_core.kinds import ModuleKind
from sing_core.library import ModuleEntry
from sing_core.module import SingModule
from sing_webui import host, options, presets, prompts, resolve, rules, runtime, sampler_start
from sing_webui.failure import SingDiffusionError, fail_request
from sing_webui.hosts import webui

PLAN_ATTR = "_singdiffusion_plan"
TEXT_INFOTEXT = "SingDiffusion text"  # the text source used (auto resolved), with the encoder's file


@dataclasses.dataclass
class Plan:
    args: SingArgs
    entry: ModuleEntry
    module: SingModule
    guidance_scale: float  # resolved by the module's kind: SingDiffusion's 0 follows the CFG scale, OMS's is 1
    text_source: str  # resolved: "module" or "host"
    text_encoder: runtime.TextEncoder | None
    done: set = dataclasses.field(default_factory=set)  # batch iterations already started
    said: set = dataclasses.field(default_factory=set)  # console notes already printed

    @property
    def label(self) -> str:
        return f"{self.entry.name} [{self.module.short_hash}]"

    @property
    def kind(self) -> ModuleKind:
        return self.module.kind

    def say_once(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            print(f"SingDiffusion: {message}", flush=True)


def effective_args(p, script_args) -> SingArgs:
    """Script args, then the checkpoint's preset where they follow it, then X/Y/Z values (p.singdiffusion_<key>)."""
    return resolve.effective_args(script_args, lambda args: presets.apply(p, args), resolve.xyz_values(p))


def prepare(p, script_args) -> None:
    setattr(p, PLAN_ATTR, None)
    try:
        args = effective_args(p, script_args)
        if not args.enabled:
            return
        entry = options.find_module(args.module)
        try:
            module = runtime.get_module(entry)
        except Exception as error:  # removed between the lookup and the load (422), or a broken file (500)
            raise SingDiffusionError(*rules.load_failure(error, entry)) from error
        host.check_fits(p.sd_model, module, f"{entry.name} [{module.short_hash}]")
        text_source = host.resolve_text_source(args.text_source, p.sd_model, module)
        encoder = runtime.get_text_encoder(module, entry.path) if text_source == "module" else None
        guidance_scale = resolve.guidance_scale(args, p.cfg_scale, module.kind)
        setattr(p, PLAN_ATTR, Plan(args, entry, module, guidance_scale, text_source, encoder))
    except SingDiffusionError as error:
        fail_request(p, error)
    except Exception as error:  # anything must stop the generation: never silently without the module
        fail_request(p, SingDiffusionError(rules.failure_message(error), rules.failure_status(error)))


def start(p, x: torch.Tensor, noise: torch.Tensor, c, uc) -> None:
    plan: Plan | None = getattr(p, PLAN_ATTR, None)
    if plan is None:
        return
    reason = rules.skip_reason(p, isinstance(p, StableDiffusionProcessingImg2Img), plan.done)
    if reason is not None:
        if not p.is_hr_pass:  # the hires pass is expected, not worth a line per generation
            plan.say_once(reason)
        return
    reason = host.ztsnr_reason(p)
    if reason is not None:  # the sampler already starts from pure noise: the module's start would be x1 itself
        plan.say_once(f"{plan.label}: {reason}")
        p.extra_generation_params = {**p.extra_generation_params,
                                     "SingDiffusion skipped": f"{plan.label}, zero terminal SNR schedule"}
        plan.done.add(p.iteration)
        return
    try:
        write_start(p, plan, x, noise, c, uc)
    except SingDiffusionError as error:
        fail_request(p, error)
    except Exception as error:
        fail_request(p, SingDiffusionError(*rules.sampling_failure(error, plan.label)))


def write_start(p, plan: Plan, x: torch.Tensor, noise: torch.Tensor, c, uc) -> None:
    img2img = isinstance(p, StableDiffusionProcessingImg2Img)
    point = host.first_point(p, img2img)
    x1 = noise  # the unit noise the webui drew: seeds, variation seeds and batch positions stay what they were
    started = time.perf_counter()
    module_prompt = plan.args.module_prompt
    if plan.text_source == "module":
        text = prompts.module_text(p, plan.text_encoder, plan.kind, plan.guidance_scale, module_prompt)
    else:
        text = prompts.host_text(p, c, uc, plan.kind, plan.guidance_scale, module_prompt)
    with runtime.on_device(plan.module) as module, torch.inference_mode():
        def forward(x_rows: torch.Tensor, emb_rows: torch.Tensor) -> torch.Tensor:
            return module(x_rows.to(module.device, module.dtype), emb_rows.to(module.device, module.dtype)).float()

        x0_hat = composable_x0(forward, x1.float().to(module.device), text.conds, text.row_weights,
                               text.uncond, plan.guidance_scale, kind=module.kind)
    x0_hat = x0_hat.to(x.device, torch.float32).clone()  # leave inference mode: the host updates tensors in place
    strength = plan.args.strength

    # img2img: the noise added to the image (x) is what changes; txt2img: the sampler's unit-noise input x.
    value = sampler_start.start_value(point, img2img, x0_hat, x1, x, p.nmask if img2img else None, strength)
    if value is not None:
        webui.hand_over(p, noise if img2img else x, value)

    plan.done.add(p.iteration)
    # A new dict: the X/Y/Z plot's cells share one (a shallow copy of p), so an update would leak into later cells.
    p.extra_generation_params = {
        **p.extra_generation_params,
        **infotext_params(plan.label, plan.guidance_scale, plan.args.text_source, strength, module_prompt),
        TEXT_INFOTEXT: text_used(plan),
    }
    if options.opt("timings"):
        where = f"t0 = {point.timestep}" if point.timestep is not None else f"σ0 = {point.sigma:.4g}"
        print(f"SingDiffusion: {plan.label} on {x.shape[0]} latents ({plan.text_source} text, {where}, "
              f"w = {plan.guidance_scale:g}, λ = {strength:g}) in {(time.perf_counter() - started) * 1000:.1f} ms")


def text_used(plan: Plan) -> str:
    """What the module read its prompt with, for the infotext: the checkpoint's own conditioning, or its own encoder
    (and the file it came from)."""
    if plan.text_source == "host":
        return "host"
    source = getattr(plan.text_encoder, "source", None)
    return f"module ({source})" if source else "module"


def end_of_job(p) -> None:
    if getattr(p, PLAN_ATTR, None) is not None:
        setattr(p, PLAN_ATTR, None)
        runtime.end_of_job()
