"""sft.py on the tiny random model (conftest.tiny_model_dir) and tiny data: masking, training, outputs, resume, errors."""

import json
import math
import os
import shutil

import pytest
import torch
from conftest import run_script
from safetensors.torch import load_file

import sft
import training
import utils
from utils import UserError

STEPS = 6


def tiny_args(model, data, output_dir, *extra):
    """Small enough for CPU tests: a few steps of batch 4, rank-8 LoRA, no progress bars."""
    return ["--model", model, "--data", data, "--output_dir", str(output_dir), "--per_device_train_batch_size", "4",
            "--lora_r", "8", "--lora_alpha", "16", "--disable_tqdm", "true", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, tiny_data):
    """One real run: STEPS steps, a checkpoint every step, val loss every 3 steps."""
    out = tmp_path_factory.mktemp("sft") / "run"
    sft.main(tiny_args(tiny_model_dir, tiny_data, out, "--max_steps", str(STEPS), "--learning_rate", "2e-2",
                       "--warmup_steps", "0", "--save_steps", "1", "--eval_steps", "3"))
    return str(out)


def collated_batch(tiny_model_dir, tiny_data, tmp_path, *extra):
    """The first training batch exactly as the trainer's own collator builds it (no training)."""
    argv = tiny_args(tiny_model_dir, tiny_data, tmp_path, "--eval_strategy", "no", *extra)
    script_args, model_args, training_args = sft.parse_args(argv)
    records, train_ds, _ = sft.load_datasets(script_args.data, with_val=False)
    model, tokenizer, peft_config = sft.build_model(model_args, training_args)
    trainer = sft.build_trainer(model, tokenizer, peft_config, training_args, train_ds)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    return records[:4], tokenizer, batch


def prompt_length(tokenizer, prompt):
    return len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"])


def test_loss_is_on_the_response_only(tiny_model_dir, tiny_data, tmp_path):
    records, tokenizer, batch = collated_batch(tiny_model_dir, tiny_data, tmp_path)
    for record, ids, labels, mask in zip(records, batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n_prompt, n_real = prompt_length(tokenizer, record["prompt"]), int(mask.sum())
        assert n_prompt > 50 and (labels[:n_prompt] == -100).all()  # system + user + "assistant\n" header
        assert (labels[n_prompt:n_real] == ids[n_prompt:n_real]).all()  # every response token is a target
        assert (labels[n_real:] == -100).all()  # padding
        # The targets are the response and the end-of-turn token, so the model also learns to stop
        assert tokenizer.decode(labels[n_prompt:n_real]) == record["response"] + "<|im_end|>\n"


def test_loss_on_prompt_trains_on_every_token(tiny_model_dir, tiny_data, tmp_path):
    _, _, batch = collated_batch(tiny_model_dir, tiny_data, tmp_path, "--loss-on-prompt")
    real = batch["attention_mask"].bool()
    assert (batch["labels"][real] == batch["input_ids"][real]).all()
    assert (batch["labels"][~real] == -100).all()


def test_training_lowers_loss_and_logs_every_step(trained):
    log = training.read_log(trained)
    train_rows = [r for r in log if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, STEPS + 1))
    assert all(r["learning_rate"] > 0 for r in train_rows)
    losses = [r["loss"] for r in train_rows]
    assert min(losses[-2:]) < losses[0] - 0.05, losses
    assert [r["step"] for r in log if "eval_loss" in r] == [3, 6]
    elapsed = [r["elapsed_s"] for r in log]  # step times for speed comparisons come from these
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0 and elapsed[-1] > 0
    assert all(("peak_gpu_memory_gib" in r) == torch.cuda.is_available() for r in log)  # GPU only


def test_output_dir_holds_adapter_tokenizer_config_and_manifest(trained, tiny_data):
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "versions.json", "train_log.jsonl"):
        assert os.path.exists(os.path.join(trained, name)), name
    with open(os.path.join(trained, "run_config.json")) as f:
        config = json.load(f)
    assert config["script"] == {"data": tiny_data, "loss_on_prompt": False, "resume": False}
    assert config["model"]["lora_r"] == 8 and config["training"]["completion_only_loss"] is True
    assert config["training"]["learning_rate"] == 2e-2 and config["training"]["max_steps"] == STEPS
    manifest = utils.read_manifest(trained)
    train = utils.load_split(tiny_data, "train")
    assert manifest["ids"] == [r["id"] for r in train] and manifest["splits"] == ["train"]
    assert manifest["hashes"] == [r["hash"] for r in train]
    assert manifest["data_sha256"] == utils.file_sha256(tiny_data)


