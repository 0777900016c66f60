"""Supervised fine-tuning (LoRA, or every weight with --use_peft false) on the train split of data.json; the loss
covers only the response.

    python sft.py --model smollm2-135m --num_train_epochs 1 --output_dir outputs/sft-smollm2   # CPU smoke run
    python sft.py --output_dir outputs/sft-qwen            # Qwen2.5-1.5B-Instruct with the study's settings (GPU)
    python sft.py --config sft.yaml --loss-on-prompt       # flags from YAML; ablation: loss on the prompt too
    python sft.py --model smollm2-135m --use_peft false --learning_rate 2e-4 --train_slice 0:3000 \
        --output_dir outputs/s0          # full fine-tuning of a small model on the first 3000 train items

Defaults follow the original study: LoRA r=64, alpha=64 on all seven projections, lr 5e-4, 3 epochs,
batch 16, warmup 10%, weight decay 0.01, max length 768, seed 3407. One deliberate change: the loss is
computed on the assistant response only. The original also trained on the prompt, which preceded its
GSM8K collapse; --loss-on-prompt restores that behaviour for the ablation. The eval loss is measured on
the val split; the test splits are never read. On a CUDA GPU with Unsloth installed the model is loaded
with Unsloth's FastLanguageModel (--load_in_4bit for QLoRA); elsewhere, or with --no_unsloth (or the environment
variable USE_UNSLOTH=0, which notebooks set), with transformers + PEFT. Both paths save a standard PEFT adapter.

The output dir holds the adapter, the tokenizer, run_config.json, versions.json, train_log.jsonl (one JSON
dict per log: loss, eval_loss, learning_rate ...), training_manifest.json (the trained items, for the eval
scripts' contamination guard) and checkpoints for --resume. Every SFTConfig / ModelConfig flag works too:
`python sft.py --help`.
"""

import os
import sys
from dataclasses import asdict, dataclass, field

import modeling  # imports nothing from the HF stack

# Unsloth patches transformers/TRL/PEFT when imported, so it is chosen before they load: USE_UNSLOTH=0/1 (unset:
# where usable; the notebooks set it in their config cell), or --no_unsloth on this script's command line
modeling.import_unsloth(sys.argv[1:] if __name__ == "__main__" else ())

import torch  # noqa: E402  (this and the imports below: after the Unsloth choice, on purpose)
from trl import ModelConfig, SFTConfig, SFTTrainer  # noqa: E402

import training  # noqa: E402
from callbacks import JsonlLogCallback  # noqa: E402
from records import load_split  # noqa: E402
from training import ModelArguments, select_train  # noqa: E402
from utils import MAX_NEW_TOKENS, SFT_MAX_LENGTH, UserError, cli, is_main_process  # noqa: E402

# ----------------------------------------------------------------------------
# Arguments


