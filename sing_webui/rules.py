"""SingDiffusion's own decisions inside a webui, as plain functions of plain values (no webui import).

Which checkpoints a module serves, which text source a request gets, which passes are left alone, when the
negative prompt is needed, and which HTTP status a failure gives: the host modules (sing_webui/hosts/) and the hook
read the values from the live objects, these decide. Where a function takes the webui's `p`, it reads only the
attributes named in its docstring (tests hand it a stand-in with just those). Where a sampler starts is
sing_webui.sampler_start's.
"""

from __future__ import annotations

from collections.abc import Collection

from sing_core.args import ArgsError
from sing_core.compose import RowWeights, is_plain
from sing_core.kinds import CLIP_L, OPENCLIP_H, SDXL_TEXT, TEXT_NAMES, ModuleKind
from sing_core.library import ModuleEntry, ModuleGoneError

FILL_LATENT_NOISE, FILL_LATENT_NOTHING = 2, 3  # the webui's inpainting_fill values that start from nothing
# The host family whose own conditioning is exactly the text a module kind reads (kinds.TEXT_KINDS).
HOST_TEXT_FAMILY = {CLIP_L: "SD-1.x", OPENCLIP_H: "SD-2.x", SDXL_TEXT: "SDXL"}
ZTSNR_ALPHA_CUMPROD = 1e-4  # ᾱ at the last timestep below this: the schedule reaches SNR 0 (SD's own is 0.0047)


class RefusalError(ValueError):
    """What the request asked cannot be done here; the message names the cause and the fix."""


def fit_refusal(family: str, latent_channels: int, kind: ModuleKind, module_latent_channels: int,
                module_label: str) -> str | None:
    """Why the module cannot serve the loaded checkpoint, naming both sides and what to do instead; None when it
    can. Which families a module serves is its kind's (ModuleKind.refusal: the other latent family, SDXL refiner,
    SD3, Flux, ... are refused)."""
    why = kind.refusal(family)
    if why:
        return f"module {module_label} cannot serve the loaded checkpoint: {why}."
    if latent_channels != module_latent_channels:
        return (f"module {module_label} predicts {module_latent_channels}-channel latents but the loaded checkpoint "
                f"uses {latent_channels}-channel latents. Choose a module made for this checkpoint or disable "
                "SingDiffusion.")
    return None


def text_source(choice: str, family: str, host_text_width: int | None, kind: ModuleKind, module_width: int,
                clip_skip: int) -> str:
    """"host" or "module" for the request's choice. The host's own conditioning is the module's text where the
    checkpoint's family conditions on what the module reads (SD-1's CLIP-L for clip_l modules, SD-2's OpenCLIP
    ViT-H for openclip_h, SDXL's two encoders for sdxl ones) at the module's width; for CLIP-L also at CLIP skip 1.
    auto: host where it is that space, so emphasis and embeddings count; else the module's own encoder on the plain
    prompt. An "sdxl" module has no encoder of its own: its text is the SDXL checkpoint's conditioning, whatever
    the choice. Refusal for "host" (and for an sdxl module) where the host's conditioning is not that space."""
    own_family = HOST_TEXT_FAMILY[kind.text]
    fits = family == own_family and host_text_width == module_width
    if (choice == "host" or kind.text == SDXL_TEXT) and not fits:
        width = f"{host_text_width} wide" if host_text_width else "of no known width"
        fix = ("Load an SDXL checkpoint for this module." if kind.text == SDXL_TEXT
               else "Use text source 'module' or 'auto'.")
        raise RefusalError(f"text source 'host' needs an {own_family} checkpoint whose text conditioning is "
                           f"{module_width} wide like the module's ({TEXT_NAMES[kind.text]}); the loaded checkpoint "
                           f"is {family} and its text conditioning is {width}. {fix}")
    if kind.text == SDXL_TEXT:
        return "host"
    if choice != "auto":
        return choice
    return "host" if fits and (clip_skip == 1 or kind.text != CLIP_L) else "module"


def ztsnr_reason(last_alpha_cumprod: float, marker: bool) -> str | None:
    """Why the module does nothing on a checkpoint that already starts from zero terminal SNR (the webuis' "Zero
    Terminal SNR" noise schedule, a checkpoint's ztsnr marker): its sampler's start is pure noise, which the module's
    start would equal anyway. None where the schedule ends above SNR 0."""
    if marker or last_alpha_cumprod < ZTSNR_ALPHA_CUMPROD:
        return ("the checkpoint samples from zero terminal SNR (ᾱ at the last timestep "
                f"{last_alpha_cumprod:.3g}), so it starts from pure noise itself and SingDiffusion did nothing")
    return None


