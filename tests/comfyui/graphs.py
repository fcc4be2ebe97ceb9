"""ComfyUI prompts (API format) for the live tier: txt2img with stock nodes, with or without SingDiffusion."""

from __future__ import annotations

import copy
import itertools

CHECKPOINT = "tiny-sd15.safetensors"
SDXL_CHECKPOINT, SD2_CHECKPOINT = "tiny-sdxl.safetensors", "tiny-sd20.safetensors"
MODULE = "tiny-sing"
POSITIVE, NEGATIVE = "a solid black background", "blurry"
_save_counter = itertools.count()


def txt2img(*, sampler="euler", scheduler="normal", steps=4, cfg=7.0, seed=1, batch=1, size=64, denoise=1.0,
            module: str | None = MODULE, guidance_scale=0.0, probe: str | None = None, sampler_node="KSampler",
            add_noise=True, positive=POSITIVE, negative=NEGATIVE, strength: float | None = None,
            checkpoint=CHECKPOINT) -> dict:
    """Checkpoint → [SingProbe] → [SingDiffusionApply] → sampler → VAEDecode → SaveImage."""
    graph = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["ckpt", 1]}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0],
                                                       "filename_prefix": f"live{next(_save_counter)}"}},
    }
    model = ["ckpt", 0]
    if probe is not None:
        graph["probe"] = {"class_type": "SingProbe", "inputs": {"model": model, "tag": probe}}
        model = ["probe", 0]
    if module is not None:
        graph["loader"] = {"class_type": "SingDiffusionModuleLoader", "inputs": {"module_name": module}}
        graph["apply"] = {"class_type": "SingDiffusionApply", "inputs": {
            "model": model, "sing_module": ["loader", 0], "guidance_scale": guidance_scale}}
        if strength is not None:
            graph["apply"]["inputs"]["strength"] = strength
        model = ["apply", 0]
    common = {"model": model, "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0]}
    if sampler_node == "KSampler":
        graph["sampler"] = {"class_type": "KSampler", "inputs": {
            **common, "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler,
            "denoise": denoise}}
    elif sampler_node == "KSamplerAdvanced":
        graph["sampler"] = {"class_type": "KSamplerAdvanced", "inputs": {
            **common, "add_noise": "enable" if add_noise else "disable", "noise_seed": seed, "steps": steps,
            "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler, "start_at_step": 0, "end_at_step": 10000,
            "return_with_leftover_noise": "disable"}}
    elif sampler_node in ("SamplerCustom", "SamplerCustomAdvanced"):
        graph["select"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}}
        graph["sigmas"] = {"class_type": "BasicScheduler", "inputs": {
            "model": model, "scheduler": scheduler, "steps": steps, "denoise": denoise}}
        if sampler_node == "SamplerCustom":
            graph["sampler"] = {"class_type": "SamplerCustom", "inputs": {
                **common, "add_noise": add_noise, "noise_seed": seed, "cfg": cfg, "sampler": ["select", 0],
                "sigmas": ["sigmas", 0]}}
        else:
            graph["noise"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}}
            graph["guider"] = {"class_type": "CFGGuider", "inputs": {
                "model": model, "positive": ["pos", 0], "negative": ["neg", 0], "cfg": cfg}}
            graph["sampler"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
                "noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["select", 0], "sigmas": ["sigmas", 0],
                "latent_image": ["latent", 0]}}
    else:
        raise ValueError(sampler_node)
    return graph


def with_model_node(graph: dict, node_id: str, node: dict) -> dict:
    """The graph with `node` (taking the checkpoint's MODEL as "model") put before everything that reads it."""
    graph = copy.deepcopy(graph)
    for other in graph.values():
        for key, value in other["inputs"].items():
            if value == ["ckpt", 0]:
                other["inputs"][key] = [node_id, 0]
    graph[node_id] = node
    return graph


def save_conditioning(graph: dict, node_id: str, source: list, tag: str) -> None:
    """Record a CONDITIONING (the probe pack's SingSaveConditioning) as <tag>.safetensors."""
    graph[node_id] = {"class_type": "SingSaveConditioning", "inputs": {"conditioning": source, "tag": tag}}


def sdxl_oms(*, module: str, probe: str, module_text: str | None = POSITIVE, module_prompt: str | None = None,
             batch_prompts: tuple[str, str, str] | None = None, **options) -> dict:
    """SDXL checkpoint → Apply (a One More Step module) → sampler. With module_text, the module's positive is
    CLIPTextEncode of that text with the SD-2 checkpoint's CLIP (OpenCLIP ViT-H), which is also the Apply node's
    clip input; with module_text None, the module reads the sampler's own SDXL conditioning and the SDXL CLIP is the
    clip input. batch_prompts: a prompt per image (the sampler's and the module's). The module's inputs are saved
    as <probe>-module-positive and <probe>-module-empty ("" with the clip input's CLIP)."""
    graph = txt2img(checkpoint=SDXL_CHECKPOINT, module=module, probe=probe, **options)
    clip = ["ckpt", 1]
    if module_text is not None:
        graph["sd2"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SD2_CHECKPOINT}}
        clip = ["sd2", 1]
    if batch_prompts is not None:
        for side_clip, prefix in ((["ckpt", 1], "pos"), (clip, "mpos")):
            for i, text in enumerate(batch_prompts):
                graph[f"{prefix}{i}"] = {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": side_clip}}
            graph[f"{prefix}_batch"] = {"class_type": "SingBatchConditioning",
                                        "inputs": {key: [f"{prefix}{i}", 0] for i, key in enumerate("abc")}}
        graph["sampler"]["inputs"]["positive"] = ["pos_batch", 0]
        module_positive = ["mpos_batch", 0] if module_text is not None else ["pos_batch", 0]
    else:
        graph["mpos"] = {"class_type": "CLIPTextEncode", "inputs": {"text": module_text or "", "clip": clip}}
        module_positive = ["mpos", 0] if module_text is not None else ["pos", 0]
    apply = graph.get("apply", {"inputs": {}})  # none in the runs without the module
    if module_text is not None:
        apply["inputs"]["positive"] = module_positive
    apply["inputs"]["clip"] = clip
    if module_prompt is not None:
        apply["inputs"]["module_prompt"] = module_prompt
        graph["mprompt"] = {"class_type": "CLIPTextEncode", "inputs": {"text": module_prompt, "clip": clip}}
        module_positive = ["mprompt", 0]
    graph["empty"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": clip}}
    save_conditioning(graph, "save_mpos", module_positive, f"{probe}-module-positive")
    save_conditioning(graph, "save_empty", ["empty", 0], f"{probe}-module-empty")
    return graph