@dataclass
class ScriptArguments(training.RunArguments):
    data: str = field(default="data.json", metadata={
        "help": "data.json written by data.py: trains on its train split, eval loss on its val split."})
    loss_on_prompt: bool = field(default=False, metadata={
        "help": "Also train on the prompt tokens, as the original study did (ablation). Default: response only."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in --output_dir."})


@dataclass
class SFTArguments(SFTConfig):
    """TRL's SFTConfig with the original study's hyperparameters as defaults."""

    output_dir: str = field(default="outputs/sft", metadata={"help": "Where the adapter, logs and checkpoints go."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate (study: 5e-4)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs over the train split (study: 3)."})
    per_device_train_batch_size: int = field(default=16, metadata={
        "help": "Batch size per device (study: 16). If out of memory, halve it and double "
                "--gradient_accumulation_steps."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Eval batch size per device."})
    warmup_steps: float = field(default=0.1, metadata={
        "help": "Linear warmup: steps, or a fraction of all steps if < 1 (study: 0.1)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (study: 0.01)."})
    max_length: int | None = field(default=SFT_MAX_LENGTH, metadata={
        "help": "Longest tokenized prompt + response; longer ones are cut at the end (study: 768)."})
    seed: int = field(default=3407, metadata={"help": "Seed for LoRA init, shuffling and dropout (study: 3407)."})
    logging_steps: float = field(default=1, metadata={"help": "Log loss and learning rate every N steps."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to compute the val loss: no|steps|epoch."})
    eval_steps: float | None = field(default=0.1, metadata={
        "help": "Val loss every N steps, or every fraction of the run if < 1."})
    save_steps: float = field(default=0.1, metadata={
        "help": "Checkpoint (for --resume) every N steps, or every fraction of the run if < 1."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 mixed precision; unset = on with a bf16 GPU (fp16 on older GPUs), off on CPU (slow there)."})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "Recompute activations to save memory; unset = on with CUDA, off on CPU (memory is not "
                "short there and it costs ~30%% more compute)."})

    def __post_init__(self):
        cuda = torch.cuda.is_available()
        if self.bf16 is None and not self.fp16:  # mixed precision on GPUs, as Unsloth's notebooks set it
            self.bf16 = cuda and torch.cuda.is_bf16_supported()
            self.fp16 = cuda and not self.bf16
        if self.gradient_checkpointing is None:
            self.gradient_checkpointing = cuda
        self.dataloader_pin_memory &= cuda  # pinning needs an accelerator (else a warning per epoch)
        super().__post_init__()


def parse_args(argv=None):
    """(script_args, model_args, training_args) from argv (default sys.argv; `--config x.yaml` works) or a dict."""
    script_args, model_args, training_args = training.parse_args((ScriptArguments, ModelArguments, SFTArguments), argv)
    if training_args.completion_only_loss is None:
        training_args.completion_only_loss = not script_args.loss_on_prompt
    elif training_args.completion_only_loss == script_args.loss_on_prompt:
        raise UserError("--completion_only_loss contradicts --loss-on-prompt; use only --loss-on-prompt")
    if training_args.resume_from_checkpoint:
        raise UserError("use --resume: it continues from the last checkpoint in --output_dir")
    training.check_run_args(script_args)
    training.check_sizes(training_args, max_length=training_args.max_length)
    return script_args, model_args, training_args


def describe(script_args, model_args, training_args):
    """The resolved config in three lines (run_config.json keeps every field)."""
    path = "unsloth" if training.uses_unsloth(model_args) else "transformers + peft"
    return "\n".join([
        f"sft: {asdict(script_args)}",
        f"model ({path}): {training.changed_fields(model_args, ModelConfig)}",
        f"training (changed from TRL's SFTConfig): {training.changed_fields(training_args, SFTConfig)}",
    ])


# ----------------------------------------------------------------------------
# Stages


def load_datasets(data_path, with_val=True, train_slice=None, val_hint=""):
    """(train records, train dataset, val records, val dataset or None) as TRL prompt/completion conversational rows.

    Only the train split (or its --train_slice) is trained on and only val is evaluated on; the test splits are
    never loaded.
    """
    train_records = select_train(load_split(data_path, "train"), train_slice)
    columns = ("prompt", "completion")
    train_ds = training.conversational_dataset(train_records, columns)
    val_records = load_split(data_path, "val", val_hint) if with_val else []
    val_ds = training.conversational_dataset(val_records, columns) if with_val else None
    return train_records, train_ds, val_records, val_ds


def build_model(model_args, training_args, init_adapter=None):
    """(model, tokenizer, peft_config): Unsloth's model with LoRA attached, the base model + LoraConfig, the
    --init_adapter LoRA loaded trainable, or (--use_peft false) the model to train every weight of."""
    return training.load_model_for_run(model_args, training_args.max_length, training_args.seed,
                                       training_args.gradient_checkpointing, init_adapter)


def build_trainer(model, tokenizer, peft_config, training_args, train_ds, val_ds=None):
    training.patch_trl_logprobs_for_cpu(training_args.device)  # off CUDA only
    return SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[JsonlLogCallback(training_args.output_dir)],
    )


def train(trainer, checkpoint=None):
    """Train (from `checkpoint` if given); a NaN/inf loss stops it with callbacks.TrainingDiverged."""
    training.continue_token_count(trainer, checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.is_world_process_zero():
        print(f"trained {trainer.state.global_step} steps in {result.metrics['train_runtime']:.0f} s, mean train "
              f"loss {training.mean_train_loss(trainer.args.output_dir):.4f} (all steps, from {training.LOG_NAME})")
    return result


def save(trainer, tokenizer, train_records, script_args, model_args, training_args):
    output_dir = training_args.output_dir
    config = training.run_config(script_args, model_args, training_args)
    training.finish_run(trainer, tokenizer, output_dir, config, train_records, script_args.data,
                        script_args.init_adapter or model_args.model_name_or_path)
    if trainer.is_world_process_zero():
        what = "adapter" if model_args.use_peft else "model"
        print(f"saved {what}, tokenizer, config, log and manifest to {output_dir}")
    return output_dir


def main(argv=None):
    script_args, model_args, training_args = parse_args(argv)
    if training.finished_run(training_args.output_dir, script_args.resume, training_args.max_steps):
        return training_args.output_dir
    with_val = training_args.eval_strategy != "no" or script_args.val_steps > 0
    flags = [f for f, on in (("--eval_strategy no", training_args.eval_strategy != "no"),
                             ("--val_steps 0", script_args.val_steps > 0)) if on]
    train_records, train_ds, val_records, val_ds = load_datasets(script_args.data, with_val, script_args.train_slice,
                                                                 f" (evaluation needs it); pass {' '.join(flags)} to train without it")
    checkpoint = training.prepare_output_dir(script_args, training_args, train_records,
                                             script_args.init_adapter or model_args.model_name_or_path)
    if is_main_process():  # one copy of the config, not one per process
        print(describe(script_args, model_args, training_args))
        print(f"data: {len(train_ds)} train, {len(val_records)} val items from {script_args.data}")
    model, tokenizer, peft_config = build_model(model_args, training_args, script_args.init_adapter)
    trainer = build_trainer(model, tokenizer, peft_config, training_args, train_ds,
                            val_ds if training_args.eval_strategy != "no" else None)
    training.add_run_callbacks(trainer, script_args, 6, MAX_NEW_TOKENS, val_records[:script_args.val_limit],
                               script_args.data, cross_entropy_loss=True)
    train(trainer, checkpoint)
    return save(trainer, tokenizer, train_records, script_args, model_args, training_args)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(main)
