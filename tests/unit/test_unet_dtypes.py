"""SingUNet in half precision: fp16 and bf16 forwards are close to fp32; upcast_attention attends in fp32."""

import pytest
import torch
import torch.nn.functional as F
from unet_helpers import TINY, TINY_SD2, tiny_module, torch_threads

import sing_core.unet


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


@pytest.mark.parametrize("config", [TINY, TINY_SD2], ids=["sd1", "sd2"])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float16, 0.01), (torch.bfloat16, 0.05)])
def test_half_precision_forward_is_close_to_fp32(config, dtype, tolerance):
    module = tiny_module(config)
    g = torch.Generator().manual_seed(1)
    x1, context = torch.randn(2, 4, 8, 12, generator=g), torch.randn(2, 7, 24, generator=g)
    with torch.no_grad():
        reference = module(x1, context)
        low = module.to(dtype)(x1.to(dtype), context.to(dtype))
    assert low.dtype == dtype
    assert torch.isfinite(low).all()
    error = (low.float() - reference).abs().max().item()
    assert error <= tolerance * reference.abs().max().item()


@pytest.mark.parametrize(("config", "attention_dtype"), [(TINY, torch.float16), (TINY_SD2, torch.float32)])
def test_upcast_attention_computes_attention_in_fp32(monkeypatch, config, attention_dtype):
    seen, sdpa = [], F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, *args, **kwargs):
        seen.append(q.dtype)
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(sing_core.unet.F, "scaled_dot_product_attention", recording_sdpa)
    module = tiny_module(config).to(torch.float16)
    with torch.no_grad():
        out = module(torch.randn(1, 4, 8, 8, dtype=torch.float16), torch.randn(1, 7, 24, dtype=torch.float16))
    assert out.dtype == torch.float16
    assert seen
    assert set(seen) == {attention_dtype}


@pytest.mark.parametrize("config", [TINY, TINY_SD2], ids=["sd1", "sd2"])
def test_channels_last_weights_give_the_same_result_in_nchw(config):
    module = tiny_module(config)
    g = torch.Generator().manual_seed(2)
    x1, context = torch.randn(2, 4, 9, 12, generator=g), torch.randn(2, 7, 24, generator=g)
    with torch.no_grad():
        reference = module(x1, context)
        module.to(memory_format=torch.channels_last)
        assert module.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        out = module(x1, context)
    assert out.is_contiguous()
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
