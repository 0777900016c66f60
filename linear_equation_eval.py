"""Evaluate a model (+ LoRA adapter) on the linear-equation systems of data.json.

    python linear_equation_eval.py --model smollm2-135m --limit 10 --max-new-tokens 64   # CPU smoke run
    python linear_equation_eval.py --adapter outputs/grpo --name grpo                     # GPU, greedy, test split
    python linear_equation_eval.py --adapter outputs/grpo --split test_ood --protocol original

Writes results/<name>_linear_equation.json (non-test splits: ..._linear_equation_<split>.json) with one
record per system and a summary: accuracy under the strict parser (exact <think>/<answer> format, one value
per variable inside <answer>) and the lenient one (the last `x = number` anywhere), each with a 95% Wilson
interval. Shared machinery (resume, rescore, summary) lives in evaluation.py.
"""

import os
from dataclasses import dataclass, field

from evaluation import Benchmark, main as evaluate_main
from records import file_sha256, load_split
from utils import LINEAR_PROTOCOL_MAX_NEW_TOKENS, MAX_NEW_TOKENS, cli, linear_is_correct, parse_linear_answer

# The original study: 5 samples per system at T=0.7, top_p 0.8, top_k 20, 512 new tokens.
PROTOCOL = {"num_samples": 5, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_new_tokens": LINEAR_PROTOCOL_MAX_NEW_TOKENS}


@dataclass
class LinearDataArguments:
    data: str = field(default="data.json", metadata={"help": "data file written by data.py"})
    split: str = field(default="test", metadata={"help": "test | test_ood | val"})


def load_items(args):
    records = load_split(args.data, args.split)
    data = {"data_file": os.path.abspath(args.data), "data_sha256": file_sha256(args.data), "split": args.split}
    items = [{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"], "hash": r.get("hash")} for r in records]
    return items, data


BENCHMARK = Benchmark(
    name="linear_equation",
    modes=("strict", "lenient"),
    load=load_items,
    parse=lambda text, answer, mode: parse_linear_answer(text, list(answer), strict=mode == "strict"),
    correct=linear_is_correct,
    protocol=PROTOCOL,
    max_new_tokens=MAX_NEW_TOKENS,  # greedy runs
)


def main(argv=None):
    """Run the evaluation; `argv` like the command line (notebooks: main(["--limit", "10"]))."""
    return evaluate_main(BENCHMARK, LinearDataArguments, argv)


evaluate = main

if __name__ == "__main__":
    cli(main)
