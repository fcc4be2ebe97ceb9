import pytest
import torch
from safetensors.torch import save_file

from sing_core.host_family import HostFamily, HostFamilyError, family_from_shapes, read_host_family
from sing_core.kinds import ModuleKind

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
UNET_OUT = "model.diffusion_model.out.2.weight"
SD1_TEXT = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
SD2_TEXT = "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"
SDXL_TEXT = ("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
             "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight")


def unet(latent_channels=4, in_channels=None):
    return {UNET_IN: (32, in_channels or latent_channels, 3, 3), UNET_OUT: (latent_channels, 32, 3, 3)}


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        ({**unet(), SD1_TEXT: (49408, 768)}, HostFamily("SD-1.x", 4)),
        ({**unet(in_channels=9), SD1_TEXT: (49408, 768)}, HostFamily("SD-1.x", 4)),  # inpainting: 9 in, 4 out
        ({**unet(8), SD1_TEXT: (49408, 32)}, HostFamily("SD-1.x", 8)),
        ({**unet(), SD2_TEXT: (3072, 1024)}, HostFamily("SD-2.x", 4)),
        ({**unet(), **dict.fromkeys(SDXL_TEXT, (1, 1))}, HostFamily("SDXL", 4)),
        ({**unet(), SDXL_TEXT[0]: (1, 1)}, HostFamily("SDXL", 4)),  # CLIP-L first, whatever the second encoder
        ({**unet(), SDXL_TEXT[1].replace("embedders.1", "embedders.0"): (1, 1)}, HostFamily("SDXL refiner", 4)),
        ({"model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": (1, 1)}, HostFamily("SD3", None)),
        ({"double_blocks.0.img_attn.qkv.weight": (1, 1)}, HostFamily("Flux", None)),
        (unet(), HostFamily("SD-1.x", 4)),  # a UNet alone: the webui loads it as SD-1
        ({"lora_unet_down.weight": (1, 1)}, HostFamily("unknown", None)),
    ],
)
def test_family_from_shapes(shapes, expected):
    assert family_from_shapes(shapes) == expected


@pytest.mark.parametrize(
    ("family", "module_channels", "reason"),
    [
        (HostFamily("SD-1.x", 4), 4, None),
        (HostFamily("SD-2.x", 4), 4, None),
        (HostFamily("SD-1.x", 8), 4, "uses 8-channel latents and the module predicts 4-channel"),
        (HostFamily("SDXL", 4), 4, "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL"),
        (HostFamily("Flux", None), 4, "the checkpoint is Flux"),
    ],
)
def test_refusal(family, module_channels, reason):
    refusal = family.refusal(module_channels)
    if reason is None:
        assert refusal is None
    else:
        assert reason in refusal


def test_read_host_family_reads_the_header(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(shape) for key, shape in {**unet(8), SD1_TEXT: (10, 4)}.items()}, str(path))
    assert read_host_family(path) == HostFamily("SD-1.x", 8)


def test_read_host_family_refuses_ckpt_and_broken_files(tmp_path):
    with pytest.raises(HostFamilyError, match=r"model\.ckpt: .*load it in the webui first"):
        read_host_family(tmp_path / "model.ckpt")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    with pytest.raises(HostFamilyError, match=r"broken\.safetensors: cannot read the safetensors header"):
        read_host_family(broken)


OMS_XL = ModuleKind("oms", "sdxl", "openclip_h")


@pytest.mark.parametrize(
    ("family", "kind", "reason"),
    [
        (HostFamily("SDXL", 4), OMS_XL, None),
        (HostFamily("SD-1.x", 4), OMS_XL, "the module predicts SDXL latents and the checkpoint is SD-1.x"),
        (HostFamily("SDXL refiner", 4), OMS_XL, "the checkpoint is SDXL refiner"),
        (HostFamily("SD-2.x", 4), ModuleKind("oms", "sd", "openclip_h"), None),
    ],
)
def test_refusal_follows_the_module_kind(family, kind, reason):
    refusal = family.refusal(4, kind)
    assert refusal is None if reason is None else reason in refusal


def test_the_ztsnr_marker_is_read_from_the_header(tmp_path):
    path = tmp_path / "vpred.safetensors"
    keys = {**unet(), **dict.fromkeys(SDXL_TEXT, (1, 1)), "ztsnr": (0,), "v_pred": (0,)}
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(path))
    assert read_host_family(path) == HostFamily("SDXL", 4, ztsnr=True)
    assert not family_from_shapes(unet()).ztsnr
