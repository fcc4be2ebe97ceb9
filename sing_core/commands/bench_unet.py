"""`python -m sing_core bench unet`: SingUNet against diffusers' UNet2DConditionModel, same weights, side by side.

Both networks run the SD-1.5 configuration with the time conditioning removed the way the reference removes it
(every ResnetBlock2D's time_emb_proj and time_embedding_norm set to None; diffusers still gets a placeholder
timestep). Timing alternates A B A B in one process on shared weights and reports the median of the per-pair
ratios. Peak memory is measured per model in a fresh subprocess (see MEMORY_NOTE).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from sing_core.train.architectures import SD15

MEMORY_NOTE = (
    "peak memory: each model's first forward runs in its own fresh subprocess (same config, inputs, dtype), "
    "--memory-runs times, alternating; the medians are shown. On CPU "
    "the kernel's peak-RSS mark (VmHWM) is reset through /proc/self/clear_refs just before the forward, so "
    "'forward' = peak RSS during the forward minus RSS before it: the activations and workspaces, free of import "
    "and weight-loading peaks and of the other model's allocations; 'weights' = RSS growth from building the model. "
    "On CUDA: torch.cuda.max_memory_allocated over the forward minus the allocation before it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per model (alternating), default 3")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--batch", type=int, default=2, help="batch size (2 = cond + uncond)")
    parser.add_argument("--size", type=int, default=64, help="latent side (64 = 512 px)")
    parser.add_argument("--tokens", type=int, default=77)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--memory-runs", type=int, default=3, help="fresh processes per model for peak memory")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-probe", choices=["ours", "diffusers"], help=argparse.SUPPRESS)


def _import_diffusers():
    try:
        import diffusers
        from diffusers.models.resnet import ResnetBlock2D
    except ImportError:
        sys.exit("bench unet: needs diffusers to compare against: pip install diffusers (or requirements/test.txt)")
    diffusers.utils.logging.set_verbosity_error()  # its advice on .to(dtype) is about from_pretrained, not us
    return diffusers.UNet2DConditionModel, ResnetBlock2D


def reference_unet(config: dict):
    """diffusers' UNet2DConditionModel with the reference's time removal applied."""
    UNet2DConditionModel, ResnetBlock2D = _import_diffusers()
    model = UNet2DConditionModel(**config).eval()
    for module in model.modules():
        if isinstance(module, ResnetBlock2D):
            module.time_emb_proj = None
            module.time_embedding_norm = None
    return model


def _inputs(args, dtype, device):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 4, args.size, args.size, generator=g).to(device, dtype)
    context = torch.randn(args.batch, args.tokens, SD15["cross_attention_dim"], generator=g).to(device, dtype)
    return x, context


def _forwards(ours, reference, x, context):
    import torch

    timestep = torch.ones(x.shape[0], dtype=torch.long, device=x.device)  # the reference's placeholder
    return (lambda: ours(x, context)), (lambda: reference(x, timestep, context).sample)


def _timed(fn, device) -> tuple[float, float, object]:
    """Wall seconds, process CPU seconds (all threads; less disturbed by other processes) and the output."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start, out


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:  # noqa: PTH123
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_probe(args) -> int:
    """Runs in a fresh subprocess: build one model, measure its first forward's peak memory, print JSON."""
    import torch

    from sing_core.config import UNetConfig
    from sing_core.unet import SingUNet

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.memory_probe == "diffusers":
        _import_diffusers()  # imported before the baseline, like torch
    x, context = _inputs(args, dtype, device)
    cuda = device.type == "cuda"
    before_build = torch.cuda.memory_allocated() if cuda else _rss_kib("VmRSS") * 1024
    if args.memory_probe == "ours":
        model = SingUNet(UNetConfig.from_dict(SD15)).eval()
        fn = lambda: model(x, context)  # noqa: E731
    else:
        model = reference_unet(SD15)
        timestep = torch.ones(args.batch, dtype=torch.long)
        fn = lambda: model(x, timestep.to(device), context).sample  # noqa: E731
    model.to(device, dtype)
    with torch.inference_mode():
        if cuda:
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            fn()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            base = _rss_kib("VmRSS") * 1024
            with open("/proc/self/clear_refs", "w") as f:  # noqa: PTH123  ("5": reset the peak RSS mark)
                f.write("5")
            fn()
            peak = _rss_kib("VmHWM") * 1024 - base
    print(json.dumps({"weights": base - before_build, "forward": peak}))
    return 0


