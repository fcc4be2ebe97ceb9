import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sing_core.train import TrainConfig, load_train_state, save_train_state, train_x0_predictor

DIM = 6


class Predictor(nn.Module):
    """φ(x1, cond): a small MLP with dropout, so the global RNG matters for resuming."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * DIM, 32), nn.SiLU(), nn.Dropout(0.1), nn.Linear(32, DIM))

    def forward(self, x1, cond):
        return self.net(torch.cat([x1, cond], dim=1))


TARGET = torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(7))


def sample_batch(step, generator):
    cond = torch.randn(32, DIM, generator=generator)
    return cond @ TARGET, cond  # x0 is a function of the condition alone: E[x0 | c] = c @ TARGET


def make_model(seed):
    torch.manual_seed(seed)
    return Predictor()


CONFIG = TrainConfig(steps=30, lr=1e-2, warmup_steps=3, min_lr_ratio=0.1, seed=3, progress_every=10)


def test_training_lowers_the_loss_and_reports_progress():
    reports = []
    state = train_x0_predictor(make_model(0), sample_batch, TrainConfig(steps=150, lr=1e-2), on_progress=reports.append)
    assert state.step == 150
    assert len(state.losses) == 150
    assert sum(state.losses[-10:]) / 10 < 0.2 * sum(state.losses[:10]) / 10
    assert [r.step for r in reports] == list(range(10, 151, 10))
    assert reports[-1].eta_s == 0
    assert all(r.eta_s >= 0 and r.elapsed_s >= 0 for r in reports)


def test_resuming_from_a_checkpoint_file_matches_an_uninterrupted_run(tmp_path):
    full = make_model(0)
    uninterrupted = train_x0_predictor(full, sample_batch, CONFIG)

    class StopTrainingError(Exception):
        pass

    def save_then_stop(state):
        save_train_state(tmp_path / "run.safetensors", state)
        raise StopTrainingError

    with pytest.raises(StopTrainingError):
        train_x0_predictor(
            make_model(0),
            sample_batch,
            TrainConfig(**{**CONFIG.__dict__, "checkpoint_every": 12}),
            on_checkpoint=save_then_stop,
        )
    saved = load_train_state(tmp_path / "run.safetensors")
    assert saved.step == 12
    resumed_model = make_model(1)  # different initial weights: all of them must come from the checkpoint
    resumed = train_x0_predictor(resumed_model, sample_batch, CONFIG, resume=saved)

    assert resumed.step == uninterrupted.step == 30
    assert resumed.losses == uninterrupted.losses
    for name, value in full.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[name], value), name


def test_checkpoint_round_trip_keeps_every_field(tmp_path):
    states = []
    config = TrainConfig(steps=4, checkpoint_every=2)
    train_x0_predictor(make_model(0), sample_batch, config, on_checkpoint=states.append)
    assert [s.step for s in states] == [2, 4]
    path = save_train_state(tmp_path / "a" / "state.safetensors", states[-1])
    loaded = load_train_state(path)
    assert loaded.step == 4
    assert loaded.losses == states[-1].losses
    assert torch.equal(loaded.generator, states[-1].generator)
    assert torch.equal(loaded.torch_rng, states[-1].torch_rng)
    for key, value in states[-1].model.items():
        assert torch.equal(loaded.model[key], value)
    original, restored = states[-1].optimizer, loaded.optimizer
    assert restored["param_groups"][0]["lr"] == original["param_groups"][0]["lr"]
    for param_id, param_state in original["state"].items():
        for key, value in param_state.items():
            assert torch.equal(restored["state"][param_id][key], value)
    assert not list(tmp_path.glob("a/*.partial"))


def test_final_state_is_checkpointed_when_steps_are_not_a_multiple(tmp_path):
    states = []
    config = TrainConfig(steps=5, checkpoint_every=2)
    train_x0_predictor(make_model(0), sample_batch, config, on_checkpoint=states.append)
    assert [s.step for s in states] == [2, 4, 5]


def test_loading_something_else_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_train_state(tmp_path / "missing.safetensors")
    weights = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(weights))
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_train_state(weights)


def test_lr_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert config.lr_at(0) == pytest.approx(0.1)
    assert config.lr_at(9) == pytest.approx(1.0)
    assert config.lr_at(10) == pytest.approx(1.0)
    assert config.lr_at(100) == pytest.approx(0.1)
    assert TrainConfig(steps=10).lr_at(7) == pytest.approx(1e-3)
    # The decay is a cosine, not a line: a quarter of the way in it keeps 85 % of the way from the floor to the peak
    # (a line 75 %), three quarters in 15 % (a line 25 %); it is flat at both ends and falls fastest in the middle.
    config = TrainConfig(steps=110, lr=2.0, warmup_steps=10, min_lr_ratio=0.1)  # 100 steps of decay
    floor, peak = 0.2, 2.0

    def kept(step: int) -> float:  # the fraction of the way from the floor to the peak at this step
        return (config.lr_at(step) - floor) / (peak - floor)

    assert kept(35) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)  # 0.854
    assert kept(60) == pytest.approx(0.5)
    assert kept(85) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)  # 0.146
    drops = [config.lr_at(step) - config.lr_at(step + 1) for step in range(10, 110)]
    assert all(drop > 0 for drop in drops)
    assert drops[49] > 10 * drops[0]  # steepest in the middle, gentle at the start …
    assert drops[49] > 10 * drops[-1]  # … and at the end


class CondOnly(nn.Module):
    """Reads only the condition, so the noise drawn between micro-batches cannot change the gradients."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 16), nn.SiLU(), nn.Linear(16, DIM))

    def forward(self, x1, cond):
        return self.net(cond)


