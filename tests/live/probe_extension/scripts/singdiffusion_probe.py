"""A test-only webui extension: records what the real sampler hands its denoiser at the first step.

The live tier installs it beside SingDiffusion to check the start-step math inside the webui, not in a model of
it. It wraps the webui's CFGDenoiser.forward (the same class in AUTOMATIC1111 and Forge), which every sampler
calls with its own input: x in the sampler's parametrisation (σ form for k-diffusion, x_t for timestep samplers)
and σ or the timestep. The on_cfg_denoiser callback would not do for both webuis: Forge hands it x·√(σ² + 1) and σ
for timestep samplers. For every sampling (each pass of each batch) it keeps that first input, the text
conditioning rows at step 0 (none for the negative prompt where the webui computed none: Forge at CFG scale 1)
and the unit noise the webui drew (reproduced with the webui's own ImageRNG), and serves them at
GET /singdiffusion-probe/captures as base64 safetensors. POST /singdiffusion-probe/reset clears.
In Forge, GET /singdiffusion-probe/loaded-models lists what its memory manager holds (class names, devices), and
GET /singdiffusion-probe/families what SingDiffusion's Forge reader makes of each of Forge's engines (instances
made without loading weights: SD3, Flux and Chroma checkpoints are too large to build here).
"""

import base64
import importlib.util

import torch
from modules import prompt_parser, rng, script_callbacks
from modules.sd_samplers_cfg_denoiser import CFGDenoiser
from safetensors.torch import save

captures = []
# The A1111-style flag each Forge engine's __init__ sets (backend/diffusion_engine); Flux and Chroma set none.
FLAGS_SET = {"StableDiffusion": ("is_sd1",), "StableDiffusion2": ("is_sd2",), "StableDiffusionXL": ("is_sdxl",),
             "StableDiffusionXLRefiner": ("is_sdxl",), "StableDiffusion3": ("is_sd3",)}
SEEN_ATTR = "_singdiffusion_probe_seen"  # on p: the (iteration, hires pass) samplings already recorded


def crossattn(rows):
    """SDXL's conditioning is a dict: its cross-attention rows are what a module reads."""
    return rows["crossattn"] if isinstance(rows, dict) else rows


def encode_rows(prompts):
    """The loaded checkpoint's own conditioning rows of plain prompts at step 0 (cross-attention part)."""
    from modules import shared

    with torch.no_grad():
        rows = prompt_parser.get_learned_conditioning(shared.sd_model, list(prompts), 1)
        return crossattn(prompt_parser.reconstruct_cond_batch(rows, 0))


def record(p, x, sigma, uncond, cond):
    batch = len(p.seeds)
    noise = rng.ImageRNG(tuple(x.shape[1:]), p.seeds, subseeds=p.subseeds, subseed_strength=p.subseed_strength,
                         seed_resize_from_h=p.seed_resize_from_h, seed_resize_from_w=p.seed_resize_from_w).next()
    text_uncond = crossattn(prompt_parser.reconstruct_cond_batch(uncond, 0)) if uncond is not None else torch.zeros(0)
    tensors = {
        "x": x[-batch:],
        "sigma": torch.as_tensor(sigma).reshape(-1)[-batch:],
        "noise": noise,
        "text_cond": crossattn(prompt_parser.reconstruct_multicond_batch(cond, 0)[1]),
        "text_uncond": text_uncond,
    }
    blob = save({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()})
    captures.append({
        "sampler": p.sampler_name,
        "is_hr_pass": bool(getattr(p, "is_hr_pass", False)),
        "iteration": p.iteration,
        "prompts": list(p.prompts),
        "tensors": base64.b64encode(blob).decode(),
    })


def wrap(forward):
    def first_input_recorded(self, x, sigma, uncond, cond, *args, **kwargs):
        p = self.p
        seen = getattr(p, SEEN_ATTR, None)
        if seen is None:
            seen = set()
            setattr(p, SEEN_ATTR, seen)
        key = (p.iteration, bool(getattr(p, "is_hr_pass", False)))
        if key not in seen:
            seen.add(key)
            record(p, x, sigma, uncond, cond)
        return forward(self, x, sigma, uncond, cond, *args, **kwargs)

    first_input_recorded.singdiffusion_probe = True
    return first_input_recorded


def on_app_started(_demo, app):
    @app.get("/singdiffusion-probe/captures")
    def get_captures():
        return captures

    @app.post("/singdiffusion-probe/reset")
    def reset():
        captures.clear()
        return {"ok": True}

    @app.post("/singdiffusion-probe/encode")
    def encode(prompts: list[str]):
        """The loaded checkpoint's own conditioning of `prompts` (base64 safetensors, key "rows")."""
        rows = encode_rows(prompts)
        return {"tensors": base64.b64encode(save({"rows": rows.detach().float().cpu().contiguous()})).decode()}

    if importlib.util.find_spec("modules_forge") is not None:
        @app.get("/singdiffusion-probe/loaded-models")
        def loaded_models():
            from backend import memory_management

            return [{"class": type(loaded.model.model).__name__, "device": str(loaded.model.current_device),
                     "load_device": str(loaded.device)} for loaded in memory_management.current_loaded_models]

        @app.get("/singdiffusion-probe/families")
        def families():
            from backend import loader

            from sing_core.kinds import ModuleKind
            from sing_webui import rules
            from sing_webui.hosts import webui  # the extension's reader, already imported by its script

            found = {}
            for engine in loader.possible_models:
                model = engine.__new__(engine)
                model.fix_for_webui_backward_compatibility()  # the A1111-style flags, all False
                for flag in ("is_sd1", "is_sd2", "is_sdxl", "is_sd3"):  # then set as each engine's __init__ does
                    setattr(model, flag, flag in FLAGS_SET.get(engine.__name__, ()))
                family = webui.family(model)
                found[engine.__name__] = {
                    "family": family, "refusal": rules.fit_refusal(family, 4, ModuleKind(), 4, "m [0]"),
                    "refusal_sdxl_module": rules.fit_refusal(family, 4, ModuleKind("oms", "sdxl", "openclip_h"), 4,
                                                             "m [0]")}
            return found


if not getattr(CFGDenoiser.forward, "singdiffusion_probe", False):  # once, also across UI reloads
    CFGDenoiser.forward = wrap(CFGDenoiser.forward)
script_callbacks.on_app_started(on_app_started)
