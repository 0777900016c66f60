"""grpo.py: reward wiring, study defaults, flag checks, and short real runs on the tiny random model."""

import contextlib
import io
import json
import os

import pytest
import torch
from safetensors.torch import load_file

import grpo
import training
from conftest import run_script
from records import load_split
from utils import UserError

CORRECT = "<think>add the equations</think><answer>x = 2, y = -3</answer>"
WRONG = "<think>guess</think><answer>x = 1, y = 1</answer>"
UNFORMATTED = "x = 2, y = -3"
ANSWER = {"x": 2, "y": -3}


def as_chat(text):
    return [{"role": "assistant", "content": text}]  # how TRL passes completions of conversational prompts


# ----------------------------------------------------------------------------
# Rewards and arguments (no model)


@pytest.mark.parametrize("wrong_credit", [0.1, 0.0])
def test_rewards_hand_checked(wrong_credit):
    correctness, fmt = grpo.reward_functions(wrong_credit)
    assert [correctness.__name__, fmt.__name__] == ["correctness_reward", "format_reward"]  # TRL's log keys
    completions = [as_chat(t) for t in (CORRECT, WRONG, UNFORMATTED, "<answer>x = 2, y = -3</answer>")]
    assert correctness(completions, [ANSWER] * 4) == [1.0, wrong_credit, 0.0, 0.0]
    assert fmt(completions) == [1.0, 1.0, 0.0, 0.5]


def test_defaults_follow_the_study():
    script_args, model_args, args = grpo.parse_args([])
    assert (args.learning_rate, args.num_generations, args.max_completion_length) == (3e-5, 6, 384)
    assert (args.temperature, args.beta, args.loss_type, args.num_train_epochs) == (0.7, 0.04, "grpo", 1.0)
    # TRL counts completions: 6 per micro-batch x 8 accumulation steps = 8 prompts x 6 generations per step
    assert args.generation_batch_size == 48 and args.steps_per_generation == 8
    assert args.generation_batch_size // args.num_generations == 8
    assert args.reward_weights == [1.0, 0.5] and script_args.wrong_credit == 0.1
    assert (model_args.lora_r, model_args.lora_alpha, len(model_args.lora_target_modules)) == (64, 64, 7)
    assert args.report_to == [] and not args.bf16  # no GPU here: fp32
    assert grpo.parse_args(["--report_to", "tensorboard", "--loss_type", "dr_grpo"])[2].report_to == ["tensorboard"]


def test_yaml_config_then_flags(tmp_path):
    config = tmp_path / "grpo.yaml"
    config.write_text("learning_rate: 1.0e-4\nnum_generations: 4\nper_device_train_batch_size: 8\nval_steps: 3\n")
    script_args, _, args = grpo.parse_args(["--config", str(config), "--num_generations", "2"])
    assert (args.learning_rate, args.num_generations, script_args.val_steps) == (1e-4, 2, 3)  # the flag wins
    config.write_text("learning_rate: [1\n")
    with pytest.raises(UserError):
        grpo.parse_args(["--config", str(config)])


@pytest.mark.parametrize("argv, message", [
    (["--num_generations", "5"], "not a multiple of --num_generations 5"),
    (["--num_generations", "1", "--per_device_train_batch_size", "1"], "at least 2"),
    (["--loss_type", "ppo"], "invalid choice"),
    (["--reward_weights", "1"], "one number per reward"),
    (["--wrong_credit", "2"], "between 0 and 1"),
    (["--temperature", "0"], "> 0"),
    (["--val_steps", "-1"], "--val_steps"),
    (["--resume_from_checkpoint", "x"], "use --resume"),
    (["--compile_layers", "true", "--fast_generation", "false"], "drop --fast_generation false"),
    (["--no-such-flag"], "no-such-flag"),
    (["--max_completion_length", "0"], "--max_completion_length 0: must be at least 1"),
])
def test_bad_flags_are_user_errors(argv, message):
    with pytest.raises(UserError, match=message):
        grpo.parse_args(argv)


def test_missing_data_and_unknown_model(tmp_path, tiny_data):
    with pytest.raises(UserError, match="data file not found"):
        grpo.main(["--data", str(tmp_path / "nope.json"), "--output_dir", str(tmp_path / "a")])
    with pytest.raises(UserError, match="model folder not found: .*no-model"):
        grpo.main(["--model", str(tmp_path / "no-model"), "--data", tiny_data, "--output_dir", str(tmp_path / "b")])