def indexed_batch(index, size):
    cond = torch.randn(size, DIM, generator=torch.Generator().manual_seed(1000 + index))
    return cond @ TARGET, cond


def test_accumulated_micro_batches_equal_one_large_batch():
    def large(step, generator):
        halves = [indexed_batch(2 * step + i, 8) for i in range(2)]
        return torch.cat([h[0] for h in halves]), torch.cat([h[1] for h in halves])

    config = TrainConfig(steps=12, lr=1e-2, grad_clip=0.5)
    torch.manual_seed(0)
    one, accumulated = CondOnly(), CondOnly()
    accumulated.load_state_dict(one.state_dict())
    whole = train_x0_predictor(one, large, config)
    accumulating = TrainConfig(**{**config.__dict__, "accumulation_steps": 2})
    split = train_x0_predictor(accumulated, lambda index, g: indexed_batch(index, 8), accumulating)
    # The recorded loss is the mean over the micro-batches, i.e. the large batch's loss.
    assert split.losses == pytest.approx(whole.losses, rel=1e-5)
    for name, value in one.state_dict().items():
        torch.testing.assert_close(accumulated.state_dict()[name], value, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_float32_weights(precision):
    model = make_model(0)
    state = train_x0_predictor(model, sample_batch, TrainConfig(steps=150, lr=1e-2, autocast=precision))
    assert sum(state.losses[-10:]) < 0.3 * sum(state.losses[:10])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert (state.grad_scaler is not None) == (precision == "fp16")


def test_fp16_run_resumes_with_its_loss_scale(tmp_path):
    config = TrainConfig(steps=20, lr=1e-2, seed=5, autocast="fp16")
    full = make_model(0)
    uninterrupted = train_x0_predictor(full, sample_batch, config)
    states = []
    train_x0_predictor(
        make_model(0), sample_batch, TrainConfig(**{**config.__dict__, "steps": 9}), on_checkpoint=states.append
    )
    saved = load_train_state(save_train_state(tmp_path / "half.safetensors", states[-1]))
    assert saved.grad_scaler == states[-1].grad_scaler
    assert saved.grad_scaler["scale"] > 0
    resumed_model = make_model(1)
    resumed = train_x0_predictor(resumed_model, sample_batch, config, resume=saved)
    assert resumed.losses == uninterrupted.losses
    assert resumed.grad_scaler == uninterrupted.grad_scaler
    for name, value in full.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[name], value), name


def test_bad_precision_and_accumulation_are_refused():
    with pytest.raises(ValueError, match="autocast='fp8'"):
        TrainConfig(steps=1, autocast="fp8")
    with pytest.raises(ValueError, match="accumulation_steps=0"):
        TrainConfig(steps=1, accumulation_steps=0)


def test_target_v_trains_the_output_toward_minus_x0():
    """One More Step's objective: at SNR 0 v = −x0, so the network learns −E[x0 | c]."""
    x0_model, v_model = make_model(0), make_model(0)
    config = TrainConfig(steps=150, lr=1e-2)
    train_x0_predictor(x0_model, sample_batch, config)
    state = train_x0_predictor(v_model, sample_batch, TrainConfig(steps=150, lr=1e-2, target="v"))
    assert sum(state.losses[-10:]) < 0.3 * sum(state.losses[:10])
    cond = torch.randn(64, DIM, generator=torch.Generator().manual_seed(11))
    x1 = torch.randn(64, DIM, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        v_hat, x0_hat = v_model(x1, cond), x0_model(x1, cond)
    truth = cond @ TARGET
    assert torch.mean((-v_hat - truth) ** 2) < 0.2 * torch.mean(truth**2)
    assert torch.mean((x0_hat - truth) ** 2) < 0.2 * torch.mean(truth**2)
    with pytest.raises(ValueError, match="target='eps'"):
        TrainConfig(steps=1, target="eps")


def test_ema_follows_the_weights_by_its_decay_and_resumes(tmp_path):
    config = TrainConfig(steps=12, lr=1e-2, seed=2, ema_decay=0.5, checkpoint_every=5)
    weights_after_each_step = []
    model = make_model(0)

    def record(batch_step, generator):  # called before each step's update: the weights after the previous step
        weights_after_each_step.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return sample_batch(batch_step, generator)

    saved_at = []  # saved when made: a state's optimizer tensors are the live ones

    def save(state):
        saved_at.append(save_train_state(tmp_path / f"ema-{state.step}.safetensors", state))

    final = train_x0_predictor(model, record, config, on_checkpoint=save)
    weights_after_each_step = [*weights_after_each_step[1:], model.state_dict()]
    # torch's EMA: the first update copies the weights, each later one is ema ← 0.5·ema + 0.5·weights.
    expected = dict(weights_after_each_step[0])
    for weights in weights_after_each_step[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * weights[k] for k in expected}
    for name, value in expected.items():
        torch.testing.assert_close(final.ema[name], value)
    assert not torch.equal(final.ema["net.0.weight"], final.model["net.0.weight"])
    # The EMA travels in the checkpoint, and a resumed run ends with the same EMA as the uninterrupted one.
    saved = load_train_state(saved_at[1])
    assert saved.step == 10
    assert not torch.equal(saved.ema["net.0.weight"], final.ema["net.0.weight"])
    resumed = train_x0_predictor(make_model(1), sample_batch, config, resume=saved)
    assert resumed.losses == final.losses
    assert all(torch.equal(resumed.ema[k], final.ema[k]) for k in final.ema)
    with pytest.raises(ValueError, match=r"ema_decay=1\.5"):
        TrainConfig(steps=1, ema_decay=1.5)
