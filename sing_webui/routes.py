"""HTTP routes under /singdiffusion/v1 (registered in on_app_started), beside the webui's /sdapi/v1.

Module names resolve only to modules a scan of the configured folders found: no path or traversal reaches a file.
Checkpoint names in preset URLs are titles such as "sub/model.safetensors [abcdef1234]": send them URL-encoded
(urllib.parse.quote(title, safe="")); the route takes the rest of the path, so an encoded or plain '/' both work.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, HTTPException

from sing_core.args import ArgsError, json_schema
from sing_core.host_family import HostFamilyError
from sing_core.library import UnknownModuleError
from sing_core.presets import PresetError
from sing_core.weights import CheckpointError
from sing_webui import module_list, options, presets, rules

PREFIX = "/singdiffusion/v1"


def http_error(error: Exception, missing: tuple[type[Exception], ...] = (presets.NotFoundError,)) -> HTTPException:
    """404 for the URL's name matching nothing (`missing`), 422 for what cannot be done; the detail says why."""
    status, detail = rules.route_failure(error, missing)
    return HTTPException(status, detail=detail)


REFUSED = (presets.NotFoundError, UnknownModuleError, ArgsError, PresetError, HostFamilyError, CheckpointError)


def list_modules() -> dict[str, Any]:
    return {"modules": module_list.rows()}


def refresh_modules() -> dict[str, Any]:
    return {"modules": module_list.rows(refresh=True)}


def convert_module(name: str) -> dict[str, Any]:
    try:
        return module_list.convert(name)
    except REFUSED as error:
        raise http_error(error, missing=(UnknownModuleError,)) from error


def list_presets() -> dict[str, Any]:
    return presets.listing()


def put_preset(checkpoint: str, values: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI's way
    try:
        preset = presets.save(checkpoint, values)
    except REFUSED as error:
        raise http_error(error) from error
    return {"checkpoint": preset.checkpoint, **preset.to_json()}


def delete_preset(checkpoint: str) -> dict[str, Any]:
    try:
        return {"deleted": presets.delete(checkpoint)}
    except REFUSED as error:
        raise http_error(error) from error


def schema() -> dict[str, Any]:
    return json_schema()


def settings() -> dict[str, Any]:
    """Settings > SingDiffusion as set now. Forge's GET /sdapi/v1/options leaves out every extension's settings
    (POST /sdapi/v1/options still sets them); this route reads ours in both webuis."""
    return {key: options.opt(key.removeprefix("singdiffusion_")) for key in options.DEFAULTS}


def register(_demo, app: FastAPI) -> None:
    add = app.add_api_route
    add(f"{PREFIX}/modules", list_modules, methods=["GET"], summary="Installed SingDiffusion modules")
    add(f"{PREFIX}/refresh", refresh_modules, methods=["POST"], summary="Rescan the module folders")
    add(f"{PREFIX}/modules/{{name}}/convert", convert_module, methods=["POST"],
        summary="Convert a release folder's .bin to .safetensors beside it (the .bin is kept)")
    add(f"{PREFIX}/presets", list_presets, methods=["GET"], summary="Per-checkpoint presets")
    add(f"{PREFIX}/presets/{{checkpoint:path}}", put_preset, methods=["PUT"],
        summary="Save the preset of a checkpoint (title URL-encoded)")
    add(f"{PREFIX}/presets/{{checkpoint:path}}", delete_preset, methods=["DELETE"],
        summary="Delete the preset of a checkpoint (title URL-encoded)")
    add(f"{PREFIX}/schema", schema, methods=["GET"], summary="JSON schema of the named (dict) script args")
    add(f"{PREFIX}/settings", settings, methods=["GET"], summary="Settings > SingDiffusion as set now")
