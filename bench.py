"""Benchmark our generation, GRPO and SFT paths against plain transformers / stock TRL on one device.

    python bench.py                        # GPU: Qwen2.5-1.5B shape (random bf16 weights, loaded from disk), every part
    python bench.py --parts grpo --grpo-variants lora
    python bench.py --device cpu --model tiny --eval-prompts 8 --eval-tokens 8 --grpo-prompts 2 \\
        --grpo-generations 2 --grpo-tokens 8 --grpo-steps 1 --sft-steps 1 --sft-batch 2   # CPU smoke run (CI)

Parts (--parts, run in this order; each one's failure is recorded in the JSON and the rest still run):
- floor: copy bandwidth and matmul rate of the device, from which every other part gets a lower bound
  (decode steps read all weights and the KV cache; training costs 6 x params FLOPs per token, 4 x with LoRA;
  GRPO computes LM-head logits for completion tokens only).
- eval: generation.py (what evaluation.py runs) against plain `model.generate` (dynamic cache) on GSM8K chat
  prompts, greedy, --eval-tokens new tokens (random weights never stop); wall time includes loading the
  model (random weights are saved as safetensors first, untimed, and loaded from disk: --eval-load) and
  compiling. Plain generate may run on the first --plain-prompts prompts only
  and be scaled to all of them: the table says so. Greedy tokens of both paths are compared per prompt.
- grpo: one optimizer step of grpo.py's trainer with --fast_generation against stock TRL GRPOTrainer on the
  same config (P prompts x G generations x T tokens, linear-equation prompts), full fine-tune and LoRA r=64:
  median step time and spread over --grpo-steps steps after warm-up (the first records the CUDA graph), completion
  tokens/s, peak GPU memory; mixed precision follows --dtype (none for fp32 weights, as the SmolLM2 study).
  The loss code is TRL's in both (only the generation hook differs), so losses match by construction.
- sft: tokens/s (non-padding) of sft.py's trainer, which is stock TRL SFTTrainer plus our config (there is
  no separate fast path to compare).
With Unsloth installed on a CUDA machine, bench.py imports it first (it patches TRL), as sft.py and grpo.py do,
unless --no-unsloth or USE_UNSLOTH=0 is given: pass one to measure stock TRL.

Writes --out (JSON, rewritten after every part) and the same path with .md (the table), and prints the table.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

import modeling  # imports nothing from the HF stack

# Unsloth patches transformers/TRL when imported, so it is chosen before they load (see sft.py)
modeling.import_unsloth(sys.argv[1:] if __name__ == "__main__" else ())

import torch  # noqa: E402  (this and the imports below: after the Unsloth choice, on purpose)
from transformers import TrainerCallback  # noqa: E402

import data  # noqa: E402
import generation  # noqa: E402
import grpo  # noqa: E402
import sft  # noqa: E402
import training  # noqa: E402
from modeling import load_pretrained, load_tokenizer  # noqa: E402
from records import atomic_write_json, library_versions, load_gsm8k  # noqa: E402
from utils import LORA_R, LORA_TARGETS, gsm8k_prompt  # noqa: E402

QWEN_1_5B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, rope_theta=1e6, rms_norm_eps=1e-6,
                 tie_word_embeddings=True, max_position_embeddings=32768)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=4096)
GiB = 2**30
RANDOM_SAVED = "random weights, saved"  # build_model: load args.random_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu")
    p.add_argument("--model", default="qwen1.5b", help="qwen1.5b (random weights, Qwen2.5-1.5B shape), tiny "
                   "(random 2-layer Qwen2, for CPU tests), or a local directory / hub id of real weights")
    p.add_argument("--tokenizer", default=os.path.join("..", "shared", "models", "qwen-tokenizer"),
                   help="tokenizer directory for the random models (real weights bring their own)")
    p.add_argument("--dtype", default=None, help="weights dtype (bf16, fp16, fp32); default bf16 on cuda, fp32 on "
                   "cpu. Training runs under mixed precision of the same dtype (none for fp32), as the study's runs")
    p.add_argument("--eval-load", default="disk", choices=["disk", "memory"],
                   help="random weights: disk = saved once as safetensors, then the timed eval loads them as a user "
                        "would (the wall time counts it); memory = built in place (no load cost)")
    p.add_argument("--parts", default="floor,eval,grpo,sft", help="comma-separated subset of floor,eval,grpo,sft")
    p.add_argument("--gsm8k-dir", default=os.environ.get("GSM8K_DIR", os.path.join("..", "shared", "data", "gsm8k")),
                   help="folder with GSM8K test.jsonl; if missing, synthetic prompts of GSM8K length (table says so)")
    p.add_argument("--eval-prompts", type=int, default=1319, help="GSM8K test prompts to generate for (1319 = all)")
    p.add_argument("--eval-tokens", type=int, default=256, help="new tokens per prompt (greedy)")
    p.add_argument("--eval-batch-size", type=int, default=None,
                   help="most rows per batch, both paths (ours splits the prompts evenly into the fewest such "
                        "batches, plain generate takes them in order; default: generation.py's, 256 on cuda, "
                        "16 on cpu)")
    p.add_argument("--eval-repeats", type=int, default=1,
                   help="run our eval path N times in one process; the first pass minus the fastest later one "
                        "estimates the one-off warm-up (the table reports the first)")
    p.add_argument("--plain-prompts", type=int, default=None,
                   help="run plain generate on the first N prompts only and scale its time to all (default: all)")
    p.add_argument("--grpo-variants", default="full,lora", help="comma-separated subset of full,lora")
    p.add_argument("--grpo-paths", default="fast,stock",
                   help="comma-separated subset of fast (grpo.py --fast_generation), stock (TRL's GRPOTrainer)")
    p.add_argument("--grpo-prompts", type=int, default=8, help="prompts per optimizer step")
    p.add_argument("--grpo-generations", type=int, default=8, help="completions per prompt")
    p.add_argument("--grpo-tokens", type=int, default=256, help="max completion tokens")
    p.add_argument("--grpo-batch", type=int, default=None,
                   help="completions per forward/backward micro-batch (default --grpo-generations: one prompt's group "
                        "at a time); the SmolLM2 study trains 64 at a time (--grpo-batch 64)")
    p.add_argument("--grpo-steps", type=int, default=10, help="timed optimizer steps (median and spread reported)")
    p.add_argument("--eager-decode", action="store_true",
                   help="GRPO fast path: record the decode step uncompiled (grpo.py --compile_decode false)")
    p.add_argument("--tf32", action="store_true",
                   help="TF32 matmuls for fp32 weights, as the SmolLM2 study's runs (--tf32 true); default off")
    p.add_argument("--compile-layers", action="store_true",
                   help="GRPO fast path: the training step's decoder stack compiled (grpo.py --compile_layers)")
    p.add_argument("--grpo-beta", type=float, default=0.0, help="KL coefficient (TRL's default 0: no reference model)")
    p.add_argument("--warmup-steps", type=int, default=1, help="untimed steps first (GRPO, SFT): graph recording, allocator")
    p.add_argument("--lora-r", type=int, default=LORA_R, help="LoRA rank (alpha = rank, all 7 projections, as the study)")
    p.add_argument("--sft-steps", type=int, default=10, help="timed SFT optimizer steps (median reported)")
    p.add_argument("--sft-batch", type=int, default=16, help="SFT batch size (study: 16)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data and sampling")
    p.add_argument("--no-unsloth", action="store_true",
                   help="keep Unsloth out: stock transformers + TRL (the same as USE_UNSLOTH=0; acted on at bench.py's top)")
    p.add_argument("--out", default=None, help="JSON path (default results/bench/bench_<device name>.json)")
    args = p.parse_args(argv)
    if args.eval_repeats < 1:
        p.error("--eval-repeats must be at least 1")
    args.grpo_batch = args.grpo_generations if args.grpo_batch is None else args.grpo_batch
    if args.grpo_batch < 1 or (args.grpo_prompts * args.grpo_generations) % args.grpo_batch:
        p.error("--grpo-batch must be positive and divide --grpo-prompts x --grpo-generations (one step's "
                "completions)")
    if not args.grpo_paths or set(args.grpo_paths.split(",")) - {"fast", "stock"}:
        p.error("--grpo-paths takes fast, stock or fast,stock")
    args.device = torch.device(args.device)
    args.dtype = modeling.parse_dtype(args.dtype) if args.dtype else modeling.default_dtype(args.device.type)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "cpu"
    args.device_name = name
    args.out = args.out or os.path.join("results", "bench", "bench_" + name.lower().replace(" ", "_") + ".json")
    return args


# ----------------------------------------------------------------------------
# Helpers


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cleanup():
    """Between parts: free the model, optimizer and compiled graphs (dynamo's per-code cache is small)."""
    gc.collect()
    torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device):
    return round(torch.cuda.max_memory_allocated(device) / GiB, 2) if device.type == "cuda" else "-"


