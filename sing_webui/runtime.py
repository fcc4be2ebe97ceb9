"""The loaded module and text encoder: where they run, in which dtype, and how long they stay in memory.

Loaded once and kept across generations; reloaded when the chosen file changes on disk or in Settings. Under
--lowvram/--medvram, or with the 'move to CPU' policy, the module sits on the GPU only while it runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from modules import devices, lowvram, shared

from sing_core.checkpoint import load_module
from sing_core.library import ModuleEntry
from sing_core.module import SingModule
from sing_webui import options

TextEncoder = Callable[[list[str]], torch.Tensor]  # plain prompts -> [N, 77, D]



class Cache:
    """One loaded object and the key it was loaded for (file, size, mtime, device, dtype)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key: tuple | None = None
        self.value = None

    def get(self, key: tuple, load: Callable[[], object]):
        with self.lock:
            if self.key != key:
                self.key, self.value = None, None  # drop the old weights before reading the new ones
                self.value, self.key = load(), key
            return self.value

    def clear(self) -> None:
        with self.lock:
            self.key, self.value = None, None


modules_cache = Cache()
text_cache = Cache()


def target_device() -> torch.device:
    if options.opt("device") == "cpu":
        return torch.device("cpu")
    return devices.get_device_for("singdiffusion")


def target_dtype(device: torch.device) -> torch.dtype:
    precision = options.opt("precision")
    if precision == "auto":
        # CPU kernels for fp16 are slow or missing; the GPU follows the UNet (fp32 under --no-half).
        return torch.float32 if device.type == "cpu" else devices.dtype_unet
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]


def offloads() -> bool:
    return lowvram.is_enabled(shared.sd_model) or options.opt("memory") != "keep on device"


def get_module(entry: ModuleEntry) -> SingModule:
    """The module for `entry`, loaded (or reloaded after a change) and resident where it waits between uses."""
    device = target_device()
    dtype = target_dtype(device)

    def load() -> SingModule:
        started = time.perf_counter()
        home = torch.device("cpu") if offloads() else device
        module = load_module(entry.path, device=home, dtype=dtype)
        module.name = entry.name
        print(f"SingDiffusion: loaded {entry.name} [{module.short_hash}] from {entry.path} "
              f"({dtype}, {home}) in {time.perf_counter() - started:.2f}s")
        return module

    return modules_cache.get((str(entry.weights), entry.stat_key(), str(device), dtype), load)


@contextlib.contextmanager
def on_device(module: SingModule) -> Iterator[SingModule]:
    """The module on its target device for the duration of the block; back to the CPU afterwards if it offloads."""
    device = target_device()
    if lowvram.is_enabled(shared.sd_model):
        lowvram.send_everything_to_cpu()  # make room, as the webui does before moving one of its own models
    module.to(device)
    try:
        yield module
    finally:
        if offloads():
            module.to("cpu")
            devices.torch_gc()


def end_of_job() -> None:
    """After a generation: the 'unload after use' policy frees the module (the next generation reloads it)."""
    if options.opt("memory") == "unload after use":
        unload()


def unload() -> None:
    modules_cache.clear()
    text_cache.clear()
    devices.torch_gc()


def get_text_encoder(module: SingModule, module_path: Path) -> TextEncoder:
    """SD-1.5's CLIP-L for the 'module' text source: from Settings, else inside the module file, else the loaded
    SD-1 checkpoint's own. The tokenizer is ours; its vocabulary comes from a package the webui already has."""
    from sing_core.checkpoint import describe
    from sing_core.text import ClipTokenizer, load_text_encoder

    chosen = options.clip_l_path()
    if chosen is None and module_path.is_file() and describe(module_path).has_text_encoder:
        chosen = module_path
    device = target_device()
    dtype = target_dtype(device)
    if chosen is None:
        return host_clip_l(ClipTokenizer.find(), module.cross_attention_dim)

    def load() -> TextEncoder:
        tokenizer = ClipTokenizer.find()
        model = load_text_encoder(chosen, device=device, dtype=dtype, expected_hidden_size=module.cross_attention_dim)

        def encode(prompts: list[str]) -> torch.Tensor:
            with torch.inference_mode():
                return model(tokenizer(prompts).to(device)).clone()

        return encode

    return text_cache.get((str(chosen), chosen.stat().st_mtime_ns, str(device), dtype), load)


def host_clip_l(tokenizer, width: int) -> TextEncoder:
    """The loaded SD-1 checkpoint's CLIP-L (a transformers CLIPTextModel inside the webui) on plain token ids:
    last layer, no emphasis, as the module was trained, whatever CLIP skip the webui uses for its own UNet."""
    model = shared.sd_model
    transformer = getattr(getattr(getattr(model, "cond_stage_model", None), "wrapped", None), "transformer", None)
    if not getattr(model, "is_sd1", False) or getattr(getattr(transformer, "config", None), "hidden_size", 0) != width:
        raise LookupError(
            f"the 'module' text source needs SD-1.5's CLIP-L text encoder ({width} wide), and the loaded checkpoint "
            "has none to lend: "
            "choose a clip_l.safetensors or an SD-1.x checkpoint in Settings > SingDiffusion > CLIP-L text encoder "
            "file, or use a module file that carries its text encoder")

    def encode(prompts: list[str]) -> torch.Tensor:
        ids = tokenizer(prompts).to(devices.device)
        with torch.no_grad():
            return transformer(input_ids=ids).last_hidden_state

    return encode
