"""The demo's experiment: train φ on the mixture, then sample every prompt with and without it, DDIM and Euler, and
at w = 1 once more at strength λ = 0.5.

"without" is the host as shipped: the sampler starts from unit Gaussian noise x1 (DDIM at t0, Euler at σ0·x1).
"with" starts from the same x1, through SingDiffusion: x̂0 = normalized CFG of φ(x1, c) and φ(x1, ""), then the DDIM
step from t = 1 to the sampler's first point (sing_core.start). The host model is the exact mixture denoiser with
classifier-free guidance on ε, at the same w.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sing_core.demo.data import MixtureData, make_mixture
from sing_core.demo.denoiser import MixtureDenoiser
from sing_core.demo.module import PromptEncoder, TinyX0Net
from sing_core.demo.samplers import ddim_timesteps, denoised_from_eps, discrete_sigmas, sample_ddim, sample_euler
from sing_core.schedule import sd_alphas_cumprod
from sing_core.start import ddim_start, normalized_guidance, unit_noise_start
from sing_core.train import Progress, TrainConfig, TrainState, train_x0_predictor

SAMPLERS = ("ddim", "euler")
HALF_STRENGTH = 0.5  # the extra run at w = 1: strength λ interpolates between the plain start (0) and the paper's (1)
VARIANTS = {"without": None, "with": 1.0, "half": HALF_STRENGTH}  # variant -> strength (None: no module)


@dataclass(frozen=True)
class DemoConfig:
    size: int = 32  # latent side; 4×32×32 is SD's latent of a 256² image
    channels: int = 4
    levels: int = 7
    samples: int = 32  # per prompt
    steps: int = 20
    train_steps: int = 600
    batch_size: int = 64
    uncond_probability: float = 0.1  # caption dropout, so φ(x1, "") learns E[x0] for guidance
    guidances: tuple[float, ...] = (1.0, 3.0, 7.5)
    seed: int = 0


@dataclass(frozen=True)
class Row:
    prompt: str
    guidance: float
    sampler: str
    true_mean: float
    without: float
    with_module: float


@dataclass
class DemoResult:
    config: DemoConfig
    data: MixtureData
    rows: list[Row]
    # (sampler, guidance, "without" | "with") -> final samples [P, samples, C, H, W]
    samples: dict[tuple[str, float, str], torch.Tensor]
    module: TinyX0Net
    encoder: PromptEncoder
    train_state: TrainState
    seconds: dict[str, float] = field(default_factory=dict)
    half_rows: list[Row] = field(default_factory=list)  # w = 1 at strength HALF_STRENGTH ("with_module": that run)

    def mean_abs_error(self, sampler: str, guidance: float, strength: float = 1.0) -> tuple[float, float]:
        """Mean |brightness error| over the prompts, (without, with the module at this strength)."""
        source = self.half_rows if strength == HALF_STRENGTH else self.rows
        rows = [r for r in source if r.sampler == sampler and r.guidance == guidance]
        without = sum(abs(r.without - r.true_mean) for r in rows) / len(rows)
        with_module = sum(abs(r.with_module - r.true_mean) for r in rows) / len(rows)
        return without, with_module


def train_module(
    data: MixtureData, config: DemoConfig, on_progress: Callable[[Progress], None] | None = None
) -> tuple[TinyX0Net, PromptEncoder, TrainState]:
    """Trains φ with sing_core.train on (x0, prompt) pairs from the data, with caption dropout to the "" prompt."""
    torch.manual_seed(config.seed)  # the net's initial weights
    encoder = PromptEncoder(data.prompts, seed=config.seed)
    net = TinyX0Net(data.shape[0], encoder.dim)
    n_prompts = len(data.prompts)

    def sample_batch(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        prompt_index = torch.randint(n_prompts, (config.batch_size,), generator=generator)
        x0 = data.sample(prompt_index, generator).float()
        dropped = torch.rand(config.batch_size, generator=generator) < config.uncond_probability
        return x0, encoder(torch.where(dropped, encoder.uncond_index, prompt_index))

    train_config = TrainConfig(
        steps=config.train_steps,
        lr=3e-3,
        warmup_steps=min(50, config.train_steps // 10),
        min_lr_ratio=0.02,
        seed=config.seed,
        progress_every=max(1, config.train_steps // 10),
    )
    state = train_x0_predictor(net, sample_batch, train_config, on_progress=on_progress)
    return net, encoder, state


def module_x0(net: TinyX0Net, encoder: PromptEncoder, x1: torch.Tensor, prompt_index: torch.Tensor, guidance: float):
    """SingDiffusion's x̂0 at t = 1: φ(x1, c), normalized-guided with φ(x1, "") when w > 1 (float64)."""
    with torch.no_grad():
        x0_cond = net(x1.float(), encoder(prompt_index)).double()
        if guidance <= 1.0:
            return x0_cond
        x0_uncond = net(x1.float(), encoder(torch.full_like(prompt_index, encoder.uncond_index))).double()
    return normalized_guidance(x0_cond, x0_uncond, guidance)


