"""The loaded module and text encoder: where they run, in which dtype, and how long they stay in memory.

Loaded once and kept across generations; reloaded when the chosen file changes on disk or in Settings. Each use
places them through the webui's own way (sing_webui.hosts.webui): in Forge its memory manager loads them, counts
them and may evict them; in A1111 they move themselves. With 'move to CPU after use' (or A1111's --lowvram and
--medvram) they sit on the GPU only while they run; 'unload after use' frees them after each generation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from modules import shared

from sing_core.checkpoint import load_module
from sing_core.kinds import CLIP_L, OPENCLIP_H, TEXT_NAMES
from sing_core.library import ModuleEntry
from sing_core.module import SingModule
from sing_webui import options
from sing_webui.hosts import webui

TextEncoder = Callable[[list[str]], torch.Tensor]  # plain prompts -> [N, 77, D]



class Cache:
    """One loaded object and the key it was loaded for (file, size, mtime, device, dtype); `model_of` gives the
    torch module inside it, which is handed back to the webui (webui.release) when the object is dropped."""

    def __init__(self, model_of: Callable[[object], torch.nn.Module]):
        self.lock = threading.Lock()
        self.key: tuple | None = None
        self.value = None
        self.model_of = model_of

    def get(self, key: tuple, load: Callable[[], object]):
        with self.lock:
            if self.key != key:
                self.drop()  # the old weights go before the new ones are read
                self.value, self.key = load(), key
            return self.value

    def drop(self) -> None:
        if self.value is not None:
            webui.release(self.model_of(self.value))
        self.key, self.value = None, None

    def clear(self) -> None:
        with self.lock:
            self.drop()


class FileTextEncoder:
    """SD-1.5's CLIP-L from a file: plain prompts -> [N, 77, D], placed like the module for each use."""

    def __init__(self, tokenizer, model: torch.nn.Module, source: str = ""):
        self.tokenizer, self.model, self.source = tokenizer, model, source

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        with on_device(self.model) as model, torch.inference_mode():
            return model(self.tokenizer(prompts).to(target_device())).clone()


modules_cache = Cache(model_of=lambda module: module)
text_cache = Cache(model_of=lambda encoder: encoder.model)  # one text encoder at a time, of whichever kind


def target_device() -> torch.device:
    if options.opt("device") == "cpu":
        return torch.device("cpu")
    return webui.device()


def target_dtype(device: torch.device) -> torch.dtype:
    precision = options.opt("precision")
    if precision == "auto":
        # CPU kernels for fp16 are slow or missing; the GPU follows the UNet (fp32 under A1111's --no-half).
        return torch.float32 if device.type == "cpu" else webui.gpu_dtype()
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]


def offloads() -> bool:
    return webui.always_offloads() or options.opt("memory") != "keep on device"


def get_module(entry: ModuleEntry) -> SingModule:
    """The module for `entry`, loaded (or reloaded after a change) and resident where it waits between uses."""
    device = target_device()
    dtype = target_dtype(device)

    def load() -> SingModule:
        started = time.perf_counter()
        module = load_module(entry.path, device="cpu", dtype=dtype)  # each use places it (on_device)
        module.name = entry.name
        print(f"SingDiffusion: loaded {entry.name} [{module.short_hash}] from {entry.path} "
              f"({dtype}, runs on {device}) in {time.perf_counter() - started:.2f}s")
        return module

    return modules_cache.get((str(entry.weights), entry.stat_key(), str(device), dtype), load)


