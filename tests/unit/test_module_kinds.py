"""A module's method, latent family and text kind: read from its files, and what each method computes."""

import re

import pytest
import torch
from unet_helpers import TINY, TINY_OMS, tiny_module, unet_state, write_oms_release, write_release

from sing_core import CheckpointError, ModuleKind, describe, load_module, save_module
from sing_core.compose import composable_x0
from sing_core.config import UNetConfig
from sing_core.kinds import OMS, OPENCLIP_H, SD, SDXL, SDXL_TEXT, ModuleKindError
from sing_core.module import SingModule

OMS_XL = ModuleKind(OMS, SDXL, OPENCLIP_H)


def oms_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return unet_state(SingModule(UNetConfig.from_dict(TINY_OMS)))


def test_our_file_carries_its_kind_and_old_files_are_singdiffusion(tmp_path):
    module = tiny_module()
    assert describe(save_module(module, None, tmp_path / "old.safetensors")).module_kind == ModuleKind()
    path = save_module(module, None, tmp_path / "xl.safetensors", kind=OMS_XL)
    assert describe(path).module_kind == OMS_XL
    assert load_module(path).kind == OMS_XL


def test_singdiffusion_release_folder_is_singdiffusion(tmp_path):
    folder = write_release(tmp_path / "sing", TINY, unet_state(tiny_module()))
    assert load_module(folder).kind == ModuleKind()


@pytest.mark.parametrize(("family", "expected"), [("sd", SD), ("sdxl", SDXL)])
def test_oms_release_folder_loads_as_downloaded_with_family_from_model_index(tmp_path, family, expected):
    root = write_oms_release(tmp_path / f"oms_b_{family}", oms_state(), family)
    for path in (root, root / "oms_module"):
        module = load_module(path)
        assert module.kind == ModuleKind(OMS, expected, OPENCLIP_H)
        assert module.name == root.name
        assert describe(path).kind.startswith("One More Step release folder")
    stored = oms_state()
    assert all(torch.equal(module.unet.state_dict()[k], v.half().float()) for k, v in stored.items())


def test_oms_folder_with_unknown_pipeline_is_refused_with_the_way_out(tmp_path):
    root = write_oms_release(tmp_path / "odd", oms_state(), sd_pipeline=["flux", "FluxPipeline"])
    with pytest.raises(CheckpointError, match=r"sd_pipeline.*FluxPipeline.*--family"):
        load_module(root)


def test_oms_text_kind_comes_from_the_text_encoder_config(tmp_path):
    mix = {"_class_name": "SDXLTextEncoder", "hidden_size": 40}
    root = write_oms_release(tmp_path / "mix", oms_state(), "sdxl", text_config=mix)
    assert load_module(root).kind.text == SDXL_TEXT
    unknown = write_oms_release(tmp_path / "unknown", oms_state(), "sdxl", text_config={"hidden_size": 40})
    with pytest.raises(CheckpointError, match="cannot tell which text encoder"):
        load_module(unknown)


def test_convert_keeps_the_kind(tmp_path):
    from sing_core.convert import convert_module

    root = write_oms_release(tmp_path / "oms", oms_state(), "sdxl")
    out = convert_module(root, tmp_path / "oms.safetensors")
    assert describe(out).module_kind == OMS_XL
    assert load_module(out).kind == OMS_XL


def test_bad_kind_in_metadata_is_refused(tmp_path):
    with pytest.raises(ModuleKindError):
        ModuleKind("ddpm")
    path = save_module(tiny_module(), None, tmp_path / "m.safetensors")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, {**f.metadata(), "singdiffusion_family": "sd3"}  # noqa: SIM118
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="sd3"):
        load_module(path)


