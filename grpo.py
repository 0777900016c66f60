"""GRPO with LoRA on the train split of data.json, rewarded by the same parser the eval scripts score with.

    python grpo.py --output_dir outputs/grpo-qwen            # Qwen2.5-1.5B-Instruct, the study's settings (GPU)
    python grpo.py --init-adapter outputs/sft-qwen --output_dir outputs/sft-grpo-qwen   # GRPO from an SFT adapter
    python grpo.py --model smollm2-135m --output_dir outputs/grpo-cpu --max_steps 5 --num_generations 4 \\
        --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --max_completion_length 64 \\
        --val_steps 5 --val_limit 8                          # CPU smoke run: 2 prompts x 4 completions per step

Rewards (utils.py): correctness is 1 when the strict parser reads the right solution, --wrong_credit (0.1)
when the answer is well-formed but wrong, else 0; format grades the <think>/<answer> tags (0.25 a tag, 1 for
the strict format), so a model that never formats still gets a signal. --reward_weights weighs them.

Defaults follow the original study: LoRA r=64/alpha=64 on all 7 projections, lr 3e-5, 6 completions per
prompt, 384 completion tokens, temperature 0.7, beta 0.04, loss `grpo`, 1 epoch, 8 prompts x 6 completions
per optimizer step. TRL counts completions, not prompts, in per_device_train_batch_size, so "8 prompts x 6"
is 6 completions per micro-batch x 8 accumulation steps (the study's "batch 8" under Unsloth, which raises
the batch to a multiple of num_generations). Only the train split reaches the trainer (the original study
trained on 88 of its 100 test items); validation accuracy (greedy, strict and lenient) on the val split
every --val_steps steps is logged next to the rewards. Generation: Unsloth + vLLM (fast_inference) on a
CUDA GPU with both installed; TRL's vLLM colocate mode when only vLLM is; TRL's own generate otherwise, or
with --fast_generation generation.py's static-cache, CUDA-graphed decode on the live policy (bench.py measures it).

The output dir holds the adapter, tokenizer, run_config.json, versions.json, train_log.jsonl (per step:
rewards/<function>/mean, frac_reward_zero_std, completions/mean_length, kl, loss, generate_seconds, val_accuracy ...),
training_manifest.json and checkpoints for --resume. Every GRPOConfig / ModelConfig flag works: --help.
"""

import importlib.util
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import modeling  # imports nothing from the HF stack

# Unsloth patches transformers/TRL/PEFT when imported, so it is chosen before they load: USE_UNSLOTH=0/1 (unset:
# where usable; the notebooks set it in their config cell), or --no_unsloth on this script's command line
modeling.import_unsloth(sys.argv[1:] if __name__ == "__main__" else ())

import torch  # noqa: E402  (this and the imports below: after the Unsloth choice, on purpose)
from transformers import TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer, ModelConfig  # noqa: E402

import training  # noqa: E402
from callbacks import JsonlLogCallback  # noqa: E402
from records import load_split  # noqa: E402
from training import ModelArguments, prepare_output_dir  # noqa: E402
from utils import (GRPO_MAX_COMPLETION_LENGTH, GRPO_MAX_PROMPT_TOKENS, WRONG_BUT_WELL_FORMED_CREDIT,  # noqa: E402
                   UserError, cli, correctness_reward, format_reward, is_main_process, process_info, trace_reward)

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
FAST_GENERATION_MODEL_TYPES = ("llama", "qwen2")  # what fast_grpo's equality tests run (SmolLM2, Qwen2.5)

# ----------------------------------------------------------------------------
# Arguments


REWARDS = ("correctness", "format", "trace")


