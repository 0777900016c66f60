"""What sft.py and grpo.py share: model/LoRA options, loading, datasets, resume, the JSONL log, finishing a run
(the TrainerCallbacks that write the log, stop a diverged run, count compute and validate are callbacks.py's).

Importing this module imports no Unsloth: Unsloth patches transformers, TRL and PEFT when it is imported, so
sft.py and grpo.py call modeling.import_unsloth() at their top, before this module and the HF stack load
(USE_UNSLOTH=0/1, unset: where usable; --no_unsloth on their command line). uses_unsloth() then picks its path.

Several GPUs: `accelerate launch --config_file configs/accelerate/ddp.yaml sft.py ...` (or zero2/zero3.yaml).
The Trainer places each process's model on its GPU; only the main process (RANK 0) writes files.
"""

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

from callbacks import LOG_NAME, ComputeBudgetCallback, DivergenceCallback, ValidationCallback
from records import (MANIFEST_NAME, atomic_write_json, library_versions, read_json, read_jsonl, read_manifest,
                     write_manifest)
from utils import LORA_ALPHA, LORA_R, LORA_TARGETS, MAX_NEW_TOKENS, UserError, is_main_process, process_info

from trl import ModelConfig, TrlParser

from modeling import DEFAULT_MODEL, load_pretrained, load_tokenizer, resolve_model


# ----------------------------------------------------------------------------
# Library internals the project touches: each one here, used only on the path named, and checked against these
# versions; tests/test_internals.py fails when one of them is gone or changes its parameters.

CHECKED_AGAINST = {"trl": "1.15.0", "transformers": "5.17.0"}
LIBRARY_INTERNALS = {
    "trl.trainer.utils._ChunkedLogProbFunction":
        "replaced by patch_trl_logprobs_for_cpu when sft.py/grpo.py build a trainer off CUDA",
    "trl.GRPOTrainer._generate_single_turn":
        "overridden by fast_grpo.FastGenerationGRPOTrainer (grpo.py --fast_generation), which also reads the "
        "trainer's use_vllm, use_transformers_continuous_batching, min_p, repetition_penalty attributes",
    "trl.GRPOTrainer.training_step": "wrapped by fast_grpo (fused norms, --compile_layers)",
    "trl.GRPOTrainer.compute_loss": "wrapped by fast_grpo (drops PEFT's repeated input-grad hooks)",
    "transformers.modeling_layers.GradientCheckpointingLayer": "fast_grpo.decoder_stacks finds the decoder stack",
    "transformers.AttentionInterface.register":
        "generation.py registers its one-token GQA attention for the decode (eval scripts, --fast_generation)",
    "transformers.masking_utils.ALL_MASK_ATTENTION_FUNCTIONS": "generation.py: SDPA's masks for that attention",
    "transformers.integrations.sdpa_attention.sdpa_attention_forward": "generation.py falls back to it",
    "transformers.PretrainedConfig._attn_implementation_internal":
        "an instance attribute: generation.py switches it to that attention around the decode",
    "transformers.cache_utils.StaticLayer": "generation.py: which caches a CUDA graph may replay",
    "transformers.PreTrainedModel.enable_input_require_grads":
        "its hook, make_inputs_require_grad: fast_grpo.drop_repeated_input_grad_hooks removes repeated ones by name",
    "transformers.models.llama.modeling_llama.LlamaRMSNorm.forward":
        "generation.fused_rms_norms swaps forwards that match its source for torch's fused RMSNorm (on CUDA)",
}

# ----------------------------------------------------------------------------
# TRL off CUDA