def test_adapter_is_trained_and_loads_in_the_eval_script(trained, tiny_model_dir, tiny_data, tmp_path):
    import linear_equation_eval

    weights = load_file(os.path.join(trained, "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert len(lora_b) == 2 * 7 and all(w.abs().max() > 0 for w in lora_b)  # 2 layers x 7 projections, all moved
    results = linear_equation_eval.main(["--model", tiny_model_dir, "--adapter", trained, "--data", tiny_data,
                                         "--limit", "2", "--max-new-tokens", "4", "--out", str(tmp_path)])
    assert results["summary"]["adapter"] == trained and results["summary"]["num_items"] == 2
    assert all(o["num_tokens"] > 0 for r in results["records"] for o in r["outputs"])


def test_resume_continues_from_last_checkpoint(trained, tiny_model_dir, tiny_data, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    # As if killed after logging step STEPS but before saving it: step STEPS must run again, logged once
    shutil.rmtree(out / f"checkpoint-{STEPS}")
    assert os.path.isdir(out / f"checkpoint-{STEPS - 1}")
    more = STEPS + 2
    sft.main(tiny_args(tiny_model_dir, tiny_data, out, "--resume", "--max_steps", str(more), "--learning_rate",
                       "2e-2", "--warmup_steps", "0", "--save_steps", "1", "--eval_steps", "3"))
    with open(out / f"checkpoint-{more}" / "trainer_state.json") as f:
        assert json.load(f)["global_step"] == more
    log = training.read_log(out)
    assert [r["step"] for r in log if "loss" in r] == list(range(1, more + 1))
    assert [r["step"] for r in log if "eval_loss" in r] == [3, 6, more]  # the Trainer also evaluates at the end
    assert [r["step"] for r in log if "train_runtime" in r] == [more]  # the first run's summary was cut with step 6


def test_fresh_run_refuses_a_used_dir_and_resume_needs_a_checkpoint(trained, tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(UserError, match="already holds a training run"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, trained, "--max_steps", "1"))
    with pytest.raises(UserError, match="no checkpoint"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "empty", "--resume", "--max_steps", "1"))


def test_nan_loss_stops_training_with_a_clear_error(tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(training.TrainingDiverged, match="loss is nan at step 2: training diverged"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path, "--max_steps", "4", "--learning_rate", "1e30",
                           "--warmup_steps", "0", "--eval_strategy", "no"))
    assert not os.path.exists(tmp_path / "adapter_model.safetensors")


def test_nan_gradient_norm_stops_training(tmp_path):
    """A NaN gradient norm with a finite loss (v5 bench: all advantages 0, loss 0) has already reached the weights."""
    from types import SimpleNamespace

    callback = training.JsonlLogCallback(str(tmp_path))
    state = SimpleNamespace(is_world_process_zero=True, global_step=3, epoch=0.5)
    bf16, fp16 = SimpleNamespace(fp16=False), SimpleNamespace(fp16=True)
    callback.on_log(bf16, state, None, logs={"loss": 0.0, "grad_norm": 0.2})
    # fp16's loss scaler skips a step whose gradients overflow: that one is not divergence
    callback.on_log(fp16, state, None, logs={"loss": 0.0, "grad_norm": float("inf")})
    with pytest.raises(training.TrainingDiverged, match="grad_norm is nan at step 3: training diverged"):
        callback.on_log(bf16, state, None, logs={"loss": 0.0, "grad_norm": float("nan")})


@pytest.mark.parametrize("extra, message", [
    (["--data", "missing.json"], "data file not found: missing.json"),
    (["--model", "no/such-model-dir"], "cannot load"),
    (["--config", "LIST"], "must contain a YAML mapping"),
    (["--config", "BROKEN"], "line 1"),
    (["--learning_rte", "1e-4"], "not used by the HfArgumentParser.*--learning_rte"),
    (["--learning_rate", "fast"], "invalid float value: 'fast'"),
    (["--completion_only_loss", "true", "--loss-on-prompt"], "contradicts"),
])
def test_bad_input_is_a_user_error(extra, message, tiny_model_dir, tiny_data, tmp_path):
    (tmp_path / "LIST").write_text("- a list\n- not a mapping\n")
    (tmp_path / "BROKEN").write_text("learning_rate: [1e-4\n")
    argv = tiny_args(tiny_model_dir, tiny_data, tmp_path / "out", "--max_steps", "1")
    argv += [str(tmp_path / a) if a in ("LIST", "BROKEN") else a for a in extra]
    with pytest.raises(UserError, match=message):
        sft.main(argv)
    assert not os.path.exists(tmp_path / "out" / "train_log.jsonl")  # nothing trained, nothing to --resume


def test_cli_reports_one_line_and_exit_status_2(tmp_path):
    result = run_script("sft.py", "--data", str(tmp_path / "nope.json"), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: data file not found: {tmp_path / 'nope.json'}"
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------
# More than one process: the accelerate configs, and a 2-process DDP run on CPU (gloo)

ACCELERATE_CONFIGS = {"ddp.yaml": ("MULTI_GPU", None), "zero2.yaml": ("DEEPSPEED", 2), "zero3.yaml": ("DEEPSPEED", 3)}


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_configs_parse(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(os.path.join(os.path.dirname(os.path.abspath(sft.__file__)), "configs",
                                                "accelerate", name))
    distributed_type, zero_stage = ACCELERATE_CONFIGS[name]
    assert config.distributed_type.value == distributed_type and config.num_processes == 2
    assert (config.deepspeed_config or {}).get("zero_stage") == zero_stage


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(tiny_model_dir, tiny_data, tmp_path,
                                                                      monkeypatch):
    """torchrun + gloo DDP on CPU (`accelerate launch` starts only one CPU process without mpirun; on GPUs it
    runs the same code through configs/accelerate/ddp.yaml): 2 x 2 rows per step against 1 x 4."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    common = ["--max_steps", "2", "--learning_rate", "2e-2", "--warmup_steps", "0", "--eval_strategy", "no",
              "--save_strategy", "no"]
    sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "one", *common))
    result = run_script("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "sft.py",
                        *tiny_args(tiny_model_dir, tiny_data, tmp_path / "two", *common,
                                   "--per_device_train_batch_size", "2", "--use_cpu", "true"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 2 steps") == 1  # only the main process prints and writes
    one, two = ([r["loss"] for r in training.read_log(tmp_path / run) if "loss" in r] for run in ("one", "two"))
    assert len(two) == 2 and all(math.isfinite(x) for x in two)
    assert two == pytest.approx(one, rel=1e-4)  # the same 4 rows per step: the same loss, before and after a step
    assert os.path.exists(tmp_path / "two" / "adapter_model.safetensors")
