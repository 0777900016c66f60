"""bench.py end to end on a tiny random model (CPU); where_time_goes.py's GPU-idle attribution."""

import json
import os

import pytest
import torch

import bench
from conftest import GSM8K_DIR, SHARED

QWEN_TOKENIZER = os.path.join(SHARED, "models", "qwen-tokenizer")


def test_bench_cpu_smoke(tmp_path):
    out = str(tmp_path / "bench.json")
    results = bench.main([
        "--device", "cpu", "--model", "tiny", "--tokenizer", QWEN_TOKENIZER, "--gsm8k-dir", GSM8K_DIR,
        "--eval-prompts", "6", "--eval-tokens", "6", "--eval-batch-size", "4", "--plain-prompts", "4",
        "--eval-repeats", "2",
        "--grpo-prompts", "2", "--grpo-generations", "2", "--grpo-tokens", "6", "--grpo-steps", "2",
        "--lora-r", "4", "--sft-steps", "2", "--sft-batch", "2", "--out", out])
    with open(out) as f:
        saved = json.load(f)
    assert saved["parts"].keys() == {"floor", "eval", "grpo_full", "grpo_lora", "sft"}
    assert not [name for name, part in saved["parts"].items() if "error" in part], saved["table"]
    assert saved["table"] == results["table"] and os.path.exists(str(tmp_path / "bench.md"))
    floor, ev, sft = saved["parts"]["floor"], saved["parts"]["eval"], saved["parts"]["sft"]
    assert floor["copy_GBps"] > 0 and floor["matmul_TFLOPs"] > 0
    assert ev["fast"]["tokens_per_s"] > 0 and ev["plain"]["extrapolated"] and ev["plain"]["measured_prompts"] == 4
    assert ev["greedy_match"] == "4/4 prompts token-identical"  # fp32 on CPU: the fast path is exact
    assert ev["source"].startswith("GSM8K")
    assert (ev["batches"], ev["batch_width"]) == (2, 3)  # 6 prompts at --eval-batch-size 4: 3 + 3, not 4 + 2
    assert len(ev["fast"]["repeats_s"]) == 2 and ev["fast"]["repeats_s"][0] == ev["fast"]["generate_s"]
    assert ev["load"] == "from disk" and "(from disk)" in saved["table"]  # the random model saved, then loaded
    assert isinstance(ev["fast"]["first_minus_best_repeat_s"], float)
    for variant in ("grpo_full", "grpo_lora"):
        pair = saved["parts"][variant]
        assert pair["fast"]["trainer"] == "FastGenerationGRPOTrainer" and pair["stock"]["trainer"] == "GRPOTrainer"
        for path in ("fast", "stock"):
            assert pair[path]["step_s"] > 0 and pair[path]["completion_tokens_per_s"] > 0
            assert len(pair[path]["steps_s"]) == 2 and pair[path]["floor_s"] > 0
            assert pair[path]["step_min_s"] <= pair[path]["step_s"] <= pair[path]["step_max_s"]
            assert 0 < pair[path]["generate_s"] < pair[path]["step_max_s"]  # grpo.py times the sampling
        assert pair["speedup"] > 0
    trainable = [saved["parts"][v]["fast"]["trainable_params"] for v in ("grpo_lora", "grpo_full")]
    assert trainable[0] < trainable[1]
    assert sft["tokens_per_s"] > 0 and sft["floor_tokens_per_s"] > 0
    assert "grpo lora" in saved["table"] and "EXTRAPOLATED" in saved["table"]
    assert all(line.split("|")[8].strip() != "-" for line in saved["table"].splitlines()
               if line.startswith(("| eval", "| grpo", "| sft")))  # floor / time on every timed row



def test_bench_runs_one_grpo_trainer_when_asked(tmp_path, capsys):
    out = str(tmp_path / "bench.json")
    try:
        bench.main(["--device", "cpu", "--model", "tiny", "--tokenizer", QWEN_TOKENIZER, "--parts", "grpo",
                    "--grpo-variants", "lora", "--grpo-paths", "stock", "--grpo-prompts", "2",
                    "--grpo-generations", "2", "--grpo-batch", "4", "--grpo-tokens", "4", "--grpo-steps", "1",
                    "--lora-r", "4", "--tf32", "--out", out])
        assert torch.backends.cuda.matmul.allow_tf32  # the study's precision, as asked
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False  # torch's defaults
    with open(out) as f:
        saved = json.load(f)
    pair = saved["parts"]["grpo_lora"]
    assert saved["meta"]["tf32"] is True
    assert pair.keys() == {"stock", "part_s"} and pair["stock"]["trainer"] == "GRPOTrainer"
    assert pair["stock"]["micro_batch"] == 4  # --grpo-batch: both prompts' groups in one forward/backward
    with pytest.raises(SystemExit):
        bench.parse_args(["--grpo-paths", "fast,vllm"])
    assert "--grpo-paths takes fast, stock or fast,stock" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--grpo-prompts", "2", "--grpo-generations", "2", "--grpo-batch", "3"])
    assert "--grpo-batch must be positive and divide" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--grpo-batch", "0"])
    assert "--grpo-batch must be positive" in capsys.readouterr().err

def test_gpu_idle_is_charged_to_what_the_host_ran():
    """where_time_goes.py's GPU-idle attribution on hand-made intervals (ns): gaps between kernels count towards
    the marked region and each host thread's innermost op at the gap's middle; short gaps and overlaps do not."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "runbooks", "where_time_goes.py")
    spec = importlib.util.spec_from_file_location("where_time_goes", path)
    wtg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wtg)
    kernels = [(0, 100_000), (50_000, 120_000), (170_000, 200_000), (201_000, 210_000), (400_000, 500_000)]
    main = [(0, 600_000, "aten::linear"), (110_000, 190_000, "aten::nonzero"), (300_000, 350_000, "aten::mul")]
    autograd = [(130_000, 160_000, "MmBackward0")]
    labels = [(0, 600_000, "training_step"), (250_000, 450_000, "compute_loss")]
    total, by_cause = wtg.gpu_idle(kernels, {"main": main, "autograd": autograd}, labels)
    # gaps: 120-170 us (middle 145: nonzero / MmBackward0), 201-210 too short, 210-400 us (middle 305: mul / none)
    assert total == 50_000 + 190_000
    assert by_cause == {("training_step", "aten::nonzero", "MmBackward0"): 50_000,
                        ("compute_loss", "aten::mul", None): 190_000}


def test_table_without_the_floor_part_says_so():
    """--parts grpo (no floor): the floor cells read '-', not 'None s' (the SmolLM2 row of 2026-12-03 did)."""
    run = {"trainer": "GRPOTrainer", "step_s": 13.1, "step_min_s": 12.0, "step_max_s": 14.2, "steps_s": [13.1] * 4,
           "first_step_s": 12.0, "peak_gib": 5.05, "completion_tokens_per_s": 2245.2}
    text = bench.table({"parts": {"grpo_full": {"fast": {**run, "trainer": "FastGenerationGRPOTrainer"},
                                                "stock": run, "speedup": 2.16}}})
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| grpo")]
    assert len(rows) == 2 and all(row[7].strip() == row[8].strip() == "-" for row in rows)
    assert "None" not in text
