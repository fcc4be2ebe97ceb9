"""Checks before the first image: the API answers, SingDiffusion is there, the module and sampler exist.

Every failure here costs one GET instead of a generation, and says what to fix. The module list comes from the
extension's GET /singdiffusion/v1/modules when the installed version has it, else from the Module dropdown that
GET /sdapi/v1/script-info describes (its choices, and its value: the default module from Settings).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sing_core.bench.client import INSTALL_HINT, BenchError, ExtensionMissingError, WebuiApi

SCRIPT_NAME = "singdiffusion"  # the webui lists scripts by lower-cased title
MODULE_ARG_LABEL = "Module"


@dataclasses.dataclass(frozen=True)
class ServerFacts:
    modules: tuple[str, ...]  # installed module names; empty when the server does not say
    default_module: str  # the extension's default ("" when unknown)
    module_source: str  # where the list came from: "/singdiffusion/v1/modules", "/sdapi/v1/script-info" or ""
    checkpoint: str  # sd_model_checkpoint, for the record
    samplers: tuple[str, ...]  # display names
    schedulers: tuple[str, ...]
    samples_format: str  # the format the API encodes images in
    accepted: frozenset[str] = frozenset()  # every name, label and alias the webui takes for either


def _names(answer: Any) -> list[str]:
    """Module names from /singdiffusion/v1/modules, read leniently: a list of names or of {"name": …} records,
    possibly under a "modules" key."""
    if isinstance(answer, dict):
        answer = answer.get("modules", [])
    names = []
    for item in answer or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _script_module_arg(script_info: Any) -> dict | None:
    for script in script_info or []:
        if (isinstance(script, dict) and str(script.get("name", "")).lower() == SCRIPT_NAME
                and not script.get("is_img2img")):
            for arg in script.get("args") or []:
                if isinstance(arg, dict) and arg.get("label") == MODULE_ARG_LABEL:
                    return arg
            return {}
    return None


def gather(api: WebuiApi) -> ServerFacts:
    scripts = api.get("/sdapi/v1/scripts")
    txt2img = [str(name).lower() for name in (scripts or {}).get("txt2img", [])]
    if SCRIPT_NAME not in txt2img:
        raise ExtensionMissingError(f"the webui at {api.url} has no SingDiffusion script in txt2img (its scripts: "
                               f"{', '.join(txt2img) or 'none'}): {INSTALL_HINT}")
    module_arg = _script_module_arg(api.get("/sdapi/v1/script-info")) or {}
    listed = api.get("/singdiffusion/v1/modules", missing_ok=True)
    options = api.get("/sdapi/v1/options") or {}
    if listed is not None:
        modules, source = _names(listed), "/singdiffusion/v1/modules"
    elif module_arg.get("choices") is not None:
        modules, source = [str(c) for c in module_arg["choices"]], "/sdapi/v1/script-info"
    else:
        modules, source = [], ""
    default = options.get("singdiffusion_default_module") or module_arg.get("value") or ""
    samplers = [s for s in api.get("/sdapi/v1/samplers") or [] if isinstance(s, dict)]
    schedulers = [s for s in api.get("/sdapi/v1/schedulers", missing_ok=True) or [] if isinstance(s, dict)]
    accepted = {str(name) for item in samplers + schedulers
                for name in (item.get("name"), item.get("label"), *(item.get("aliases") or [])) if name}
    return ServerFacts(tuple(modules), str(default), source, str(options.get("sd_model_checkpoint", "")),
                       tuple(s.get("name", "") for s in samplers), tuple(s.get("label", "") for s in schedulers),
                       str(options.get("samples_format", "png")), frozenset(accepted))


def choose_module(facts: ServerFacts, requested: str | None, url: str) -> str:
    """The --module, checked against the server's list; without it the extension's default, else the first."""
    if requested:
        if facts.modules and requested not in facts.modules:
            raise BenchError(f"module {requested!r} is not installed in the webui at {url} (installed: "
                             f"{', '.join(facts.modules)}); pick one of those with --module, or copy the module into "
                             "the webui's models/SingDiffusion folder")
        return requested
    if facts.default_module and (not facts.modules or facts.default_module in facts.modules):
        return facts.default_module
    if facts.modules:
        return facts.modules[0]
    if facts.module_source:
        raise BenchError(f"the webui at {url} has no SingDiffusion module installed: copy one into its "
                         "models/SingDiffusion folder (then refresh, or restart the webui)")
    raise BenchError(f"cannot tell which SingDiffusion modules the webui at {url} has; name one with --module")


def check_sampler(facts: ServerFacts, sampler: str, scheduler: str | None, url: str) -> None:
    if facts.samplers and sampler not in facts.accepted:
        raise BenchError(f"--sampler {sampler!r} is not a sampler of the webui at {url} (it has: "
                         f"{', '.join(facts.samplers)})")
    if scheduler and facts.schedulers and scheduler not in facts.accepted:
        raise BenchError(f"--scheduler {scheduler!r} is not a scheduler of the webui at {url} (it has: "
                         f"{', '.join(facts.schedulers)})")
