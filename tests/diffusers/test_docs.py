"""docs/python.md says what is tested: its scheduler table is the tier's list with the numbers the adapter reads, its
example is five lines (tests/diffusers/test_pip_install.py runs it), and its SDXL example runs."""

import diffusers
import pytest
import tiny_pipes
from test_scheduler_starts import SCHEDULERS
from tiny_pipes import EXAMPLE_MODELS, SD15_SCHEDULER, docs_example, docs_table

import sing_diffusers


def test_the_table_lists_every_tested_scheduler_and_nothing_else():
    assert list(docs_table()) == list(SCHEDULERS)


@pytest.mark.parametrize("row", SCHEDULERS)
def test_the_table_numbers_are_the_first_points_read(row):
    name, changes = SCHEDULERS[row]
    cells = docs_table()[row]
    assert cells[0].startswith(f"`{name}`")
    for key, value in changes.items():
        assert f"{key}={value!r}".replace("'", '"') in cells[0]
    scheduler = getattr(diffusers, name).from_config(diffusers.PNDMScheduler.from_config(SD15_SCHEDULER).config,
                                                     **changes)
    first = sing_diffusers.read_first_point(scheduler, 50)
    assert cells[1] == {"vp": "VP", "sigma": "σ"}[first.form]
    assert float(cells[2]) == first.timestep
    assert float(cells[3]) == pytest.approx(first.sigma, abs=1e-4)
    assert float(cells[4]) == pytest.approx(first.init_noise_sigma, abs=1e-4)


def test_the_example_is_five_lines_with_the_two_models_to_replace():
    lines = [line for line in docs_example().splitlines() if line.strip()]
    assert len(lines) == 5
    assert all(model in docs_example() for model in EXAMPLE_MODELS)


SDXL_EXAMPLE_MODELS = ("stabilityai/stable-diffusion-xl-base-1.0", "models/SingDiffusion/oms_b_openclip_xl",
                       "models/Stable-diffusion/v2-1_768-ema-pruned.safetensors")


def test_the_sdxl_example_runs_on_tiny_models(tmp_path, sdxl_built, oms_xl_dir, sd2_text_dir):
    """docs/python.md's SDXL + One More Step example, its three models replaced by tiny ones saved to disk."""
    section = tiny_pipes.DOCS.read_text(encoding="utf-8").split("## SDXL with One More Step", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    sdxl_built.save_pretrained(tmp_path / "sdxl")
    for model, tiny in zip(SDXL_EXAMPLE_MODELS, (tmp_path / "sdxl", oms_xl_dir, sd2_text_dir), strict=True):
        assert f'"{model}"' in code
        code = code.replace(f'"{model}"', repr(str(tiny)))
    code += "\nassert out.images[0].size == (16, 16)\n"  # the tiny UNet's 8×8 latents, VAE factor 2
    exec(compile(code, "docs/python.md (SDXL example)", "exec"), {})  # our own docs' example, as a reader runs it