# One fresh interpreter (importing TRL takes ~9 s) imports grpo and prints which lazy modules came along, then
# runs grpo.py as `python grpo.py ARGV` would (as __main__), once per command line; a line on stderr before each
# run marks where its messages start
FRESH_GRPO = r"""
import json, runpy, sys
import grpo
print(sorted(m for m in ("fast_grpo", "generation") if m in sys.modules), flush=True)
for argv in json.loads(sys.argv[1]):
    print("--- run", flush=True), print("--- run", file=sys.stderr, flush=True)
    sys.argv = argv
    try:
        runpy.run_path("grpo.py", run_name="__main__")
        print("exit 0", flush=True)
    except SystemExit as e:
        print("exit", e.code, flush=True)
"""


@pytest.fixture(scope="module")
def fresh_grpo(tmp_path_factory):
    """(what importing grpo imported, and per command line (exit status, its stderr)); the stderr of the import
    comes first, as the stderr of the first run."""
    tmp_path = tmp_path_factory.mktemp("fresh_grpo")
    runs = {"num_generations": ["grpo.py", "--num_generations", "5"],
            "reward_weights": ["grpo.py", "--model", str(tmp_path / "no-model"), "--data",
                               str(tmp_path / "no-data.json"), "--rewards", "correctness", "--reward_weights", "1",
                               "1"]}
    result = run_script("-c", FRESH_GRPO, json.dumps(list(runs.values())))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout.split("--- run\n")
    err = result.stderr.split("--- run\n")
    assert len(out) == len(err) == len(runs) + 1, result.stdout + result.stderr[-3000:]
    codes = [int(part.strip().splitlines()[-1].split()[1]) for part in out[1:]]
    stderr = [err[0] + err[1], *err[2:]]  # the import prints nothing: the first run's whole stderr is one line
    return out[0].strip().splitlines()[-1], dict(zip(runs, zip(codes, stderr)))


def test_cli_error_is_one_line(fresh_grpo):
    returncode, stderr = fresh_grpo[1]["num_generations"]
    assert returncode == 2
    assert stderr.strip().count("\n") == 0 and stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr


# ----------------------------------------------------------------------------
# TRL's log-prob kernel stand-in (training.py) that lets GRPO run on CPU


def test_cpu_logprobs_match_log_softmax(tiny_model_dir):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    training.patch_trl_logprobs_for_cpu(torch.device("cpu"))  # as grpo/sft.build_trainer do off CUDA
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        ref = torch.log_softmax(model(ids).logits[:, :-1].float() / 0.7, dim=-1)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    out = model(ids, labels=ids, fused_lm_head=True)
    torch.testing.assert_close(out.log_probs, ref.gather(-1, ids[:, 1:, None]).squeeze(-1))
    torch.testing.assert_close(out.entropy, -(ref.exp() * ref).sum(-1))
    out.loss.backward()
    assert model.lm_head.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------
# Real runs on the tiny random model: 2 prompts x 4 completions x 8 tokens per step


def tiny_argv(model_dir, data, output_dir, *extra):
    return ["--model", model_dir, "--data", data, "--output_dir", str(output_dir),
            "--num_generations", "4", "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "1",
            "--max_completion_length", "8", "--learning_rate", "1e-2", "--val_steps", "1", "--val_limit", "2",
            "--save_steps", "1", "--lora_r", "8", "--lora_alpha", "16", *extra]


def letter_count_reward(completions, **kwargs):
    """Varies between completions of a random model (the real rewards are all 0 there), so GRPO has a signal."""
    return [sum(c.isalpha() for c in completion[-1]["content"]) / 10 for completion in completions]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, tiny_data):
    """One 2-step run with a varying reward in the format slot, --log_completions on; then --resume to 3."""
    output_dir = tmp_path_factory.mktemp("grpo") / "run"
    argv = tiny_argv(tiny_model_dir, tiny_data, output_dir)
    letter_count_reward.__name__ = "format_reward"  # keep the log key the real run has
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setattr(grpo, "format_reward", letter_count_reward)
        grpo.main(argv + ["--max_steps", "2", "--log_completions"])
    first_log = training.read_log(output_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grpo, "format_reward", letter_count_reward)
        grpo.main(argv + ["--max_steps", "3", "--resume"])
    return {"dir": str(output_dir), "stdout": stdout.getvalue(), "first_log": first_log, "argv": argv}


