"""One More Step modules in the ComfyUI adapter: x̂0 = −v, plain CFG against the node's "" (never the sampler's
negative or cfg), on STAND-INS shaped like ComfyUI's guider and sampler; and the zero-terminal-SNR skip."""

import pytest
import torch
from comfy_stand_ins import StandInExecutor, StandInGuider, StandInPatcher, cond
from unet_helpers import TINY

from sing_comfy.conds import CondsError
from sing_comfy.start import SingStart
from sing_core import SingModule, UNetConfig
from sing_core.kinds import OMS, OPENCLIP_H, SDXL, ModuleKind
from sing_core.start import sigma_start

WIDTH = TINY["cross_attention_dim"]
SIGMAS = torch.tensor([14.6146, 3.0, 0.0])


@pytest.fixture(scope="module")
def oms_module():
    torch.manual_seed(3)
    return SingModule(UNetConfig.from_dict(TINY), kind=ModuleKind(OMS, SDXL, OPENCLIP_H)).eval()


def node_cond(tensor):
    """CONDITIONING as CLIPTextEncode gives it: [[tensor, options]]."""
    return [[tensor, {"pooled_output": torch.zeros(1, 8)}]]


def first_point(guider, noise_in):
    ms = guider.inner_model.model_sampling
    return ms.noise_scaling(SIGMAS[:1], noise_in, torch.zeros_like(noise_in), True)


def start(module, guidance, guider, x1, **node):
    executor = StandInExecutor()
    SingStart(StandInPatcher(module), guidance, **node)(executor, guider, SIGMAS, {}, None, x1,
                                                       torch.zeros_like(x1), None, True)
    return first_point(guider, executor.calls[0][0][4])


def test_default_guidance_is_the_prompt_alone_whatever_the_samplers_negative_and_cfg(oms_module):
    g = torch.Generator().manual_seed(0)
    x1, pos, neg = torch.randn(2, 4, 16, 16, generator=g), torch.randn(1, 77, WIDTH), torch.randn(1, 77, WIDTH)
    guider = StandInGuider({"positive": [cond(pos)], "negative": [cond(neg)]}, cfg=7.0)
    x0_hat = -oms_module.unet(x1, pos.expand(2, -1, -1))  # x̂0 = −v
    expected = sigma_start(x0_hat, x1, float(SIGMAS[0]))
    torch.testing.assert_close(start(oms_module, 0.0, guider, x1), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(start(oms_module, 1.0, guider, x1), expected, atol=1e-5, rtol=1e-5)


def test_guidance_is_plain_cfg_against_the_nodes_empty_prompt(oms_module):
    g = torch.Generator().manual_seed(1)
    x1, pos = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 77, WIDTH, generator=g)
    neg, empty = torch.randn(1, 77, WIDTH, generator=g), torch.randn(1, 77, WIDTH, generator=g)
    guider = StandInGuider({"positive": [cond(pos)], "negative": [cond(neg)]}, cfg=7.0)
    v_c, v_u = oms_module.unet(x1, pos), oms_module.unet(x1, empty)
    expected = sigma_start(-(v_u + 2.0 * (v_c - v_u)), x1, float(SIGMAS[0]))
    got = start(oms_module, 2.0, guider, x1, empty=node_cond(empty))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # the node's own positive (the module's text encoder) replaces the sampler's
    own = torch.randn(1, 77, WIDTH, generator=g)
    v_own = oms_module.unet(x1, own)
    expected_own = sigma_start(-(v_u + 2.0 * (v_own - v_u)), x1, float(SIGMAS[0]))
    got_own = start(oms_module, 2.0, guider, x1, positive=node_cond(own), empty=node_cond(empty))
    torch.testing.assert_close(got_own, expected_own, atol=1e-4, rtol=1e-4)


def test_guidance_without_the_empty_prompt_names_the_clip_input(oms_module):
    x1, pos = torch.randn(1, 4, 8, 8), torch.randn(1, 77, WIDTH)
    guider = StandInGuider({"positive": [cond(pos)], "negative": [cond(pos)]}, cfg=7.0)
    with pytest.raises(CondsError, match="clip input"):
        start(oms_module, 1.5, guider, x1)


def test_a_zero_terminal_snr_model_keeps_comfyuis_start(oms_module, caplog):
    x1 = torch.randn(1, 4, 8, 8)
    guider = StandInGuider({"positive": [cond(torch.randn(1, 77, WIDTH))]})
    guider.inner_model.model_sampling.zsnr = True
    executor = StandInExecutor()
    with caplog.at_level("INFO", logger="SingDiffusion"):
        SingStart(StandInPatcher(oms_module), 0.0)(executor, guider, SIGMAS, {}, None, x1, torch.zeros_like(x1),
                                                   None, True)
    assert executor.calls[0][0][4] is x1
    assert "zero terminal SNR" in caplog.text
