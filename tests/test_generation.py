"""generation.py: the fast path gives plain `model.generate`'s greedy tokens; sampling, EOS, PEFT, modes."""

import contextlib

import pytest
import torch

import generation
import utils

MAX_NEW = 20


@pytest.fixture(scope="module")
def lively(chat_tokenizer_dir):
    """A tiny random Llama with large weights (outputs vary from token to token, unlike a 0.02-init one),
    and one of its frequent mid-sequence tokens made EOS, so rows stop at different steps."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(chat_tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    prompts = [utils.gsm8k_prompt("What is " + "1 + 1 " * k + "?") for k in range(1, 8)]
    rows = reference(model, tokenizer, prompts)[:, 1:-2].tolist()
    model.generation_config.eos_token_id = max({t for row in rows for t in row}, key=lambda t: sum(t in r for r in rows))
    return model, tokenizer, prompts


def reference(model, tokenizer, prompts, max_new_tokens=MAX_NEW):
    """Plain HF generate, greedy, one left-padded batch: the generated token ids."""
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id, repetition_penalty=1.0)
    return out[:, batch["input_ids"].shape[1]:]


def expected_outputs(model, tokenizer, prompts):
    eos = model.generation_config.eos_token_id
    expected = []
    for row in reference(model, tokenizer, prompts).tolist():
        n = row.index(eos) + 1 if eos in row else len(row)
        text = tokenizer.decode(row[: n - 1] if eos in row else row[:n], skip_special_tokens=True)
        expected.append({"text": text, "num_tokens": n, "truncated": eos not in row})
    return expected


@pytest.mark.parametrize("static_cache", [False, True])
def test_greedy_equals_plain_generate(lively, static_cache):
    model, tokenizer, prompts = lively
    expected = expected_outputs(model, tokenizer, prompts)
    stops = [e["num_tokens"] for e in expected if not e["truncated"]]
    assert stops and len(set(stops)) > 1, "the fixture should make rows stop at different steps"
    for batch_size in (1, 3, 16):
        got = generation.generate_all(model, tokenizer, prompts, max_new_tokens=MAX_NEW, batch_size=batch_size,
                                      static_cache=static_cache, progress=False)
        assert [outputs[0] for outputs in got] == expected, f"batch_size={batch_size}"


def test_batches_are_even_and_decode_at_one_width(lively, monkeypatch):
    """6 prompts at batch_size 4 decode as 3 + 3 rows in a 3-row static cache, not as 4 + 2 in a 4-row one:
    the fewest batches of at most batch_size, split evenly; greedy outputs unchanged."""
    model, tokenizer, prompts = lively
    assert [generation.even_width(n, 256) for n in (0, 1, 256, 257, 1319)] == [256, 1, 256, 129, 220]
    widths, batch_rows = [], []
    run = generation.StaticDecoder.run

    def spy(self, model, ids, *args):
        widths.append(self.width)
        batch_rows.append(len(ids))
        return run(self, model, ids, *args)

    monkeypatch.setattr(generation.StaticDecoder, "run", spy)
    six = prompts[:6]
    got = generation.generate_all(model, tokenizer, six, max_new_tokens=MAX_NEW, batch_size=4,
                                  static_cache=True, progress=False)
    assert batch_rows == [3, 3] and widths == [3, 3]  # not 4 + 2, at width 4
    assert [outputs[0] for outputs in got] == expected_outputs(model, tokenizer, six)


def test_yields_every_prompt_once_in_completion_order(lively):
    model, tokenizer, prompts = lively
    seen = [i for i, outputs in generation.generate(model, tokenizer, prompts, max_new_tokens=MAX_NEW,
                                                      batch_size=3, progress=False)]
    assert sorted(seen) == list(range(len(prompts)))
    assert seen != list(range(len(prompts)))  # longest prompts first, early stoppers before the rest
    stream = generation.generate(model, tokenizer, prompts, max_new_tokens=MAX_NEW, progress=False)
    next(stream)
    assert torch.is_grad_enabled()  # the caller's code between items runs with its own grad mode
    stream.close()


def test_sampling(lively):
    model, tokenizer, prompts = lively
    prompts = prompts[:3]
    kwargs = dict(max_new_tokens=6, temperature=1.0, batch_size=4, progress=False)
    a = generation.generate_all(model, tokenizer, prompts, num_samples=3, seed=1, **kwargs)
    b = generation.generate_all(model, tokenizer, prompts, num_samples=3, seed=1, **kwargs)
    c = generation.generate_all(model, tokenizer, prompts, num_samples=3, seed=2, **kwargs)
    assert all(len(outputs) == 3 for outputs in a)
    assert a == b and a != c
    assert len({o["text"] for o in a[0]}) > 1  # samples of one prompt differ
    greedy = generation.generate_all(model, tokenizer, prompts, max_new_tokens=6, progress=False)
    for sampled in (dict(top_k=1), dict(top_p=1e-9)):  # both leave only the likeliest token
        one = generation.generate_all(model, tokenizer, prompts, num_samples=1, seed=3, **sampled, **kwargs)
        assert one == greedy, sampled


def test_sampler_filters():
    sampler = generation._Sampler(temperature=1.0, top_p=0.7, top_k=0, seed=0, device="cpu")
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    counts = torch.bincount(sampler(logits), minlength=4)
    assert counts[2] == counts[3] == 0 and counts[0] > counts[1] > 0  # top_p 0.7 keeps {0.5, 0.3}
    sampler = generation._Sampler(temperature=1.0, top_p=1.0, top_k=3, seed=0, device="cpu")
    counts = torch.bincount(sampler(logits), minlength=4)
    assert counts[3] == 0 and counts[2] > 0


def test_greedy_samples_are_copies_and_truncation(lively):
    model, tokenizer, prompts = lively
    out = generation.generate_all(model, tokenizer, prompts[:2], max_new_tokens=3, num_samples=2, progress=False)
    for outputs in out:
        assert len(outputs) == 2 and outputs[0] == outputs[1] and outputs[0] is not outputs[1]
        assert outputs[0]["num_tokens"] <= 3
        assert outputs[0]["truncated"] == (outputs[0]["num_tokens"] == 3)


def test_restores_training_mode_and_runs_unmerged_lora(lively):
    from peft import LoraConfig, get_peft_model

    model, tokenizer, prompts = lively
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))  # random B: the adapter matters
    try:
        peft_model.train()
        unmerged = generation.generate_all(peft_model, tokenizer, prompts, max_new_tokens=8, progress=False)
        assert peft_model.training and peft_model.base_model.model.model.layers[0].training
        peft_model.eval()
        with peft_model.disable_adapter():
            base = generation.generate_all(peft_model, tokenizer, prompts, max_new_tokens=8, progress=False)
        peft_model.merge_adapter()
        merged = generation.generate_all(peft_model, tokenizer, prompts, max_new_tokens=8, progress=False)
        peft_model.unmerge_adapter()
    finally:
        peft_model.unload()  # leave the shared fixture model without LoRA layers
    assert unmerged == merged != base


def test_gqa_decode_attention_equals_transformers_sdpa():
    """One query token over a masked cache: the stacked-query-heads path gives transformers' SDPA output."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    class Attention(torch.nn.Module):
        num_key_value_groups = 3

    torch.manual_seed(0)
    query = torch.randn(4, 6, 2, 8)[:, :, :1]  # a strided view: the reshape must not assume a layout
    assert not query.is_contiguous()
    key, value = torch.randn(4, 2, 10, 8), torch.randn(4, 2, 10, 8)
    mask = torch.rand(4, 1, 1, 10) > 0.3
    mask[..., 0] = True
    ours, _ = generation._gqa_attention_forward(Attention(), query, key, value, mask, scaling=0.3)
    theirs, _ = sdpa_attention_forward(Attention(), query, key, value, mask, scaling=0.3)
    assert ours.shape == theirs.shape == (4, 1, 6, 8)
    torch.testing.assert_close(ours, theirs)
    prefill = torch.randn(4, 6, 3, 8)  # several query tokens: transformers' own path, unchanged
    torch.testing.assert_close(generation._gqa_attention_forward(Attention(), prefill, key, value, None)[0],
                               sdpa_attention_forward(Attention(), prefill, key, value, None)[0])


