"""Fast batched generation from chat prompts: our HF decode loop, and vLLM when it is installed.

    from generation import generate_all
    outputs = generate_all(model, tokenizer, [record["prompt"] for record in records], max_new_tokens=512)
    outputs[0][0]  # {"text": "<think>...</think><answer>x = 3, y = -2</answer>", "num_tokens": 41, "truncated": False}

Why not `model.generate` on batches as they come: its cost per decode step is mostly fixed overhead, a
sequence that stops early still rides along until the longest one ends, and mixing short and long prompts
wastes padding. So the HF path here:
- sorts prompts (each sample its own row) by length and decodes them in batches of neighbours;
- stops each row at EOS: with the dynamic cache (CPU, training models) finished rows leave the batch and
  the cache at once; with the static cache they stop counting and the batch ends when all are done;
- on CUDA uses a static KV cache and replays the decode step as a CUDA graph (recorded once per call; the
  eval does not torch.compile it: the first eval pass took ~2 s longer than the second on an H200, against a
  41 s compile), so a step costs the GPU's kernel time, not Python's launch time. A decoder kept for a whole
  GRPO run can compile its step first (`StaticDecoder(compile=True)`);
  So there is exactly one decode shape per call: the rows are split evenly into the fewest batches of at
  most `batch_size` (1319 prompts at 256: 6 of 220 rows, the last 219, not 5 of 256 and a 39-row one
  topped up to 256, since a batch costs a full-width step per token), every batch decodes at that width (a
  short last one is topped up with copies) and the cache holds the longest prompt plus `max_new_tokens`;
  prefill runs eagerly, so prompt lengths need no bucketing;
- decodes grouped-query attention without copying the KV cache per query head (`_gqa_decode_attention`):
  transformers' SDPA path repeats K and V 6x for Qwen2.5-1.5B whenever a mask is given, which at batch 64
  moves more bytes per step than the weights;
- on CUDA runs RMSNorm layers as torch's fused kernel (`fused_rms_norms`): 2 kernels instead of 8, for
  57 layers per step in Qwen2.5-1.5B, where a step's cost is mostly per kernel;
- reads greedy tokens by argmax and samples with our own temperature / top-k / top-p, ignoring the
  model's generation_config defaults (e.g. Qwen's repetition penalty), so settings are exactly as given.
Greedy outputs are token-for-token those of `model.generate(do_sample=False)` (tests/test_generation.py); on
CUDA the fused norms round differently, so in bf16 near-tied logits may break the other way.
A LoRA is best merged before calling (modeling.load_model does); an unmerged PEFT model works too.
"""

import contextlib
import functools
import inspect
import warnings
import weakref

import torch

from utils import MAX_NEW_TOKENS

CUDA_BATCH_SIZE = 256  # a decode step's cost is mostly per kernel: 4.5 / 5.4 / 6.5 ms at 64 / 128 / 256 rows (H200)
CPU_BATCH_SIZE = 16  # ~100 tok/s for SmolLM2-135M on 2 cores, little gain above
STATIC_MIN_STEPS = 64  # decode steps (batches x max_new_tokens) from which recording a CUDA graph pays
CACHE_ROUNDING = 64  # static cache length rounded up to this (a grow-only GRPO cache re-records once per size)
SYNC_EVERY = 8  # static path: read finished rows back from the GPU every this many steps


