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
from callbacks import TrainingDiverged
from records import MANIFEST_NAME, file_sha256, load_split, read_manifest, write_manifest
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
    records, train_ds, _, _ = sft.load_datasets(script_args.data, with_val=False)
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
    assert {k: config["script"][k] for k in ("data", "loss_on_prompt", "resume", "init_adapter", "train_slice",
                                             "max_train_flops", "val_steps")} == \
        {"data": tiny_data, "loss_on_prompt": False, "resume": False, "init_adapter": None, "train_slice": None,
         "max_train_flops": None, "val_steps": 0}
    assert config["model"]["lora_r"] == 8 and config["training"]["completion_only_loss"] is True
    assert config["training"]["learning_rate"] == 2e-2 and config["training"]["max_steps"] == STEPS
    manifest = read_manifest(trained)
    train = load_split(tiny_data, "train")
    assert manifest["ids"] == [r["id"] for r in train] and manifest["splits"] == ["train"]
    assert manifest["hashes"] == [r["hash"] for r in train]
    assert manifest["data_sha256"] == file_sha256(tiny_data)


def test_adapter_is_trained_and_loads_in_the_eval_script(trained, tiny_model_dir, tiny_data, tmp_path):
    import linear_equation_eval

    weights = load_file(os.path.join(trained, "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert len(lora_b) == 2 * 7 and all(w.abs().max() > 0 for w in lora_b)  # 2 layers x 7 projections, all moved
    results = linear_equation_eval.main(["--model", tiny_model_dir, "--adapter", trained, "--data", tiny_data,
                                         "--limit", "2", "--max-new-tokens", "4", "--out", str(tmp_path)])
    assert results["summary"]["adapter"] == trained and results["summary"]["num_items"] == 2
    assert all(o["num_tokens"] > 0 for r in results["records"] for o in r["outputs"])


def test_resume_continues_from_last_checkpoint(trained, tiny_model_dir, tiny_data, tmp_path, capsys):
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
    tokens = [r["num_tokens"] for r in log if "num_tokens" in r]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)  # counted on from the checkpoint, not from 0
    losses = [r["loss"] for r in log if "loss" in r]
    assert f"mean train loss {sum(losses) / len(losses):.4f} (all steps" in capsys.readouterr().out


def test_resume_of_a_finished_run_changes_nothing(trained, tiny_model_dir, tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = {p: (out / p).read_bytes() for p in ("adapter_model.safetensors", MANIFEST_NAME, training.LOG_NAME)}
    sft.main(tiny_args(tiny_model_dir, tiny_data, out, "--resume", "--max_steps", str(STEPS), "--learning_rate",
                       "2e-2", "--warmup_steps", "0", "--save_steps", "1", "--eval_steps", "3"))
    assert "already finished at step 6" in capsys.readouterr().out
    assert {p: (out / p).read_bytes() for p in before} == before
    assert not (out / f"checkpoint-{STEPS + 1}").exists()


def test_fresh_run_refuses_a_used_dir_and_resume_needs_a_checkpoint(trained, tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(UserError, match="already holds a training run"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, trained, "--max_steps", "1"))
    with pytest.raises(UserError, match="no checkpoint"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "empty", "--resume", "--max_steps", "1"))


def test_nan_loss_stops_training_with_a_clear_error(tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(TrainingDiverged, match="loss is nan at step 2: training diverged"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path, "--max_steps", "4", "--learning_rate", "1e30",
                           "--warmup_steps", "0", "--eval_strategy", "no"))
    assert not os.path.exists(tmp_path / "adapter_model.safetensors")


def test_only_sft_gets_the_divergence_guard(trained, tiny_model_dir, tiny_data, tmp_path):
    log = training.read_log(trained)  # the trained fixture ran with the guard and was not stopped
    assert [r["step"] for r in log if "loss" in r] == list(range(1, STEPS + 1))
    import grpo

    assert "cross_entropy_loss" not in open(grpo.__file__).read()
    assert "cross_entropy_loss=True" in open(sft.__file__).read()


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


def test_cli_reports_one_line_and_exit_status_2(warm_python, tmp_path):
    result = warm_python.run("sft.py", "--data", str(tmp_path / "nope.json"), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: data file not found: {tmp_path / 'nope.json'}"
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------
# Full fine-tuning, --train_slice, --max_train_flops, --val_steps, --init_adapter (a few steps each)

QUICK = ["--warmup_steps", "0", "--eval_strategy", "no", "--save_strategy", "no"]


@pytest.fixture(scope="module")
def full_ft(tmp_path_factory, tiny_model_dir, tiny_data):
    """--use_peft false on train items 0:8 for 2 steps; then a second full fine-tune started from that folder."""
    root = tmp_path_factory.mktemp("full")
    first, second = root / "first", root / "second"
    sft.main(tiny_args(tiny_model_dir, tiny_data, first, "--use_peft", "false", "--train_slice", "0:8",
                       "--max_steps", "2", "--learning_rate", "1e-3", *QUICK))
    sft.main(tiny_args(str(first), tiny_data, second, "--use_peft", "false", "--train_slice", "8:12",
                       "--max_steps", "1", *QUICK))
    return str(first), str(second)


def test_full_finetune_saves_a_model_folder_with_every_weight_trained(full_ft, tiny_model_dir, tiny_data):
    first, _ = full_ft
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                 "training_manifest.json", "run_config.json", "train_log.jsonl"):
        assert os.path.exists(os.path.join(first, name)), name
    assert not os.path.exists(os.path.join(first, "adapter_config.json"))
    before, after = load_file(os.path.join(tiny_model_dir, "model.safetensors")), load_file(os.path.join(first, "model.safetensors"))
    assert set(after) == set(before)
    assert all(after[k].dtype == torch.float32 for k in after)  # fp32 weights
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("mlp" in k for k in moved) and any("self_attn" in k for k in moved), moved
    with open(os.path.join(first, "run_config.json")) as f:
        assert json.load(f)["model"]["use_peft"] is False
    train = load_split(tiny_data, "train")
    manifest = read_manifest(first)
    assert manifest["ids"] == [r["id"] for r in train[:8]] and manifest["hashes"] == [r["hash"] for r in train[:8]]
    assert "inherited" not in manifest  # the tiny base model has no manifest


def test_run_from_a_model_folder_inherits_its_manifest(full_ft, tiny_data):
    first, second = full_ft
    train = load_split(tiny_data, "train")
    manifest = read_manifest(second)
    assert manifest["ids"] == [r["id"] for r in train[8:12]]
    assert manifest["inherited"]["from"] == os.path.abspath(first)
    assert manifest["inherited"]["ids"] == [r["id"] for r in train[:8]]
    assert manifest["inherited"]["hashes"] == [r["hash"] for r in train[:8]]
    assert sorted(manifest["hashes"]) == sorted(r["hash"] for r in train[:12])


def test_eval_refuses_a_full_finetune_on_its_own_train_items(warm_python, full_ft, tiny_data, tmp_path):
    import linear_equation_eval

    _, second = full_ft
    argv = ["--model", second, "--data", tiny_data, "--split", "train", "--limit", "2", "--max-new-tokens", "2",
            "--out", str(tmp_path)]
    refused = warm_python.run("linear_equation_eval.py", *argv)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "training data of" in refused.stderr and second in refused.stderr, refused.stderr
    assert os.listdir(tmp_path) == []
    # train-0000 is in the inherited part of the manifest (the first run's items): still refused
    with pytest.raises(UserError, match="2 of 2 items"):
        linear_equation_eval.main(argv)
    results = linear_equation_eval.main(argv + ["--allow-overlap"])
    assert results["summary"]["num_items"] == 2 and results["summary"]["model"] == second
    # The val split was never trained on: no flag needed
    assert linear_equation_eval.main([*argv[:5], "val", *argv[6:]])["summary"]["num_items"] == 2


def test_full_finetune_flag_errors(warm_python, tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(UserError, match="--use_peft false.*--load_in_4bit"):
        sft.parse_args(tiny_args(tiny_model_dir, tiny_data, tmp_path, "--use_peft", "false", "--load_in_4bit", "true"))
    with pytest.raises(UserError, match="selects no train items"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "empty", "--train_slice", "100:", "--max_steps", "1"))
    for bad in ("3", "a:b", "1:2:3", "1:-4"):
        with pytest.raises(UserError, match="START:END"):
            sft.parse_args(tiny_args(tiny_model_dir, tiny_data, tmp_path, "--train_slice", bad))
    with pytest.raises(UserError, match="--init_adapter continues a LoRA"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "ia", "--use_peft", "false", "--init_adapter",
                           str(tmp_path), "--max_steps", "1"))
    result = warm_python.run("sft.py", *tiny_args(tiny_model_dir, tiny_data, tmp_path / "cli", "--train_slice", "x:"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --train_slice 'x:'"), result.stderr


def test_compute_budget_stops_training_and_val_accuracy_is_logged(tiny_model_dir, tiny_data, tmp_path):
    from transformers import AutoModelForCausalLM

    n = training.count_parameters(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    budget = 6 * n * 2500  # 4 rows of ~430 tokens per step: crossed by step 2
    out = tmp_path / "run"
    sft.main(tiny_args(tiny_model_dir, tiny_data, out, "--use_peft", "false", "--max_steps", "20",
                       "--max_train_flops", str(budget),
                       "--val_steps", "1", "--val_limit", "2", "--val_max_new_tokens", "4", *QUICK))
    log = training.read_log(out)
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == [1, 2], steps
    final = [r for r in log if "compute_flops" in r]
    assert len(final) == 1 and final[0] == log[-1], log[-2:]
    final = final[0]
    assert final["compute_flops"] >= budget and final["train_seconds"] > 0
    assert final["compute_flops"] == pytest.approx(6 * n * final["compute_tokens"])  # N: every weight is trained
    assert 2500 <= final["compute_tokens"] < 2 * 2500
    val = [r for r in log if "val_accuracy" in r]
    assert val[0]["step"] == 0 and len(val) >= 3, val
    assert all(0 <= r["val_accuracy"] <= 1 and 0 <= r["val_accuracy_lenient"] <= 1 for r in val)
    assert all(r["val_truncated"] == 1.0 for r in val)  # 4 new tokens never finish an answer
    seconds = [r["val_seconds"] for r in val]  # the validations' time so far, inside train_seconds
    assert 0 < seconds[0] and seconds == sorted(seconds) and seconds[-1] < final["train_seconds"], (seconds, final)


def test_init_adapter_continues_the_lora(trained, tiny_model_dir, tiny_data, tmp_path):
    out = tmp_path / "more"
    sft.main(tiny_args(tiny_model_dir, tiny_data, out, "--init_adapter", trained, "--max_steps", "1",
                       "--learning_rate", "0", "--lora_r", "4", *QUICK))
    start, end = (load_file(os.path.join(d, "adapter_model.safetensors")) for d in (trained, out))
    assert set(start) == set(end)
    for key in start:  # a learning rate of 0: the trained adapter comes back unchanged (a fresh LoRA has B = 0)
        torch.testing.assert_close(end[key], start[key])
    with open(out / "adapter_config.json") as f:
        assert json.load(f)["r"] == 8  # the adapter's rank, not --lora_r
    manifest = read_manifest(str(out))
    assert manifest["inherited"]["from"] == os.path.abspath(trained)
    with pytest.raises(UserError, match="adapter_config.json"):
        sft.main(tiny_args(tiny_model_dir, tiny_data, tmp_path / "bad", "--init_adapter", str(tmp_path),
                           "--max_steps", "1", *QUICK))


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


@pytest.mark.parametrize("flags, message", [
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0: must be at least 1"),
    (["--lora_r", "0"], "--lora_r and --lora_alpha must be at least 1"),
    (["--max_length", "0"], "--max_length 0: must be at least 1"),
    (["--num_train_epochs", "-1", "--max_steps", "-1"], "would train nothing"),
])
def test_sizes_that_train_nothing_are_user_errors(tiny_model_dir, tiny_data, tmp_path, flags, message):
    with pytest.raises(UserError, match=message):
        sft.parse_args(tiny_args(tiny_model_dir, tiny_data, tmp_path, *flags))


def test_resume_on_other_items_is_refused(tiny_model_dir, tiny_data, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    records = load_split(tiny_data, "train")
    write_manifest(str(out), records[:2], tiny_data)
    script_args, _, training_args = sft.parse_args(tiny_args(tiny_model_dir, tiny_data, out, "--resume"))
    with pytest.raises(UserError, match="trained on other items"):
        training.prepare_output_dir(script_args, training_args, records)
    before = read_manifest(str(out))
    assert before["ids"] == [r["id"] for r in records[:2]]  # not rewritten
    assert training.prepare_output_dir(script_args, training_args, records[:2]).endswith("checkpoint-2")


def test_a_missing_val_split_hints_at_training_without_it(warm_python, tiny_model_dir, tmp_path):
    import data

    path = str(tmp_path / "no_val.json")
    data.main(["--train", "8", "--val", "0", "--test", "2", "--test-ood", "0", "--out", path])
    out = tmp_path / "out"
    result = warm_python.run("sft.py", *tiny_args(tiny_model_dir, path, out, "--max_steps", "1"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and not out.exists()
    assert result.stderr.strip().endswith("no records in split 'val' (evaluation needs it); pass --eval_strategy no "
                                          "to train without it")