def _measure_memory(args) -> dict[str, dict[str, int]]:
    """Median over --memory-runs fresh processes per model, alternating (the allocator's luck varies by run)."""
    runs = {"ours": [], "diffusers": []}
    for _ in range(args.memory_runs):
        for which, results in runs.items():
            command = [sys.executable, "-m", "sing_core", "bench", "unet", "--memory-probe", which]
            for flag in ("device", "dtype", "batch", "size", "tokens", "threads"):
                command += [f"--{flag}", str(getattr(args, flag))]
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"memory probe {which} failed:\n{out.stderr[-2000:]}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        which: {key: int(statistics.median(r[key] for r in results)) for key in results[0]}
        for which, results in runs.items()
    }


def run(args: argparse.Namespace) -> int:
    if args.memory_probe:
        return _memory_probe(args)
    import torch

    from sing_core.config import UNetConfig
    from sing_core.unet import SingUNet

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"bench unet: SD-1.5 UNet, latent {args.batch}x4x{args.size}x{args.size}, {args.tokens} tokens, {args.dtype}"
        f" on {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load}"
    )
    torch.manual_seed(0)
    reference = reference_unet(SD15).to(device, dtype)
    with torch.device("meta"):
        ours = SingUNet(UNetConfig.from_dict(SD15))
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("time_embedding.")}
    ours.load_state_dict(state, strict=True, assign=True)  # the same tensors: identical weights, no second copy
    ours.eval()
    x, context = _inputs(args, dtype, device)
    run_ours, run_reference = _forwards(ours, reference, x, context)
    wall = {"ours": [], "diffusers": []}
    cpu = {"ours": [], "diffusers": []}
    with torch.inference_mode():
        a = _timed(run_ours, device)[2]  # warm-up (kernel selection, caches), untimed
        b = _timed(run_reference, device)[2]
        diff = (a.float() - b.float()).abs().max().item()
        del a, b
        for _ in range(args.repeats):
            for name, fn in (("ours", run_ours), ("diffusers", run_reference)):
                seconds, cpu_seconds, _ = _timed(fn, device)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
    for name, values in wall.items():
        runs = ", ".join(f"{t:.3f}" for t in values)
        cpu_median = statistics.median(cpu[name])
        print(
            f"  {name:<10} median {statistics.median(values):8.3f} s   runs {runs}   (process CPU {cpu_median:.2f} s)"
        )

    def median_ratio(times):
        return statistics.median(o / d for o, d in zip(times["ours"], times["diffusers"], strict=True))

    print(f"  time ratio ours/diffusers (median of {args.repeats} A-B pairs): {median_ratio(wall):.3f}")
    if device.type == "cpu":
        print(f"  process CPU-time ratio ours/diffusers: {median_ratio(cpu):.3f}")
    print(f"  max |ours - diffusers| on the output: {diff:.3g}")
    if not args.no_memory:
        del reference, ours, state
        memory = _measure_memory(args)
        for name, m in memory.items():
            mib = {key: f"{value / 2**20:8.1f} MiB" for key, value in m.items()}
            print(f"  {name:<10} peak forward memory {mib['forward']}   weights {mib['weights']}")
        ratio = memory["ours"]["forward"] / max(memory["diffusers"]["forward"], 1)
        print(f"  forward memory ratio ours/diffusers: {ratio:.3f}")
        print(f"  ({MEMORY_NOTE})")
    return 0
