"""The TrainerCallbacks sft.py and grpo.py add: the JSONL log, the divergence guards, the compute budget, validation
accuracy during training.

training.add_run_callbacks adds ComputeBudgetCallback, DivergenceCallback (SFT) and ValidationCallback (--val_steps);
the scripts give JsonlLogCallback to their trainer. It imports transformers: like training.py, import it after
modeling.import_unsloth().
"""

import json
import math
import os
import statistics
import time

from transformers import TrainerCallback

from utils import UserError

LOG_NAME = "train_log.jsonl"

# ----------------------------------------------------------------------------
# The log, and stopping a run that diverged


class TrainingDiverged(UserError):
    pass


class JsonlLogCallback(TrainerCallback):
    """Append every logged dict (loss, eval loss, lr, rewards...) with its step to train_log.jsonl.

    Stops training with a clear message the first time a loss or the gradient norm is NaN or infinite.
    """

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOG_NAME)
        self.start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        # By default the Trainer logs the mean of earlier losses in place of a NaN/inf one, which
        # would hide divergence from the check below.
        args.logging_nan_inf_filter = False
        self.start = time.perf_counter()
        import torch

        if torch.cuda.is_available():  # the peak of training, not of loading (4-bit quantization has its own)
            torch.cuda.reset_peak_memory_stats()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        # wall time since this process began training (step times come from differences) and, on a GPU,
        # the peak memory since then: what speed and memory comparisons read from the log
        record = {"step": state.global_step, "epoch": state.epoch, **logs,
                  "elapsed_s": round(time.perf_counter() - self.start, 3)}
        import torch

        if torch.cuda.is_available():
            record["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        # A non-finite gradient norm has reached the weights, except under fp16's loss scaling, where an
        # overflowing step is expected now and then and is skipped
        keys = ("loss", "eval_loss") + (() if args.fp16 else ("grad_norm",))
        for key in keys:
            value = logs.get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise TrainingDiverged(
                    f"{key} is {value} at step {state.global_step}: training diverged; lower the "
                    "learning rate or check the data (the last checkpoint is kept for --resume)")


# Divergence guard thresholds (SFT's token cross-entropy only: GRPO's loss sits near 0 and may be negative, and its
# gradient is exactly 0 whenever every group's rewards are equal, which NoSignalWarning reports instead)
DIVERGENCE_WARMUP_STEPS = 10  # logged losses before the loss checks start: the first steps move fast
LOSS_RISE_FACTOR = 3.0  # a loss above 3x the running median of the last losses...
LOSS_RISE_MIN = 1.0  # ...and 1 nat/token above it (a loss of 0.05 late in a run may well touch 0.2)
LOSS_MEDIAN_WINDOW = 20  # logged losses in that running median
ZERO_GRAD_STEPS = 3  # logged steps in a row with grad_norm exactly 0: nothing reaches the weights any more


class DivergenceCallback(TrainerCallback):
    """Stop an SFT run whose loss reaches the uniform level ln(vocab size) after having been below it, rises far
    above its running median, or whose gradient norm is exactly 0 for ZERO_GRAD_STEPS logged steps (observed at
    --learning_rate 1e6: loss 1.36 -> 10.80 = ln 49152 with grad_norm 0.0, weights up to 2e13, saved as if good).
    Raises TrainingDiverged, so no final adapter is saved."""

    def __init__(self, vocab_size):
        self.uniform = math.log(vocab_size)
        self.losses, self.zero_grads = [], 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        loss, grad_norm = logs.get("loss"), logs.get("grad_norm")
        problem = None
        if isinstance(grad_norm, (int, float)):
            self.zero_grads = self.zero_grads + 1 if grad_norm == 0 else 0
            if self.zero_grads >= ZERO_GRAD_STEPS:
                problem = f"grad_norm 0.0 for {self.zero_grads} logged steps in a row"
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            if len(self.losses) >= DIVERGENCE_WARMUP_STEPS:
                median = statistics.median(self.losses[-LOSS_MEDIAN_WINDOW:])
                if loss >= self.uniform and min(self.losses) < self.uniform - 1:
                    problem = f"loss {loss:.4g} reached ln(vocab size) = {self.uniform:.4g}, a uniform output"
                elif loss > LOSS_RISE_FACTOR * median and loss - median > LOSS_RISE_MIN:
                    problem = f"loss {loss:.4g} rose above {LOSS_RISE_FACTOR:g}x its running median {median:.4g}"
            self.losses.append(loss)
        if problem:
            lr = logs.get("learning_rate", args.learning_rate)
            raise TrainingDiverged(
                f"training diverged at step {state.global_step}: {problem} (learning rate {lr:.3g}, peak "
                f"--learning_rate {args.learning_rate:g}); no final model saved: lower --learning_rate (e.g. 10x) "
                "and start again in a new --output_dir")


# ----------------------------------------------------------------------------
# Equal compute: a budget in FLOPs, counted from the tokens the trainer processed


class ComputeBudgetCallback(TrainerCallback):
    """Count training compute as FLOPs = flops_per_token x tokens processed (TRL's cumulative `num_tokens`:
    prompt + completion tokens, padding excluded) + `spent` (e.g. the sampling that made the data); stop
    when it reaches `budget`. SFT: 6N per token (forward + backward); GRPO: 6N + 2N (each token is also
    generated) + 2N with a reference model. Records compute_flops, num_tokens and train_seconds at the end
    (the study compares arms at equal compute and reports both)."""

    def __init__(self, trainer, flops_per_token, budget=None, spent=0.0):
        self.trainer, self.flops_per_token, self.budget, self.spent = trainer, flops_per_token, budget, spent
        self.num_tokens, self.start = 0.0, time.perf_counter()

    def flops(self):
        return self.spent + self.flops_per_token * self.num_tokens

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and isinstance(logs.get("num_tokens"), (int, float)):
            self.num_tokens = float(logs["num_tokens"])
        if self.budget and self.flops() >= self.budget and not control.should_training_stop:
            control.should_training_stop = True
            if state.is_world_process_zero:
                print(f"compute budget reached at step {state.global_step}: {self.flops():.3g} >= {self.budget:.3g} FLOPs")

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.log({"compute_flops": self.flops(), "compute_tokens": self.num_tokens,
                          "train_seconds": round(time.perf_counter() - self.start, 2)})


# ----------------------------------------------------------------------------
# Validation accuracy during training (learning curves)


class ValidationCallback(TrainerCallback):
    """Greedy accuracy on val records (strict and lenient parser) before training and every `every` steps.

    TRL has no compute_metrics for generation; the values join the log (train_log.jsonl and every report_to
    backend) as val_accuracy, val_accuracy_lenient, val_truncated, and val_seconds: the time so far of the
    validations inside train_seconds (generation can cost more than the training steps between two of them). The
    end point after a budget stop runs after ComputeBudgetCallback has logged train_seconds, so it is not counted.
    """

    def __init__(self, trainer, records, every, max_new_tokens, batch_size=None):
        self.trainer, self.records, self.every = trainer, records, every
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.last_step = None  # the step of the last validation
        self.seconds = 0.0

    def accuracy(self, in_train_seconds=True):
        from generation import generate_all
        from utils import is_correct

        start = time.perf_counter()
        outputs = generate_all(self.trainer.model, self.trainer.processing_class, [r["prompt"] for r in self.records],
                               max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, progress=False)
        self.seconds += (time.perf_counter() - start) if in_train_seconds else 0.0
        texts = [out[0]["text"] for out in outputs]
        n = len(texts)
        return {
            "val_accuracy": sum(is_correct(t, r["answer"], strict=True) for t, r in zip(texts, self.records)) / n,
            "val_accuracy_lenient": sum(is_correct(t, r["answer"], strict=False)
                                        for t, r in zip(texts, self.records)) / n,
            "val_truncated": sum(out[0]["truncated"] for out in outputs) / n,
            "val_seconds": round(self.seconds, 2),
        }

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:  # the starting point (skipped on --resume: it is in the log already)
            self.trainer.log(self.accuracy())
            self.last_step = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or control.should_training_stop:
            for key, value in self.accuracy().items():  # TRL's trainers average these into the step's log line
                self.trainer._metrics["train"][key].append(value)
            control.should_log = True
            self.last_step = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if self.last_step != state.global_step:  # stopped by a budget between validations: the end point
            self.trainer.log(self.accuracy(in_train_seconds=False))