def patch_trl_logprobs_for_cpu(device):
    """Let TRL's trainers run off CUDA (CPU tests, laptops): a plain-torch stand-in for its Triton LM-head kernel.
    A no-op for a trainer on CUDA; sft.py and grpo.py call it as they build their trainer.

    TRL 1.15 computes per-token log-probs with `ChunkedLogProbFunction`, a Triton kernel that needs CUDA tensors
    (and `triton`, absent from CPU wheels), so GRPO and SFT fail on CPU with "'NoneType' object has no attribute
    'apply'". The stand-in computes the same outputs from full logits (memory O(tokens x vocab): fine for small
    models); CUDA tensors still go to the kernel.
    """
    import torch
    import trl.trainer.utils as trl_utils

    kernel = trl_utils._ChunkedLogProbFunction
    if torch.device(device).type == "cuda" or getattr(kernel, "is_torch_fallback", False):
        return

    class LogProbs:
        is_torch_fallback = True

        @staticmethod
        def apply(hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
                  logit_scale=1.0, outputs=("log_probs",)):
            if kernel is not None and hidden.is_cuda:
                return kernel.apply(hidden, weight, bias, targets, temperature, chunk_size,
                                    final_logit_softcapping, logit_scale, outputs)
            z = torch.nn.functional.linear(hidden, weight, bias).float() * logit_scale
            if final_logit_softcapping is not None:
                z = final_logit_softcapping * torch.tanh(z / final_logit_softcapping)
            z = z / temperature
            logp = torch.log_softmax(z, dim=-1)
            log_probs = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            entropy = -(logp.exp() * logp).sum(-1) if "entropy" in outputs else None
            with torch.no_grad():
                log_sum_sq = torch.logsumexp(2 * logp, dim=-1) if "log_sum_sq_probs" in outputs else None
                mean_logits = z.mean(-1) if "mean_logits" in outputs else None
                is_top1 = z.argmax(-1) == targets if "is_top1" in outputs else None
            return log_probs, entropy, log_sum_sq, mean_logits, is_top1

    trl_utils._ChunkedLogProbFunction = LogProbs

# ----------------------------------------------------------------------------
# Model and LoRA options (TRL's ModelConfig with the study's defaults)


@dataclass
class ModelArguments(ModelConfig):
    """TRL's ModelConfig (every --lora_* / --load_in_4bit flag) with the original study's LoRA defaults."""

    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "aliases": ["--model"],
        "help": "Hub id, local directory, or `smollm2-135m` (the embedded SmolLM2-135M-Instruct, CPU-friendly)."})
    dtype: str | None = field(default=None, metadata={
        "help": "Weights dtype; unset = bfloat16 on CUDA (float16 on GPUs without bf16, e.g. T4), float32 on "
                "CPU (bf16 is 2-3x slower on CPUs).",
        "choices": ["auto", "bfloat16", "float16", "float32"]})
    use_peft: bool = field(default=True, metadata={
        "help": "Train a LoRA adapter (default); --use_peft false fine-tunes every weight and saves a model folder "
                "that the eval scripts' --model and the trainers' --model_name_or_path load (small models)."})
    lora_r: int = field(default=LORA_R, metadata={"help": f"LoRA rank (study: {LORA_R}; utils.LORA_R)."})
    lora_alpha: int = field(default=LORA_ALPHA, metadata={
        "help": f"LoRA alpha (study: {LORA_ALPHA}, i.e. scale alpha/r = 1; utils.LORA_ALPHA)."})
    lora_dropout: float = field(default=0.0, metadata={
        "help": "LoRA dropout; 0 keeps Unsloth's fast LoRA kernels usable."})
    lora_target_modules: list[str] | None = field(default_factory=lambda: list(LORA_TARGETS), metadata={
        "help": "Modules that get LoRA (default: all attention and MLP projections, utils.LORA_TARGETS)."})
    unsloth: bool = field(default=True, metadata={
        "help": "Use Unsloth's FastLanguageModel when a CUDA GPU is present and unsloth imports (env USE_UNSLOTH=0 "
                "keeps it out too); --no_unsloth forces plain transformers + PEFT."})

    def __post_init__(self):
        super().__post_init__()
        import torch

        if self.use_peft and (self.lora_r < 1 or self.lora_alpha < 1):
            raise UserError("--lora_r and --lora_alpha must be at least 1")
        if not self.use_peft and (self.load_in_4bit or self.load_in_8bit):
            raise UserError("--use_peft false trains every weight, which 4-/8-bit weights cannot: drop --load_in_4bit")
        if self.dtype is None:  # full fine-tuning keeps fp32 weights: AdamW's small steps vanish in bf16 weights
            cuda = torch.cuda.is_available() and self.use_peft
            self.dtype = "float32" if not cuda else "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if (self.load_in_4bit or self.load_in_8bit) and not torch.cuda.is_available():
            raise UserError("--load_in_4bit/--load_in_8bit need a CUDA GPU (bitsandbytes)")


