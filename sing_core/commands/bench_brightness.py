"""`python -m sing_core bench brightness --url URL`: the paper's average-brightness protocol against a running webui.

Prompts (the reference's): solid black / white backgrounds and monochrome line-art logos on black / white. Each
prompt and seed is generated without and with SingDiffusion from the same seed; the metric is the mean grey level
(0..255) of each image. The paper's reading: with the module, black prompts come out darker and white ones lighter.
Needs requirements/tools.txt (Pillow reads the images, matplotlib draws the chart, tqdm shows the progress); the
webui must run with --api and the extension installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

DEFAULTS = {"seeds": 10, "steps": 50, "cfg": 7.5, "sampler": "DDIM", "size": 512}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="the webui's address (started with --api)")
    parser.add_argument("--out", default="bench-brightness", help="folder for the CSVs, the chart and the settings")
    parser.add_argument("--prompts", metavar="FILE", help="one prompt per line ('#' comments and blank lines are "
                        "skipped); default: the paper's four prompts")
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"], help="images per prompt and arm (the paper "
                        "used 100)")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed; seeds are consecutive")
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="sampling steps (the paper: 50)")
    parser.add_argument("--cfg", type=float, default=DEFAULTS["cfg"], help="CFG scale (the pipeline's default)")
    parser.add_argument("--sampler", default=DEFAULTS["sampler"], help="sampler name as the webui lists it (DDIM: "
                        "deterministic, VP timesteps, t0 = 981 at 50 steps like the reference pipeline)")
    parser.add_argument("--scheduler", help="schedule type (Automatic, Karras, …); default: the webui's choice")
    parser.add_argument("--width", type=int, default=DEFAULTS["size"])
    parser.add_argument("--height", type=int, default=DEFAULTS["size"])
    parser.add_argument("--batch-size", type=int, default=1, help="seeds per request (consecutive seeds)")
    # dest: the CLI keeps the command's module path in args.module
    parser.add_argument("--module", dest="sing_module",
                        help="SingDiffusion module name; default: the extension's default module")
    parser.add_argument("--module-guidance", type=float, default=0.0,
                        help="the module's normalized guidance; 0 follows --cfg (the reference uses one scale)")
    parser.add_argument("--text-source", default="auto", choices=("auto", "module", "host"),
                        help="the module's text encoder, as in the extension's panel")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one request")
    parser.add_argument("--retries", type=int, default=3, help="retries when the server cannot be reached")
    parser.add_argument("--api-auth", metavar="USER:PASSWORD", help="for a webui started with --api-auth")


def read_prompts(path: str) -> tuple[str, ...]:
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise SystemExit(f"bench brightness: cannot read --prompts {file} ({error.strerror or error})") from None
    prompts = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not prompts:
        raise SystemExit(f"bench brightness: --prompts {file} holds no prompt (one per line; '#' starts a comment)")
    return prompts


def preflight(args: argparse.Namespace, warn):
    """The API client, what the server says about itself, and the settings with the module resolved."""
    from sing_core.bench.client import BenchError, WebuiApi
    from sing_core.bench.preflight import check_sampler, choose_module, gather
    from sing_core.bench.protocol import PAPER_PROMPTS, BenchSettings

    prompts = read_prompts(args.prompts) if args.prompts else PAPER_PROMPTS
    settings = BenchSettings(prompts=prompts, seeds=args.seeds, seed_start=args.seed_start, steps=args.steps,
                             cfg_scale=args.cfg, sampler=args.sampler, scheduler=args.scheduler, width=args.width,
                             height=args.height, batch_size=args.batch_size, module_guidance=args.module_guidance,
                             text_source=args.text_source)
    settings.check()
    if args.retries < 0 or not args.timeout > 0:
        raise BenchError(f"bench brightness: --retries {args.retries} must be 0 or more and --timeout "
                         f"{args.timeout:g} above 0")
    api = WebuiApi(args.url, timeout=args.timeout, attempts=args.retries + 1, auth=args.api_auth, warn=warn)
    facts = gather(api)
    check_sampler(facts, settings.sampler, settings.scheduler, api.url)
    settings = dataclasses.replace(settings, module=choose_module(facts, args.sing_module, api.url))
    if facts.samples_format.lower() != "png":
        warn(f"the webui encodes API images as {facts.samples_format} (Settings > Saving images/grids > File "
             "format for images); png gives exact grey levels")
    return api, facts, settings


def write_outputs(run, facts, url: str, out: Path) -> list[Path]:
    from sing_core.bench.report import (
        FILES,
        render_chart,
        table,
        write_images_csv,
        write_settings_json,
        write_summary_csv,
    )
    from sing_core.bench.stats import summarise

    settings = run.settings
    rows = summarise(run.measured_prompts(), run.samples)
    print()
    print(table(rows))
    labels = ", ".join(run.module_labels()) or settings.module
    title = f"mean grey level, {settings.seeds} seeds, {settings.steps} steps {settings.sampler}, module {labels}"
    if not run.complete:
        title = f"partial ({len(run.samples)} of {run.planned_images} images): {title}"
    thumbnails = {r.prompt: pair for r in rows if (pair := run.thumbnails(r.prompt)) is not None}
    extra = {"checkpoint": facts.checkpoint, "module_source": facts.module_source, "complete": run.complete,
             "images": len(run.samples), "planned_images": run.planned_images}
    return [
        write_summary_csv(rows, out / FILES["summary"]),
        write_images_csv(run, out / FILES["images"]),
        render_chart(rows, title, out / FILES["chart"], thumbnails),
        write_settings_json(run, url, extra, out / FILES["settings"]),
    ]


def run(args: argparse.Namespace) -> int:
    from sing_core.bench.client import BenchError
    from sing_core.bench.protocol import BenchRun, plan_jobs, run_bench
    from sing_core.progress import advance_to, progress_bar

    said: set[str] = set()
    bar = None

    def say(message: str) -> None:
        if bar is not None:
            bar.write(message, file=sys.stderr)  # on a line of its own, above the progress bar
        else:
            print(message, file=sys.stderr, flush=True)

    def warn(message: str) -> None:
        if message not in said:
            said.add(message)
            say(f"warning: {message}")

    out = Path(args.out)
    try:
        api, facts, settings = preflight(args, warn)
        out.mkdir(parents=True, exist_ok=True)
    except BenchError as error:
        say(f"bench brightness: {error}")
        return 2
    except OSError as error:
        say(f"bench brightness: cannot create --out {out} ({error}); pass a writable folder")
        return 2
    jobs = plan_jobs(settings)
    result = BenchRun(settings)
    status = 0
    try:
        total = sum(len(job.seeds) for job in jobs)
        print(f"bench brightness: {api.url}, checkpoint {facts.checkpoint or '?'}, module {settings.module}, "
              f"{len(settings.prompts)} prompts × {settings.seeds} seeds × 2 arms = {total} images, "
              f"{settings.steps} steps {settings.sampler}, CFG {settings.cfg_scale:g}, "
              f"{settings.width}×{settings.height}", flush=True)
        bar = progress_bar(total, "generating", unit="img")
        run_bench(api, settings, jobs=jobs, warn=warn, into=result,
                  progress=lambda done, _total, job: advance_to(bar, done, None, f"{job.arm:<7} {job.prompt[:40]}"))
    except BenchError as error:
        say(f"bench brightness: {error}")
        status = 2
    except KeyboardInterrupt:
        say("bench brightness: interrupted")
        status = 130
    finally:
        if bar is not None:
            bar.close()
    if not result.measured_prompts():
        return status
    try:
        written = write_outputs(result, facts, api.url, out)
    except OSError as error:
        say(f"bench brightness: cannot write to --out {out} ({error}); pass a writable folder")
        return 2
    done = "" if result.complete else f" (partial: {len(result.samples)} of {result.planned_images} planned)"
    print(f"\n{len(result.samples)} images{done} in {result.seconds:.1f} s; wrote " + ", ".join(map(str, written)))
    return status