def build_model(args, tokenizer):
    """A fresh model on the device: random weights of a known shape, or a real checkpoint."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(args.seed)
    if args.model in ("qwen1.5b", "tiny"):
        shape = dict(QWEN_1_5B) if args.model == "qwen1.5b" else dict(TINY, vocab_size=len(tokenizer))
        config = Qwen2Config(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        with torch.device(args.device):
            model = AutoModelForCausalLM.from_config(config, dtype=args.dtype)
    elif args.model == RANDOM_SAVED:
        model = load_pretrained(args.random_dir, dtype=args.dtype).to(args.device)
    else:
        model = load_pretrained(args.model, dtype=args.dtype).to(args.device)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_random_model(args, tokenizer, folder):
    """The random model as a checkpoint on disk (untimed), so that a timed build loads it as a user would."""
    build_model(args, tokenizer).save_pretrained(folder)
    cleanup()
    return argparse.Namespace(**{**vars(args), "model": RANDOM_SAVED, "random_dir": folder})


def eval_prompts(args):
    try:
        records = load_gsm8k("test", args.gsm8k_dir)
        source = f"GSM8K test ({args.gsm8k_dir})"
    except Exception:  # the GPU machine may not have ../shared: same-length stand-ins, labelled
        records = [{"prompt": gsm8k_prompt("Natalia sold clips to 48 of her friends in April. " * 5 + "How many?")}]
        source = "synthetic GSM8K-length prompts (GSM8K files not found)"
    return [records[i % len(records)]["prompt"] for i in range(args.eval_prompts)], source


def plain_generate(model, tokenizer, prompts, batch_size, max_new_tokens):
    """The baseline: `model.generate` on batches in prompt order, left-padded, dynamic cache (transformers'
    default), greedy; the generated ids of each prompt up to and including EOS."""
    tokenizer.padding_side = "left"
    eos = generation._eos_ids(model, tokenizer)
    ids = []
    for k in range(0, len(prompts), batch_size):
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                 for p in prompts[k:k + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            ids.append(row[:end])
    return ids


def lora_config(args):
    """The study's LoRA (alpha = rank, all 7 projections) at --lora-r."""
    from peft import LoraConfig

    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_r, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")