def generate(model, tokenizer, prompts, *, max_new_tokens=MAX_NEW_TOKENS, num_samples=1, temperature=0.0, top_p=1.0,
             top_k=0, batch_size=None, seed=0, progress=True, static_cache="auto", shard=None, decoder=None,
             return_ids=False):
    """Yield (index, outputs) per prompt as soon as all its samples are done (completion order).

    `prompts` are chat-message lists, plain strings or token-id lists; outputs is a list of `num_samples` dicts
    {"text", "num_tokens" (generated tokens, EOS included), "truncated" (no EOS within max_new_tokens)}, plus
    "token_ids" (the generated ids, EOS included) with return_ids.
    temperature 0 is greedy. static_cache: True, False or "auto": static on CUDA when at least
    STATIC_MIN_STEPS decode steps are due, in eval or train mode (a validation callback's model mid-training
    decodes as fast as an eval's), except under a trainer's autocast over fp32 weights (see static_cache_applies).
    `decoder`: a StaticDecoder the caller keeps across calls (GRPO: one graph for the whole run; it must be
    at least `batch_size` wide and long enough for prompt + max_new_tokens); it overrides static_cache.
    The model's train/eval mode is restored afterwards.
    shard=(rank, world_size): this process decodes only every world_size-th batch of the whole run, from
    `rank` on, and yields only those prompts. Batches, the static-cache choice and its length are those of
    the whole run, so greedy outputs are exactly those of one process. Sampled runs draw from a stream
    seeded with seed + rank: the same distribution, not the same draws as one process.
    """
    device = next(model.parameters()).device
    was_training = model.training
    batch_size = batch_size or (CUDA_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE)
    greedy = temperature <= 0
    copies, num_samples = (num_samples, 1) if greedy else (1, num_samples)  # greedy samples are all the same
    eos_ids = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)

    encoded = [_encode(tokenizer, p) for p in prompts]
    # Longest first: an out-of-memory batch fails at once, not after an hour. Samples of a prompt stay together.
    rows = sorted(((i, s) for i in range(len(prompts)) for s in range(num_samples)),
                  key=lambda row: (-len(encoded[row[0]]), row))
    width = even_width(len(rows), batch_size)
    batches = [rows[k:k + width] for k in range(0, len(rows), width)]
    # Decided for the whole run, before sharding, so every process decodes with the same shapes
    if static_cache == "auto":
        static_cache = static_cache_applies(model, device, len(batches) * max_new_tokens)
    if shard:
        rank, world = shard
        owner = {}  # a prompt belongs to the process of the batch holding its first row
        for b, batch in enumerate(batches):
            for i, _ in batch:
                owner.setdefault(i, b % world)
        rows = [row for row in rows if owner[row[0]] == rank]  # greedy: exactly batches[rank::world]
        batches = [rows[k:k + width] for k in range(0, len(rows), width)]
        seed += rank
    prompt_ids = sorted({i for i, _ in rows})
    results = {i: [None] * num_samples for i in prompt_ids}
    missing = {i: num_samples for i in prompt_ids}
    sampler = None if greedy else _Sampler(temperature, top_p, top_k, seed, device)

    own_decoder = decoder is None and static_cache and rows
    if own_decoder:  # the whole run's longest prompt, so every shard decodes the same shapes
        decoder = StaticDecoder(model, width, cache_length(max(map(len, encoded)), max_new_tokens), device)
    bar = _progress_bar(len(prompt_ids), progress)
    model.eval()
    try:
        for batch in batches:
            ids = [encoded[i] for i, _ in batch]
            step = decoder.run if decoder else _dynamic_decode
            for row, tokens, truncated in step(model, ids, eos_ids, pad_id, max_new_tokens, sampler):
                i, s = batch[row]
                text_tokens = tokens[:-1] if tokens and not truncated else tokens
                results[i][s] = {"text": tokenizer.decode(text_tokens, skip_special_tokens=True),
                                 "num_tokens": len(tokens), "truncated": truncated}
                if return_ids:
                    results[i][s]["token_ids"] = list(tokens)
                missing[i] -= 1
                if missing[i] == 0:
                    bar.update(1)
                    yield i, [dict(out) for out in results.pop(i) for _ in range(copies)]
    finally:
        bar.close()
        model.train(was_training)
        if own_decoder:
            decoder.release()


def static_cache_applies(model, device, decode_steps):
    """static_cache="auto": on CUDA, for at least STATIC_MIN_STEPS decode steps, and not for a model whose forward
    accelerate runs under autocast (a trainer's, with bf16/fp16 on) while its weights are fp32: keys then come out
    of the rotary embedding in fp32 and values in the autocast dtype, and HF's StaticCache holds one dtype."""
    autocast_over_fp32 = "_original_forward" in vars(model) and getattr(model, "dtype", None) == torch.float32
    return device.type == "cuda" and decode_steps >= STATIC_MIN_STEPS and not autocast_over_fp32