def uses_unsloth(model_args):
    """Unsloth only when asked for, possible, and already imported by modeling.import_unsloth (importing it late is
    unsafe); its LoRA path only (full fine-tuning takes the plain path)."""
    return model_args.unsloth and model_args.use_peft and "unsloth" in sys.modules


def load_model_for_training(model_args, max_length, seed, gradient_checkpointing=True, **unsloth_kwargs):
    """(model, tokenizer, peft_config) ready for a TRL trainer.

    Unsloth path: FastLanguageModel with its LoRA already attached, so peft_config is None.
    Plain path: the base model, and a LoraConfig that the trainer applies (TRL's get_peft_config).
    `unsloth_kwargs` go to FastLanguageModel.from_pretrained (e.g. fast_inference=True for GRPO).
    """
    import torch
    from trl import get_peft_config, get_quantization_config

    if uses_unsloth(model_args):
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=resolve_model(model_args.model_name_or_path),
            max_seq_length=max_length,
            dtype=getattr(torch, model_args.dtype) if model_args.dtype != "auto" else None,
            load_in_4bit=model_args.load_in_4bit,
            **unsloth_kwargs,
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=model_args.lora_r,
            lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout,
            target_modules=model_args.lora_target_modules,
            bias="none",
            use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,  # "unsloth" offloads to RAM
            use_rslora=model_args.use_rslora,
            random_state=seed,
        )
        return model, tokenizer, None
    quantization = get_quantization_config(model_args)
    model = load_pretrained(
        model_args.model_name_or_path,
        dtype=model_args.dtype if model_args.dtype == "auto" else getattr(torch, model_args.dtype),
        revision=model_args.model_revision,
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization,
        # Quantized weights load straight onto this process's GPU; otherwise the Trainer moves the model
        device_map={"": process_info()[2]} if quantization else None,
    )
    return model, load_tokenizer(model_args.model_name_or_path), get_peft_config(model_args)


# ----------------------------------------------------------------------------
# Flags both trainers add to their script arguments


@dataclass
class RunArguments:
    """Which train items, how much compute, and how often to measure val accuracy (sft.py and grpo.py)."""

    init_adapter: str | None = field(default=None, metadata={
        "help": "Start from this LoRA adapter (e.g. sft.py's output) instead of a fresh LoRA; --lora_* are then "
                "ignored (GRPO: the KL reference is the adapter as loaded). A full fine-tune is started from with "
                "--model_name_or_path DIR instead."})
    train_slice: str | None = field(default=None, metadata={
        "help": "Train on these items of the train split only, START:END (e.g. 0:3000, 3000:): a study's arms "
                "start from one model and train on disjoint parts of one data.json."})
    max_train_flops: float | None = field(default=None, metadata={
        "help": "Stop once training compute reaches this many FLOPs (6N per processed token for SFT, 8N for GRPO "
                "(+2N with a reference model), plus the sampling cost recorded in the data file's meta, if any): "
                "arms compared at equal compute. Unset = no budget."})
    val_steps: int = field(default=0, metadata={
        "help": "Greedy val accuracy every N optimizer steps, before the first and after the last (0 = off)."})
    val_limit: int | None = field(default=None, metadata={"help": "Validate on the first N val items only."})
    val_batch_size: int | None = field(default=None, metadata={
        "help": "Generation batch size for validation (default: generation.py's, 256 on CUDA, 16 on CPU)."})
    val_max_new_tokens: int | None = field(default=None, metadata={
        "help": "Generation budget of a validation answer (default: grpo.py's --max_completion_length; sft.py "
                f"{MAX_NEW_TOKENS}, utils.MAX_NEW_TOKENS)."})


def check_sizes(training_args, **extra):
    """Batch and length flags that must be positive, checked before any model loads (the libraries' own
    errors come later, as tracebacks)."""
    sizes = {"per_device_train_batch_size": training_args.per_device_train_batch_size,
             "gradient_accumulation_steps": training_args.gradient_accumulation_steps, **extra}
    bad = [f"--{k} {v}" for k, v in sizes.items() if v is not None and v < 1]
    if bad:
        raise UserError(f"{', '.join(bad)}: must be at least 1")
    if training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise UserError("--num_train_epochs must be > 0 (or --max_steps > 0): this run would train nothing")


