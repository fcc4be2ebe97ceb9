import pytest
import torch
from comfy_stand_ins import StandInDualGuider, StandInGuider, cond

from sing_comfy import conds


def linear_forward(x1, emb):
    """A stand-in φ whose output tells its text apart: x1 + the text's mean."""
    return x1 + emb.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def text(value, tokens=77, width=8):
    return torch.full((1, tokens, width), float(value))


def test_batch1_conds_repeat_to_the_batch_and_larger_ones_are_cut():
    assert conds.repeat_to_batch(torch.arange(1.0).view(1, 1), 3).flatten().tolist() == [0, 0, 0]
    assert conds.repeat_to_batch(torch.arange(2.0).view(2, 1), 3).flatten().tolist() == [0, 1, 0]
    assert conds.repeat_to_batch(torch.arange(4.0).view(4, 1), 3).flatten().tolist() == [0, 1, 2]


def test_timestep_range_counts_at_the_first_sigma():
    assert conds.active(cond(text(0)), 14.6)
    assert not conds.active(cond(text(0), timestep_start=5.0), 14.6)  # starts later (lower sigma)
    assert not conds.active(cond(text(0), timestep_end=20.0), 14.6)
    assert conds.active(cond(text(0), timestep_start=14.7, timestep_end=1.0), 14.6)


def test_area_weight_is_a_feathered_box_and_a_mask_is_taken_as_is():
    like = torch.zeros(1, 4, 32, 32)
    w = conds.weight(cond(text(0), area=(16, 16, 8, 0), strength=0.5), like)
    assert w[0, 0, :8].abs().sum() == 0  # outside the box
    assert w[0, 0, 24:].abs().sum() == 0
    assert w[0, 0, 16, 8].item() == 0.5  # inside, away from inner edges
    assert w[0, 0, 8, 8].item() == pytest.approx(0.5 / 4)  # first row of the top edge: ramp 1/4 (16 // 4 rows)
    assert w[0, 0, 16, 0].item() == 0.5  # the image border is not feathered
    mask = torch.rand(1, 32, 32)
    w = conds.weight(cond(text(0), mask=mask, mask_strength=2.0), like)
    torch.testing.assert_close(w[0, 1], mask[0] * 2.0)


def test_several_conds_are_a_weighted_mean_of_the_predictions():
    x1 = torch.zeros(2, 4, 8, 8)
    both = [cond(text(1.0), strength=1.0), cond(text(4.0, tokens=154), strength=3.0)]  # 77 and 154 tokens
    out = conds.module_x0(linear_forward, x1, conds.Guidance(both, [], 1.0), 14.6)
    torch.testing.assert_close(out, torch.full_like(x1, (1.0 * 1 + 4.0 * 3) / 4))
    half = [cond(text(2.0)), cond(text(6.0), area=(8, 4, 0, 0))]  # the area cond covers the left half
    out = conds.module_x0(linear_forward, x1, conds.Guidance(half, [], 1.0), 14.6)
    assert out[0, 0, 0, 7].item() == pytest.approx(2.0)
    assert out[0, 0, 0, 0].item() == pytest.approx(4.0)  # the image border: weights 1 and 1


def test_guidance_is_normalized_and_skips_the_negative_at_scale_1():
    x1 = torch.zeros(1, 4, 8, 8)
    guidance = conds.Guidance([cond(text(3.0))], [cond(text(1.0))], 4.0)
    torch.testing.assert_close(conds.module_x0(linear_forward, x1, guidance, 14.6),
                               torch.full_like(x1, (1.0 + 4.0 * (3.0 - 1.0)) / 4.0))
    alone = conds.Guidance([cond(text(3.0))], [cond(torch.full((1, 77, 9), 1.0))], 1.0)  # negative never read
    torch.testing.assert_close(conds.module_x0(linear_forward, x1, alone, 14.6), torch.full_like(x1, 3.0))
    late = conds.Guidance([cond(text(3.0), timestep_start=1.0)], [], 1.0)
    with pytest.raises(conds.CondsError, match="no positive conditioning applies"):
        conds.module_x0(linear_forward, x1, late, 14.6)


def test_positive_and_negative_run_in_one_forward_where_their_token_counts_match():
    calls = []

    def recording_forward(x1, emb):
        calls.append((x1.shape[0], emb.shape[1]))
        return linear_forward(x1, emb)

    x1 = torch.randn(2, 4, 8, 8)
    guidance = conds.Guidance([cond(text(3.0))], [cond(text(1.0))], 4.0)
    expected = (x1 + 1.0 + 4.0 * (3.0 - 1.0)) / 4.0  # (u + w·(c − u)) / w with c = x1 + 3, u = x1 + 1
    torch.testing.assert_close(conds.module_x0(recording_forward, x1, guidance, 14.6), expected)
    assert calls == [(4, 77)]  # cond and uncond of both images in one batch, as ComfyUI runs its UNet
    calls.clear()
    long_negative = conds.Guidance([cond(text(3.0))], [cond(text(1.0, tokens=154))], 4.0)
    torch.testing.assert_close(conds.module_x0(recording_forward, x1, long_negative, 14.6), expected)
    assert calls == [(2, 77), (2, 154)]  # token counts differ: one forward each, the same x̂0


def test_guidance_from_each_kind_of_guider():
    pos, neg = [cond(text(1))], [cond(text(0))]
    cfg = conds.from_guider(StandInGuider({"positive": pos, "negative": neg}, cfg=6.5), 0.0)
    assert (cfg.scale, cfg.negative, cfg.note) == (6.5, neg, None)
    assert conds.from_guider(StandInGuider({"positive": pos, "negative": neg}), 2.5).scale == 2.5
    basic = conds.from_guider(StandInGuider({"positive": pos}, cfg=1.0), 0.0)
    assert basic.negative == []
    assert "prompt alone" in basic.note
    dual = conds.from_guider(StandInDualGuider({"positive": pos, "middle": [], "negative": neg}, cfg2=3.0), 0.0)
    assert (dual.scale, dual.negative) == (3.0, neg)
    assert "cond2 is not used" in dual.note


def test_node_text_replaces_the_guiders_and_refuses_limits():
    guider = conds.Guidance([cond(text(1))], [cond(text(0))], 7.0)
    own = conds.from_node([[text(5), {}]], None, guider)
    assert own.positive[0]["cross_attn"].mean() == 5
    assert (own.negative, own.scale) == ([], 7.0)
    assert conds.from_node(None, None, guider) is guider
    with pytest.raises(conds.CondsError, match="negative without a positive"):
        conds.from_node(None, [[text(0), {}]], guider)
    with pytest.raises(conds.CondsError, match="carries area"):
        conds.from_node([[text(5), {"area": (8, 8, 0, 0)}]], None, guider)