@dataclass
class ScriptArguments(training.RunArguments):
    data: str = field(default="data.json", metadata={
        "help": "data.json written by data.py: trains on its train split, validates on its val split."})
    rewards: list[str] = field(default_factory=lambda: ["correctness", "format"], metadata={
        "help": "Reward functions (utils.py), weighted by --reward_weights: correctness (1 correct, --wrong_credit "
                "well-formed but wrong, else 0), format (the <think>/<answer> tags, graded; constant once SFT "
                "taught the format, so leave it out after SFT), trace (1 when every line of the worked solution "
                "checks, traces.check_trace: a process reward)."})
    wrong_credit: float = field(default=WRONG_BUT_WELL_FORMED_CREDIT, metadata={
        "help": "Correctness reward for a well-formed but wrong answer (study: 0.1; 0 = correct answers only)."})
    partial_credit: bool = field(default=False, metadata={
        "help": "Linear systems: a well-formed answer that is not fully right earns the share of variables it "
                "got right instead of --wrong_credit."})
    no_signal_warn_steps: int = field(default=8, metadata={
        "help": "Warn once when this many steps in a row had no group with different rewards (no learning signal)."})
    val_steps: int = field(default=16, metadata={
        "help": "Greedy val accuracy every N optimizer steps, before the first and after the last (0 = off)."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in --output_dir."})
    fast_generation: bool | None = field(default=None, metadata={
        "help": "Sample completions with generation.py's decode loop on the live policy (static cache + CUDA "
                "graphs) instead of TRL's model.generate. Unset = on with one CUDA GPU where its loss/gradient "
                "equality tests cover the setting (Llama/Qwen2 models, no vLLM, no Unsloth, one process, no 4-/8-bit "
                "weights), else off with one warning saying why; false = TRL's generate. On a GPU the training "
                "steps also run fused RMSNorm kernels. The static cache needs the weights in the mixed precision's "
                "dtype (the --dtype default); otherwise it warns and decodes with the dynamic cache."})
    compile_decode: bool = field(default=True, metadata={
        "help": "With fast generation on a GPU: compile the recorded decode step with torch.compile (once at the "
                "first step, and again only if longer prompts grow the cache; then fewer kernels per token; a failed "
                "compile falls back to the eager step with a warning). false records the eager step."})
    compile_layers: bool = field(default=False, metadata={
        "help": "With fast generation on a GPU: the training step (loss forwards, backwards, gradient "
                "checkpointing's recompute) runs the whole decoder stack through one torch.compile graph (dynamic "
                "sequence length) and attention without cuDNN's kernel (which builds a plan on the host for each "
                "new length). Faster steps after a first step of several minutes (compile): pays in long runs only "
                "(results/bench/NOTES.md). Not with Unsloth's patched layers; untested with several processes, "
                "DeepSpeed and 4-bit weights. Off: eager layers with fused RMSNorm kernels."})


@dataclass
class GRPOArguments(GRPOConfig):
    """TRL's GRPOConfig with the original study's hyperparameters as defaults."""

    output_dir: str = field(default="outputs/grpo", metadata={"help": "Where the adapter, logs and checkpoints go."})
    learning_rate: float = field(default=3e-5, metadata={"help": "Peak learning rate (study: 3e-5)."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs over the train split (study: 1)."})
    num_generations: int | None = field(default=6, metadata={
        "help": "Completions per prompt, the group whose rewards are compared (study: 6)."})
    per_device_train_batch_size: int = field(default=6, metadata={
        "help": "COMPLETIONS per micro-batch (TRL counts completions, not prompts): 6 = one prompt's group. "
                "Completions per step = this x gradient_accumulation_steps; it must divide by num_generations."})
    gradient_accumulation_steps: int = field(default=8, metadata={
        "help": "Micro-batches per optimizer step: 8 x 6 completions = 8 prompts x 6 generations (study)."})
    max_completion_length: int | None = field(default=GRPO_MAX_COMPLETION_LENGTH, metadata={
        "help": "Tokens per completion; longer ones are cut (study: 384)."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of the completions (study: 0.7)."})
    beta: float = field(default=0.04, metadata={
        "help": "KL penalty towards the starting model (study: 0.04; 0 skips the reference model)."})
    loss_type: str = field(default="grpo", metadata={
        "help": "grpo (study: per-sequence mean), dapo (TRL's default), dr_grpo or bnpo.", "choices": LOSS_TYPES})
    reward_weights: list[float] | None = field(default_factory=lambda: [1.0, 0.5], metadata={
        "help": "One weight per --rewards entry; default [correctness 1, format 0.5]: a correct answer in the strict "
                "format scores 1.5, a well-formed wrong one 0.6, so correctness dominates once the format is learnt."})
    seed: int = field(default=3407, metadata={"help": "Seed for LoRA init, shuffling and sampling (study: 3407)."})
    logging_steps: float = field(default=1, metadata={"help": "Log rewards, loss and KL every N steps."})
    save_steps: float = field(default=8, metadata={"help": "Checkpoint (for --resume) every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    num_completions_to_print: int | None = field(default=2, metadata={
        "help": "Samples --log_completions prints at each log step."})
    use_vllm: bool | None = field(default=None, metadata={
        "help": "Generate with vLLM; unset = when vLLM is installed and a CUDA GPU is present."})
    vllm_mode: str = field(default="colocate", metadata={
        "help": "colocate: vLLM shares the training GPU (one GPU); server: a `trl vllm-serve` process."})
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 mixed precision; unset = on with a bf16 GPU (fp16 on older GPUs), off on CPU (slow there)."})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "Recompute activations to save memory; unset = on with CUDA, off on CPU."})

    def __post_init__(self):
        cuda = torch.cuda.is_available()
        if self.bf16 is None and not self.fp16:  # mixed precision on GPUs, as sft.py and Unsloth's notebooks
            self.bf16 = cuda and torch.cuda.is_bf16_supported()
            self.fp16 = cuda and not self.bf16
        if self.gradient_checkpointing is None:
            self.gradient_checkpointing = cuda
        if self.use_vllm is None:
            self.use_vllm = cuda and importlib.util.find_spec("vllm") is not None
        check_grpo_args(self)
        super().__post_init__()


def check_grpo_args(args):
    """Catch the common mistakes before TRL does, with a message that says how to fix them."""
    if args.loss_type not in LOSS_TYPES:
        raise UserError(f"--loss_type {args.loss_type!r}: choose one of {', '.join(LOSS_TYPES)}")
    if args.num_generations is None or args.num_generations < 2:
        raise UserError("--num_generations must be at least 2: GRPO compares completions of the same prompt")
    steps = args.steps_per_generation or args.gradient_accumulation_steps
    processes = process_info()[1]  # TRL's generation batch spans every process
    completions = args.generation_batch_size or args.per_device_train_batch_size * processes * steps
    if completions % args.num_generations:
        raise UserError(
            f"{completions} completions per generation batch (per_device_train_batch_size "
            f"{args.per_device_train_batch_size} x {processes} processes x {steps} steps) is not a multiple of "
            f"--num_generations "
            f"{args.num_generations}: TRL counts completions, not prompts. For P prompts x {args.num_generations} "
            f"generations per step pass --per_device_train_batch_size {args.num_generations} "
            f"--gradient_accumulation_steps P")
    if not args.temperature > 0:
        raise UserError("--temperature must be > 0: GRPO needs different completions of one prompt")
    if args.resume_from_checkpoint:
        raise UserError("use --resume: it continues from the last checkpoint in --output_dir")


def parse_args(argv=None):
    """(script_args, model_args, training_args) from flags, `--config x.yaml`, or a dict (notebooks)."""
    script_args, model_args, training_args = training.parse_args(
        (ScriptArguments, ModelArguments, GRPOArguments), argv)
    if not 0 <= script_args.wrong_credit <= 1:
        raise UserError("--wrong_credit must be between 0 and 1 (the reward of a correct answer)")
    training.check_run_args(script_args)
    training.check_sizes(training_args, max_completion_length=training_args.max_completion_length)
    unknown = [r for r in script_args.rewards if r not in REWARDS]
    if unknown or not script_args.rewards:
        raise UserError(f"--rewards {' '.join(script_args.rewards)}: choose from {', '.join(REWARDS)}")
    if training_args.reward_weights is None or len(training_args.reward_weights) != len(script_args.rewards):
        raise UserError(f"--reward_weights takes one number per reward ({', '.join(script_args.rewards)}), e.g. "
                        f"--reward_weights {' '.join(['1'] * len(script_args.rewards))}")
    if script_args.compile_layers and script_args.fast_generation is False:
        raise UserError("--compile_layers compiles the training step of --fast_generation's trainer: drop "
                        "--fast_generation false")
    if script_args.val_steps and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        raise UserError("validation generates with the whole model, which ZeRO-3 splits across GPUs: "
                        "pass --val_steps 0 (or use ddp.yaml / zero2.yaml)")
    return script_args, model_args, training_args


def describe(script_args, model_args, training_args):
    """The resolved config in a few lines (run_config.json keeps every field)."""
    path = "unsloth" if training.uses_unsloth(model_args) else "transformers + peft"
    backend = ("vLLM" if training_args.use_vllm else "transformers generate" if script_args.fast_generation is False
               else "generation.py (--fast_generation)" if script_args.fast_generation
               else "generation.py on one CUDA GPU where it applies, else transformers generate")
    steps = training_args.steps_per_generation
    return "\n".join([
        f"grpo: {asdict(script_args)}",
        f"model ({path}, generation: {backend}): {training.changed_fields(model_args, ModelConfig)}",
        f"training (changed from TRL's GRPOConfig): {training.changed_fields(training_args, GRPOConfig)}",
        f"per step: {training_args.generation_batch_size // training_args.num_generations} prompts x "
        f"{training_args.num_generations} completions, in {steps} micro-batches of "
        f"{training_args.per_device_train_batch_size}",
    ])


# ----------------------------------------------------------------------------
# Data and rewards


def load_data(script_args):
    """(train records, train dataset, val records). Only the train split (or its --train_slice) becomes a dataset."""
    train_records = training.select_train(load_split(script_args.data, "train"), script_args.train_slice)
    train_ds = training.conversational_dataset(train_records, columns=("prompt", "answer"))
    val_records = (load_split(script_args.data, "val", " (--val_steps needs it); pass --val_steps 0 to train without it")
                   if script_args.val_steps else [])
    return train_records, train_ds, val_records[:script_args.val_limit]


def reward_functions(wrong_credit, names=("correctness", "format"), partial=False):
    """The chosen rewards in TRL's signature. Named functions: TRL logs rewards/<__name__>/mean."""

    def correctness_reward_fn(completions, answer, **kwargs):
        return correctness_reward(completions, answer, wrong_credit=wrong_credit, partial=partial)

    correctness_reward_fn.__name__ = "correctness_reward"
    return [{"correctness": correctness_reward_fn, "format": format_reward, "trace": trace_reward}[n] for n in names]


class NoSignalWarning(TrainerCallback):
    """Warn once when `steps` steps in a row had no group whose rewards differ: GRPO's advantages are then all 0
    and nothing is learnt (TRL logs the share as frac_reward_zero_std)."""

    def __init__(self, steps):
        self.steps, self.run, self.warned = steps, 0, False

    def on_log(self, args, state, control, logs=None, **kwargs):
        share = (logs or {}).get("frac_reward_zero_std")
        if share is None or self.warned or not self.steps:
            return
        self.run = self.run + 1 if share >= 1.0 else 0
        if self.run >= self.steps and state.is_world_process_zero:
            self.warned = True
            print(f"warning: no learning signal for {self.run} steps (every group's rewards were equal): start from "
                  "an SFT model (--model_name_or_path or --init_adapter), use --partial_credit, or raise "
                  "--num_generations")


# ----------------------------------------------------------------------------
# Model, validation, trainer


def build_model(script_args, model_args, training_args):
    """(model, tokenizer, peft_config): a fresh LoRA, --init_adapter loaded trainable, or every weight."""
    kwargs = {}
    if training.uses_unsloth(model_args) and training_args.use_vllm:
        # fast_inference: Unsloth runs vLLM in this process, sharing the LoRA weights
        kwargs = dict(fast_inference=True, gpu_memory_utilization=training_args.vllm_gpu_memory_utilization)
    return training.load_model_for_run(model_args, GRPO_MAX_PROMPT_TOKENS + training_args.max_completion_length,
                                       training_args.seed, training_args.gradient_checkpointing,
                                       script_args.init_adapter, **kwargs)


def fast_generation_blocker(model, training_args):
    """Why generation.py's fast path should not sample here, or None where its equality tests cover the setting."""
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    if training_args.use_vllm:
        return "vLLM generates"
    from generation import is_unsloth_patched  # on a GPU only: generation.py registers its attention
    if is_unsloth_patched(model):
        return "Unsloth's patched layers"
    if process_info()[1] > 1:
        return "several processes"
    base = getattr(model, "get_base_model", lambda: model)()
    if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
        return "4-/8-bit weights"
    model_type = getattr(base.config, "model_type", None)
    if model_type not in FAST_GENERATION_MODEL_TYPES:
        return f"model type {model_type!r} is not among the tested {', '.join(FAST_GENERATION_MODEL_TYPES)}"
    return None


def use_fast_generation(model, script_args, training_args):
    """--fast_generation as given, or (unset) on where it applies, with one warning on a GPU where it does not."""
    if script_args.fast_generation is not None:
        return script_args.fast_generation
    blocker = fast_generation_blocker(model, training_args)
    if blocker and blocker != "no CUDA GPU":
        warnings.warn(f"fast generation off ({blocker}): TRL's generate samples the completions (slower); "
                      "--fast_generation true forces it, false silences this")
    return blocker is None


def build_trainer(model, tokenizer, peft_config, script_args, training_args, train_ds, val_records=()):
    training.patch_trl_logprobs_for_cpu(training_args.device)  # off CUDA only
    fast = use_fast_generation(model, script_args, training_args)
    trainer_class = GRPOTrainer
    if fast:  # imported only when chosen: it overrides a TRL-internal hook
        from fast_grpo import FastGenerationGRPOTrainer as trainer_class
    trainer = trainer_class(
        model=model,
        reward_funcs=reward_functions(script_args.wrong_credit, script_args.rewards, script_args.partial_credit),
        args=training_args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[JsonlLogCallback(training_args.output_dir)],
    )
    if fast:
        trainer.compile_decode = script_args.compile_decode and trainer.accelerator.device.type == "cuda"
        trainer.compile_layers = script_args.compile_layers and trainer.accelerator.device.type == "cuda"
    time_generation(trainer)
    # each token is generated (2N) and trained on (6N); a reference model adds one more forward
    flops_per_param = 8 + (2 if training_args.beta else 0)
    training.add_run_callbacks(trainer, script_args, flops_per_param, training_args.max_completion_length,
                               val_records, script_args.data)
    trainer.add_callback(NoSignalWarning(script_args.no_signal_warn_steps))
    return trainer


def time_generation(trainer):
    """Log the sampling's wall seconds as generate_seconds (TRL's profiling reaches only wandb/mlflow): the rest of
    a step is scoring and training, so a slow step says which half to look at. Through TRL's log_metric, so it is
    averaged over processes and over the sampling calls of a logging step (one per optimizer step here)."""
    generate, device = trainer._generate_single_turn, trainer.accelerator.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def timed(*args, **kwargs):
        sync()
        start = time.perf_counter()
        result = generate(*args, **kwargs)
        sync()
        trainer._log_metric("generate_seconds", time.perf_counter() - start)
        return result

    trainer._generate_single_turn = timed


def train(trainer, checkpoint=None):
    """Train (from `checkpoint` if given); a NaN/inf loss stops it with callbacks.TrainingDiverged."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.is_world_process_zero():
        print(f"trained {trainer.state.global_step} steps in {result.metrics['train_runtime']:.0f} s")
    return result


def save(trainer, tokenizer, train_records, script_args, model_args, training_args):
    output_dir = training_args.output_dir
    config = training.run_config(script_args, model_args, training_args)
    training.finish_run(trainer, tokenizer, output_dir, config, train_records, script_args.data,
                        script_args.init_adapter or model_args.model_name_or_path)
    # With --init_adapter and beta > 0, TRL keeps a frozen copy of the starting adapter ("ref") for the KL
    # term, and save_model writes it to ref/: it is the input adapter again, not a result.
    if trainer.is_world_process_zero():
        if script_args.init_adapter and os.path.exists(os.path.join(output_dir, "ref", "adapter_config.json")):
            shutil.rmtree(os.path.join(output_dir, "ref"))
        print(f"saved adapter, tokenizer, config, log and manifest to {output_dir}")
    return output_dir


def main(argv=None):
    script_args, model_args, training_args = parse_args(argv)
    if training.finished_run(training_args.output_dir, script_args.resume, training_args.max_steps):
        return training_args.output_dir
    train_records, train_ds, val_records = load_data(script_args)
    checkpoint = prepare_output_dir(script_args, training_args, train_records,
                                    script_args.init_adapter or model_args.model_name_or_path)
    if is_main_process():  # one copy of the config, not one per process
        print(describe(script_args, model_args, training_args))
        print(f"data: {len(train_ds)} train, {len(val_records)} val items from {script_args.data}")
    model, tokenizer, peft_config = build_model(script_args, model_args, training_args)
    trainer = build_trainer(model, tokenizer, peft_config, script_args, training_args, train_ds, val_records)
    train(trainer, checkpoint)
    return save(trainer, tokenizer, train_records, script_args, model_args, training_args)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(main)
