"""Shared fixtures: paths, a tiny data.json, a tiny random model saved to disk, the embedded SmolLM2; and what
the parser and trace tests share (TRACE, msg, slowest_ms)."""

import json
import os
import subprocess
import sys
import threading
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


# One interpreter that runs script after script as `python script args` would (`__main__`, sys.argv, sys.path[0],
# the working folder, the caller's environment, stdout/stderr caught at the file descriptors, so logging and
# warnings count too), answering each run's exit status on its own stdout.
WARM = r"""
import json, os, runpy, sys, traceback
reply = os.fdopen(os.dup(1), "w")
start_cwd, start_path = os.getcwd(), list(sys.path)
for line in sys.stdin:
    run = json.loads(line)
    os.chdir(run["cwd"])
    os.environ.clear()
    os.environ.update(run["env"])
    script, *rest = run["args"]
    sys.argv = [script, *rest]
    sys.path[:] = [os.path.dirname(os.path.abspath(script))] + start_path[1:]
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(run["stdout"], "w") as out, open(run["stderr"], "w") as err:
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
    os.close(saved[0]), os.close(saved[1])
    os.chdir(start_cwd)
    reply.write(json.dumps(code) + "\n")
    reply.flush()
"""


class WarmPython:
    """run_script for a module's short command lines (bad flags and input, a raised crash, runs of a few tokens),
    all in one interpreter: a fresh `python` here spends ~8 s of CPU importing torch/transformers/TRL before it
    reads its flags; this one imports them once. What a fresh interpreter would add and this does not:
    import-time output (it goes to the first run only), warnings that Python shows once per process, and module
    state left by an earlier run. So checks of import-time facts, runs that end the process themselves
    (os._exit, signals) or start other processes (torchrun), and long runs stay with run_script."""

    def __init__(self, folder):
        self.folder, self.count, self.process = folder, 0, None

    def run(self, *args, cwd=REPO, timeout=600):
        if self.process is None:
            self.process = subprocess.Popen([sys.executable, "-c", WARM], cwd=REPO, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, text=True)
        self.count += 1
        out, err = (os.path.join(self.folder, f"{self.count}.{name}") for name in ("stdout", "stderr"))
        self.process.stdin.write(json.dumps({"args": list(args), "cwd": str(cwd), "env": dict(os.environ),
                                             "stdout": out, "stderr": err}) + "\n")
        self.process.stdin.flush()
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        assert line, f"the warm interpreter died running {args} (or ran past {timeout} s)"
        with open(out) as f_out, open(err) as f_err:
            return subprocess.CompletedProcess([sys.executable, *args], json.loads(line), f_out.read(), f_err.read())

    def close(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def warm_python(tmp_path_factory):
    """A module's WarmPython (see there)."""
    warm = WarmPython(str(tmp_path_factory.mktemp("warm")))
    yield warm
    warm.close()


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
