"""The live ComfyUI tier's own helpers: the server, the modules it finds, what the probe recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webui_server import WebuiServer

PACK_NAME = "sd-webui-singdiffusion"


@dataclass
class ComfyServer(WebuiServer):
    """One ComfyUI process: `webui_dir` is COMFYUI_DIR, `data_dir` its --base-directory."""

    ready_markers: tuple[str, ...] = ("To see the GUI go to",)
    ping_path: str = "/system_stats"
    host: None = None  # not one of the webuis of tests/live/live_hosts.py
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def command(self) -> list[str]:
        return [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch", "--disable-api-nodes", "--base-directory", str(self.data_dir),
                "--database-url", "sqlite:///:memory:", *self.extra_args]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.setdefault("SING_PROBE_DIR", str(self.data_dir / "probe"))
        return env


@dataclass(frozen=True)
class ComfyInstall:
    root: Path
    python: Path


@dataclass(frozen=True)
class Modules:
    folder: Path  # <base>/models/singdiffusion
    extra_folder: Path  # the folder extra_model_paths.yaml adds
    fitting: str  # our .safetensors, 768 wide
    release: str  # a release folder (config.json + diffusion_pytorch_model.bin), 768 wide
    narrow: str  # a release folder 32 wide: does not fit the checkpoint's text
    extra: str  # in the extra folder
    oms_xl: str  # One More Step's release layout, SDXL latents, reads SD-2's OpenCLIP ViT-H (1024)
    oms_xl_mixclip: str  # the same, reads SDXL's own conditioning (2048)
    oms_sd: str  # One More Step's release layout, SD-1.x/2.x latents, reads SD-2's OpenCLIP ViT-H (1024)

    def path(self, name: str) -> Path:
        for folder in (self.folder, self.extra_folder):
            for candidate in (folder / f"{name}.safetensors", folder / name):
                if candidate.exists():
                    return candidate
        raise FileNotFoundError(name)


REFERENCE_GRAPHS = {  # rendered once by a ComfyUI that does not load the pack, then again with it loaded
    "euler": {"sampler": "euler", "seed": 3},
    "dpmpp_2m-karras-batch2": {"sampler": "dpmpp_2m", "scheduler": "karras", "batch": 2, "seed": 4},
}


def read_probe(folder: Path, tag: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / f"{tag}.safetensors"))
