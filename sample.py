"""Rejection sampling: k responses per train prompt from a teacher, the verified ones become the train responses.

    python sample.py --teacher outputs/s0 --data data.json --train_slice 3000:5000 --k 4 --out data_rft.json
    python sample.py --teacher Qwen/Qwen2.5-7B-Instruct --k 4 --out data_distill.json   # teacher distillation
    python sft.py --model_name_or_path outputs/s0 --use_peft false --data data_rft.json ...  # then SFT on them

A sample is kept only when the strict parser reads the right answer and every line of its worked solution checks
(--verify trace, the default; traces.check_trace), when the answer is right (--verify answer), or always
(--verify none: plain distillation, as the original study's teacher data). Each kept sample is a train record of its own
(id `<id>-s<j>`, the problem's hash, so the eval scripts' contamination guard still sees the problem) with a
`source` saying where it came from; identical samples of one prompt are kept once. Records of the other splits
are copied unchanged. meta.sampling records the teacher, the settings, the acceptance rate and the compute
(2N FLOPs per prompt and generated token, N the teacher's parameters), which sft.py's --max_train_flops counts.
Teacher: a hub id, a local model folder (a full fine-tune), or `smollm2-135m`; --adapter adds a LoRA.
"""

import os
import sys
import time
from dataclasses import asdict, dataclass, field

from records import atomic_write_json, load_split, read_json
from traces import check_trace
from utils import MAX_NEW_TOKENS, UserError, cli, is_correct

VERIFY = ("trace", "answer", "none")


@dataclass
class SampleArguments:
    teacher: str = field(metadata={"help": "model that writes the responses: hub id, local folder or smollm2-135m"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter on top of --teacher"})
    data: str = field(default="data.json", metadata={"help": "data.json written by data.py"})
    out: str = field(default="data_sampled.json", metadata={"help": "output data file (same layout as data.json)"})
    train_slice: str | None = field(default=None, metadata={"help": "sample for these train items only, START:END"})
    k: int = field(default=4, metadata={"help": "samples per prompt"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (> 0)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass"})
    max_new_tokens: int = field(default=MAX_NEW_TOKENS, metadata={"help": "generation budget per sample"})
    verify: str = field(default="trace", metadata={
        "help": "which samples to keep: trace (right answer and every worked-solution line checks), answer (right "
                "answer), none (every sample: distillation without verification)", "choices": list(VERIFY)})
    batch_size: int | None = field(default=None, metadata={"help": "rows per generation batch (default: generation.py's)"})
    dtype: str | None = field(default=None, metadata={"help": "bf16 | fp16 | fp32 (default: bf16 on CUDA, fp32 on CPU)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})


def parse_args(argv=None):
    from transformers import HfArgumentParser

    from utils import one_line_errors

    (args,) = one_line_errors(HfArgumentParser(SampleArguments)).parse_args_into_dataclasses(args=argv)
    if args.k < 1 or args.max_new_tokens < 1 or not args.temperature > 0:
        raise UserError("--k and --max_new_tokens must be >= 1 and --temperature > 0")
    if os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is a directory; give a file path")
    return args


def keep(text, record, verify):
    if verify == "none":
        return True
    return is_correct(text, record["answer"], strict=True) and (verify == "answer" or check_trace(text)["valid"])


def accepted_records(train, outputs, args):
    """One train record per distinct verified sample, with its provenance."""
    kept = []
    for record, samples in zip(train, outputs):
        seen = set()
        for j, sample in enumerate(samples):
            if sample["text"] in seen or not keep(sample["text"], record, args.verify):
                continue
            seen.add(sample["text"])
            source = {"teacher": args.teacher, "adapter": args.adapter, "sample": j, "temperature": args.temperature,
                      "top_p": args.top_p, "seed": args.seed, "original_id": record["id"]}
            kept.append({**record, "id": f"{record['id']}-s{j}", "response": sample["text"], "source": source})
    return kept


def main(argv=None):
    import modeling
    import training
    from generation import generate_all

    args = parse_args(argv)
    data = read_json(args.data, "data file")
    train = training.select_train(load_split(args.data, "train"), args.train_slice)
    model, tokenizer = modeling.load_model(args.teacher, args.adapter, dtype=args.dtype)
    start = time.perf_counter()
    print(f"sampling {args.k} x {len(train)} prompts from {args.teacher}")
    outputs = generate_all(model, tokenizer, [r["prompt"] for r in train], max_new_tokens=args.max_new_tokens,
                           num_samples=args.k, temperature=args.temperature, top_p=args.top_p,
                           batch_size=args.batch_size, seed=args.seed)
    seconds = time.perf_counter() - start
    kept = accepted_records(train, outputs, args)
    prompt_tokens = sum(len(tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True)) for r in train)
    generated = sum(s["num_tokens"] for samples in outputs for s in samples)
    params = training.count_parameters(model)
    correct = sum(is_correct(s["text"], r["answer"], strict=True) for r, samples in zip(train, outputs) for s in samples)
    sampling = {
        **{k: v for k, v in asdict(args).items() if k not in ("data", "out")},
        "data_file": os.path.abspath(args.data), "prompts": len(train), "samples": len(train) * args.k,
        "correct": correct, "kept": len(kept), "prompts_with_a_kept_sample": len({r["source"]["original_id"] for r in kept}),
        "generated_tokens": generated, "prompt_tokens": prompt_tokens * args.k, "teacher_parameters": params,
        "flops": 2.0 * params * (generated + prompt_tokens * args.k), "seconds": round(seconds, 2),
    }
    if not kept:
        raise UserError(f"no sample of {len(train) * args.k} passed --verify {args.verify}; nothing written (try more "
                        "--k, a stronger teacher, or a looser --verify)")
    meta = {**data.get("meta", {}), "sampling": sampling}
    others = [r for r in data["records"] if r.get("split") != "train"]
    atomic_write_json(args.out, {"meta": meta, "records": others + kept})
    print(f"kept {len(kept)} of {len(train) * args.k} samples ({correct} correct; {sampling['prompts_with_a_kept_sample']} "
          f"of {len(train)} prompts) in {seconds:.0f} s; wrote {args.out}")
    return args.out


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(lambda: main(sys.argv[1:]))
