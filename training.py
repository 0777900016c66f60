"""What sft.py and grpo.py share: run records, the JSONL training log, the NaN guard, Unsloth detection."""

import importlib.util
import json
import math
import os

from transformers import TrainerCallback

from utils import UserError, atomic_write_json, library_versions

LOG_NAME = "train_log.jsonl"


def unsloth_usable():
    """Unsloth needs a CUDA GPU; import it only then (it patches transformers/TRL on import)."""
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None


def save_run_info(output_dir, config):
    """The exact resolved config and library versions, next to the adapter."""
    atomic_write_json(os.path.join(output_dir, "run_config.json"), config)
    atomic_write_json(os.path.join(output_dir, "versions.json"), library_versions())


def last_checkpoint(output_dir):
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


class TrainingDiverged(UserError):
    pass


class JsonlLogCallback(TrainerCallback):
    """Append every logged dict (loss, eval loss, lr, rewards...) with its step to train_log.jsonl.

    Stops training with a clear message the first time a loss is NaN or infinite.
    """

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOG_NAME)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        for key in ("loss", "eval_loss"):
            value = logs.get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise TrainingDiverged(
                    f"{key} is {value} at step {state.global_step}: training diverged; lower the "
                    "learning rate or check the data (the last checkpoint is kept for --resume)")


def read_log(output_dir):
    path = os.path.join(output_dir, LOG_NAME)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