def test_oms_x0_is_minus_v_with_plain_cfg_against_uncond():
    torch.manual_seed(1)
    module = SingModule(UNetConfig.from_dict(TINY_OMS), kind=OMS_XL).eval()
    x1, c, u = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 40), torch.randn(1, 5, 40)
    v_c, v_u = module.unet(x1, c), module.unet(x1, u.expand(2, -1, -1))
    assert torch.allclose(module.predict_x0(x1, c, u, 1.0), -v_c, atol=1e-5)  # w = 1: the prompt alone
    for w in (0.5, 1.5, 2.0):
        assert torch.allclose(module.predict_x0(x1, c, u, w), -(v_u + w * (v_c - v_u)), atol=1e-5)


def test_singdiffusion_x0_is_normalized_guidance():
    module = tiny_module()
    x1, c, u = torch.randn(1, 4, 8, 8), torch.randn(1, 5, 24), torch.randn(1, 5, 24)
    x0_c, x0_u = module.unet(x1, c), module.unet(x1, u)
    assert torch.allclose(module.predict_x0(x1, c, u, 0.5), x0_c, atol=1e-6)  # w ≤ 1: the prompt alone
    assert torch.allclose(module.predict_x0(x1, c, u, 4.0), (x0_u + 4.0 * (x0_c - x0_u)) / 4.0, atol=1e-5)


def test_composable_x0_guides_as_the_kind_says():
    x1, conds, uncond = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 40), torch.randn(2, 5, 40)

    def forward(x, emb):
        return x * emb.mean(dim=(1, 2)).view(-1, 1, 1, 1)

    rows = [[(0, 1.0)], [(1, 1.0)]]
    c, u = forward(x1, conds), forward(x1, uncond)
    plain_cfg = composable_x0(forward, x1, conds, rows, uncond, 1.5, kind=OMS_XL)
    assert torch.allclose(plain_cfg, u + 1.5 * (c - u), atol=1e-6)
    normalized = composable_x0(forward, x1, conds, rows, uncond, 1.5)
    assert torch.allclose(normalized, (u + 1.5 * (c - u)) / 1.5, atol=1e-6)
    assert torch.allclose(composable_x0(forward, x1, conds, rows, uncond, 0.5, kind=OMS_XL), u + 0.5 * (c - u))
    assert torch.equal(composable_x0(forward, x1, conds, rows, None, 0.5), c)  # SingDiffusion: w ≤ 1 is c alone


def test_effective_guidance_per_method():
    assert ModuleKind().effective_guidance(0, 7.5) == 7.5
    assert ModuleKind().effective_guidance(None, 7.5) == 7.5
    assert OMS_XL.effective_guidance(0, 7.5) == 1.0
    assert OMS_XL.effective_guidance(2.0, 7.5) == 2.0


def test_refusals_name_both_sides():
    assert OMS_XL.refusal("SDXL") is None
    assert ModuleKind().refusal("SD-2.x") is None
    assert "SDXL latents and the checkpoint is SD-1.x" in OMS_XL.refusal("SD-1.x")
    assert "SD-1.x/2.x latents and the checkpoint is SDXL" in ModuleKind().refusal("SDXL")
    for other in ("SDXL refiner", "SD3", "Flux"):
        assert f"the checkpoint is {other}" in OMS_XL.refusal(other)


def test_convert_states_the_kind_of_a_folder_that_cannot_say_it(tmp_path, capsys):
    from sing_core.cli import main

    root = write_oms_release(tmp_path / "odd", oms_state(), sd_pipeline=["custom", "MyPipeline"])
    out = tmp_path / "odd.safetensors"
    assert main(["convert", str(root), str(out)]) == 1
    assert "--family" in capsys.readouterr().err
    assert main(["convert", str(root), str(out), "--method", "oms"]) == 2
    assert main(["convert", str(root), str(out), "--method", "oms", "--family", "sd", "--text", "openclip_h"]) == 0
    assert "One More Step module for SD-1.x/2.x latents" in capsys.readouterr().out
    assert describe(out).module_kind == ModuleKind(OMS, SD, OPENCLIP_H)
    assert main(["inspect", str(out)]) == 0
    assert re.search(r"latent family: +sd\n", capsys.readouterr().out)