def generate_all(model, tokenizer, prompts, **kwargs):
    """generate(...) collected into a list of outputs lists, in prompt order."""
    outputs = [None] * len(prompts)
    for i, out in generate(model, tokenizer, prompts, **kwargs):
        outputs[i] = out
    return outputs


def even_width(rows, batch_size):
    """Rows per batch when `rows` rows are split evenly into the fewest batches of at most `batch_size`."""
    return -(-rows // -(-rows // batch_size)) if rows else batch_size


def cache_length(prompt_tokens, max_new_tokens):
    """Static cache length for prompts up to `prompt_tokens` long, rounded up to CACHE_ROUNDING."""
    return -(-(prompt_tokens + max_new_tokens) // CACHE_ROUNDING) * CACHE_ROUNDING


# ----------------------------------------------------------------------------
# The HF decode loops. Both yield (row, generated token ids, truncated) as rows finish.


def _left_pad(ids, pad_id, device, rows=None):
    """(input_ids, attention_mask, position_ids) left-padded; positions count real tokens only, as in generate."""
    rows = rows or len(ids)
    width = max(map(len, ids))
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for r in range(rows):
        seq = ids[r % len(ids)]  # rows beyond len(ids) are copies that fill a fixed-size batch
        input_ids[r, width - len(seq):] = torch.tensor(seq)
        mask[r, width - len(seq):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids.to(device), mask.to(device), positions.to(device)


def _dynamic_decode(model, ids, eos_ids, pad_id, max_new_tokens, sampler):
    """Decode with a growing cache; finished rows are dropped from the batch and the cache."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    input_ids, mask, positions = _left_pad(ids, pad_id, device)
    cache = DynamicCache(config=model.config)
    alive = list(range(len(ids)))  # batch position -> row
    generated = [[] for _ in ids]
    out = _forward(model, input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   logits_to_keep=1)
    positions = positions[:, -1:]
    for step in range(max_new_tokens):
        tokens = _next_tokens(out.logits[:, -1], sampler)
        keep = []
        for b, token in enumerate(tokens.tolist()):
            row = alive[b]
            generated[row].append(token)
            if token in eos_ids or step == max_new_tokens - 1:
                yield row, generated[row], token not in eos_ids
            else:
                keep.append(b)
        if not keep:
            return
        if len(keep) < len(alive):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            tokens, mask, positions = tokens[index], mask[index], positions[index]
            alive = [alive[b] for b in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=-1)
        positions = positions + 1
        out = _forward(model, input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
                       past_key_values=cache)


class StaticDecoder:
    """One static cache of (width rows x length tokens) reused by every batch, and one recorded decode step.

    The attention mask spans the whole cache from the start: slots not yet written are hidden by the causal
    mask (the cache's own position counter lives on the GPU), so every decode step has the same shapes and
    reads and writes the same buffers; on CUDA it is recorded once as a CUDA graph and replayed, which also
    serves a model being trained (GRPO): replays read the weights in place, as the optimizer updates them.
    A recording also bakes in the model object, its LoRA layers' switches (enabled, merged, active adapter:
    a change records anew) and any Python-side state of the step. So sliding-window caches (they count their
    length in a Python int) and rotary embeddings that change with the position (dynamic, longrope) decode
    eagerly instead.
    Tokens stay on the GPU and finished rows are read back every SYNC_EVERY steps, so the CPU can queue the
    next step while the GPU runs this one.
    """

    def __init__(self, model, width, length, device, compile=False):
        from transformers import StaticCache

        self.width, self.length, self.device = width, length, device
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        # The recorded step's inputs and output: fixed buffers, refilled in place
        self.ids = torch.zeros((width, 1), dtype=torch.long, device=device)
        self.positions = torch.zeros((width, 1), dtype=torch.long, device=device)
        self.mask = torch.ones((width, length), dtype=torch.long, device=device)
        self.graph = self.graph_key = self.graph_model = self.logits = None
        graph_safe = _graph_safe(model, self.cache)
        self.use_graph = device.type == "cuda" and graph_safe
        # compile=True: the decode step through torch.compile (Inductor fuses the elementwise work between the
        # matmuls: far fewer kernels per step), then recorded as above. It compiles once per decoder (per cache
        # size), tens of seconds, so it suits a decoder kept for a run (GRPO), not one eval. Not where a step's
        # Python-side state changes (it would recompile every step), nor over Unsloth's patched layers (untried).
        compile = compile and graph_safe and not is_unsloth_patched(model)
        self.compiled_model, self.compiled = (model, torch.compile(model, dynamic=False)) if compile else (None, None)

    def run(self, model, ids, eos_ids, pad_id, max_new_tokens, sampler):
        device = self.device
        input_ids, prompt_mask, positions = _left_pad(ids, pad_id, device, rows=self.width)
        prompt_len = input_ids.shape[1]
        self.mask[:, :prompt_len] = prompt_mask
        self.mask[:, prompt_len:] = 1
        eos = torch.tensor(sorted(eos_ids), device=device)
        tokens_so_far = torch.full((self.width, max_new_tokens), pad_id, dtype=torch.long, device=device)
        finished = torch.zeros(self.width, dtype=torch.bool, device=device)
        finished[len(ids):] = True  # filler rows
        reported = [False] * len(ids)
        self.cache.reset()
        key = _graph_key(model) if self.use_graph else None  # once per batch: walking the modules costs
        logits = _forward(model, input_ids=input_ids, attention_mask=self.mask, position_ids=positions,
                          past_key_values=self.cache, logits_to_keep=1).logits[:, -1]
        self.positions.copy_(positions[:, -1:])
        for step in range(max_new_tokens):
            tokens = _next_tokens(logits, sampler).masked_fill(finished, pad_id)
            tokens_so_far[:, step] = tokens
            finished |= torch.isin(tokens, eos)
            last = step == max_new_tokens - 1
            if step % SYNC_EVERY == SYNC_EVERY - 1 or last:
                done = finished.tolist()
                for row in range(len(ids)):
                    if not reported[row] and (done[row] or last):
                        reported[row] = True
                        generated = tokens_so_far[row, : step + 1].tolist()
                        end = next((k + 1 for k, t in enumerate(generated) if t in eos_ids), None)
                        yield row, generated[:end], end is None
                if all(reported):
                    return
            self.ids.copy_(tokens[:, None])
            self.positions.add_(1)
            logits = self._decode_step(model, key)

    def _forward_step(self, model):
        inputs = dict(input_ids=self.ids, attention_mask=self.mask, position_ids=self.positions,
                      past_key_values=self.cache)
        if self.compiled is not None and model is self.compiled_model:
            try:
                return _forward(model, call=self.compiled, **inputs).logits[:, -1]
            except Exception as error:  # the first call compiles (warm-up, not recording): fall back, once
                if self.graph is not None:
                    raise
                warnings.warn(f"compiling the decode step failed ({type(error).__name__}: {str(error)[:200]}); "
                              "decoding with the eager step (grpo.py --compile_decode false skips the compile)")
                self.compiled = self.compiled_model = None
        return _forward(model, **inputs).logits[:, -1]

    def _decode_step(self, model, key):
        if not self.use_graph:
            return self._forward_step(model)
        if self.graph is not None and self.graph_model is model and self.graph_key == key:
            self.graph.replay()
            return self.logits
        # First step: run it eagerly on a side stream (warm-up, as torch.cuda.graphs asks), then record it.
        # Recording runs nothing, so the cache advances once.
        main = torch.cuda.current_stream(self.device)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(main)
        with torch.cuda.stream(stream):
            logits = self._forward_step(model)
        main.wait_stream(stream)
        logits.record_stream(main)
        # A cast cached by autocast during the warm-up would be read, not made, by the graph, and then freed
        torch.clear_autocast_cache()
        graph = torch.cuda.CUDAGraph()
        # thread_local: a DataLoader's pin-memory thread (GRPO) may touch CUDA meanwhile, harmlessly
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.logits = self._forward_step(model)
        torch.clear_autocast_cache()  # nor may a later forward read the graph's casts
        self.graph, self.graph_key, self.graph_model = graph, key, model
        return logits

    def release(self):
        self.compiled = self.compiled_model = self.cache = self.graph = self.graph_key = self.graph_model = None
        self.logits = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _graph_safe(model, cache):
    """Whether a recorded decode step stays right on replay (see StaticDecoder)."""
    from transformers.cache_utils import StaticLayer

    if any(type(layer) is not StaticLayer for layer in cache.layers):
        return False
    rope_types = [getattr(m, "rope_type", None) for m in model.modules()]
    rope_types = [t for r in rope_types if r for t in (r.values() if isinstance(r, dict) else [r])]
    return not any("dynamic" in t or t == "longrope" for t in rope_types)


def is_unsloth_patched(model):
    """Whether Unsloth's fast forwards replaced the model's own (they carry its fused QKV entry point)."""
    return any(hasattr(m, "apply_qkv") for m in model.modules())


def _graph_key(model):
    """The state a recorded step bakes in besides the weights' values: each LoRA layer's switches, and
    whether its forward is replaced (grpo.py folds the adapter into a copy of the weights)."""
    return tuple((m.merged, m.disable_adapters, tuple(m.active_adapters), "forward" in vars(m))
                 for m in model.modules() if hasattr(m, "lora_A"))


@contextlib.contextmanager
def replaced_forwards(forwards):
    """Within: each module in `forwards` ({module: function}) runs that function as its forward. Nests."""
    previous = {module: vars(module).get("forward") for module in forwards}
    for module, forward in forwards.items():
        module.forward = forward  # an instance attribute: nn.Module.__call__ finds it first
    try:
        yield
    finally:
        for module, forward in previous.items():
            if forward is None:
                del module.forward
            else:
                module.forward = forward


class LoraFold:
    """A PEFT model's LoRA linear layers decoded as one matmul each, over a copy of the base weight with the
    adapter added in, instead of the base matmul, two LoRA matmuls, a scale and an add (an unmerged r=64 LoRA
    on all 7 projections made GRPO's decode ~1 s per step slower on an H200).

        fold = LoraFold.of(model)      # None: no LoRA, or one that cannot fold (DoRA, quantized base, Unsloth)
        with fold.folded():            # recomputed from the adapter's current weights on every entry
            generate_all(model, ...)

    The base weights are never written, so no bf16 rounding accumulates in them over a run, unlike
    merge_adapter/unmerge_adapter; the price is one copy of the adapted weights (~2.6 GB for Qwen2.5-1.5B).
    The folded weight is rounded once, so tokens may differ from the unmerged model's where logits tie.
    """

    def __init__(self, layers):
        self.layers = layers
        self.weights = {m: torch.empty_like(m.base_layer.weight) for m in layers}
        self.forwards = {m: functools.partial(torch.nn.functional.linear, weight=w, bias=m.base_layer.bias)
                         for m, w in self.weights.items()}

    @classmethod
    def of(cls, model):
        layers = [m for m in model.modules() if hasattr(m, "lora_A")]
        # Unsloth's LoRA kernels read the adapter's weights themselves and never call the layer's forward
        return cls(layers) if layers and not is_unsloth_patched(model) and all(map(cls._foldable, layers)) else None

    @staticmethod
    def _foldable(m):
        """A plain LoRA on an nn.Linear, not merged or disabled: no DoRA or other variant, no LoRA bias."""
        from peft.tuners.lora import Linear

        return (type(m) is Linear and type(m.base_layer) is torch.nn.Linear and not m.merged
                and not m.disable_adapters and not m.fan_in_fan_out and bool(m.active_adapters)
                and all(a in m.lora_A and a not in m.lora_variant and not m.lora_bias.get(a)
                        for a in m.active_adapters))

    @contextlib.contextmanager
    def folded(self):
        """Within: the layers run over their folded weights; if one cannot fold now (merged, disabled since), as is."""
        if not all(map(self._foldable, self.layers)):
            yield
            return
        with torch.no_grad():
            for m, weight in self.weights.items():
                total = m.base_layer.weight.float()
                for a in m.active_adapters:
                    total = torch.addmm(total, m.lora_B[a].weight.float(), m.lora_A[a].weight.float(),
                                        alpha=m.scaling[a])
                weight.copy_(total)  # rounded once, to the base weight's dtype
        with replaced_forwards(self.forwards):
            yield


# ----------------------------------------------------------------------------
# Grouped-query attention for one new token


def _gqa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' SDPA attention, except that one query token attends to the K/V heads as they are.

    With a mask, transformers repeats K and V once per query head (enable_gqa needs mask-free SDPA); for a
    single query token the query heads that share a K/V head can instead be stacked as that head's queries:
    (batch, kv_heads x group, 1, dim) -> (batch, kv_heads, group, dim), where query head j reads K/V head
    j // group, as in transformers' repeat_kv. Same arithmetic, group x fewer K/V bytes.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or kv_heads == heads or dropout or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    query = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           scale=scaling)
    return out.reshape(batch, 1, heads, dim), None  # (batch, q_len, heads, dim), as sdpa_attention_forward


GQA_ATTENTION = "sdpa_gqa_decode"


@functools.cache  # once per process, not per forward
def _register_gqa_attention():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    # looked up by name at call time, so a test may swap the module's function
    AttentionInterface.register(GQA_ATTENTION, lambda *a, **k: _gqa_attention_forward(*a, **k))
    ALL_MASK_ATTENTION_FUNCTIONS.register(GQA_ATTENTION, sdpa_mask)  # the masks SDPA gets


class _gqa_decode_attention:
    """Within: a model on transformers' SDPA attention uses _gqa_attention_forward (others are left alone).
    A CUDA graph recorded within keeps it; the model's own training forward never sees it. Only the text
    model's config is touched, directly: the public setter would also overwrite every sub-config."""

    def __init__(self, model):
        self.config = model.config.get_text_config()
        self.switched = False

    def __enter__(self):
        if self.config._attn_implementation_internal == "sdpa":
            _register_gqa_attention()
            self.config._attn_implementation_internal = GQA_ATTENTION
            self.switched = True

    def __exit__(self, *exc):
        if self.switched:
            self.config._attn_implementation_internal = "sdpa"


# ----------------------------------------------------------------------------
# Fused RMSNorm

FUSED_NORM_DEVICES = ("cuda",)  # on CPU a norm is not worth a kernel count; the layers' own arithmetic stays
_fused_norms_cache = weakref.WeakKeyDictionary()  # model -> (device, {norm layer: its fused forward})


def _fused_rms_norm(module, hidden_states):
    """LlamaRMSNorm.forward, weight * to_input_dtype(x * rsqrt(mean(x^2) + eps)), as torch's fused kernel (float32
    inside, rounded once to the input dtype) and one multiply. Autocast off: it would run rms_norm in float32 and
    return float32, where the original's explicit casts return the input dtype."""
    with torch.autocast(hidden_states.device.type, enabled=False):
        normed = torch.nn.functional.rms_norm(hidden_states, hidden_states.shape[-1:], eps=module.variance_epsilon)
    return module.weight * normed


@functools.cache
def _is_llama_rms_norm(cls):
    """Whether a class's forward is LlamaRMSNorm's, to the letter (Qwen2/3's, Mistral's...; not Gemma's weight + 1,
    not Olmo2's multiply-then-round, not a forward patched by Unsloth)."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    try:
        return inspect.getsource(cls.forward) == inspect.getsource(LlamaRMSNorm.forward)
    except (OSError, TypeError):
        return False


def _fused_norm_forwards(model):
    """{layer: fused forward} for the model's LlamaRMSNorm-like layers; none off FUSED_NORM_DEVICES. Built once
    per model and device: the same function objects every time, so a compiled caller does not recompile."""
    device = next(model.parameters()).device
    cached = _fused_norms_cache.get(model)
    if cached is None or cached[0] != device:
        modules = model.modules() if device.type in FUSED_NORM_DEVICES else ()
        norms = [m for m in modules if type(m).__name__.endswith("RMSNorm") and _is_llama_rms_norm(type(m))]
        cached = _fused_norms_cache[model] = (device, {m: functools.partial(_fused_rms_norm, m) for m in norms})
    return cached[1]


def fused_rms_norms(model):
    """Within: the model's LlamaRMSNorm-like layers run _fused_rms_norm (2 kernels instead of ~8)."""
    return replaced_forwards(_fused_norm_forwards(model))


# ----------------------------------------------------------------------------
# Sampling


class _Sampler:
    """Temperature, then top-k, then top-p (nucleus), as in HF's logits warpers; one seeded generator."""

    def __init__(self, temperature, top_p, top_k, seed, device):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, logits):
        logits = logits.float() / self.temperature
        if self.top_k and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            drop = cumulative - sorted_logits.softmax(-1) > self.top_p  # keep the token that crosses top_p
            logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1, generator=self.generator).squeeze(-1)


def _forward(model, call=None, **inputs):
    """model(**inputs), or call(**inputs) (its compiled wrapper), with the decode's attention and norms."""
    # Per call, not around the generators: a `with` block would stay open while they yield to the caller
    with torch.no_grad(), _gqa_decode_attention(model), fused_rms_norms(model):
        return (model if call is None else call)(**inputs, use_cache=True)


def _next_tokens(logits, sampler):
    return logits.argmax(-1) if sampler is None else sampler(logits)


# ----------------------------------------------------------------------------
# Helpers


def _encode(tokenizer, prompt):
    if prompt and isinstance(prompt[0], int):  # already token ids (GRPO hands us TRL's tokenized prompts)
        return list(prompt)
    if isinstance(prompt, str):
        text = prompt
    else:
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    # The chat template already holds BOS where the model wants one.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _eos_ids(model, tokenizer):
    """Every token that ends a turn: the tokenizer's EOS and the generation config's (Qwen lists two)."""
    ids = set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, config_eos):
        if isinstance(value, int):
            ids.add(value)
        elif value is not None:
            ids.update(value)
    if not ids:
        raise ValueError("the tokenizer and generation config define no EOS token")
    return ids


def _progress_bar(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="generating", unit="prompt", disable=not enabled, dynamic_ncols=True)


# ----------------------------------------------------------------------------
# vLLM (GPU only; not installable on our CPU machines). The eval scripts pick it with --backend.


def vllm_available():
    import importlib.util

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def load_vllm(model_path, adapter=None, dtype="auto", seed=0):
    """(vLLM engine, LoRARequest or None); the LoRA is served unmerged, at its own rank."""
    import json
    import os

    from vllm import LLM
    from vllm.lora.request import LoRARequest

    lora, rank = None, 16
    if adapter:
        with open(os.path.join(adapter, "adapter_config.json")) as f:
            rank = json.load(f).get("r", rank)
        lora = LoRARequest("adapter", 1, os.path.abspath(adapter))
    llm = LLM(model=model_path, dtype=dtype, seed=seed, enable_lora=lora is not None, max_lora_rank=rank)
    return llm, lora


def generate_vllm(llm, prompts, *, lora=None, max_new_tokens=MAX_NEW_TOKENS, num_samples=1, temperature=0.0,
                  top_p=1.0, top_k=0, seed=0, progress=True, chunk=512):
    """Same outputs as generate(), from a vLLM engine (load_vllm), in prompt order.

    Prompts go in chunks of `chunk`, so a caller that saves each result loses at most one chunk on a crash.
    """
    from vllm import SamplingParams

    params = SamplingParams(n=num_samples, temperature=max(temperature, 0.0), top_p=top_p,
                            top_k=top_k if top_k > 0 else -1, max_tokens=max_new_tokens, seed=seed)
    for start in range(0, len(prompts), chunk):
        results = llm.chat(prompts[start:start + chunk], params, lora_request=lora, use_tqdm=progress)
        for offset, result in enumerate(results):
            yield start + offset, [{"text": o.text, "num_tokens": len(o.token_ids),
                                    "truncated": o.finish_reason == "length"} for o in result.outputs]
