"""callbacks.py: the log's NaN/inf stop and the SFT divergence guard, fed log rows as the Trainer would (no
training; runs that use the callbacks are tests/test_sft.py's and tests/test_grpo.py's)."""

import pytest

import callbacks


def test_nan_gradient_norm_stops_training(tmp_path):
    """A NaN gradient norm with a finite loss (v5 bench: all advantages 0, loss 0) has already reached the weights."""
    from types import SimpleNamespace

    callback = callbacks.JsonlLogCallback(str(tmp_path))
    state = SimpleNamespace(is_world_process_zero=True, global_step=3, epoch=0.5)
    bf16, fp16 = SimpleNamespace(fp16=False), SimpleNamespace(fp16=True)
    callback.on_log(bf16, state, None, logs={"loss": 0.0, "grad_norm": 0.2})
    # fp16's loss scaler skips a step whose gradients overflow: that one is not divergence
    callback.on_log(fp16, state, None, logs={"loss": 0.0, "grad_norm": float("inf")})
    with pytest.raises(callbacks.TrainingDiverged, match="grad_norm is nan at step 3: training diverged"):
        callback.on_log(bf16, state, None, logs={"loss": 0.0, "grad_norm": float("nan")})


def feed(callback, rows, lr=5e-4):
    """Log rows (loss, grad_norm) into a callback as the Trainer would, steps from 1."""
    from types import SimpleNamespace

    args = SimpleNamespace(learning_rate=lr, fp16=False)
    for step, (loss, grad_norm) in enumerate(rows, 1):
        callback.on_log(args, SimpleNamespace(global_step=step, is_world_process_zero=True), None,
                        logs={"loss": loss, "grad_norm": grad_norm, "learning_rate": lr})


def test_divergence_guard_stops_a_loss_at_the_uniform_level_or_far_above_its_median():
    vocab = 49152  # ln = 10.80
    # as observed with --learning_rate 1e6: 1.36 -> 10.80 with grad_norm 0.0 (the zero gradient fires first)
    message = r"step 4: grad_norm 0.0 for 3 .*learning rate 1e\+06.*no final model saved: lower --learning_rate"
    with pytest.raises(callbacks.TrainingDiverged, match=message):
        feed(callbacks.DivergenceCallback(vocab), [(1.36, 2.0), (10.8, 0.0), (10.8, 0.0), (10.8, 0.0)], lr=1e6)
    rows = [(1.4 - 0.05 * i, 1.0) for i in range(12)]
    with pytest.raises(callbacks.TrainingDiverged, match=r"step 13: loss 10.9 reached ln\(vocab size\) = 10.8"):
        feed(callbacks.DivergenceCallback(vocab), rows + [(10.9, 1.0)])
    with pytest.raises(callbacks.TrainingDiverged, match=r"step 13: loss 4 rose above 3x its running median"):
        feed(callbacks.DivergenceCallback(vocab), rows + [(4.0, 1.0)])
    with pytest.raises(callbacks.TrainingDiverged, match="grad_norm 0.0"):  # the zero-gradient check needs no warm-up
        feed(callbacks.DivergenceCallback(vocab), rows[:5] + [(1.3, 0.0)] * 3)


def test_divergence_guard_lets_normal_runs_be():
    normal = [(10.8 - 0.5 * i, 1.0) for i in range(12)]  # a random model starts at the uniform level
    normal += [(0.05 + 0.15 * (i % 2), 0.3) for i in range(40)]  # late, small and noisy: 0.05 <-> 0.2
    normal += [(0.3, 0.0), (0.3, 0.0), (0.3, 1e-3)]  # two zero gradients in a row, then a step
    feed(callbacks.DivergenceCallback(49152), normal)
    feed(callbacks.DivergenceCallback(49152), [(10.9, 1.0)] * 30)  # never below the uniform level: not learning,
    # but not diverging either