@contextlib.contextmanager
def on_device(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model on its target device for the duration of the block; off the GPU afterwards if it offloads."""
    with webui.placed(model, target_device(), offload=offloads()) as placed:
        yield placed


def end_of_job() -> None:
    """After a generation: the 'unload after use' policy frees the module (the next generation reloads it)."""
    if options.opt("memory") == "unload after use":
        unload()


def unload() -> None:
    modules_cache.clear()
    text_cache.clear()
    webui.torch_gc()


def get_text_encoder(module: SingModule, module_path: Path) -> TextEncoder:
    """The module's own text encoder, for the 'module' text source, by the text its kind reads: SD-1.5's CLIP-L
    (clip_l_encoder) or SD-2's OpenCLIP ViT-H (openclip_h_encoder). An "sdxl" module reads the SDXL checkpoint's
    own conditioning (rules.text_source never picks 'module' for it)."""
    if module.kind.text == OPENCLIP_H:
        return openclip_h_encoder(module, module_path)
    if module.kind.text != CLIP_L:
        raise LookupError(f"a module reading {TEXT_NAMES[module.kind.text]} has no text encoder of its own: it reads "
                          "the SDXL checkpoint's conditioning; load an SDXL checkpoint")
    return clip_l_encoder(module, module_path)


class OpenedTextEncoder:
    """sing_core.text.open_text_encoder's encoder as a TextEncoder: plain prompts -> [N, 77, D]."""

    def __init__(self, encoder, source: str):
        self.encoder, self.source = encoder, source  # source: the file's name, for the infotext
        self.model = encoder if isinstance(encoder, torch.nn.Module) else getattr(encoder, "model", None)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            return self.encoder.encode(list(prompts)).float().clone()


def openclip_h_encoder(module: SingModule, module_path: Path) -> TextEncoder:
    """SD-2's OpenCLIP ViT-H from the file chosen in Settings, else (Automatic) an SD-2.x checkpoint of the user's
    at the module's width; a LookupError (422) naming what to download or choose where there is none. Tokens as
    the host's own SD-2 tokenizer gives them (webui.OPENCLIP_H_TOKENIZER; "!" padding), with an OMS release's own
    oms_tokenizer/ files where the encoder has no tokenizer/ beside it."""
    from sing_core.text import open_text_encoder

    width = module.cross_attention_dim
    path = options.openclip_h_path(width)
    if path is None:
        raise LookupError(
            f"the module reads {TEXT_NAMES[OPENCLIP_H]} and no such text encoder {width} wide was found: put an "
            "SD-2.x checkpoint (e.g. stabilityai/stable-diffusion-2-1's v2-1_768-ema-pruned.safetensors) among your "
            "checkpoints, or choose a ViT-H file in Settings > SingDiffusion > OpenCLIP ViT-H text encoder file; "
            "or load an SD-2.x checkpoint and use text source 'auto'")
    own_tokenizer = module_path / "oms_tokenizer"
    tokenizer = own_tokenizer if (own_tokenizer / "vocab.json").is_file() else None
    device = target_device()
    dtype = target_dtype(device)

    def load() -> OpenedTextEncoder:
        started = time.perf_counter()
        encoder = open_text_encoder(OPENCLIP_H, path, device=device, dtype=dtype, tokenizer=tokenizer,
                                    pipeline=webui.OPENCLIP_H_TOKENIZER,
                                    expected_hidden_size=width)
        print(f"SingDiffusion: loaded the OpenCLIP ViT-H text encoder of {path} ({dtype}, {device}) in "
              f"{time.perf_counter() - started:.2f}s", flush=True)
        return OpenedTextEncoder(encoder, path.name)

    key = (OPENCLIP_H, str(path), path.stat().st_mtime_ns, str(tokenizer), str(device), dtype)
    return text_cache.get(key, load)


def clip_l_encoder(module: SingModule, module_path: Path) -> TextEncoder:
    """SD-1.5's CLIP-L for the 'module' text source: from Settings, else inside the module file, else the loaded
    SD-1 checkpoint's own. The tokenizer is ours; its vocabulary comes from a package the webui already has."""
    from sing_core.checkpoint import describe
    from sing_core.text import ClipTokenizer, load_text_encoder

    chosen = options.clip_l_path()
    if chosen is None and module_path.is_file() and describe(module_path).has_text_encoder:
        chosen = module_path
    if chosen is None:
        return host_clip_l(ClipTokenizer.find(), module.cross_attention_dim)
    dtype = target_dtype(target_device())

    def load() -> FileTextEncoder:
        model = load_text_encoder(chosen, device="cpu", dtype=dtype, expected_hidden_size=module.cross_attention_dim)
        return FileTextEncoder(ClipTokenizer.find(), model, chosen.name)

    return text_cache.get((str(chosen), chosen.stat().st_mtime_ns, str(target_device()), dtype), load)


def host_clip_l(tokenizer, width: int) -> TextEncoder:
    """The loaded SD-1 checkpoint's CLIP-L on plain token ids: last layer, no emphasis, as the module was trained,
    whatever CLIP skip the webui uses for its own UNet."""
    model = shared.sd_model
    encode_ids = webui.clip_l(model) if webui.text_width(model) == width else None
    if encode_ids is None:
        raise LookupError(
            f"the 'module' text source needs SD-1.5's CLIP-L text encoder ({width} wide), and the loaded checkpoint "
            "has none to lend: "
            "choose a clip_l.safetensors or an SD-1.x checkpoint in Settings > SingDiffusion > CLIP-L text encoder "
            "file, or use a module file that carries its text encoder")
    return lambda prompts: encode_ids(tokenizer(prompts))
