"""SingModule.predict_x0: normalized guidance, batching of cond and uncond, dtype/device handling, input errors."""

import pytest
import torch
from unet_helpers import TINY, tiny_module, torch_threads

from sing_core import normalized_guidance


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def module():
    return tiny_module(TINY)


def inputs(batch=2, tokens=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(batch, 4, 8, 12, generator=g)
    cond = torch.randn(batch, tokens, 24, generator=g)
    uncond = torch.randn(batch, tokens, 24, generator=g)
    return x1, cond, uncond


class ForwardCounter:
    """Counts forwards of the UNet and records each call's batch size."""

    def __init__(self, module):
        self.batches = []
        self.handle = module.unet.register_forward_hook(lambda _m, args, _out: self.batches.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_guidance_equals_the_formula_on_two_separate_forwards(module):
    x1, cond, uncond = inputs()
    with torch.no_grad():
        x0_cond, x0_uncond = module(x1, cond), module(x1, uncond)
    for w in (1.5, 7.5):
        expected = (x0_uncond + w * (x0_cond - x0_uncond)) / w
        torch.testing.assert_close(module.predict_x0(x1, cond, uncond, w), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("w", [1.0, 0.5])
def test_no_guidance_gives_the_cond_prediction_without_running_uncond(module, w):
    x1, cond, uncond = inputs()
    with torch.no_grad():
        expected = module(x1, cond)
    with ForwardCounter(module) as counter:
        got = module.predict_x0(x1, cond, uncond, w)
    assert counter.batches == [2]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_cond_and_uncond_share_one_forward_when_token_counts_match(module):
    x1, cond, uncond = inputs()
    with ForwardCounter(module) as counter:
        module.predict_x0(x1, cond, uncond, 7.5)
    assert counter.batches == [4]


def test_different_token_counts_run_two_forwards_with_the_same_result(module):
    x1, cond, _ = inputs(tokens=154)
    uncond = torch.randn(2, 77, 24)
    with torch.no_grad():
        expected = normalized_guidance(module(x1, cond), module(x1, uncond), 5.0)
    with ForwardCounter(module) as counter:
        got = module.predict_x0(x1, cond, uncond, 5.0)
    assert counter.batches == [2, 2]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_one_embedding_serves_the_whole_batch(module):
    x1, cond, _ = inputs(batch=3)
    torch.testing.assert_close(module.predict_x0(x1, cond[:1]), module.predict_x0(x1, cond[:1].expand(3, -1, -1)))


def test_result_has_x1_dtype_and_is_an_ordinary_tensor():
    half_module = tiny_module(TINY).to(torch.bfloat16)
    x1, cond, uncond = inputs()
    out = half_module.predict_x0(x1.double(), cond, uncond, 3.0)
    assert out.dtype == torch.float64
    assert out.device == x1.device
    assert not out.is_inference()
    out += 1  # the host may update it in place outside inference mode


def test_wrong_latent_channels_say_what_the_module_expects(module):
    _, cond, _ = inputs()
    with pytest.raises(ValueError, match=r"x1 must be a latent \[B, 4, H, W\], got shape \[2, 16, 8, 8\]"):
        module.predict_x0(torch.randn(2, 16, 8, 8), cond)


def test_wrong_text_width_says_what_the_module_expects(module):
    x1, _, _ = inputs()
    with pytest.raises(ValueError, match=r"cond must be text embeddings \[B, T, 24\], got shape \[2, 77, 1024\]"):
        module.predict_x0(x1, torch.randn(2, 77, 1024))
    with pytest.raises(ValueError, match=r"uncond must be text embeddings \[B, T, 24\], got shape \[2, 77, 768\]"):
        module.predict_x0(x1, torch.randn(2, 77, 24), torch.randn(2, 77, 768), 7.5)


def test_batch_mismatch_is_refused(module):
    x1, cond, _ = inputs(batch=3)
    with pytest.raises(ValueError, match=r"cond has batch 2 but x1 has batch 3"):
        module.predict_x0(x1, cond[:2])


def test_properties(module):
    assert (module.latent_channels, module.cross_attention_dim) == (4, 24)
    assert module.dtype == torch.float32
    assert module.device == torch.device("cpu")
