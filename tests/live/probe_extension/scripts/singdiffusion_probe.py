"""A test-only webui extension: records what the real sampler receives at its first step.

The live tier installs it beside SingDiffusion to check the start-step math inside the webui, not in a model of
it. For every sampling (each pass of each batch) it keeps the first denoiser input, its sigma/timestep, the text
conditioning the webui built and the unit noise the webui drew (reproduced with the webui's own ImageRNG), and
serves them at GET /singdiffusion-probe/captures as base64 safetensors. POST /singdiffusion-probe/reset clears.
"""

import base64

from modules import rng, script_callbacks
from safetensors.torch import save

captures = []
_seen = set()


def on_cfg_denoiser(params):
    p = params.denoiser.p
    key = (id(p), p.iteration, bool(getattr(p, "is_hr_pass", False)))
    if params.sampling_step != 0 or key in _seen:
        return
    _seen.add(key)
    batch = len(p.seeds)
    x = params.x[-batch:]
    noise = rng.ImageRNG(tuple(x.shape[1:]), p.seeds, subseeds=p.subseeds, subseed_strength=p.subseed_strength,
                         seed_resize_from_h=p.seed_resize_from_h, seed_resize_from_w=p.seed_resize_from_w).next()
    tensors = {
        "x": x,
        "sigma": params.sigma[-batch:],
        "noise": noise,
        "text_cond": params.text_cond,
        "text_uncond": params.text_uncond,
    }
    blob = save({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()})
    captures.append({
        "sampler": p.sampler_name,
        "is_hr_pass": bool(getattr(p, "is_hr_pass", False)),
        "iteration": p.iteration,
        "prompts": list(p.prompts),
        "tensors": base64.b64encode(blob).decode(),
    })


def on_app_started(_demo, app):
    @app.get("/singdiffusion-probe/captures")
    def get_captures():
        return captures

    @app.post("/singdiffusion-probe/reset")
    def reset():
        captures.clear()
        _seen.clear()
        return {"ok": True}


script_callbacks.on_cfg_denoiser(on_cfg_denoiser)
script_callbacks.on_app_started(on_app_started)
