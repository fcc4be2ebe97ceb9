"""Which hook calls leave the sampling alone, and when the negative prompt is needed (sing_webui.rules), read from a
stand-in p with only the attributes the rules read (tests/unit/webui_stand_ins.py). That the webuis call the hook
as described here (A1111 twice with hires fix, Forge three times; uc None at CFG scale 1 in Forge) is proven by the
live tier (tests/live/test_singdiffusion_passes.py)."""

import pytest
from webui_stand_ins import StandInProcessing

from sing_core.kinds import ModuleKind
from sing_webui import rules

PLAIN = [[(0, 1.0)], [(1, 1.0)]]  # two images, one sub-prompt each of weight 1
AND_WEIGHTED = [[(0, 1.0), (1, 0.5)]]  # "a AND b:0.5"


def test_a_txt2img_first_pass_starts():
    assert rules.skip_reason(StandInProcessing(), False, set()) is None


def test_a_txt2img_p_with_a_hires_denoising_strength_is_not_taken_for_img2img():
    # txt2img's p carries the hires fix's denoising strength (0.7 by default): only img2img reads it
    assert rules.skip_reason(StandInProcessing(denoising_strength=0.7), False, set()) is None


@pytest.mark.parametrize("calls", [2, 3], ids=["A1111: first pass + hires pass", "Forge: first pass + hires pass x2"])
def test_hires_fix_starts_the_first_pass_only(calls):
    p, started, reasons = StandInProcessing(), set(), []
    for call in range(calls):
        p.is_hr_pass = call > 0
        reason = rules.skip_reason(p, False, started)
        reasons.append(reason)
        if reason is None:
            started.add(p.iteration)  # what hook.write_start records once the start is written
    assert reasons[0] is None
    assert all("hires fix pass starts from the first pass's image" in reason for reason in reasons[1:])


def test_a_second_call_for_the_same_batch_is_ignored_but_the_next_batch_starts():
    assert "already started" in rules.skip_reason(StandInProcessing(iteration=0), False, {0})
    assert rules.skip_reason(StandInProcessing(iteration=1), False, {0}) is None  # batch count 2


def test_adetailer_inner_passes_are_left_alone():
    assert "ADetailer" in rules.skip_reason(StandInProcessing(_ad_inner=True), False, set())
    assert "ADetailer" in rules.skip_reason(StandInProcessing(_ad_inner=True), True, set())


@pytest.mark.parametrize(("attributes", "says"), [
    ({"denoising_strength": 0.75, "mask": object(), "inpainting_fill": rules.FILL_LATENT_NOISE},
     "denoising strength 0.75 starts from the image"),
    ({"denoising_strength": 1.0}, "no mask, or masked content"),  # plain img2img: no mask attribute at all
    ({"denoising_strength": 1.0, "mask": None, "inpainting_fill": rules.FILL_LATENT_NOISE}, "no mask"),
    ({"denoising_strength": 1.0, "mask": object(), "inpainting_fill": 0}, "masked content 'fill'/'original'"),
    ({"denoising_strength": 1.0, "mask": object(), "inpainting_fill": 1}, "masked content 'fill'/'original'"),
])
def test_img2img_from_the_image_is_left_alone_saying_when_it_applies(attributes, says):
    reason = rules.skip_reason(StandInProcessing(**attributes), True, set())
    assert says in reason
    assert "it applies at denoising 1.0 with masked content 'latent noise' or 'latent nothing'" in reason


@pytest.mark.parametrize("fill", [rules.FILL_LATENT_NOISE, rules.FILL_LATENT_NOTHING])
def test_img2img_inpainting_from_latent_noise_or_nothing_at_full_denoising_starts(fill):
    p = StandInProcessing(denoising_strength=1.0, mask=object(), inpainting_fill=fill)
    assert rules.skip_reason(p, True, set()) is None


def test_img2img_pass_rules_come_first():
    p = StandInProcessing(is_hr_pass=True, denoising_strength=1.0, mask=object(), inpainting_fill=2)
    assert "hires fix pass" in rules.skip_reason(p, True, set())


@pytest.mark.parametrize(("row_weights", "guidance_scale", "needed"), [
    (PLAIN, 1.0, False),  # CFG scale 1 followed: the prompt alone
    (PLAIN, 0.5, False),
    (PLAIN, 1.01, True),
    (PLAIN, 7.0, True),
    (AND_WEIGHTED, 1.0, True),  # composable prompts weigh against the negative prompt even at w = 1
    ([[(0, 0.5)]], 1.0, True),  # one sub-prompt of weight 0.5
])
def test_the_negative_prompt_is_needed_under_guidance_or_for_weighted_sub_prompts(row_weights, guidance_scale, needed):
    assert rules.needs_uncond(row_weights, guidance_scale) is needed


@pytest.mark.parametrize(("row_weights", "guidance_scale", "host_has_uncond", "source"), [
    (PLAIN, 1.0, False, None),  # Forge at CFG scale 1: uc is None, and nothing needs it
    (PLAIN, 1.0, True, None),  # A1111 computes uc anyway; unused
    (PLAIN, 5.0, True, "host"),
    (PLAIN, 5.0, False, "encode"),  # Forge at CFG scale 1 with a module guidance of 5: make it
    (AND_WEIGHTED, 1.0, False, "encode"),
    (AND_WEIGHTED, 1.0, True, "host"),
])
def test_where_the_host_text_sources_negative_rows_come_from(row_weights, guidance_scale, host_has_uncond, source):
    assert rules.uncond_source(row_weights, guidance_scale, host_has_uncond) == source


OMS = ModuleKind("oms", "sdxl", "openclip_h")


@pytest.mark.parametrize(("guidance_scale", "host_has_uncond", "source"), [
    (1.0, True, None),  # OMS at its default w = 1: the prompt alone
    (1.5, True, "encode"),  # "" encoded, never the webui's negative prompt
    (0.5, False, "encode"),  # plain CFG: w < 1 moves toward ""
])
def test_one_more_step_guides_against_the_empty_prompt(guidance_scale, host_has_uncond, source):
    assert rules.uncond_source(PLAIN, guidance_scale, host_has_uncond, OMS) == source
