"""Fixtures of the diffusers tier: tiny SD-1, SD-2 and SDXL pipelines, modules of every kind, one thread."""

from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the diffusers tier needs diffusers (requirements/test.txt installs it)")

import tiny_pipes

import sing_diffusers


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the tier runs its tiny models on one thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    return tiny_pipes.tokenizer_folder(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def module_dir(tmp_path_factory) -> Path:
    return tiny_pipes.release_module(tmp_path_factory.mktemp("modules") / "singdiffusion-tiny")


@pytest.fixture(scope="session")
def sd1_built(tokenizer_dir):
    return tiny_pipes.sd1_pipeline(tokenizer_dir)


@pytest.fixture(scope="session")
def sd2_built(tokenizer_dir):
    return tiny_pipes.sd2_pipeline(tokenizer_dir)


@pytest.fixture
def sd1(sd1_built):
    """A fresh SD-1-shaped pipeline around the session's models (its own scheduler: tests swap it). Tests that
    change the models themselves build their own with tiny_pipes."""
    return tiny_pipes.fresh(sd1_built)


@pytest.fixture
def sd2(sd2_built):
    return tiny_pipes.fresh(sd2_built)


@pytest.fixture
def clip_l(sd1_built):
    """SD-1.5's CLIP-L of this tiny world: the SD-1 pipeline's text encoder."""
    return sd1_built


@pytest.fixture
def module(module_dir, sd1):
    """The module as an SD-1 user loads it: its CLIP-L is the pipeline's own."""
    return sing_diffusers.load_module(module_dir, sd1)


@pytest.fixture
def sd2_module(module_dir, sd2, clip_l):
    """The module for an SD-2 pipeline: SD-1.5's CLIP-L lent by an SD-1.x pipeline, as the reference does."""
    return sing_diffusers.load_module(module_dir, sd2, clip_l=clip_l)


@pytest.fixture(scope="session")
def sdxl_built(tokenizer_dir):
    return tiny_pipes.sdxl_pipeline(tokenizer_dir)


@pytest.fixture
def sdxl(sdxl_built):
    return tiny_pipes.fresh(sdxl_built)


@pytest.fixture(scope="session")
def modules_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kinds")


@pytest.fixture(scope="session")
def oms_xl_dir(modules_dir, tokenizer_dir) -> Path:
    """One More Step's oms_b_openclip_xl layout: SDXL latents, SD-2's OpenCLIP ViT-H, an oms_tokenizer/."""
    return tiny_pipes.oms_release(modules_dir / "oms_b_openclip_xl", "sdxl", tokenizer_dir=tokenizer_dir)


@pytest.fixture(scope="session")
def oms_sd_dir(modules_dir) -> Path:
    """oms_b_openclip_15_21's layout: SD-1.x/2.x latents (its model_index.json names StableDiffusionPipeline)."""
    return tiny_pipes.oms_release(modules_dir / "oms_b_openclip_15_21", "sd")


@pytest.fixture(scope="session")
def oms_mix_dir(modules_dir) -> Path:
    """oms_l_mixclip_xl's layout: SDXL latents, SDXL's own two encoders."""
    return tiny_pipes.oms_release(modules_dir / "oms_l_mixclip_xl", "sdxl", mixclip=True, seed=14)


@pytest.fixture(scope="session")
def sing_xl_file(modules_dir) -> Path:
    return tiny_pipes.singdiffusion_xl_file(modules_dir / "singdiffusion-xl.safetensors")


@pytest.fixture(scope="session")
def sd2_text_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return tiny_pipes.sd2_text_folder(tmp_path_factory.mktemp("sd21"), tokenizer_dir)


NUMPY_2_NOISE = ("__array__ implementation", "__array_wrap__ must accept context")


def pytest_collection_modifyitems(items):
    # diffusers' schedulers run numpy over torch tensors, which numpy 2 flags on every element: not ours to fix,
    # and tens of thousands of lines that would hide a warning that matters.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            for message in NUMPY_2_NOISE:
                item.add_marker(pytest.mark.filterwarnings(f"ignore:{message}:DeprecationWarning"))