def check_run_args(args):
    if args.val_steps < 0 or (args.val_limit is not None and args.val_limit < 1):
        raise UserError("--val_steps must be >= 0 (0 = off) and --val_limit >= 1")
    if args.val_max_new_tokens is not None and args.val_max_new_tokens < 1:
        raise UserError("--val_max_new_tokens must be >= 1")
    if args.max_train_flops is not None and not args.max_train_flops > 0:
        raise UserError("--max_train_flops must be > 0")
    if args.train_slice:
        parse_slice(args.train_slice)


def count_parameters(model):
    """N of the 6N rule: the model's own weights (a LoRA's few extra weights are not counted)."""
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)


def sampling_flops(data_path):
    """The compute that made a data file's responses (sample.py records it), counted in a run's budget; 0 for
    datasets built in memory (no file, e.g. bench.py)."""
    if not data_path or not os.path.exists(data_path):
        return 0.0
    data = read_json(data_path, "data file")
    meta = data.get("meta", {}) if isinstance(data, dict) else {}
    return float((meta.get("sampling") or {}).get("flops", 0.0)) if isinstance(meta, dict) else 0.0


def add_run_callbacks(trainer, run_args, flops_per_token_per_param, default_max_new_tokens, val_records, data_path,
                      cross_entropy_loss=False):
    """The compute counter (always: the log records each run's compute), with --val_steps val accuracy, and with
    `cross_entropy_loss` (SFT) the divergence guard."""
    n = count_parameters(trainer.model)
    trainer.add_callback(ComputeBudgetCallback(trainer, flops_per_token_per_param * n, run_args.max_train_flops,
                                               sampling_flops(data_path)))
    if cross_entropy_loss:
        trainer.add_callback(DivergenceCallback(trainer.model.config.vocab_size))
    if run_args.val_steps and val_records:
        trainer.add_callback(ValidationCallback(trainer, val_records, run_args.val_steps,
                                                run_args.val_max_new_tokens or default_max_new_tokens,
                                                run_args.val_batch_size))


def load_model_for_run(model_args, max_length, seed, gradient_checkpointing, init_adapter=None, **unsloth_kwargs):
    """load_model_for_training, or with `init_adapter` that LoRA loaded trainable (peft_config None)."""
    if init_adapter and not model_args.use_peft:
        raise UserError("--init_adapter continues a LoRA; with --use_peft false start from a model folder instead")
    if uses_unsloth(model_args) and init_adapter:  # Unsloth loads base + adapter from the adapter dir
        from dataclasses import replace

        rank = max(model_args.lora_r, adapter_config(init_adapter)["r"])
        model_args = replace(model_args, model_name_or_path=init_adapter)
        if unsloth_kwargs.get("fast_inference"):
            unsloth_kwargs["max_lora_rank"] = rank
        return load_model_for_training(model_args, max_length, seed, gradient_checkpointing, **unsloth_kwargs)
    if uses_unsloth(model_args) and unsloth_kwargs.get("fast_inference"):
        unsloth_kwargs["max_lora_rank"] = model_args.lora_r
    model, tokenizer, peft_config = load_model_for_training(model_args, max_length, seed, gradient_checkpointing,
                                                            **unsloth_kwargs)
    if init_adapter and peft_config is not None:  # plain path: the trainer would otherwise add a fresh LoRA
        from modeling import attach_adapter

        adapter_config(init_adapter)
        model, peft_config = attach_adapter(model, init_adapter, merge=False, trainable=True), None
    return model, tokenizer, peft_config


def adapter_config(adapter_dir):
    path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.exists(path):
        raise UserError(f"--init_adapter: no LoRA adapter (adapter_config.json) in {adapter_dir}")
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------
# Data


