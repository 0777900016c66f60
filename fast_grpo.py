"""grpo.py --fast_generation's trainer: TRL's GRPOTrainer with generation.py's decode in its generation hook, and
with --compile_layers the training step's decoder stack compiled (bench.py measures both against stock TRL).

    from fast_grpo import FastGenerationGRPOTrainer   # takes GRPOTrainer's arguments; grpo.build_trainer sets it up

The TRL/transformers internals it relies on are listed in training.LIBRARY_INTERNALS (tests/test_internals.py).
"""

import contextlib
import functools
import warnings

import torch
from transformers.modeling_layers import GradientCheckpointingLayer
from trl import GRPOTrainer

import generation
from generation import generate_all

# ----------------------------------------------------------------------------
# The trainer


class FastGenerationGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with completions sampled by generation.py's decode loop (--fast_generation).

    TRL's plain path calls `model.generate` with a dynamic cache: ~34 ms per decode step at batch 64 for a 1.5B
    model on an H100, so 256 tokens cost ~9 s of every step. Here, on CUDA, one static KV cache and one decode
    step recorded as a CUDA graph serve the whole run (compiled with torch.compile unless --compile_decode
    false, and recorded at the first step). It reads the policy's weights in place; a LoRA is folded into a
    copy of the adapted weights before each generation
    (generation.LoraFold: the base weights are never written, so no bf16 rounding accumulates in them).
    Only the hook that turns prompt ids into completion ids is replaced; rewards, advantages and the loss are
    TRL's own code. vLLM, continuous batching, multi-process runs, images and sampling options our sampler
    lacks (min_p, repetition_penalty, generation_kwargs) fall back to TRL's path.
    On CUDA the training step (loss forward, backward, gradient checkpointing's recompute) is host-bound in eager
    mode (~23k small ops per micro-batch against ~90 ms of GPU work at the bench's shape), so with --compile_layers
    the decoder stack runs through one compiled graph there (compiled_forward), and SDPA skips cuDNN's
    attention, whose host-side plan build for each new sequence length took ~1 s a call; without it, the
    model's Llama-style RMSNorm layers run as torch's fused kernel (generation.fused_rms_norms).
    """

    static_cache = "auto"  # "auto" = on CUDA (True also works on CPU, without a CUDA graph: tests use it)
    compile_decode = False  # torch.compile the decode step (build_trainer: --compile_decode, on CUDA)
    compile_layers = False  # the training step's decoder stack compiled (build_trainer: --compile_layers, on CUDA)
    compile_backend = "inductor"  # CPU tests use aot_eager: dynamo's graphs without Inductor's slow CPU compile
    _decoder = None  # the StaticDecoder kept across steps
    _lora_fold = None  # with it, a generation.LoraFold (None: no LoRA or one that cannot fold)
    _stack_forward_maps = None  # ({stack: compiled forward}, {stack: class forward}), built at the first step
    _compile_fallback = None  # CompileFallback of the compiled stack: set once a compile failed
    _cudnn_attention = None  # whether SDPA may pick cuDNN outside the training step: the decode keeps that
    _warned_dtypes = False  # warned once that mixed precision's dtype differs from the weights'

    def _fast_path_applies(self, images, multimodal_fields):
        return not (self.use_vllm or self.use_transformers_continuous_batching or images or multimodal_fields
                    or self.min_p or self.repetition_penalty != 1.0 or self.args.generation_kwargs
                    or self.accelerator.num_processes > 1)

    def _stack_forwards(self, model):
        """({decoder stack: compiled forward}, {decoder stack: its class's forward}); both empty without
        --compile_layers (or with Unsloth's patched layers). The class forwards serve the decode, which TRL runs
        inside the training step."""
        if self._stack_forward_maps is None:
            on = self.compile_layers and not generation.is_unsloth_patched(model)
            stacks = decoder_stacks(model) if on else []
            self._compile_fallback = fallback = CompileFallback()
            compiled = {m: compiled_forward(m, self.compile_backend, fallback) for m in stacks}
            self._stack_forward_maps = compiled, {m: functools.partial(type(m).forward, m) for m in stacks}
        return self._stack_forward_maps

    def training_step(self, model, inputs, num_items_in_batch=None):
        unwrapped = self.accelerator.unwrap_model(self.model)
        compiled, _ = self._stack_forwards(unwrapped)
        compiled = {} if self._compile_fallback.failed else compiled
        # A compiled stack fuses its own norms; fused-norm forwards inside would be guarded per layer (NOTES v6)
        norms = contextlib.nullcontext() if compiled else generation.fused_rms_norms(unwrapped)
        self._cudnn_attention = torch.backends.cuda.cudnn_sdp_enabled()
        # around TRL's whole step: gradient checkpointing recomputes the layers in the backward the same way
        with norms, generation.replaced_forwards(compiled), cudnn_attention(False if compiled else None):
            return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, *args, **kwargs):
        # after TRL's generation, which re-enables gradient checkpointing and with it one more embedding hook
        drop_repeated_input_grad_hooks(self.accelerator.unwrap_model(self.model))
        return super().compute_loss(model, inputs, *args, **kwargs)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        _, eager = self._stack_forwards(self.accelerator.unwrap_model(self.model))
        with generation.replaced_forwards(eager), cudnn_attention(self._cudnn_attention):
            return self._fast_or_trl_generate(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

    def _fast_or_trl_generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images):
        if not self._fast_path_applies(images, multimodal_fields):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        model = self.accelerator.unwrap_model(self.model)
        drop_repeated_input_grad_hooks(model)  # the first generation: PEFT and the Trainer each added one
        device = self.accelerator.device
        rows = len(prompt_ids)  # TRL repeats each prompt num_generations times: one row per completion
        if self._static_decode_applies(model, device):
            # grow-only, so a step with longer prompts records a new graph at most once per size
            length = generation.cache_length(max(map(len, prompt_ids)), self.max_completion_length)
            if self._decoder is None or self._decoder.length < length or self._decoder.width < rows:
                self._decoder = generation.StaticDecoder(model, rows, length, device, compile=self.compile_decode)
                self._lora_fold = self._lora_fold or generation.LoraFold.of(model)
        seed = int(torch.randint(2**31, (1,)))  # follows the trainer's seeded torch RNG: new every step
        with self._lora_fold.folded() if self._lora_fold else contextlib.nullcontext():  # set with the decoder
            outputs = generate_all(model, self.processing_class, prompt_ids,
                                   max_new_tokens=self.max_completion_length, temperature=self.temperature,
                                   top_p=self.top_p, top_k=self.top_k or 0, batch_size=rows, seed=seed,
                                   progress=False, static_cache=False, decoder=self._decoder, return_ids=True)
        return [out[0]["token_ids"] for out in outputs], None  # ids up to and including EOS, as TRL's path

    def _static_decode_applies(self, model, device):
        """Whether the kept static cache (and its CUDA graph) decodes. Not where mixed precision's dtype is not
        the weights' (fp32 weights under bf16, bf16 under fp16): accelerate runs every forward under autocast,
        whose keys come out of the rotary embedding in the weights' dtype and values in autocast's, and HF's
        StaticCache holds one dtype (index_copy_ fails). The dynamic cache takes both."""
        if not (self.static_cache is True or (self.static_cache == "auto" and device.type == "cuda")):
            return False
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.accelerator.mixed_precision)
        if autocast_dtype in (None, model.dtype):
            return True
        if not self._warned_dtypes:
            self._warned_dtypes = True
            warnings.warn(f"{model.dtype} weights under {autocast_dtype} mixed precision: the fast generation "
                          f"decodes without its static cache (slower); load the model in {autocast_dtype} for it")
        return False


def drop_repeated_input_grad_hooks(model):
    """Keep one of the input embedding's make-inputs-require-grad(s) hooks (they all do the same).

    TRL turns gradient checkpointing off and on around every generation, and in transformers 5.17 each turn-on
    registers one more such hook while the turn-off removes them only for adapters loaded through transformers:
    N steps would run N hooks in every forward, and a compiled decode step's guards (which see the hooks) would
    fail each step: a recompile at every call that the CUDA graph does not skip (each step on CPU, each new
    recording on CUDA), and after 8 the decode runs uncompiled, silently."""
    # The oldest is kept (the same object every step: the compiled decode's guards hold); transformers'
    # `_require_grads_hooks` then names removed ones, so its disable_input_require_grads() leaves this one.
    embedding = model.get_input_embeddings()
    kept = False
    for key, hook in list(embedding._forward_hooks.items()):
        if getattr(hook, "__name__", "").startswith("make_inputs_require_grad"):
            if kept:  # what RemovableHandle.remove() does, without the handle (transformers drops it)
                for hooks in (embedding._forward_hooks, embedding._forward_hooks_with_kwargs,
                              embedding._forward_hooks_always_called):
                    hooks.pop(key, None)
            kept = True


# ----------------------------------------------------------------------------
# The compiled training step (--compile_layers)


@contextlib.contextmanager
def cudnn_attention(enabled):
    """Within: whether SDPA may pick cuDNN's attention (None: as it is)."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    if enabled is not None:
        torch.backends.cuda.enable_cudnn_sdp(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def decoder_stacks(model):
    """The modules that run the decoder layers (Qwen2Model in Qwen2ForCausalLM, also under PEFT). compiled_forward
    assumes a Llama-style stack, which reads input_ids only to embed them."""
    return [m for m in model.modules() if isinstance(getattr(m, "layers", None), torch.nn.ModuleList)
            and any(isinstance(layer, GradientCheckpointingLayer) for layer in m.layers)]


def _backward_compiled_with_forward():
    """Within: AOTAutograd compiles a graph's backward at its first forward, where a failure can still fall back
    (by default it may wait for the first backward, inside TRL's step). A no-op on torch without the switch."""
    from torch._functorch import config

    if not hasattr(config, "force_non_lazy_backward_lowering"):
        return contextlib.nullcontext()
    return config.patch(force_non_lazy_backward_lowering=True)


@functools.cache
def _compiled(module_class, backend):
    # dynamic: micro-batches come in new sequence lengths all the time
    return torch.compile(module_class.forward, dynamic=True, backend=backend)


class CompileFallback:
    """Shared by a model's compiled forwards: once a compile has failed, all of them run eagerly."""
    failed = False


def compiled_forward(module, backend, fallback):
    """module.forward through one compiled graph (the module is an input, not a constant). For the decoder stack:
    all layers, gradient checkpointing included (dynamo traces torch.utils.checkpoint, so the backward graph
    recomputes what it needs without Python hooks), behind one guard check per call: compiled per layer, the
    guards, runtime wrappers and checkpoint hooks cost as much host time as the layer's kernels took on the GPU
    (bench v6). A compile that fails warns and leaves the eager forward."""
    compiled, eager = _compiled(type(module), backend), type(module).forward

    def forward(*args, **kwargs):
        if not args and kwargs.get("inputs_embeds") is None and kwargs.get("input_ids") is not None:
            # The embedding runs outside the graph: the input-gradient hook that gradient checkpointing puts on it
            # (enable_input_require_grads) calls requires_grad_(), which dynamo cannot trace (the graph would
            # break there, and the rest would run eagerly).
            kwargs["inputs_embeds"] = module.get_input_embeddings()(kwargs.pop("input_ids"))
        if not fallback.failed:
            try:
                with _backward_compiled_with_forward():
                    return compiled(module, *args, **kwargs)
            except torch._dynamo.exc.TorchDynamoException as error:  # not checkpoint's own early-stop signal
                fallback.failed = True
                reason = " ".join(str(error).split())[:200]  # one line
                warnings.warn(f"compiling the decoder layers failed ({type(error).__name__}: {reason}); "
                              "training with the eager layers (leave --compile_layers off to skip this compile)")
        return eager(module, *args, **kwargs)

    return forward