@pytest.mark.parametrize("static_cache", [False, True])
def test_decode_steps_use_the_gqa_attention(lively, monkeypatch, static_cache):
    model, tokenizer, prompts = lively
    calls = []

    def counting(module, query, *args, **kwargs):
        calls.append(query.shape[2])
        return original(module, query, *args, **kwargs)

    original = generation._gqa_attention_forward
    monkeypatch.setattr(generation, "_gqa_attention_forward", counting)
    generation.generate_all(model, tokenizer, prompts[:2], max_new_tokens=4, static_cache=static_cache,
                            progress=False)
    layers = model.config.num_hidden_layers
    assert calls.count(1) == 3 * layers and len(calls) == 4 * layers  # 1 prefill + 3 decode forwards
    assert model.config._attn_implementation == "sdpa"  # restored for everyone else


def test_gqa_switch_touches_only_an_sdpa_text_config():
    from transformers import LlamaConfig, LlavaConfig

    config = LlavaConfig(text_config=LlamaConfig(num_hidden_layers=1).to_dict())
    config.get_text_config()._attn_implementation_internal = "sdpa"
    config.vision_config._attn_implementation_internal = "eager"
    model = type("Model", (), {"config": config})()
    with generation._gqa_decode_attention(model):
        assert config.get_text_config()._attn_implementation == generation.GQA_ATTENTION
        assert config.vision_config._attn_implementation == "eager"
    assert (config.get_text_config()._attn_implementation, config.vision_config._attn_implementation) == ("sdpa", "eager")
    config.get_text_config()._attn_implementation_internal = "eager"
    with generation._gqa_decode_attention(model):
        assert config.get_text_config()._attn_implementation == "eager"
    assert config.get_text_config()._attn_implementation == "eager"


