"""grpo.ipynb runs top to bottom (tiny random model, 2 steps, CPU), so the notebook cannot rot."""

import json
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = os.path.join(REPO, "grpo.ipynb")


def tiny_parameters(model_dir, data, output_dir):
    config = dict(max_steps=2, num_generations=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                  max_completion_length=8, learning_rate=1e-2, lora_r=8, lora_alpha=16, val_steps=1, val_limit=2,
                  save_steps=1)
    return f"MODEL = {model_dir!r}\nDATA = {data!r}\nOUTPUT_DIR = {output_dir!r}\nCONFIG = {config!r}\n"


def test_notebook_layout():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "colab-badge" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert '"COLAB_" in "".join(os.environ)' in code[0].source and "unsloth==" in code[0].source
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    for before, cell in zip(nb.cells, nb.cells[1:]):  # a markdown line above every code cell
        if cell.cell_type == "code":
            assert before.cell_type == "markdown" or before.metadata.get("tags") == ["parameters"]
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings == ["## Install", "## Configuration", "## Data", "## Model + LoRA", "## Rewards", "## Train",
                        "## Evaluate", "## Save"]
    assert all(not c.get("outputs") for c in code)  # committed without outputs


def gpu_stack(notebook):
    """The GPU_STACK list of a notebook's install cell."""
    import ast

    install = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    node = next(n for n in ast.parse(install.source).body if isinstance(n, ast.Assign)
                and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "GPU_STACK")
    return ast.literal_eval(node.value)


def test_install_cells_pin_one_gpu_stack():
    """Both notebooks install the same Unsloth pins, grpo.ipynb adds vLLM, and the README shows the same pins."""
    sft_stack, grpo_stack = gpu_stack(os.path.join(REPO, "sft.ipynb")), gpu_stack(NOTEBOOK)
    assert set(sft_stack) < set(grpo_stack) and any(p.startswith("vllm==") for p in grpo_stack)
    assert {p.split("==")[0] for p in sft_stack} == {"unsloth", "unsloth_zoo"}
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    for pin in grpo_stack:
        assert pin in readme, pin
    with open(os.path.join(REPO, "requirements.txt")) as f:
        numpy = next(line.split("==")[1].split()[0] for line in f if line.startswith("numpy=="))
    if "vllm==0.32.0" in grpo_stack:  # its mistral-common needs numpy < 2.4 (results/unsloth/colab-resolution.txt)
        assert tuple(int(x) for x in numpy.split(".")[:2]) < (2, 4), numpy


def test_notebook_runs_on_tiny_model(tmp_path, tiny_model_dir, tiny_data):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    output_dir = str(tmp_path / "grpo-notebook")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = tiny_parameters(tiny_model_dir, tiny_data, output_dir)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()

    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "BEFORE:" in outputs and "AFTER:" in outputs
    assert "correctness_reward: [1.0, 0.1, 0.0]" in outputs  # the Rewards cell's hand-written answers
    for name in ("adapter_model.safetensors", "training_manifest.json", "run_config.json", "train_log.jsonl"):
        assert os.path.exists(os.path.join(output_dir, name)), name
    with open(os.path.join(output_dir, "training_manifest.json")) as f:
        assert json.load(f)["splits"] == ["train"]