def conversational_dataset(records, columns=("prompt",)):
    """data.json records -> a datasets.Dataset of TRL conversational rows.

    "prompt" is the [system, user] messages; "completion" is the record's response as one assistant
    message (SFT: a prompt/completion dataset, so TRL computes the loss on the completion only);
    any other column is copied from the record (e.g. "answer" for GRPO's reward functions).
    """
    from datasets import Dataset

    def row(record):
        out = {}
        for name in columns:
            if name == "completion":
                out[name] = [{"role": "assistant", "content": record["response"]}]
            else:
                out[name] = record[name]
        return out

    return Dataset.from_list([row(r) for r in records])


# ----------------------------------------------------------------------------
# Runs: config, resume, log, finish


class _Parser(TrlParser):
    def error(self, message):  # argparse would print the whole usage (hundreds of flags) and exit
        raise UserError(f"{message} (see python {os.path.basename(sys.argv[0])} --help)")


def parse_args(dataclass_types, argv=None):
    """Dataclass instances from flags (default sys.argv), `--config x.yaml`, or a dict of values (notebooks).

    Every mistake (unknown flag or key, bad value, unreadable YAML, a check in a __post_init__) is a UserError.
    """
    import yaml

    parser = _Parser(dataclass_types)
    try:
        if isinstance(argv, dict):
            return parser.parse_dict(argv)
        return parser.parse_args_and_config(argv)
    except (ValueError, OSError, yaml.YAMLError) as e:
        raise UserError(" ".join(str(e).split())) from None


def changed_fields(args, base_cls):
    """Values of a config that differ from a default `base_cls` one, both resolved by __post_init__
    (for a short config print; run_config.json keeps every field)."""
    def as_dict(obj):
        return obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)

    # Trainer configs: same precision, else the base's bf16 default fails its own checks on CPU; same use_cpu,
    # since building one resets accelerate's process-wide state (a CPU DDP run would lose its process group)
    precision = {"bf16": args.bf16, "fp16": args.fp16, "use_cpu": args.use_cpu} if hasattr(args, "bf16") else {}
    default = as_dict(base_cls(**precision))
    return {k: v for k, v in as_dict(args).items() if k in default and v != default[k]}


def run_config(script_args, model_args, training_args):
    """The exact resolved config, as saved to run_config.json."""
    return {"script": dataclasses.asdict(script_args), "model": dataclasses.asdict(model_args),
            "training": training_args.to_dict()}


def save_run_info(output_dir, config):
    """The exact resolved config and library versions, next to the adapter."""
    atomic_write_json(os.path.join(output_dir, "run_config.json"), config)
    atomic_write_json(os.path.join(output_dir, "versions.json"), library_versions())


def last_checkpoint(output_dir):
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def finished_run(output_dir, resume, max_steps):
    """With --resume, True (and a line saying so) when the last checkpoint already reached the run's end (--max_steps
    if given, else the run's own plan): the Trainer would train one step past it and change the saved model."""
    checkpoint = last_checkpoint(output_dir) if resume else None
    if checkpoint is None:
        return False
    state = read_json(os.path.join(checkpoint, "trainer_state.json"), "trainer state")
    end = max_steps if max_steps > 0 else state.get("max_steps", 0)
    if not end or state.get("global_step", 0) < end:
        return False
    if is_main_process():
        print(f"{output_dir} already finished at step {state['global_step']} ({os.path.basename(checkpoint)}); nothing "
              "to resume, nothing changed (raise --max_steps to train further)")
    return True


def mean_train_loss(output_dir):
    """The whole run's mean train loss from its log, each logged loss weighted by the steps it covers (the
    Trainer's own mean covers only the steps since the last --resume)."""
    total, last = 0.0, 0
    for row in read_log(output_dir):
        if isinstance(row.get("loss"), (int, float)):
            total, last = total + row["loss"] * (row["step"] - last), row["step"]
    return total / last if last else float("nan")


def continue_token_count(trainer, checkpoint):
    """TRL's SFTTrainer counts num_tokens from 0 at every train() call: on --resume, start from the checkpoint's count
    so that the log and the compute budget cover the whole run (GRPOTrainer keeps its count in the saved state)."""
    if checkpoint and hasattr(trainer, "_total_train_tokens"):
        history = read_json(os.path.join(checkpoint, "trainer_state.json"), "trainer state").get("log_history", [])
        trainer._total_train_tokens = next((row["num_tokens"] for row in reversed(history) if "num_tokens" in row), 0)