def test_graph_only_where_a_recording_stays_right(lively):
    """Sliding-window caches and position-dependent rotary embeddings decode eagerly; LoRA switches are part
    of a recording's key, so toggling them records anew instead of replaying the wrong variant."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM, StaticCache

    def tiny(**extra):
        config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, **extra)
        model = Qwen2ForCausalLM(config)
        safe = generation._graph_safe(model, StaticCache(config=config, max_cache_len=32))
        # nor is the step compiled there: a Python-side change per step would recompile it every step
        compiled = generation.StaticDecoder(model, 2, 32, torch.device("cpu"), compile=True).compiled is not None
        assert compiled == safe
        return safe

    assert tiny()
    assert not tiny(use_sliding_window=True, sliding_window=8, max_window_layers=0)
    assert not tiny(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    model = lively[0]
    assert generation._graph_key(model) == ()
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    try:
        keys = {generation._graph_key(peft_model)}
        with peft_model.disable_adapter():
            keys.add(generation._graph_key(peft_model))
        peft_model.merge_adapter()
        keys.add(generation._graph_key(peft_model))
        peft_model.unmerge_adapter()
        assert len(keys) == 3 and generation._graph_key(peft_model) in keys
    finally:
        peft_model.unload()


def test_fused_rms_norms_match_the_layers_and_only_those_that_fuse(lively, monkeypatch):
    """On CUDA the decode runs Llama-style RMSNorm layers as torch's fused kernel; here forced onto the CPU."""
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
    from transformers.models.olmo2.modeling_olmo2 import Olmo2RMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    model, tokenizer, prompts = lively
    assert generation._fused_norm_forwards(model) == {}  # CPU: the layers' own arithmetic
    monkeypatch.setattr(generation, "FUSED_NORM_DEVICES", ("cpu",))
    generation._fused_norms_cache.clear()
    try:
        forwards = generation._fused_norm_forwards(model)
        assert len(forwards) == 2 * model.config.num_hidden_layers + 1
        assert generation._fused_norm_forwards(model) is forwards  # built once: a compiled caller keeps its graph
        ids = torch.tensor([generation._encode(tokenizer, prompts[3])])
        with torch.no_grad():
            plain = model(ids).logits
            with generation.fused_rms_norms(model):
                assert all("forward" in vars(m) for m in forwards)
                fused = model(ids).logits
        assert not any("forward" in vars(m) for m in forwards)
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
        expected = expected_outputs(model, tokenizer, prompts)
        got = generation.generate_all(model, tokenizer, prompts, max_new_tokens=MAX_NEW, static_cache=True,
                                      batch_size=4, progress=False)
        assert [outputs[0] for outputs in got] == expected
        # Only the exact Llama formula: Gemma scales by weight + 1, Olmo2 multiplies before rounding
        for norm in (GemmaRMSNorm(8), Olmo2RMSNorm(8), Qwen2RMSNorm(8)):
            norm.variance_epsilon = 1e-6  # Gemma names it eps: give it the attribute the fused form reads
            assert len(generation._fused_norm_forwards(torch.nn.Sequential(norm))) == isinstance(norm, Qwen2RMSNorm)
    finally:
        generation._fused_norms_cache.clear()


