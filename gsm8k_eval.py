"""Evaluate a model (+ LoRA adapter) on GSM8K's 1319 test questions, out of domain for our training.

    python gsm8k_eval.py --model smollm2-135m --gsm8k-dir ../shared/data/gsm8k --limit 10 --max-new-tokens 64
    python gsm8k_eval.py --adapter outputs/grpo --name grpo                  # hub openai/gsm8k, greedy
    GSM8K_DIR=~/gsm8k python gsm8k_eval.py --adapter outputs/sft --protocol original

Writes results/<name>_gsm8k.json with one record per question and a summary at three parser strictness
levels: strict (one <answer> block holding only a number), flexible (the last number in the last <answer>
block) and lenient (that, else \\boxed{}, else the last number anywhere), plus math_verify (the last <answer>
block read by math-verify: \\frac{36}{2}, 18.0 and $1,080$ are 18, 18 and 1080), each with a 95% Wilson
interval. Shared machinery (resume, rescore, summary) lives in evaluation.py.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from evaluation import Benchmark, main as evaluate_main
from records import file_sha256, load_gsm8k
from utils import (GSM8K_MODES, GSM8K_PROTOCOL_MAX_NEW_TOKENS, MAX_NEW_TOKENS, answer_blocks, cli, numbers_equal,
                   parse_gsm8k_answer)

# The original study: 3 samples per question at T=0.7, top_p 0.8, top_k 20, 1024 new tokens.
PROTOCOL = {"num_samples": 3, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_new_tokens": GSM8K_PROTOCOL_MAX_NEW_TOKENS}


@dataclass
class GSM8KDataArguments:
    gsm8k_dir: Optional[str] = field(default=None, metadata={
        "help": "folder with test.jsonl (default: env GSM8K_DIR, else the hub's openai/gsm8k)"})


def load_items(args):
    gsm8k_dir = args.gsm8k_dir or os.environ.get("GSM8K_DIR")
    items = load_gsm8k("test", gsm8k_dir)
    if gsm8k_dir:
        path = os.path.abspath(os.path.join(gsm8k_dir, "test.jsonl"))
        data = {"data_file": path, "data_sha256": file_sha256(path)}
    else:  # no file to hash: hash the questions and gold answers themselves
        content = json.dumps([[item["question"], item["answer"]] for item in items]).encode()
        data = {"data_file": "hf://openai/gsm8k (main, test)", "data_sha256": hashlib.sha256(content).hexdigest()}
    return items, {**data, "split": "test"}


def math_verify_answer(text):
    """The number math-verify reads in the last <answer> block (LaTeX, decimals, $ and commas), or None: an
    equivalence check beside our own parsers (TRL's accuracy reward uses the same library)."""
    from math_verify import parse  # sympy underneath: imported on first use
    blocks = answer_blocks(text)
    try:
        value = parse(blocks[-1]) if blocks else []
    except Exception:  # math-verify reports its own failures as []; anything else it raises is no answer either
        return None
    number = value[0] if value and getattr(value[0], "is_number", False) else None
    if number is None or not number.is_real:
        return None
    return int(number) if number.is_Integer else float(number)


BENCHMARK = Benchmark(
    name="gsm8k",
    modes=GSM8K_MODES + ("math_verify",),
    load=load_items,
    parse=lambda text, answer, mode: math_verify_answer(text) if mode == "math_verify" else parse_gsm8k_answer(
        text, mode),
    correct=numbers_equal,
    protocol=PROTOCOL,
    max_new_tokens=MAX_NEW_TOKENS,  # greedy runs
)


def main(argv=None):
    """Run the evaluation; `argv` like the command line (notebooks: main(["--limit", "10"]))."""
    return evaluate_main(BENCHMARK, GSM8KDataArguments, argv)


evaluate = main

if __name__ == "__main__":
    cli(main)