def checkpoint_to_resume(output_dir, resume):
    """The checkpoint `--resume` continues from (None for a fresh run), with the log cut back to it.

    A fresh run refuses a directory that already holds a run, so two runs never mix in one log.
    """
    checkpoint = last_checkpoint(output_dir)
    log_exists = os.path.exists(os.path.join(output_dir, LOG_NAME))
    if not resume:
        if checkpoint or log_exists:
            raise UserError(f"{output_dir} already holds a training run: pass --resume to continue it, "
                            "or choose another --output_dir")
        return None
    if checkpoint is None:
        raise UserError(f"--resume: no checkpoint-* directory in {output_dir}")
    if not is_main_process():  # the log is the main process's
        return checkpoint
    with open(os.path.join(checkpoint, "trainer_state.json")) as f:
        step = json.load(f)["global_step"]
    # Steps after the checkpoint will run again: drop their log lines so the log has no duplicates.
    kept = [r for r in read_log(output_dir) if r["step"] <= step]
    path = os.path.join(output_dir, LOG_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, path)
    return checkpoint


def parse_slice(train_slice):
    """'3000:' -> (3000, None); anything but START:END with non-negative integers is a UserError."""
    parts = train_slice.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() or not p.strip() for p in parts):
        raise UserError(f"--train_slice {train_slice!r}: give START:END with non-negative integers, e.g. 3000: or 0:3000")
    return tuple(int(p) if p.strip() else None for p in parts)


def select_train(records, train_slice):
    """records[START:END] for --train_slice 'START:END' (either may be empty): arms of a study that start from one
    model train on disjoint parts of one train split."""
    if not train_slice:
        return records
    start, end = parse_slice(train_slice)
    chosen = records[start:end]
    if not chosen:
        raise UserError(f"--train_slice {train_slice} selects no train items (the split has {len(records)})")
    return chosen


def write_run_manifest(output_dir, train_records, data_path, start_model=None):
    """The manifest of this run's items, plus those of the model it starts from (a folder with a manifest, e.g.
    an earlier full fine-tune): the eval scripts' guard then covers every item in the model's history."""
    parent = read_manifest(start_model) if start_model and os.path.isdir(start_model) else None
    write_manifest(output_dir, train_records, data_path, parent, start_model)


def prepare_output_dir(script_args, training_args, train_records, start_model=None):
    """The checkpoint to resume from (None for a fresh run); writes the manifest before the first step,
    so even a crashed run's checkpoints are covered by the eval scripts' contamination guard."""
    checkpoint = checkpoint_to_resume(training_args.output_dir, script_args.resume)
    if checkpoint:  # the run's manifest stays what the run trained on: resuming on other items is refused
        before = read_manifest(training_args.output_dir)
        if before is not None and before.get("ids") != [r["id"] for r in train_records]:
            raise UserError(f"--resume: {training_args.output_dir} was trained on other items (its "
                            f"{MANIFEST_NAME}); resume with the same --data and --train_slice, or use a new --output_dir")
    if is_main_process():
        os.makedirs(training_args.output_dir, exist_ok=True)
        write_run_manifest(training_args.output_dir, train_records, script_args.data, start_model)
    return checkpoint


def finish_run(trainer, tokenizer, output_dir, config, train_records, data_path, start_model=None):
    """Adapter (or, full fine-tuning, the model) + tokenizer + run_config.json + versions.json +
    training_manifest.json in output_dir."""
    trainer.save_model(output_dir)  # a PEFT model saves only its adapter; every process calls it (ZeRO-3 gathers)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output_dir)
        save_run_info(output_dir, config)
        write_run_manifest(output_dir, train_records, data_path, start_model)
    from torch import distributed  # loaded already: the trainer ran

    if distributed.is_available() and distributed.is_initialized():
        # every rank: left to interpreter exit, gloo's threads were torn down mid-wait ("terminate called without
        # an active exception" on rank 1, once in a test run)
        distributed.barrier()
        distributed.destroy_process_group()


def read_log(output_dir):
    path = os.path.join(output_dir, LOG_NAME)
    if not os.path.exists(path):
        return []
    return read_jsonl(path)
