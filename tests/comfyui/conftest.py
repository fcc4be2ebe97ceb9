"""Live ComfyUI tier: a real ComfyUI given by COMFYUI_DIR (COMFYUI_PYTHON: its interpreter), driven over HTTP.

Tests marked `comfyui` are skipped at collection, with the reason shown, where COMFYUI_DIR is unset. The session
makes a ComfyUI base directory of its own (--base-directory: models, custom_nodes, input, output, temp, user; the
database in memory), links this checkout into its custom_nodes/ as sd-webui-singdiffusion and the test-only probe
pack beside it, builds a random SD-1.5 checkpoint ComfyUI detects as SD15 (cached in pytest's cache folder) and
modules that fit it (or not), and starts `main.py --cpu` on 127.0.0.1. See tests/comfyui/README.md.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent / "live"), str(HERE.parent / "unit")]  # helpers here and beside

from comfy_client import ComfyClient  # noqa: E402
from comfy_live import PACK_NAME, REFERENCE_GRAPHS, ComfyInstall, ComfyServer, Modules  # noqa: E402
from oms_modules import write_oms_module  # noqa: E402
from tiny_sing_module import write_tiny_sing_module  # noqa: E402

SKIP_REASON = ("COMFYUI_DIR is not set: the ComfyUI tier drives a real ComfyUI v0.33.0 checkout "
               "(COMFYUI_DIR=/path/to/ComfyUI, COMFYUI_PYTHON defaults to COMFYUI_DIR/../venv/bin/python); "
               "see tests/comfyui/README.md")
START_TIMEOUT = float(os.environ.get("COMFYUI_START_TIMEOUT", "300"))
BUILD_TIMEOUT = 900
MODULE_WIDTH = 768  # SD-1.5's CLIP-L: the checkpoint's text width


def pytest_collection_modifyitems(config, items):
    if os.environ.get("COMFYUI_DIR"):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("comfyui"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def comfy_install() -> ComfyInstall:
    root = Path(os.environ["COMFYUI_DIR"]).resolve()
    python = Path(os.environ.get("COMFYUI_PYTHON") or root.parent / "venv" / "bin" / "python")
    if not (root / "main.py").is_file() or not python.exists():
        pytest.fail(f"COMFYUI_DIR={root} has no main.py or COMFYUI_PYTHON={python} does not exist")
    return ComfyInstall(root, python)


def build_checkpoint(request, comfy_install: ComfyInstall, family: str) -> Path:
    """A random checkpoint of `family` (sd15, sd20, sdxl), built once per builder version and ComfyUI (pytest's
    cache folder)."""
    builder = HERE / "tiny_comfy_checkpoint.py"
    key = hashlib.sha256(builder.read_bytes() + str(comfy_install.root).encode()).hexdigest()[:12]
    path = Path(request.config.cache.mkdir("comfyui-checkpoint")) / f"tiny-{family}-{key}.safetensors"
    if not path.exists():
        done = subprocess.run([str(comfy_install.python), str(builder), str(comfy_install.root), str(path), family],
                              cwd=comfy_install.root, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
        if done.returncode != 0:
            pytest.fail(f"building the {family} checkpoint failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return path


@pytest.fixture(scope="session")
def checkpoint(request, comfy_install) -> Path:
    return build_checkpoint(request, comfy_install, "sd15")


@pytest.fixture(scope="session")
def family_checkpoints(request, comfy_install) -> dict[str, Path]:
    """SDXL (the host of the SDXL cases) and SD-2 (the ViT-H text source of One More Step's openclip module)."""
    return {family: build_checkpoint(request, comfy_install, family) for family in ("sdxl", "sd20")}


def _safetensors_module(release: Path, out: Path) -> None:
    from sing_core.checkpoint import load_module, save_module

    save_module(load_module(release), None, out)


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory, checkpoint, family_checkpoints) -> Path:
    base = tmp_path_factory.mktemp("comfyui")
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / "tiny-sd15.safetensors").symlink_to(checkpoint)
    for family, path in family_checkpoints.items():
        (base / "models" / "checkpoints" / f"tiny-{family}.safetensors").symlink_to(path)
    for name in ("custom_nodes", "input", "output", "temp", "user"):
        (base / name).mkdir(exist_ok=True)
    return base


@pytest.fixture(scope="session")
def modules(base_dir, tmp_path_factory) -> Modules:
    folder, extra = base_dir / "models" / "singdiffusion", tmp_path_factory.mktemp("extra-modules")
    work = tmp_path_factory.mktemp("module-builds")
    write_tiny_sing_module(folder / "tiny-release", seed=0, cross_attention_dim=MODULE_WIDTH, text_gain=50.0)
    write_tiny_sing_module(work / "tiny-sing", seed=1, cross_attention_dim=MODULE_WIDTH, text_gain=50.0)
    _safetensors_module(work / "tiny-sing", folder / "tiny-sing.safetensors")
    write_tiny_sing_module(folder / "narrow-sing", seed=2, cross_attention_dim=32)
    write_tiny_sing_module(work / "extra-sing", seed=3, cross_attention_dim=MODULE_WIDTH)
    _safetensors_module(work / "extra-sing", extra / "extra-sing.safetensors")
    write_oms_module(folder / "oms-xl", text_width=1024, seed=4)
    write_oms_module(folder / "oms-xl-mixclip", text_width=2048, seed=5)
    write_oms_module(folder / "oms-sd", text_width=1024, seed=6, family="sd")
    return Modules(folder, extra, "tiny-sing", "tiny-release", "narrow-sing", "extra-sing", "oms-xl",
                   "oms-xl-mixclip", "oms-sd")


@pytest.fixture(scope="session")
def pack_links(base_dir) -> Path:
    nodes = base_dir / "custom_nodes"
    (nodes / PACK_NAME).symlink_to(PROJECT_ROOT, target_is_directory=True)
    (nodes / "sing_probe").symlink_to(HERE / "probe_nodes", target_is_directory=True)
    return nodes / PACK_NAME


@pytest.fixture(scope="session")
def comfy_server(comfy_install, base_dir, modules, pack_links, plain_reference):
    paths = base_dir / "extra_model_paths.yaml"
    paths.write_text(f"sing_test:\n    base_path: {modules.extra_folder}\n    singdiffusion: .\n")
    server = ComfyServer(comfy_install.root, comfy_install.python, base_dir, Path(), base_dir / "comfyui.log",
                         extra_args=("--extra-model-paths-config", str(paths)))
    try:
        server.start(START_TIMEOUT)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def comfy(comfy_server) -> ComfyClient:
    return ComfyClient(comfy_server.url)


@pytest.fixture
def probe_dir(comfy_server) -> Path:
    return comfy_server.data_dir / "probe"


@pytest.fixture(scope="session")
def plain_reference(comfy_install, base_dir, pack_links) -> dict:
    """Images of REFERENCE_GRAPHS from the same base directory with --disable-all-custom-nodes (before the main
    server starts: one ComfyUI at a time)."""
    from graphs import txt2img

    server = ComfyServer(comfy_install.root, comfy_install.python, base_dir, Path(), base_dir / "comfyui-plain.log",
                         extra_args=("--disable-all-custom-nodes",))
    try:
        server.start(START_TIMEOUT)
        client = ComfyClient(server.url)
        images = {}
        for name, options in REFERENCE_GRAPHS.items():
            run = client.run(txt2img(module=None, **options))
            assert run.succeeded, run.failure
            images[name] = client.images(run)
        assert "sd-webui-singdiffusion" not in server.log_text().split("Import times for custom nodes")[-1]
        return images
    finally:
        server.stop()
