"""Bench-only ComfyUI pack (linked by bench_comfyui.py --node-times, never shipped): where a prompt's time goes.

It adds no node. It wraps ComfyUI's execution.get_output_data (one node's function, as execute() calls it) and
comfy.model_management.load_models_gpu (putting the models a sampler needs in place), and appends one JSON line per
call to $SING_TIMING_FILE: {"prompt", "node", "class", "seconds"}, with "class" "load_models_gpu" for the load done
inside the node named.
"""

import json
import os
import time
from pathlib import Path

import comfy.model_management
import execution

_running = {"prompt": None, "node": None}


def _record(kind: str, seconds: float) -> None:
    with Path(os.environ["SING_TIMING_FILE"]).open("a") as out:
        out.write(json.dumps({**_running, "class": kind, "seconds": seconds}) + "\n")


def _timed_output_data(original):
    async def get_output_data(prompt_id, unique_id, obj, *args, **kwargs):
        _running.update(prompt=prompt_id, node=unique_id)
        started = time.perf_counter()
        try:
            return await original(prompt_id, unique_id, obj, *args, **kwargs)
        finally:
            _record(type(obj).__name__, time.perf_counter() - started)

    return get_output_data


def _timed_load(original):
    def load_models_gpu(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _record("load_models_gpu", time.perf_counter() - started)

    return load_models_gpu


if os.environ.get("SING_TIMING_FILE"):
    execution.get_output_data = _timed_output_data(execution.get_output_data)
    comfy.model_management.load_models_gpu = _timed_load(comfy.model_management.load_models_gpu)

NODE_CLASS_MAPPINGS = {}
