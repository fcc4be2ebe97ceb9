"""X/Y/Z plot axes for SingDiffusion, added to the built-in xyz_grid script (on_before_ui, before its ui() runs).

Each axis sets p.singdiffusion_<key>, which hook.effective_args puts above script args and presets. Registered once:
on a UI reload the webui re-imports xyz_grid.py (a fresh axis list) and re-runs our script file, so the labels
already present are what guards against a second copy.
"""

from __future__ import annotations

from sing_core.args import FIELD_BY_KEY
from sing_core.library import UnknownModuleError
from sing_webui import options
from sing_webui.failure import SingDiffusionError


def apply_enabled(p, value, _values):
    p.singdiffusion_enabled = str(value).strip().lower() == "true"


def apply_module(p, value, _values):
    p.singdiffusion_module = value


def apply_guidance(p, value, _values):
    p.singdiffusion_guidance_scale = float(value)


def apply_strength(p, value, _values):
    p.singdiffusion_strength = float(value)


def confirm_modules(_p, values):
    """Unknown module names stop the plot before its first image with a 422 naming what is installed."""
    try:
        for name in values:
            options.find_module(name)
    except UnknownModuleError as error:
        raise SingDiffusionError(f"X/Y/Z plot: {error}") from error


def module_choices() -> list[str]:
    return options.library().names()


def xyz_module():
    from modules import scripts

    return next((data.module for data in scripts.scripts_data if data.module.__name__ == "xyz_grid.py"), None)


def register() -> None:
    xyz = xyz_module()
    if xyz is None:
        print("SingDiffusion: the X/Y/Z plot script is not loaded; its SingDiffusion axes are not added", flush=True)
        return
    axes = [
        xyz.AxisOption(FIELD_BY_KEY["enabled"].xyz, str, apply_enabled, choices=xyz.boolean_choice(reverse=True)),
        xyz.AxisOption(FIELD_BY_KEY["guidance_scale"].xyz, float, apply_guidance),
        xyz.AxisOption(FIELD_BY_KEY["strength"].xyz, float, apply_strength),
        xyz.AxisOption(FIELD_BY_KEY["module"].xyz, str, apply_module, format_value=xyz.format_value,
                       confirm=confirm_modules, choices=module_choices),
    ]
    present = {axis.label for axis in xyz.axis_options}
    xyz.axis_options.extend(axis for axis in axes if axis.label not in present)
