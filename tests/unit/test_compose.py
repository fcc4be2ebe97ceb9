import pytest
import torch

from sing_core.compose import batched_forward, composable_x0
from sing_core.start import normalized_guidance


class CountingForward:
    """A deterministic stand-in network: x0 = tanh(x1·mean(emb) + sum over tokens), counting its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, x1, emb):
        self.calls.append((x1.shape[0], emb.shape[1]))
        return torch.tanh(x1 * emb.mean(dim=(1, 2)).view(-1, 1, 1, 1) + emb.sum(dim=(1, 2)).view(-1, 1, 1, 1))


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 6, 10, generator=g), torch.randn(3, 7, 8, generator=g), torch.randn(2, 7, 8, generator=g)


def test_plain_prompts_without_guidance_are_the_cond_prediction_in_one_forward(batch):
    x1, conds, uncond = batch
    forward = CountingForward()
    out = composable_x0(forward, x1, conds, [[(2, 1.0)], [(0, 1.0)]], uncond, guidance_scale=1.0)
    torch.testing.assert_close(out, CountingForward()(x1, conds[[2, 0]]))
    assert forward.calls == [(2, 7)]  # the negative prompt is not run


def test_plain_prompts_with_guidance_equal_the_reference_formula(batch):
    x1, conds, uncond = batch
    forward = CountingForward()
    out = composable_x0(forward, x1, conds, [[(0, 1.0)], [(1, 1.0)]], uncond, guidance_scale=7.5)
    reference = CountingForward()
    expected = normalized_guidance(reference(x1, conds[:2]), reference(x1, uncond), 7.5)
    torch.testing.assert_close(out, expected)
    assert forward.calls == [(4, 7)]  # cond and uncond in ONE batched forward


def test_and_prompts_are_composed_with_their_weights(batch):
    x1, conds, uncond = batch
    out = composable_x0(CountingForward(), x1, conds, [[(0, 1.0), (1, 0.5)], [(2, 1.0)]], uncond, 3.0)
    f = CountingForward()
    u = f(x1, uncond)
    c0, c1, c2 = f(x1[:1], conds[:1]), f(x1[:1], conds[1:2]), f(x1[1:], conds[2:])
    expected0 = (u[:1] + 3.0 * ((c0 - u[:1]) + 0.5 * (c1 - u[:1]))) / 3.0
    expected1 = normalized_guidance(c2, u[1:], 3.0)
    torch.testing.assert_close(out, torch.cat([expected0, expected1]), rtol=1e-5, atol=1e-6)


def test_weighted_prompt_without_guidance_is_composable_at_scale_one(batch):
    x1, conds, uncond = batch
    out = composable_x0(CountingForward(), x1[:1], conds, [[(0, 0.5)]], uncond[:1], 0.0)
    f = CountingForward()
    u, c = f(x1[:1], uncond[:1]), f(x1[:1], conds[:1])
    torch.testing.assert_close(out, u + 0.5 * (c - u))


def test_mismatched_token_lengths_run_two_forwards(batch):
    x1, _, uncond = batch
    conds = torch.randn(2, 14, 8)  # a 154-token host prompt against a 77-token negative prompt, in miniature
    forward = CountingForward()
    composable_x0(forward, x1, conds, [[(0, 1.0)], [(1, 1.0)]], uncond, 5.0)
    assert forward.calls == [(2, 14), (2, 7)]


def test_batched_forward_splits_back_per_part():
    f = CountingForward()
    a, b = (torch.randn(2, 1, 2, 2), torch.randn(2, 3, 4)), (torch.randn(1, 1, 2, 2), torch.randn(1, 3, 4))
    outs = batched_forward(f, [a, b])
    torch.testing.assert_close(outs[0], CountingForward()(*a))
    torch.testing.assert_close(outs[1], CountingForward()(*b))


def test_errors(batch):
    x1, conds, uncond = batch
    with pytest.raises(ValueError, match="2 latents"):
        composable_x0(CountingForward(), x1, conds, [[(0, 1.0)]], uncond, 1.0)
    with pytest.raises(ValueError, match="negative prompt"):
        composable_x0(CountingForward(), x1, conds, [[(0, 1.0)], [(1, 1.0)]], None, 7.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_forward_is_guided_in_float32(batch, dtype):
    """The rows come back in the module's half precision; the weights (0.3 is not a bf16 number) and the
    difference c − u are taken in float32, and x̂0 comes back in x1's dtype."""
    x1, conds, uncond = batch

    def half_forward(x, emb):
        return CountingForward()(x, emb).to(dtype)

    rows = [[(0, 0.3), (1, 0.7)], [(2, 1.0)]]
    out = composable_x0(half_forward, x1, conds, rows, uncond, guidance_scale=7.5)
    expected = composable_x0(lambda x, emb: half_forward(x, emb).float(), x1, conds, rows, uncond, 7.5)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    plain = composable_x0(half_forward, x1, conds, [[(2, 1.0)], [(0, 1.0)]], uncond, guidance_scale=1.0)
    assert plain.dtype == torch.float32
