"""One home per setting: token budgets, LoRA defaults and the correctness credit are named in utils.py, and every
script's default reads that name (so changing it there changes them all)."""

import json
import subprocess
import sys

import utils
from conftest import REPO

# the study's values: a refactor must not move them
STUDY = {"MAX_NEW_TOKENS": 512, "LINEAR_PROTOCOL_MAX_NEW_TOKENS": 512, "GSM8K_PROTOCOL_MAX_NEW_TOKENS": 1024,
         "SFT_MAX_LENGTH": 768, "GRPO_MAX_COMPLETION_LENGTH": 384, "GRPO_MAX_PROMPT_TOKENS": 512, "LORA_R": 64,
         "LORA_ALPHA": 64, "WRONG_BUT_WELL_FORMED_CREDIT": 0.1,
         "LORA_TARGETS": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}

# Set every constant to an odd value before anything imports it, then read each script's default.
PROBE = r"""
import dataclasses, inspect, json, sys
import utils
new = json.loads(sys.argv[1])
for name, value in new.items():
    setattr(utils, name, value)
import evaluation, generation, grpo, gsm8k_eval, linear_equation_eval, modeling, sample, sft, training

def default(cls, name):
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()

print(json.dumps({
    "linear greedy": linear_equation_eval.BENCHMARK.max_new_tokens,
    "linear protocol": linear_equation_eval.PROTOCOL["max_new_tokens"],
    "gsm8k greedy": gsm8k_eval.BENCHMARK.max_new_tokens,
    "gsm8k protocol": gsm8k_eval.PROTOCOL["max_new_tokens"],
    "Benchmark": default(evaluation.Benchmark, "max_new_tokens"),
    "generate": inspect.signature(generation.generate).parameters["max_new_tokens"].default,
    "generate_vllm": inspect.signature(generation.generate_vllm).parameters["max_new_tokens"].default,
    "sample": default(sample.SampleArguments, "max_new_tokens"),
    "sft max_length": default(sft.SFTArguments, "max_length"),
    "grpo completion": default(grpo.GRPOArguments, "max_completion_length"),
    "grpo wrong_credit": default(grpo.ScriptArguments, "wrong_credit"),
    "lora_r": default(training.ModelArguments, "lora_r"),
    "lora_alpha": default(training.ModelArguments, "lora_alpha"),
    "lora targets": default(training.ModelArguments, "lora_target_modules"),
    "own copies": ["grpo.MAX_PROMPT_TOKENS"] * hasattr(grpo, "MAX_PROMPT_TOKENS") + [
        m.__name__ + ".LORA_TARGETS" for m in (grpo, sft, modeling, training, evaluation)
        if vars(m).get("LORA_TARGETS", utils.LORA_TARGETS) is not utils.LORA_TARGETS],
    "sft val budget": "MAX_NEW_TOKENS" in inspect.getsource(sft.main),
    "grpo prompt budget": "GRPO_MAX_PROMPT_TOKENS" in inspect.getsource(grpo),
}))
"""


def test_the_study_values_are_unchanged():
    assert {name: getattr(utils, name) for name in STUDY} == STUDY


def test_every_default_reads_its_one_constant():
    new = {"MAX_NEW_TOKENS": 101, "LINEAR_PROTOCOL_MAX_NEW_TOKENS": 102, "GSM8K_PROTOCOL_MAX_NEW_TOKENS": 103,
           "SFT_MAX_LENGTH": 104, "GRPO_MAX_COMPLETION_LENGTH": 105, "LORA_R": 7, "LORA_ALPHA": 9,
           "WRONG_BUT_WELL_FORMED_CREDIT": 0.3, "LORA_TARGETS": ["q_proj"]}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(new)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"linear greedy": 101, "linear protocol": 102, "gsm8k greedy": 101, "gsm8k protocol": 103,
                   "Benchmark": 101, "generate": 101, "generate_vllm": 101, "sample": 101, "sft max_length": 104,
                   "grpo completion": 105, "grpo wrong_credit": 0.3, "lora_r": 7, "lora_alpha": 9,
                   "lora targets": ["q_proj"], "own copies": [], "sft val budget": True, "grpo prompt budget": True}