def test_run_logs_every_field(run):
    steps = [r for r in run["first_log"] if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        for key in ("rewards/correctness_reward/mean", "rewards/format_reward/mean", "frac_reward_zero_std",
                    "completions/mean_length", "kl", "loss", "val_accuracy", "val_accuracy_lenient"):
            assert isinstance(record[key], float), key
        assert record["completions/mean_length"] == 8.0 and record["frac_reward_zero_std"] < 1.0
        assert 0 < record["generate_seconds"] <= record["step_time"]  # TRL's step_time includes the sampling
    start = run["first_log"][0]  # validation before the first step: the starting point
    assert start["step"] == 0 and start["val_accuracy"] == 0.0 and "loss" not in start
    assert "Completion" in run["stdout"]  # --log_completions printed TRL's sample table


def test_run_moves_lora_and_saves_everything(run, tiny_data):
    out = run["dir"]
    weights = load_file(os.path.join(out, "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().max() > 0 for w in lora_b)  # B starts at zero: it moved
    for name in ("adapter_config.json", "tokenizer_config.json", "run_config.json", "versions.json"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "run_config.json")) as f:
        config = json.load(f)
    assert config["training"]["loss_type"] == "grpo" and config["training"]["reward_weights"] == [1.0, 0.5]


def test_manifest_holds_only_train_ids(run, tiny_data):
    with open(os.path.join(run["dir"], "training_manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["splits"] == ["train"]
    assert manifest["ids"] == [r["id"] for r in load_split(tiny_data, "train")]
    assert all(i.startswith("train-") for i in manifest["ids"])


def test_resume_continues_without_duplicate_lines(run):
    log = training.read_log(run["dir"])
    assert [r["step"] for r in log if "reward" in r] == [1, 2, 3]
    assert [r["step"] for r in log if "val_accuracy" in r and "reward" not in r] == [0]  # no second start line
    with open(os.path.join(run["dir"], "checkpoint-3", "trainer_state.json")) as f:
        assert json.load(f)["global_step"] == 3
    with pytest.raises(UserError, match="--resume"):  # a fresh run never mixes into an existing one
        grpo.main(run["argv"] + ["--max_steps", "1"])


def test_init_adapter_is_trainable(tmp_path, tiny_model_dir, tiny_data):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    sft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                         LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, weight in sft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(weight)
    sft.save_pretrained(tmp_path / "sft")
    script_args, model_args, args = grpo.parse_args(tiny_argv(tiny_model_dir, tiny_data, tmp_path / "out",
                                                              "--init-adapter", str(tmp_path / "sft")))
    model, _, peft_config = grpo.build_model(script_args, model_args, args)
    assert peft_config is None  # the adapter's own LoRA is trained, not a fresh one
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    saved = load_file(tmp_path / "sft" / "adapter_model.safetensors")
    name = next(n for n in trainable if "lora_B" in n)
    key = name.replace(".default", "")
    torch.testing.assert_close(trainable[name].detach(), saved[key])
    with pytest.raises(UserError, match="adapter_config.json"):
        grpo.build_model(script_args.__class__(**{**vars(script_args), "init_adapter": str(tmp_path)}),
                         model_args, args)


# ----------------------------------------------------------------------------
# --rewards, --reward_weights, --partial_credit, the no-signal warning, the compute count, lazy imports


def test_rewards_subset_and_partial_credit():
    trace_ok = "<think>\n(1) x + y = -1\n(2) x - y = 5\n(3) = (1) + (2): 2x = 4\nx = 4 / 2 = 2\n</think>\n" \
               "<answer>x = 2, y = -3</answer>"
    fns = grpo.reward_functions(0.1, ["trace", "correctness"], partial=True)
    assert [f.__name__ for f in fns] == ["trace_reward", "correctness_reward"]
    half = "<think>guess</think><answer>x = 2, y = 1</answer>"
    completions = [as_chat(t) for t in (CORRECT, half, WRONG)]
    assert fns[1](completions, [ANSWER] * 3) == [1.0, 0.5, 0.0]  # the share of variables right
    assert grpo.reward_functions(0.1, ["correctness"])[0](completions, [ANSWER] * 3) == [1.0, 0.1, 0.1]
    assert len(fns[0]([as_chat(trace_ok), as_chat(WRONG)])) == 2


@pytest.mark.parametrize("argv, message", [
    (["--rewards", "correctness", "trace", "format"], "one number per reward \\(correctness, trace, format\\)"),
    (["--rewards", "correctness", "--reward_weights", "1", "0.5"], "one number per reward"),
    (["--rewards", "kl"], "choose from correctness, format, trace"),
])
def test_reward_flag_mismatch_is_a_user_error(argv, message):
    with pytest.raises(UserError, match=message):
        grpo.parse_args(argv)
    script_args, _, args = grpo.parse_args(["--rewards", "correctness", "trace", "format", "--reward_weights", "1",
                                            "0.5", "0.2", "--partial_credit", "true"])
    assert script_args.rewards == ["correctness", "trace", "format"] and args.reward_weights == [1.0, 0.5, 0.2]
    assert script_args.partial_credit is True


def test_no_signal_warning_warns_once(capsys):
    from types import SimpleNamespace

    callback = grpo.NoSignalWarning(3)
    state = SimpleNamespace(is_world_process_zero=True)
    for share in (1.0, 1.0, 0.5, 1.0, 1.0):  # a step with signal resets the count
        callback.on_log(None, state, None, logs={"frac_reward_zero_std": share})
    assert capsys.readouterr().out == ""
    callback.on_log(None, state, None, logs={"loss": 0.1})  # lines without the key do not count
    callback.on_log(None, state, None, logs={"frac_reward_zero_std": 1.0})
    assert capsys.readouterr().out.count("warning: no learning signal for 3 steps") == 1
    for _ in range(5):
        callback.on_log(None, state, None, logs={"frac_reward_zero_std": 1.0})
    assert capsys.readouterr().out == ""  # once
    off = grpo.NoSignalWarning(0)
    for _ in range(5):
        off.on_log(None, state, None, logs={"frac_reward_zero_std": 1.0})
    assert capsys.readouterr().out == ""


def test_importing_grpo_does_not_import_fast_grpo_or_generation(fresh_grpo):
    """In the fresh interpreter of fresh_grpo, two checks: the lazy imports, then a reward/weight mismatch through
    grpo's command line exits 2 with one line before any model (a path that does not exist) is loaded."""
    imported, runs = fresh_grpo
    assert imported == "[]", imported
    returncode, stderr = runs["reward_weights"]
    assert returncode == 2 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--reward_weights takes one number per reward (correctness)" in lines[0], lines


def test_compute_is_counted_at_10n_per_token_with_a_reference_model(run, tiny_model_dir, tiny_data, tmp_path):
    """The module run has beta 0.04 (a reference model): 8N (generate + train) + 2N per token."""
    from peft import get_peft_model

    script_args, model_args, args = grpo.parse_args(tiny_argv(tiny_model_dir, tiny_data, tmp_path / "x"))
    model, _, peft_config = grpo.build_model(script_args, model_args, args)
    n = training.count_parameters(get_peft_model(model, peft_config))
    final = [r for r in run["first_log"] if "compute_flops" in r]
    assert len(final) == 1 and final[0]["compute_tokens"] > 0 and final[0]["train_seconds"] > 0
    assert final[0]["compute_flops"] == pytest.approx(10 * n * final[0]["compute_tokens"])


def test_compute_budget_stops_grpo_at_8n_without_a_reference_model(tiny_model_dir, tiny_data, tmp_path):
    out = tmp_path / "run"
    grpo.main(tiny_argv(tiny_model_dir, tiny_data, out, "--beta", "0", "--max_steps", "10", "--val_steps", "0",
                        "--save_strategy", "no", "--use_peft", "false", "--max_train_flops", "1"))
    log = training.read_log(out)
    from transformers import AutoModelForCausalLM

    n = training.count_parameters(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    assert [r["step"] for r in log if "reward" in r] == [1]  # 1 FLOP: stops after the first step
    final = log[-1]
    assert final["compute_flops"] == pytest.approx(8 * n * final["compute_tokens"]) and final["compute_tokens"] > 0
    assert os.path.exists(out / "model.safetensors")


def test_fast_generation_unset_is_on_only_where_tested(monkeypatch, recwarn):
    """Unset: off on CPU (no warning), on with one CUDA GPU for Llama/Qwen2, off with one warning otherwise;
    an explicit choice is kept."""
    from types import SimpleNamespace

    def model(model_type):
        module = torch.nn.Linear(1, 1)
        module.config = SimpleNamespace(model_type=model_type)
        return module

    unset, args = grpo.ScriptArguments(), SimpleNamespace(use_vllm=False)
    assert unset.fast_generation is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert grpo.use_fast_generation(model("llama"), unset, args) is False and not recwarn.list
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert grpo.use_fast_generation(model("llama"), unset, args) is True
    assert grpo.use_fast_generation(model("qwen2"), unset, args) is True and not recwarn.list
    assert grpo.use_fast_generation(model("gpt2"), unset, args) is False
    assert "model type 'gpt2'" in str(recwarn.pop(UserWarning).message)
    assert grpo.use_fast_generation(model("llama"), unset, SimpleNamespace(use_vllm=True)) is False
    assert "vLLM" in str(recwarn.pop(UserWarning).message)
    assert grpo.use_fast_generation(model("gpt2"), grpo.ScriptArguments(fast_generation=True), args) is True
    assert grpo.use_fast_generation(model("llama"), grpo.ScriptArguments(fast_generation=False), args) is False


def test_a_missing_val_split_hints_at_val_steps_0(tmp_path):
    import data
    from utils import UserError

    path = str(tmp_path / "no_val.json")
    data.main(["--train", "8", "--val", "0", "--test", "2", "--test-ood", "0", "--out", path])
    with pytest.raises(UserError, match=r"no records in split 'val' \(--val_steps needs it\); pass --val_steps 0"):
        grpo.main(["--data", path, "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