def linear_records(n, seed):
    """n linear-equation train records (the study's GRPO / SFT data) made in memory."""
    split_args = data.parse_args(["--train", str(n), "--val", "0", "--test", "0", "--test-ood", "0",
                                  "--seed", str(seed)])
    data.check_args(split_args)  # fills the preset's ranges
    return data.generate(split_args)["records"]


class StepClock(TrainerCallback):
    """Wall time at each optimizer step's end, and the logged completion lengths / tokens seen."""

    def __init__(self, device):
        self.device, self.ends, self.logs, self.start = device, [], [], None

    def on_train_begin(self, args, state, control, **kwargs):
        sync(self.device)
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        sync(self.device)
        self.ends.append((time.perf_counter(), state.num_input_tokens_seen))

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def timed_steps(clock, warmup):
    """Per-step seconds and tokens seen, for the steps after `warmup` (each step measured end to end)."""
    ends = clock.ends[warmup - 1:] if warmup else clock.ends
    return [b[0] - a[0] for a, b in zip(ends, ends[1:])], [b[1] - a[1] for a, b in zip(ends, ends[1:])]


# ----------------------------------------------------------------------------
# Parts


def bench_floor(args, tokenizer):
    cuda = args.device.type == "cuda"
    n, size = (2**28, 8192) if cuda else (2**24, 1024)
    x = torch.empty(n, dtype=args.dtype, device=args.device)
    y, a = torch.empty_like(x), torch.randn(size, size, dtype=args.dtype, device=args.device)

    def best(fn, reps=5):
        fn(), sync(args.device)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn(), sync(args.device)
            times.append(time.perf_counter() - start)
        return min(times)

    bandwidth = 2 * x.numel() * x.element_size() / best(lambda: y.copy_(x))  # read + write
    matmul = 2 * size**3 / best(lambda: a @ a)
    model = build_model(args, tokenizer)
    config, params = model.config, sum(p.numel() for p in model.parameters())
    del model, x, y, a
    head_dim = config.hidden_size // config.num_attention_heads
    kv_bytes = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * args.dtype.itemsize
    return {"copy_GBps": float(f"{bandwidth / 1e9:.3g}"), "matmul_TFLOPs": float(f"{matmul / 1e12:.3g}"),
            "params": params, "head_params": config.vocab_size * config.hidden_size,
            "weight_bytes": params * args.dtype.itemsize, "kv_bytes_per_token": kv_bytes,
            "bandwidth": bandwidth, "matmul": matmul}


