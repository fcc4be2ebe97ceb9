"""The webui the live tier drives, picked by the environment, and everything about it that differs between hosts.

    WEBUI_DIR (+ WEBUI_PYTHON)  AUTOMATIC1111 v1.10.1
    FORGE_DIR (+ FORGE_PYTHON)  Stable Diffusion WebUI Forge (main at dfdcbab)

One of them set: that host. Both set: AUTOMATIC1111, unless LIVE_HOST=forge (or a1111) says which. Neither: the
tier is skipped with SKIP_REASON. The tests are the same for both; what a test needs to know about the host (how
to start it, which checkpoint it can load, its text width, the few behaviours of its own a test pins down) is
read from `HOST` here, never decided in a test file.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

LIVE_DIR = Path(__file__).resolve().parent
BUILD_TIMEOUT = 900


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class LiveHost:
    key: str  # "a1111" or "forge"
    title: str
    dir_var: str  # the environment variable naming the install
    python_var: str
    launch_flags: tuple[str, ...]
    # Console lines that must all have appeared before the server takes generations (the API answers before its
    # script defaults exist); then /internal/ping must answer.
    ready_markers: tuple[str, ...]
    text_width: int  # the tiny checkpoint's text width, so the width a fitting module's cross-attention has
    builder: str  # the checkpoint builder, run with the host's interpreter
    required: tuple[tuple[str, str], ...]  # (path under the install that must exist, what its absence means)
    # Give the host (and its builder) a Hugging Face cache of the session's: Forge's transformers would otherwise
    # migrate the user's ~/.cache/huggingface on its first start.
    own_hf_home: bool = False
    page_needs_allowed_paths: bool = False  # see page_flags
    # Where the page's checkpoint dropdown is: (elem_id, CSS inside it). A1111's is a quicksetting with its own id;
    # Forge's "Checkpoint" has none (class model_selection) and sets the option on the server only.
    checkpoint_dropdown: tuple[str, str] = ("setting_sd_model_checkpoint", "")
    # Whether that dropdown lists the checkpoints' titles (A1111: "name [hash]" once hashed) or only their names
    # (Forge: its checkpoint_tiles(), the title without the hash).
    checkpoint_dropdown_titles: bool = True
    # Settings (name, key of webui_client.DEFAULT_GENERATION) that give the page's txt2img and img2img their size and
    # sampler where ui-config.json does not: Forge's "UI defaults 'sd'" options overwrite those fields at each load.
    page_default_options: tuple[tuple[str, str], ...] = ()
    # The page's labels of the main tabs the browser tier opens, by the tab's id (Forge capitalises two of them).
    tab_labels: tuple[tuple[str, str], ...] = (("txt2img", "txt2img"), ("img2img", "img2img"), ("settings", "Settings"))
    # The builder's UNet in diffusers' terms: a module of the host UNet's shape and size (the overhead benchmark).
    unet_as_diffusers: tuple[tuple[str, object], ...] = ()
    # The same for the builder's SDXL (--family sdxl): a One More Step module of that UNet's size reading its
    # crossattn (SingUNet's mid block always has attention, so where the host's has none the depths are chosen for
    # about the same parameters and transformer layers).
    sdxl_unet_as_diffusers: tuple[tuple[str, object], ...] = ()
    # Console lines of a failed start worth another try on a fresh port: Forge's gradio 4 gives uvicorn 5 s to
    # come up and, on a busy machine, then reports its own port as taken while the server starts anyway.
    start_retry_markers: tuple[str, ...] = ()
    # How the host answers a request on an SD-1 checkpoint with an 8-channel UNet and no SingDiffusion: it loads,
    # then sampling fails with this in the error (A1111: its noise has 4 channels; Forge takes the UNet for an
    # instruct-pix2pix one and feeds it noise and image conditioning, 9 channels).
    eight_channel_error: str = "to have 8 channels, but got 4 channels"
    writes_checkpoint_yaml: bool = False  # the builder puts a same-named .yaml (the model's config) beside it
    extra_samplers: tuple[str, ...] = ()  # samplers only this host has
    # Fields a txt2img request with hires fix needs on this host (Forge answers 500 without its modules choice).
    hires_fields: tuple[tuple[str, object], ...] = ()
    # Whether the API's "infotext" request field works (Forge: a TypeError in its api.py, HTTP 500).
    api_infotext: bool = True
    # Whether GET /sdapi/v1/options lists extensions' settings (Forge builds its response model before any
    # extension adds one; POST still sets them).
    options_lists_extensions: bool = True

    @property
    def root(self) -> Path:
        return Path(os.environ[self.dir_var]).expanduser().resolve()

    @property
    def python(self) -> Path:
        return Path(os.environ.get(self.python_var) or self.root / "venv" / "bin" / "python").expanduser()

    def problems(self) -> list[str]:
        found = [f"{self.dir_var}={self.root}: {what}" for path, what in self.required
                 if not (self.root / path).exists()]
        if not self.python.is_file():
            found.append(f"{self.python_var}={self.python} does not exist: set {self.python_var} to the webui's "
                         "interpreter")
        return found

    def page_flags(self) -> list[str]:
        """Flags for the web page to load at all from a --data-dir session. Forge's gradio 4 serves files only from
        its allowed paths, --data-dir's folder by default: without FORGE_DIR among them its own scripts and styles
        (file=script.js, javascript/*.js, extensions-builtin/…) answer 403 and the page stays empty. (Extensions
        are served by their path under the data folder, symlinks unresolved.)"""
        if not self.page_needs_allowed_paths:
            return []
        return ["--gradio-allowed-path", str(self.root)]

    def checkpoint_choice(self, title: str) -> str:
        """What the page's checkpoint dropdown calls the checkpoint the API titles `title`."""
        if self.checkpoint_dropdown_titles or not title.endswith("]"):
            return title
        return title.rsplit(" [", 1)[0]

    def tab_label(self, tab: str) -> str:
        """What the page's button of the main tab `tab` (txt2img, img2img, settings) says."""
        return dict(self.tab_labels)[tab]

    def environment(self, session_dir: Path) -> dict[str, str]:
        """Variables the host's processes (server and builders) get on top of the offline ones."""
        return {"HF_HOME": str(session_dir / "hf-home")} if self.own_hf_home else {}

    def build_command(self, out_dir: Path, name: str, *, seed: int, latent_channels: int, text_width: int,
                      family: str = "sd15") -> list[str]:
        """The command that writes <out_dir>/<name>.safetensors and prints its JSON report last."""
        command = [str(self.python), str(LIVE_DIR / self.builder), "--out-dir", str(out_dir), "--name", name,
                   "--seed", str(seed), "--latent-channels", str(latent_channels)]
        if self.key == "a1111":
            return [*command, "--webui-dir", str(self.root), "--text-width", str(text_width), "--family", family]
        if text_width != self.text_width:
            raise ValueError(f"{self.title} recognises SD-1.5 by its 768-wide text encoder only, not {text_width}")
        return [*command, "--forge-dir", str(self.root), "--family", family]


    def build(self, out_dir: Path, name: str, log_dir: Path, **options) -> dict:
        """Run the builder (offline, one OpenMP thread unless told otherwise); its JSON report. BuildError names
        the log and ends with the output's last lines."""
        log = log_dir / f"{name}.build.log"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **self.environment(log_dir)}
        for variable in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # the test interpreter's, not the host's
            env.pop(variable, None)
        done = subprocess.run(self.build_command(out_dir, name, **options), capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT, check=False, env=env, cwd=log_dir)
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            raise BuildError(f"building checkpoint {name} failed (exit {done.returncode}); full output in {log}:\n"
                             f"{tail}")
        return json.loads(done.stdout.strip().splitlines()[-1])


A1111 = LiveHost(
    key="a1111",
    title="AUTOMATIC1111 v1.10.1",
    dir_var="WEBUI_DIR",
    python_var="WEBUI_PYTHON",
    # --skip-prepare-environment: no cloning or pip installs; --no-half: CPU has no fp16 UNet path;
    # --server-name 127.0.0.1 keeps the server on the loopback interface (never --listen or --share).
    launch_flags=("--skip-prepare-environment", "--no-half", "--api", "--use-cpu", "all", "--skip-version-check",
                  "--no-download-sd-model", "--server-name", "127.0.0.1"),
    # the --ckpt model loads in a thread of its own at start
    ready_markers=("Startup time:", "Model loaded in"),
    text_width=32,
    builder="tiny_host_checkpoint.py",
    required=(("launch.py", "no launch.py: point it at an AUTOMATIC1111 v1.10.1 checkout"),
              ("repositories/stable-diffusion-stability-ai/ldm", "its repositories are not set up (no ldm)")),
    writes_checkpoint_yaml=True,
    # model_channels 32, channel_mult [1, 2], one res block, attention at ×2, 2 heads, context 32
    unet_as_diffusers=(("block_out_channels", [32, 64]), ("layers_per_block", 1),
                       ("down_block_types", ["DownBlock2D", "CrossAttnDownBlock2D"]),
                       ("up_block_types", ["CrossAttnUpBlock2D", "UpBlock2D"]), ("cross_attention_dim", 32),
                       ("attention_head_dim", 2), ("norm_num_groups", 32)),
    # sdxl: the same levels with linear projections, 16-channel heads (2 and 4), a transformer in the mid block
    sdxl_unet_as_diffusers=(("block_out_channels", [32, 64]), ("layers_per_block", 1),
                            ("down_block_types", ["DownBlock2D", "CrossAttnDownBlock2D"]),
                            ("up_block_types", ["CrossAttnUpBlock2D", "UpBlock2D"]), ("cross_attention_dim", 32),
                            ("attention_head_dim", [2, 4]), ("use_linear_projection", True),
                            ("norm_num_groups", 32)),
)

FORGE = LiveHost(
    key="forge",
    title="Stable Diffusion WebUI Forge",
    dir_var="FORGE_DIR",
    python_var="FORGE_PYTHON",
    # --always-cpu: without it Forge's backend needs CUDA; Forge ignores A1111's --use-cpu and --no-half.
    launch_flags=("--always-cpu", "--skip-prepare-environment", "--skip-install", "--skip-torch-cuda-test",
                  "--skip-python-version-check", "--skip-version-check", "--no-download-sd-model", "--api",
                  "--server-name", "127.0.0.1"),
    ready_markers=("Startup time:",),  # Forge loads the --ckpt model at the first request
    start_retry_markers=("Cannot find empty port in range",),
    text_width=768,
    builder="forge_host_checkpoint.py",
    required=(("launch.py", "no launch.py: point it at a Stable Diffusion WebUI Forge checkout"),
              ("modules_forge", "no modules_forge: this is not a Forge checkout"),
              ("repositories/huggingface_guess/huggingface_guess", "repositories/huggingface_guess is not set up")),
    own_hf_home=True,
    page_needs_allowed_paths=True,
    eight_channel_error="to have 8 channels, but got 9 channels",
    extra_samplers=("DDPM",),
    hires_fields=(("hr_additional_modules", ["Use same choices"]),),
    api_infotext=False,
    options_lists_extensions=False,
    checkpoint_dropdown=("quicksettings", ".model_selection"),
    checkpoint_dropdown_titles=False,
    page_default_options=(("sd_t2i_width", "width"), ("sd_t2i_height", "height"), ("sd_i2i_width", "width"),
                          ("sd_i2i_height", "height"), ("sd_t2i_sampler", "sampler_name"),
                          ("sd_i2i_sampler", "sampler_name")),
    tab_labels=(("txt2img", "Txt2img"), ("img2img", "Img2img"), ("settings", "Settings")),
    # model_channels 320, one level of one res block with a transformer, 8 heads, context 768
    unet_as_diffusers=(("block_out_channels", [320]), ("layers_per_block", 1),
                       ("down_block_types", ["CrossAttnDownBlock2D"]), ("up_block_types", ["CrossAttnUpBlock2D"]),
                       ("cross_attention_dim", 768), ("attention_head_dim", 8), ("norm_num_groups", 32)),
    # sdxl: 320 wide throughout, two res blocks a level, transformer depths 0 / 2 / 10 down, none up, 64-channel
    # heads, no attention in the mid block (120.0 M parameters without the time embedding); depth 7 at the deepest
    # level and in the module's mid block gives 21 transformer layers there against 20 (125.2 M)
    sdxl_unet_as_diffusers=(("block_out_channels", [320, 320, 320]), ("layers_per_block", 2),
                            ("down_block_types", ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]),
                            ("up_block_types", ["UpBlock2D"] * 3), ("transformer_layers_per_block", [1, 2, 7]),
                            ("cross_attention_dim", 2048), ("attention_head_dim", 5), ("use_linear_projection", True),
                            ("norm_num_groups", 32)),
)

HOSTS = {host.key: host for host in (A1111, FORGE)}


def selected() -> LiveHost | None:
    chosen = os.environ.get("LIVE_HOST", "").strip().lower()
    if chosen:
        if chosen not in HOSTS:
            raise SystemExit(f"LIVE_HOST={chosen!r}: give one of {', '.join(HOSTS)}")
        return HOSTS[chosen] if os.environ.get(HOSTS[chosen].dir_var) else None
    return next((host for host in (A1111, FORGE) if os.environ.get(host.dir_var)), None)


HOST = selected()
SKIP_REASON = (
    "neither WEBUI_DIR nor FORGE_DIR is set (or LIVE_HOST names one that is not): the live tier drives a real "
    "webui, AUTOMATIC1111 v1.10.1 (WEBUI_DIR=/path/to/webui, WEBUI_PYTHON defaults to WEBUI_DIR/venv/bin/python) "
    "or Forge (FORGE_DIR, FORGE_PYTHON); see tests/live/README.md"
)