def start_point(
    sampler: str,
    x1: torch.Tensor,
    x0_hat: torch.Tensor | None,
    timesteps: torch.Tensor,
    sigmas: torch.Tensor,
    strength: float = 1.0,
) -> torch.Tensor:
    """What the sampler's first model call sees. Without the module (x0_hat None): A1111's timestep samplers take
    unit noise as x_t0 itself, k-diffusion samplers multiply it by σ0. With it: the DDIM step from t = 1 to that point,
    from strength·x̂0.
    """
    alphas_cumprod = sd_alphas_cumprod()
    if sampler == "ddim":
        return x1 if x0_hat is None else ddim_start(x0_hat, x1, alphas_cumprod[timesteps[-1]], strength)
    if sampler == "euler":
        sigma0 = sigmas[0].item()
        return x1 * sigma0 if x0_hat is None else unit_noise_start(x0_hat, x1, sigma0, strength=strength) * sigma0
    raise ValueError(f"start_point: unknown sampler {sampler!r}; use one of {SAMPLERS}")


def run_demo(config: DemoConfig, log: Callable[[str], None] = print) -> DemoResult:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    data = make_mixture(size=config.size, channels=config.channels, levels=config.levels)
    host = MixtureDenoiser(data)

    def report(progress: Progress) -> None:
        log(f"  train step {progress.step}/{progress.steps}  loss {progress.loss:.4f}  eta {progress.eta_s:.0f}s")

    log(f"training φ: {config.train_steps} steps of {config.batch_size} latents {list(data.shape)}")
    net, encoder, state = train_module(data, config, report)
    seconds["train"] = time.perf_counter() - clock

    clock = time.perf_counter()
    n_prompts = len(data.prompts)
    prompt_index = torch.arange(n_prompts).repeat_interleave(config.samples)
    generator = torch.Generator().manual_seed(config.seed + 1)
    x1 = torch.randn(len(prompt_index), *data.shape, generator=generator, dtype=torch.float64)
    alphas_cumprod = sd_alphas_cumprod()
    timesteps = ddim_timesteps(config.steps)
    sigmas = discrete_sigmas(config.steps, alphas_cumprod)
    true_mean = data.true_mean()

    rows, half_rows, samples = [], [], {}
    runs = len(config.guidances) * len(SAMPLERS) * 2 + len(SAMPLERS) * (1.0 in config.guidances)
    done = 0
    log(f"sampling: {len(data.prompts)} prompts × {config.samples} images, {runs} runs (sampler, CFG scale, module "
        "off/on)")
    for guidance in config.guidances:
        x0_hat = module_x0(net, encoder, x1, prompt_index, guidance)

        def eps_model(x_t: torch.Tensor, alpha_cumprod: float, guidance: float = guidance) -> torch.Tensor:
            return host.eps(x_t, alpha_cumprod, prompt_index, guidance)

        for sampler in SAMPLERS:
            brightness = {}
            for variant, strength in VARIANTS.items():
                if variant == "half" and guidance != 1.0:
                    continue
                module = None if strength is None else x0_hat
                done += 1
                state = "off" if strength is None else f"on, strength {strength:g}"
                log(f"  run {done}/{runs}: {sampler}, CFG scale {guidance:g}, module {state}")
                start = start_point(sampler, x1, module, timesteps, sigmas, 1.0 if strength is None else strength)
                if sampler == "ddim":
                    out = sample_ddim(eps_model, start, timesteps, alphas_cumprod)
                else:
                    out = sample_euler(denoised_from_eps(eps_model), start, sigmas)
                out = out.reshape(n_prompts, config.samples, *data.shape)
                samples[(sampler, guidance, variant)] = out
                brightness[variant] = out.mean(dim=(1, 2, 3, 4))
            for p, prompt in enumerate(data.prompts):
                for variant, into in (("with", rows), ("half", half_rows)):
                    if variant in brightness:
                        into.append(Row(prompt=prompt, guidance=guidance, sampler=sampler,
                                        true_mean=true_mean[p].item(), without=brightness["without"][p].item(),
                                        with_module=brightness[variant][p].item()))
    seconds["sample"] = time.perf_counter() - clock
    return DemoResult(
        config=config,
        data=data,
        rows=rows,
        samples=samples,
        module=net,
        encoder=encoder,
        train_state=state,
        seconds=seconds,
        half_rows=half_rows,
    )