def decode_floor(floor, rows, steps, context):
    """Seconds for `steps` decode steps of `rows` rows whose mean context is `context` tokens."""
    if not floor:
        return None
    read = floor["weight_bytes"] + rows * context * floor["kv_bytes_per_token"]
    return steps * max(read / floor["bandwidth"], 2 * floor["params"] * rows / floor["matmul"])


def bench_eval(args, tokenizer, floor):
    with tempfile.TemporaryDirectory() as folder:
        if args.eval_load == "disk" and args.model in ("qwen1.5b", "tiny"):
            args = save_random_model(args, tokenizer, folder)
        return timed_eval(args, tokenizer, floor)


def timed_eval(args, tokenizer, floor):
    prompts, source = eval_prompts(args)
    start = time.perf_counter()
    model = build_model(args, tokenizer).eval()
    sync(args.device)
    load_s = time.perf_counter() - start

    repeats = []  # later passes in this process find the allocator and kernels warm: the difference is warm-up
    for _ in range(args.eval_repeats):
        start = time.perf_counter()
        fast = generation.generate_all(model, tokenizer, prompts, max_new_tokens=args.eval_tokens,
                                       batch_size=args.eval_batch_size, progress=False, return_ids=True)
        sync(args.device)
        repeats.append(time.perf_counter() - start)
    fast_s = repeats[0]
    fast_tokens = sum(out[0]["num_tokens"] for out in fast)

    cuda = args.device.type == "cuda"
    batch_size = args.eval_batch_size or (generation.CUDA_BATCH_SIZE if cuda else generation.CPU_BATCH_SIZE)
    subset = prompts[:args.plain_prompts or len(prompts)]
    start = time.perf_counter()
    plain_ids = plain_generate(model, tokenizer, subset, batch_size, args.eval_tokens)
    sync(args.device)
    plain_s = time.perf_counter() - start
    scale = len(prompts) / len(subset)
    match = sum(f[0]["token_ids"] == p for f, p in zip(fast, plain_ids))
    # bf16 on random weights has near-ties that a different batch or kernel can flip: also the shared prefix
    pairs = [(f[0]["token_ids"], p) for f, p in zip(fast, plain_ids)]
    prefix = [next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))) for a, b in pairs]
    contexts = [len(generation._encode(tokenizer, p)) + args.eval_tokens / 2 for p in prompts]
    width = generation.even_width(len(prompts), batch_size)  # ours: even batches of at most batch_size
    batches = -(-len(prompts) // width)
    floor_s = decode_floor(floor, width, batches * args.eval_tokens,
                           sum(contexts) / len(contexts))
    return {
        "prompts": len(prompts), "source": source, "new_tokens": args.eval_tokens, "batch_size": batch_size,
        "batches": batches, "batch_width": width,  # ours; plain generate takes batch_size prompts at a time
        "load_s": round(load_s, 2), "load": "built in memory" if args.model in ("qwen1.5b", "tiny") else "from disk",
        "fast": {"generate_s": round(fast_s, 2), "wall_s": round(load_s + fast_s, 2), "tokens": fast_tokens,
                 "tokens_per_s": round(fast_tokens / fast_s, 1),
                 "static_cache": cuda and batches * args.eval_tokens >= generation.STATIC_MIN_STEPS,  # its "auto"
                 "repeats_s": [round(t, 2) for t in repeats],
                 "first_minus_best_repeat_s": round(fast_s - min(repeats[1:]), 2) if len(repeats) > 1 else None},
        "plain": {"generate_s": round(plain_s * scale, 2), "wall_s": round(load_s + plain_s * scale, 2),
                  "tokens_per_s": round(sum(map(len, plain_ids)) / plain_s, 1), "measured_prompts": len(subset),
                  "extrapolated": len(subset) < len(prompts), "measured_s": round(plain_s, 2)},
        "speedup_wall": round((load_s + plain_s * scale) / (load_s + fast_s), 2),
        "speedup_generate": round(plain_s * scale / fast_s, 2),
        "greedy_match": f"{match}/{len(subset)} prompts token-identical",
        "greedy_common_prefix": round(sum(prefix) / len(prefix), 1),
        "floor_s": round(floor_s, 2) if floor_s else None,
    }


def grpo_trainer(args, tokenizer, lora, fast, output_dir):
    """(trainer, records): grpo.build_trainer on the bench's GRPO config, with or without our generation hook."""
    steps = args.warmup_steps + args.grpo_steps
    records = linear_records(args.grpo_prompts * steps, args.seed)
    training_args = grpo.GRPOArguments(
        output_dir=output_dir, per_device_train_batch_size=args.grpo_batch, num_generations=args.grpo_generations,
        gradient_accumulation_steps=args.grpo_prompts * args.grpo_generations // args.grpo_batch,
        max_completion_length=args.grpo_tokens, max_steps=steps, beta=args.grpo_beta, seed=args.seed,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, use_vllm=False,
        bf16=args.dtype == torch.bfloat16, fp16=args.dtype == torch.float16)
    script_args = grpo.ScriptArguments(fast_generation=fast, val_steps=0, compile_decode=not args.eager_decode,
                                      compile_layers=args.compile_layers)
    peft_config = lora_config(args) if lora else None
    model = build_model(args, tokenizer)
    train_ds = training.conversational_dataset(records, columns=("prompt", "answer"))
    return grpo.build_trainer(model, tokenizer, peft_config, script_args, training_args, train_ds), records


def bench_grpo(args, tokenizer, floor, lora, fast):
    """One GRPO config through grpo.build_trainer: fast (our generation hook) or stock (TRL's class as is)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer, records = grpo_trainer(args, tokenizer, lora, fast, tmp)
        model = trainer.model
        clock = StepClock(args.device)
        trainer.add_callback(clock)
        if args.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(args.device)
        trainer.train()
        seconds, _ = timed_steps(clock, args.warmup_steps)
        lengths = [log["completions/mean_length"] for log in clock.logs if "completions/mean_length" in log]
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        result = {"trainer": type(trainer).__name__, "step_s": round(statistics.median(seconds), 3),
                  "step_min_s": round(min(seconds), 3), "step_max_s": round(max(seconds), 3),
                  "steps_s": [round(s, 3) for s in seconds], "first_step_s": round(clock.ends[0][0] - clock.start, 2),
                  "peak_gib": peak_gib(args.device), "trainable_params": trainable,
                  "micro_batch": trainer.args.per_device_train_batch_size}
        rows = args.grpo_prompts * args.grpo_generations
        mean_len = statistics.mean(lengths[args.warmup_steps:] or lengths)
        generate = [log["generate_seconds"] for log in clock.logs if "generate_seconds" in log]
        if generate[args.warmup_steps:]:  # grpo.py's timing of the sampling: the rest is scoring and training
            result["generate_s"] = round(statistics.median(generate[args.warmup_steps:]), 3)
        result["completion_tokens_per_s"] = round(rows * mean_len / result["step_s"], 1)
        if floor:
            prompt = statistics.mean(len(generation._encode(tokenizer, r["prompt"])) for r in records)
            body = floor["params"] - floor["head_params"]  # the LM head runs on completion tokens only
            train_flops = (4 if lora else 6) * rows * (body * (prompt + mean_len) + floor["head_params"] * mean_len)
            result["floor_s"] = round(decode_floor(floor, rows, mean_len, prompt + mean_len / 2)
                                      + train_flops / floor["matmul"], 3)
        del trainer, model
    cleanup()
    return result


def bench_sft(args, tokenizer, floor):
    steps = args.warmup_steps + args.sft_steps
    records = linear_records(args.sft_batch * steps, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        training_args = sft.SFTArguments(
            output_dir=tmp, per_device_train_batch_size=args.sft_batch, max_steps=steps, seed=args.seed,
            logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            include_num_input_tokens_seen="non_padding", completion_only_loss=True)
        peft_config = lora_config(args)
        model = build_model(args, tokenizer)
        train_ds = training.conversational_dataset(records, columns=("prompt", "completion"))
        trainer = sft.build_trainer(model, tokenizer, peft_config, training_args, train_ds)
        clock = StepClock(args.device)
        trainer.add_callback(clock)
        trainer.train()
        seconds, tokens = timed_steps(clock, args.warmup_steps)
        rate = sum(tokens) / sum(seconds)
        result = {"trainer": f"sft.build_trainer -> {type(trainer).__name__} (stock TRL class; no fast SFT path)",
                  "step_s": round(statistics.median(seconds), 3), "tokens_per_s": round(rate, 1),
                  "peak_gib": peak_gib(args.device),
                  "floor_tokens_per_s": round(floor["matmul"] / (4 * floor["params"]), 1) if floor else None}
        del trainer, model
    cleanup()
    return result


# ----------------------------------------------------------------------------
# Report


def table(results):
    rows = ["| part | path | time | tokens/s | peak GiB | vs baseline | floor | floor / time | note |",
            "|---|---|---|---|---|---|---|---|---|"]
    parts = results["parts"]
    for name, part in parts.items():
        if "error" in part:
            rows.append(f"| {name} | - | - | - | - | - | - | - | FAILED: {part['error'][:120]} |")
    def seconds(value):  # a floor needs the floor part
        return f"{value} s" if value else "-"

    f = parts.get("floor", {})
    if "copy_GBps" in f:
        rows.append(f"| floor | device | - | - | - | - | - | - | copy {f['copy_GBps']} GB/s, matmul "
                    f"{f['matmul_TFLOPs']} TFLOP/s, {f['params'] / 1e9:.3f} B params |")
    e = parts.get("eval", {})
    if "fast" in e:
        ratio = f"{e['floor_s'] / e['fast']['wall_s']:.2f}" if e["floor_s"] else "-"
        note = (f"{e['prompts']} x {e['new_tokens']} tok, {e['source']}, {e['batches']} batches of "
                f"{e['batch_width']} rows (plain generate: {e['batch_size']}), {e['greedy_match']} (mean common prefix "
                f"{e['greedy_common_prefix']} tok); wall incl. load "
                f"({e.get('load', 'built in memory')}) {e['load_s']} s; generation alone {e['speedup_generate']}x")
        rows.append(f"| eval | generation.py | {e['fast']['wall_s']} s wall | {e['fast']['tokens_per_s']} | - | "
                    f"{e['speedup_wall']}x | {seconds(e['floor_s'])} | {ratio} | {note} |")
        p = e["plain"]
        extra = (f"EXTRAPOLATED from {p['measured_prompts']} prompts ({p['measured_s']} s)" if p["extrapolated"]
                 else "measured in full")
        plain_ratio = f"{e['floor_s'] / p['wall_s']:.2f}" if e["floor_s"] else "-"
        rows.append(f"| eval | plain generate | {p['wall_s']} s wall | {p['tokens_per_s']} | - | 1x | {seconds(e['floor_s'])} | "
                    f"{plain_ratio} | {extra} |")
    for variant in ("full", "lora"):
        g = parts.get(f"grpo_{variant}", {})
        for path in ("fast", "stock"):
            r = g.get(path)
            if not r:
                continue
            if "error" in r:
                rows.append(f"| grpo {variant} | {path} | - | - | - | - | - | - | FAILED: {r['error'][:120]} |")
                continue
            speed = f"{g['speedup']}x" if path == "fast" and "speedup" in g else "1x" if path == "stock" else "-"
            ratio = f"{r['floor_s'] / r['step_s']:.2f}" if r.get("floor_s") else "-"
            rows.append(f"| grpo {variant} | {r['trainer']} | {r['step_s']} s/step (median) | "
                        f"{r['completion_tokens_per_s']} | {r['peak_gib']} | {speed} | {seconds(r.get('floor_s'))} | "
                        f"{ratio} | "
                        f"{len(r['steps_s'])} steps, {r.get('step_min_s')}-{r.get('step_max_s')} s; first (incl. warm-up) "
                        f"{r['first_step_s']} s" + (f"; sampling {r['generate_s']} s/step" if "generate_s" in r else "")
                        + " |")
    s = parts.get("sft", {})
    if "tokens_per_s" in s:
        ratio = f"{s['tokens_per_s'] / s['floor_tokens_per_s']:.2f}" if s["floor_tokens_per_s"] else "-"
        rows.append(f"| sft (LoRA) | {s['trainer']} | {s['step_s']} s/step | {s['tokens_per_s']} | {s['peak_gib']} | "
                    f"1x | {s['floor_tokens_per_s']} tok/s | {ratio} | same code as stock SFTTrainer |")
    return "\n".join(rows)


def save(results, args):
    results["table"] = table(results)
    atomic_write_json(args.out, results)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(f"# bench.py on {args.device_name}\n\n{results['table']}\n")


def main(argv=None):
    args = parse_args(argv)
    tokenizer = load_tokenizer(args.tokenizer if args.model in ("qwen1.5b", "tiny") else args.model)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    results = {"meta": {"device": args.device_name, "model": args.model, "dtype": str(args.dtype), "tf32": args.tf32,
                        "argv": sys.argv[1:] if argv is None else list(argv), "versions": library_versions(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, "parts": {}}
    floor = None
    jobs = [("floor", lambda: bench_floor(args, tokenizer))] if "floor" in parts else []
    if "eval" in parts:
        jobs.append(("eval", lambda: bench_eval(args, tokenizer, floor)))
    for variant in args.grpo_variants.split(",") if "grpo" in parts else []:
        jobs.append((f"grpo_{variant}", lambda lora=variant == "lora": grpo_pair(args, tokenizer, floor, lora)))
    if "sft" in parts:
        jobs.append(("sft", lambda: bench_sft(args, tokenizer, floor)))
    for name, job in jobs:
        print(f"--- {name}", flush=True)
        start = time.perf_counter()
        try:
            results["parts"][name] = job()
        except Exception as e:  # one shot on the GPU: record it and go on with the next part
            import traceback

            traceback.print_exc()
            results["parts"][name] = {"error": f"{type(e).__name__}: {e}"}
            cleanup()
        results["parts"][name]["part_s"] = round(time.perf_counter() - start, 1)
        print(f"--- {name}: {results['parts'][name]['part_s']} s", flush=True)
        if name == "floor" and "error" not in results["parts"][name]:
            floor = results["parts"]["floor"]
        save(results, args)
    print(results["table"])
    return results


def grpo_pair(args, tokenizer, floor, lora):
    pair = {}
    for path in args.grpo_paths.split(","):
        try:
            pair[path] = bench_grpo(args, tokenizer, floor, lora, fast=path == "fast")
        except Exception as e:
            import traceback

            traceback.print_exc()
            pair[path] = {"error": f"{type(e).__name__}: {e}"}
            cleanup()
    if "step_s" in pair.get("fast", {}) and "step_s" in pair.get("stock", {}):
        pair["speedup"] = round(pair["stock"]["step_s"] / pair["fast"]["step_s"], 2)
    return pair


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
