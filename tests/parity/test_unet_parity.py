"""SingUNet against diffusers' UNet2DConditionModel with the reference's time removal, through our loader.

The reference builds UNet2DConditionModel from the module's config.json, sets every ResnetBlock2D's time_emb_proj
and time_embedding_norm to None and calls it with a placeholder timestep of ones. Its weights are a torch.save'd
state dict that still holds time_embedding.*. Tiny random networks in SD-1 and SD-2 style stand in for the release.
"""

import json

import diffusers  # the reference: missing, the parity tier fails (requirements/test.txt installs it), never skips
import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D
from safetensors.torch import save_file

from sing_core import UNetConfig, load_module
from sing_core.cli import main
from sing_core.unet import SingUNet

BASE = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "cross_attention_dim": 24,
    "norm_num_groups": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
CONFIGS = {
    "sd1": {**BASE, "attention_head_dim": 4},
    "sd2": {
        **BASE,
        "attention_head_dim": [2, 4, 4],
        "use_linear_projection": True,
        "upcast_attention": True,
        "layers_per_block": 2,
        "transformer_layers_per_block": 2,
    },
    # per-block depths that differ, so the up path's mirrored indexing is exercised
    "mixed": {
        **BASE,
        "block_out_channels": [32, 48],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "attention_head_dim": [2, 3],
        "layers_per_block": [1, 2],
        "transformer_layers_per_block": [1, 2],
        "downsample_padding": 0,
    },
    "scale_shift": {**BASE, "attention_head_dim": 4, "resnet_time_scale_shift": "scale_shift"},
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one thread (tests/conftest.py)."""


def remove_time(model):
    """The reference's get_rid_of_time."""
    for module in model.modules():
        if isinstance(module, ResnetBlock2D):
            module.time_emb_proj = None
            module.time_embedding_norm = None
    return model


def diffusers_unet(config, seed=0):
    torch.manual_seed(seed)
    model = diffusers.UNet2DConditionModel.from_config(config).eval()
    with torch.no_grad():  # random norms and biases too, so that a swapped parameter cannot go unnoticed
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return model


def release_folder(tmp_path, config, model, weights="bin"):
    """config.json + the state dict, time keys included, as the reference's training would have saved it."""
    folder = tmp_path / "SingDiffusion"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", **config}))
    state = model.state_dict()
    assert any(k.startswith("time_embedding.") for k in state)
    if weights == "bin":
        torch.save(state, folder / "diffusion_pytorch_model.bin")
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def reference_x0(model, x1, context):
    placeholder = torch.ones(x1.shape[0], dtype=torch.long)  # the reference's place_holder_time
    with torch.no_grad():
        return model(x1, placeholder, context).sample


def inputs(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(shape[0], 7, 24, generator=g)


def max_diff(module, model, shape):
    x1, context = inputs(shape)
    with torch.no_grad():
        ours = module(x1, context)
    reference = reference_x0(model, x1, context)
    assert ours.shape == reference.shape == x1.shape
    return (ours - reference).abs().max().item(), reference.abs().max().item()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_keys_and_shapes_are_diffusers_minus_the_time_embedding(name):
    model = diffusers_unet(CONFIGS[name])
    with torch.device("meta"):
        ours = SingUNet(UNetConfig.from_dict(CONFIGS[name]))
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    time_keys = {k for k in theirs if k.startswith("time_embedding.") or ".time_emb_proj." in k}
    assert time_keys
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: v for k, v in theirs.items() if k not in time_keys
    }


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("shape", [(3, 4, 8, 12), (3, 4, 9, 13)], ids=["8x12", "9x13-odd"])
def test_forward_matches_the_reference(tmp_path, name, shape):
    model = remove_time(diffusers_unet(CONFIGS[name]))
    diff, scale = max_diff(load_module(release_folder(tmp_path, CONFIGS[name], model)), model, shape)
    assert scale > 0.1  # a live output, not a collapsed one
    assert diff <= 1e-5


def test_weights_saved_before_the_surgery_load_too(tmp_path):
    # A state dict taken from the untouched diffusers model also holds every resnet's time_emb_proj.
    model = diffusers_unet(CONFIGS["sd1"])
    assert any(".time_emb_proj." in k for k in model.state_dict())
    folder = release_folder(tmp_path, CONFIGS["sd1"], model)
    assert max_diff(load_module(folder), remove_time(model), (3, 4, 8, 12))[0] <= 1e-5


def test_safetensors_release_folder_matches(tmp_path):
    model = remove_time(diffusers_unet(CONFIGS["sd2"]))
    folder = release_folder(tmp_path, CONFIGS["sd2"], model, weights="safetensors")
    assert max_diff(load_module(folder), model, (3, 4, 8, 12))[0] <= 1e-5


def test_time_removal_makes_the_timestep_irrelevant():
    # Guards the premise: after the surgery diffusers' output does not depend on the timestep it is given.
    model = remove_time(diffusers_unet(CONFIGS["sd1"]))
    x1, context = inputs((2, 4, 8, 8))
    with torch.no_grad():
        a = model(x1, torch.tensor([1, 1]), context).sample
        b = model(x1, torch.tensor([999, 500]), context).sample
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(("half", "tolerance"), [(False, 1e-5), (True, 1e-2)], ids=["fp32", "half"])
def test_convert_keeps_parity(tmp_path, half, tolerance):
    model = remove_time(diffusers_unet(CONFIGS["sd2"]))
    folder = release_folder(tmp_path, CONFIGS["sd2"], model)
    dst = tmp_path / "sing.safetensors"
    assert main(["convert", str(folder), str(dst), *(["--half"] if half else [])]) == 0
    diff, scale = max_diff(load_module(dst), model, (3, 4, 8, 12))
    assert diff <= tolerance * max(scale, 1.0)


def test_to_dict_builds_the_same_diffusers_network():
    config = UNetConfig.from_dict(CONFIGS["sd2"])
    again = diffusers.UNet2DConditionModel.from_config(config.to_dict())
    original = diffusers_unet(CONFIGS["sd2"])
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in original.state_dict().items()}