def failure_status(error: Exception) -> int:
    """The HTTP status a failure gives the request: 422 for what the request asked (a bad argument, a module or
    file it names that does not exist), 500 for anything else (the server's state, a bug)."""
    return 422 if isinstance(error, ArgsError | LookupError | RefusalError) else 500


def failure_message(error: Exception) -> str:
    """What the user reads: our own messages as they are, anything else with its type."""
    return str(error) if failure_status(error) == 422 else f"{type(error).__name__}: {error}"


def load_failure(error: Exception, entry: ModuleEntry) -> tuple[str, int]:
    """The message and status of a module that would not load: 422 when its file went away since the lookup (the
    request names a module that is gone), else 500 (a broken file is the server's state, not the request's)."""
    if not entry.weights.is_file():
        return str(ModuleGoneError(entry)), 422
    return str(error), 500


def sampling_failure(error: Exception, module_label: str) -> tuple[str, int]:
    """Once the request passed prepare(), what fails while the module runs is the server's: 500, naming the module."""
    return f"{module_label} failed: {type(error).__name__}: {error}", 500


def route_failure(error: Exception, missing: tuple[type[Exception], ...]) -> tuple[int, str]:
    """A /singdiffusion/v1 route's refusal: 404 where the URL's name matches nothing (`missing`), 422 for what cannot
    be done; the detail names SingDiffusion."""
    status, detail = 404 if isinstance(error, missing) else 422, str(error)
    return status, detail if "SingDiffusion" in detail else f"SingDiffusion: {detail}"


def img2img_skip_reason(denoising_strength: float, has_mask: bool, inpainting_fill: int | None) -> str | None:
    """SingDiffusion replaces a start from nothing; img2img starts from the image unless the masked region is
    filled with latent noise or latent nothing and denoised completely."""
    if denoising_strength < 1.0:
        return (f"img2img at denoising strength {denoising_strength:g} starts from the image, so SingDiffusion "
                "did nothing; it applies at denoising 1.0 with masked content 'latent noise' or 'latent nothing'")
    if not has_mask or inpainting_fill not in (FILL_LATENT_NOISE, FILL_LATENT_NOTHING):
        return ("img2img starts from the image here (no mask, or masked content 'fill'/'original'), so "
                "SingDiffusion did nothing; it applies at denoising 1.0 with masked content 'latent noise' or "
                "'latent nothing'")
    return None


def pass_skip_reason(is_hr_pass: bool, adetailer_inner: bool, already_started: bool) -> str | None:
    """Passes that do not start from nothing, and repeated calls for one sampling (Forge's hires pass calls the
    hook twice, and a webui may call it again for the same batch)."""
    if is_hr_pass:
        return "the hires fix pass starts from the first pass's image"
    if adetailer_inner:
        return "ADetailer's inner pass starts from the image"
    if already_started:
        return "this batch was already started from the module; a second call for the same sampling is ignored"
    return None


def skip_reason(p, img2img: bool, started: Collection[int]) -> str | None:
    """Why this call of the hook leaves the sampling alone; None to start it from the module. Reads p.is_hr_pass,
    p._ad_inner (ADetailer), p.iteration (in `started`: the batch iterations already started) and, for img2img
    only, p.denoising_strength, p.mask and p.inpainting_fill (a txt2img p has a denoising strength too: hires fix's)."""
    reason = pass_skip_reason(bool(p.is_hr_pass), bool(getattr(p, "_ad_inner", False)), p.iteration in started)
    if reason is None and img2img:
        reason = img2img_skip_reason(p.denoising_strength, getattr(p, "mask", None) is not None,
                                     getattr(p, "inpainting_fill", None))
    return reason


def needs_uncond(row_weights: RowWeights, guidance_scale: float, kind: ModuleKind | None = None) -> bool:
    """The module needs its unconditional side (the negative prompt, or "" for One More Step) under guidance (the
    kind's needs_uncond: w > 1 for SingDiffusion, w ≠ 1 for OMS) and for AND-weighted sub-prompts."""
    return (kind or ModuleKind()).needs_uncond(guidance_scale) or not is_plain(row_weights)


def uncond_source(row_weights: RowWeights, guidance_scale: float, host_has_uncond: bool,
                  kind: ModuleKind | None = None) -> str | None:
    """Where the host text source's negative rows come from: None (not needed), "host" (the webui's own uc), or
    "encode" (needed, but the webui computed none: Forge skips the negative prompt at CFG scale 1, so its encoder
    makes it, as A1111 would have for the request)."""
    if not needs_uncond(row_weights, guidance_scale, kind):
        return None
    if kind is not None and kind.uncond_is_empty_prompt:
        return "encode"  # "" whatever the negative prompt: the webui's uc is the negative prompt's
    return "host" if host_has_uncond else "encode"