def test_lora_fold_equals_the_unmerged_adapter_and_leaves_the_base_alone(lively):
    from peft import LoraConfig, get_peft_model

    model, tokenizer, prompts = lively
    assert generation.LoraFold.of(model) is None
    torch.manual_seed(2)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                                  init_lora_weights=False))  # random B: the adapter matters
    try:
        peft_model.eval()
        ids = torch.tensor([generation._encode(tokenizer, prompts[3])])
        base = {n: p.clone() for n, p in peft_model.named_parameters() if "base_layer" in n}
        fold = generation.LoraFold.of(peft_model)
        assert fold is not None and len(fold.layers) == 3 * model.config.num_hidden_layers
        with torch.no_grad():
            for step in range(2):  # the second time after an "optimizer step" on the adapter
                unmerged, key = peft_model(ids).logits, generation._graph_key(peft_model)
                with fold.folded():
                    folded = peft_model(ids).logits
                    assert generation._graph_key(peft_model) != key  # a recording knows which it is
                torch.testing.assert_close(folded, unmerged, rtol=1e-4, atol=1e-4)
                for name, p in peft_model.named_parameters():
                    if "lora_B" in name:
                        p.add_(torch.randn_like(p))
        assert not torch.allclose(unmerged, peft_model(ids).logits)
        assert all(torch.equal(p, base[n]) for n, p in peft_model.named_parameters() if n in base)
        assert not any("forward" in vars(m) for m in fold.layers)
        greedy = dict(max_new_tokens=8, progress=False)
        unmerged_out = generation.generate_all(peft_model, tokenizer, prompts, static_cache=True, **greedy)
        with fold.folded():
            assert generation.generate_all(peft_model, tokenizer, prompts, static_cache=True, **greedy) == unmerged_out
        for state in ("merged", "disabled"):  # folding again would add the adapter twice / apply a disabled one
            with torch.no_grad():
                if state == "merged":
                    peft_model.merge_adapter()
                context = peft_model.disable_adapter() if state == "disabled" else contextlib.nullcontext()
                with context:
                    reference = peft_model(ids).logits
                    with fold.folded():
                        assert not any("forward" in vars(m) for m in fold.layers)
                        torch.testing.assert_close(peft_model(ids).logits, reference)
                if state == "merged":
                    peft_model.unmerge_adapter()
        model.model.layers[0].self_attn.apply_qkv = None  # how Unsloth marks a model whose LoRA it computes itself
        try:
            assert generation.LoraFold.of(peft_model) is None
        finally:
            del model.model.layers[0].self_attn.apply_qkv
    finally:
        peft_model.unload()
    dora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], use_dora=True))
    try:
        assert generation.LoraFold.of(dora) is None
    finally:
        dora.unload()


class IdTokenizer:
    """Enough tokenizer for prompts given as token ids: token 0 ends a row and pads."""
    eos_token_id, pad_token_id = 0, 0

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def tiny_qwen2():
    """A tiny random Qwen2 with large weights (tokens vary), and 6 id prompts of different lengths."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3)
    return Qwen2ForCausalLM(config), [list(range(1 + k, 6 + 2 * k)) for k in range(6)]


GRAPH_KWARGS = dict(max_new_tokens=24, batch_size=8, progress=False, return_ids=True)


def test_compiled_decode_step_gives_the_same_tokens_and_follows_weight_updates():
    """StaticDecoder(compile=True), as GRPO keeps it: the decode step runs torch.compile's graph (on CPU
    without a CUDA graph), with the eager step's tokens, also after in-place weight updates."""
    import torch._dynamo

    model, prompts = tiny_qwen2()
    model = model.eval()
    torch._dynamo.reset()
    try:
        graphs = torch._dynamo.utils.counters["stats"]
        decoder = generation.StaticDecoder(model, 8, 64, torch.device("cpu"), compile=True)
        for k in range(2):
            compiled = generation.generate_all(model, IdTokenizer(), prompts, decoder=decoder, **GRAPH_KWARGS)
            if k == 0:
                assert graphs["unique_graphs"] >= 1
                compiled_graphs = graphs["unique_graphs"]
            assert graphs["unique_graphs"] == compiled_graphs, "weights updated in place must not recompile"
            eager = generation.generate_all(model, IdTokenizer(), prompts, static_cache=False, **GRAPH_KWARGS)
            assert compiled == eager
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.3)
    finally:
        torch._dynamo.reset()


