import pytest
import torch
from comfy_stand_ins import StandInEpsSampling

from sing_comfy import applies

SIGMA_MAX = 14.6146


@pytest.fixture(scope="module")
def schedule():
    return StandInEpsSampling().sigmas.tolist()


@pytest.mark.parametrize(("steps", "first_timestep", "count"), [(4, 751, 5), (20, 951, 21), (50, 981, 51),
                                                                (7, 995, 9)])
def test_ddim_uniform_is_comfyuis_schedule(schedule, steps, first_timestep, count):
    sigmas = applies.ddim_uniform_schedule(schedule, steps)
    assert sigmas[0] == schedule[first_timestep]  # strides of 1000 // steps from timestep 1
    assert sigmas[-1] == 0.0
    assert len(sigmas) == count


def test_top_of_the_schedule(schedule):
    assert applies.starts_at_top(torch.tensor([SIGMA_MAX, 1.0, 0.0]), schedule, SIGMA_MAX)
    full = applies.ddim_uniform_schedule(schedule, 20)
    assert applies.starts_at_top(torch.tensor(full), schedule, SIGMA_MAX)
    uni_pc = applies.ddim_uniform_schedule(schedule, 21)  # asked for one step more, the penultimate dropped
    assert applies.starts_at_top(torch.tensor(uni_pc[:-2] + uni_pc[-1:]), schedule, SIGMA_MAX)
    # KSampler's denoise 0.6 with 20 steps: the last 21 sigmas of a 33-step schedule
    tail = applies.ddim_uniform_schedule(schedule, int(20 / 0.6))[-21:]
    assert not applies.starts_at_top(torch.tensor(tail), schedule, SIGMA_MAX)
    assert not applies.starts_at_top(torch.tensor(full[2:]), schedule, SIGMA_MAX)  # start_at_step 2


def test_why_not_names_each_case():
    noise, empty = torch.randn(1, 4, 8, 8), torch.zeros(1, 4, 8, 8)
    assert applies.why_not(noise, empty, None, True, SIGMA_MAX) is None
    assert "noise mask" in applies.why_not(noise, empty, torch.ones(1, 1, 8, 8), True, SIGMA_MAX)
    assert "no noise" in applies.why_not(torch.zeros_like(noise), empty, None, True, SIGMA_MAX)
    assert "not empty" in applies.why_not(noise, empty + 0.1, None, True, SIGMA_MAX)
    assert "below the top" in applies.why_not(noise, empty, None, False, 6.0)
    assert "one batch of images" in applies.why_not(torch.randn(1, 16, 2, 8, 8), empty, None, True, SIGMA_MAX)
