"""Shared fixtures: paths, a tiny data.json, a tiny random model saved to disk, the embedded SmolLM2; and what
the parser and trace tests share (TRACE, msg, slowest_ms)."""

import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared")
GSM8K_DIR = os.path.join(SHARED, "data", "gsm8k")
sys.path.insert(0, REPO)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# A worked solution whose every line checks (traces.check_trace): test_traces.py and the trace reward's tests
TRACE = """<think>
(1) -3x + 5y = 48
(2) -4x - y = 18
Eliminate x: multiply (1) by -4 and (2) by -3.
(1) * (-4): (-4)*(-3)x + (-4)*5y = (-4)*48 -> 12x - 20y = -192
(2) * (-3): (-3)*(-4)x + (-3)*(-1)y = (-3)*18 -> 12x + 3y = -54
(3) = (1) * (-4) - (2) * (-3): (-20 - 3)y = -192 - (-54) -> -23y = -138
y = -138 / (-23) = 6
Substitute y = 6 into (1): -3x + 5*6 = 48 -> -3x + 30 = 48
-3x = 48 - 30 = 18
x = 18 / (-3) = -6
</think>
<answer>x = -6, y = 6</answer>"""


def msg(text):
    """A completion in TRL's conversational form."""
    return [{"role": "assistant", "content": text}]


def slowest_ms(fn, text):
    # Best of three: the bound is on the algorithm, not on a busy machine's worst moment.
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def run_script(*args, cwd=REPO, timeout=600):
    """Run a repo script as a user would; returns the CompletedProcess (never raises on failure)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A small data.json: 24 train / 8 val / 6 test / 6 test_ood, 2 variables, easy ranges."""
    import data

    path = str(tmp_path_factory.mktemp("data") / "data.json")
    data.main(["--train", "24", "--val", "8", "--test", "6", "--test-ood", "6",
               "--coef-range", "-5", "5", "--solution-range", "-9", "9", "--out", path])
    return path


@pytest.fixture(scope="session")
def smollm2_dir():
    """The embedded SmolLM2-135M-Instruct as a local safetensors directory (converted once)."""
    import modeling

    return modeling.smollm2_path()


@pytest.fixture(scope="session")
def chat_tokenizer_dir():
    """The tokenizer (with a chat template) of the tiny random models: the embedded SmolLM2's, or the one in
    $TEST_TOKENIZER_DIR where the embedded model's package is not installed (the lent GPU machine, which runs
    the CUDA tests with the Qwen tokenizer)."""
    if os.environ.get("TEST_TOKENIZER_DIR"):
        return os.environ["TEST_TOKENIZER_DIR"]
    import modeling

    return modeling.smollm2_path()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, chat_tokenizer_dir):
    """A randomly initialised 2-layer Llama with chat_tokenizer_dir's tokenizer and chat template (SmolLM2's):
    seconds to train."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(chat_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    path = str(tmp_path_factory.mktemp("tiny-model"))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
