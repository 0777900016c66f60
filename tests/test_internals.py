"""The TRL/transformers internals the project touches (training.LIBRARY_INTERNALS) still exist with the parameters
our code passes or overrides; a library bump that changes one fails here, not in a training run."""

import ast
import importlib
import inspect
import subprocess
import sys
from importlib import metadata

import torch

import fast_grpo
import training
from conftest import REPO


def resolve(dotted):
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def params(fn):
    return list(inspect.signature(fn).parameters)


def test_checked_versions_are_installed():
    """Checked against the versions requirements.txt pins: after a bump, re-check each entry, then update these."""
    assert {name: metadata.version(name) for name in training.CHECKED_AGAINST} == training.CHECKED_AGAINST


def test_every_listed_internal_exists():
    import transformers

    missing = []
    for dotted in training.LIBRARY_INTERNALS:
        if dotted == "transformers.PretrainedConfig._attn_implementation_internal":  # set per instance
            ok = hasattr(transformers.PretrainedConfig(), "_attn_implementation_internal")
        else:
            try:
                resolve(dotted)
                ok = True
            except (ImportError, AttributeError):
                ok = False
        missing += [] if ok else [dotted]
    assert missing == []


def test_trl_logprob_kernel_call_matches_the_cpu_stand_in():
    """TRL calls _ChunkedLogProbFunction.apply with the 9 arguments our stand-in takes, and unpacks 5 outputs."""
    import trl.trainer.utils as trl_utils

    assert hasattr(trl_utils, "_ChunkedLogProbFunction")  # None where Triton is missing (CPU wheels)
    tree = ast.parse(inspect.getsource(trl_utils))
    calls = [n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and ast.unparse(n.func) == "_ChunkedLogProbFunction.apply"]
    assert len(calls) == 1 and len(calls[0].args) == 9 and not calls[0].keywords
    source = inspect.getsource(trl_utils)
    assert "log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = (" in source


def test_logprob_patch_applies_off_cuda_only(monkeypatch):
    import trl.trainer.utils as trl_utils

    original = trl_utils._ChunkedLogProbFunction
    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", original)  # restored after the test
    if not getattr(original, "is_torch_fallback", False):
        training.patch_trl_logprobs_for_cpu(torch.device("cuda"))
        assert trl_utils._ChunkedLogProbFunction is original
    training.patch_trl_logprobs_for_cpu("cpu")
    stand_in = trl_utils._ChunkedLogProbFunction
    assert stand_in.is_torch_fallback
    assert params(stand_in.apply)[:9] == ["hidden", "weight", "bias", "targets", "temperature", "chunk_size",
                                          "final_logit_softcapping", "logit_scale", "outputs"]
    hidden, weight, targets = torch.randn(5, 8), torch.randn(11, 8), torch.randint(11, (5,))
    log_probs, entropy, *_ = stand_in.apply(hidden, weight, None, targets, 0.5, 4, None, 1.0, ("log_probs", "entropy"))
    expected = torch.log_softmax(hidden @ weight.T / 0.5, -1)
    torch.testing.assert_close(log_probs, expected.gather(-1, targets[:, None])[:, 0])
    torch.testing.assert_close(entropy, -(expected.exp() * expected).sum(-1))


def test_importing_training_patches_nothing():
    code = "import training, trl.trainer.utils as u; print(getattr(u._ChunkedLogProbFunction, 'is_torch_fallback', 0))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == "0", proc.stderr[-2000:]


def test_fast_grpo_overrides_match_trl():
    from trl import GRPOTrainer

    ours = fast_grpo.FastGenerationGRPOTrainer
    assert params(GRPOTrainer._generate_single_turn) == params(ours._generate_single_turn) == [
        "self", "prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"]
    assert params(GRPOTrainer.training_step) == params(ours.training_step) == [
        "self", "model", "inputs", "num_items_in_batch"]
    assert params(GRPOTrainer.compute_loss)[:3] == ["self", "model", "inputs"]
    init = inspect.getsource(GRPOTrainer.__init__)  # the attributes _fast_path_applies reads
    for name in ("use_vllm", "use_transformers_continuous_batching", "min_p", "repetition_penalty",
                 "max_completion_length", "temperature", "top_p", "top_k"):
        assert f"self.{name} =" in init, name


def test_generation_hook_points():
    import transformers
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask  # noqa: F401

    assert callable(transformers.AttentionInterface.register) and callable(ALL_MASK_ATTENTION_FUNCTIONS.register)
    assert params(sdpa_attention_forward)[:7] == ["module", "query", "key", "value", "attention_mask", "dropout",
                                                  "scaling"]
    assert "make_inputs_require_grad" in inspect.getsource(transformers.PreTrainedModel.enable_input_require_grads)
    assert params(transformers.models.llama.modeling_llama.LlamaRMSNorm.forward) == ["self", "hidden_states"]