def test_a_decode_step_that_fails_to_compile_runs_eagerly(monkeypatch):
    """compile=True is grpo.py's default on CUDA: a compile error (no Triton, an untried model) must not stop
    training; the decoder warns once and keeps the eager step."""
    def failing(*args, **kwargs):
        raise RuntimeError("no backend")

    model, prompts = tiny_qwen2()
    model = model.eval()
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: failing)
    decoder = generation.StaticDecoder(model, 8, 64, torch.device("cpu"), compile=True)
    with pytest.warns(UserWarning, match="compiling the decode step failed .RuntimeError: no backend"):
        tokens = generation.generate_all(model, IdTokenizer(), prompts, decoder=decoder, **GRAPH_KWARGS)
    assert decoder.compiled is None
    assert tokens == generation.generate_all(model, IdTokenizer(), prompts, static_cache=False, **GRAPH_KWARGS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_replays_follow_in_place_weight_updates(compile):
    """GRPO keeps one StaticDecoder for the run: its replays must read the weights as the optimizer leaves them."""
    model, prompts = tiny_qwen2()
    model = model.cuda().eval()
    decoder = generation.StaticDecoder(model, 8, 64, torch.device("cuda"), compile=compile)
    for _ in range(2):
        graphed = generation.generate_all(model, IdTokenizer(), prompts, decoder=decoder, **GRAPH_KWARGS)
        eager = generation.generate_all(model, IdTokenizer(), prompts, static_cache=False, **GRAPH_KWARGS)
        assert decoder.graph is not None and graphed == eager
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_recorded_with_a_lora_fold_follows_adapter_updates(compile):
    """GRPO's LoRA decode: recorded once within fold.folded(), replayed after optimizer steps on the adapter."""
    from peft import LoraConfig, get_peft_model

    model, prompts = tiny_qwen2()
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "down_proj"],
                                             init_lora_weights=False)).cuda().eval()
    fold = generation.LoraFold.of(model)
    decoder = generation.StaticDecoder(model, 8, 64, torch.device("cuda"), compile=compile)
    for _ in range(2):
        with fold.folded():
            graphed = generation.generate_all(model, IdTokenizer(), prompts, decoder=decoder, **GRAPH_KWARGS)
        unmerged = generation.generate_all(model, IdTokenizer(), prompts, static_cache=False, **GRAPH_KWARGS)
        assert decoder.graph is not None and graphed == unmerged
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.add_(torch.randn_like(p))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fused_norm_under_autocast_returns_the_layers_dtype():
    """GRPO's steps run under bf16 autocast, which would run rms_norm in float32 and return float32."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    norm = Qwen2RMSNorm(64).cuda().to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(16, 64, device="cuda", dtype=torch.bfloat16) * 3
    generation._fused_norms_cache.clear()
    with torch.autocast("cuda", dtype=torch.bfloat16), torch.no_grad():
        own = norm(x)
        with generation.fused_rms_norms(torch.nn.Sequential(norm)):
            assert "forward" in vars(norm)
            fused = norm(x)
    assert fused.dtype == own.dtype == torch.bfloat16
    torch.testing.assert_close(fused, own, rtol=1e-2, atol=1e-2)  # 1 bf16 ulp where the sums round differently


def test_eos_ids_include_generation_config():
    class Tok:
        eos_token_id = 2

    class Model:
        class generation_config:
            eos_token_id = [5, 7]

    assert generation._eos_ids(Model, Tok) == {2, 5, 7}


@pytest.mark.parametrize("num_samples, temperature", [(1, 0.0), (3, 1.0)])
def test_shards_split_the_prompts_and_greedy_ones_equal_the_whole_run(lively, num_samples, temperature):
    """What each of 2 processes decodes under torchrun (evaluation.py): every prompt in exactly one shard,
    with all its samples; greedy outputs are those of one process."""
    model, tokenizer, prompts = lively
    kwargs = dict(max_new_tokens=MAX_NEW, batch_size=2, num_samples=num_samples, temperature=temperature,
                  progress=False)
    whole = generation.generate_all(model, tokenizer, prompts, **kwargs)
    shards = [dict(generation.generate(model, tokenizer, prompts, shard=(rank, 2), **kwargs)) for rank in (0, 1)]
    assert shards[0] and shards[1] and not set(shards[0]) & set(shards[1])
    merged = {**shards[0], **shards[1]}
    assert sorted(merged) == list(range(len(prompts))) and all(len(o) == num_samples for o in merged.values())
    if temperature == 0:
        assert [merged[i] for i in range(len(prompts))] == whole


def test_static_cache_auto_rule():
    """Static on CUDA for long enough decodes, in train mode too, but not under a trainer's autocast over fp32
    weights (two dtypes in one cache); the rule is pure, so CUDA is named, not needed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    cuda, cpu, steps = torch.device("cuda"), torch.device("cpu"), generation.STATIC_MIN_STEPS
    model.train()
    assert generation.static_cache_applies(model, cuda, steps)  # a validation callback's model mid-training
    assert not generation.static_cache_applies(model, cuda, steps - 1)
    assert not generation.static_cache_applies(model, cpu, steps)
    model._original_forward = model.forward  # what accelerate sets when it wraps forward in autocast (bf16/fp16)
    assert not generation.static_cache_applies(model, cuda, steps)
    model.to(torch.bfloat16)  # bf16 weights under bf16 autocast: one dtype
    assert generation.static_cache_applies(model, cuda, steps)
