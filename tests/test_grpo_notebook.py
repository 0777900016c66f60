"""grpo.ipynb runs top to bottom (tiny random model, 2 steps, CPU), so the notebook cannot rot; what both notebooks
share (repository cell, install cell, Colab GPU type)."""

import json
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = os.path.join(REPO, "grpo.ipynb")
NOTEBOOKS = [os.path.join(REPO, "sft.ipynb"), NOTEBOOK]


def tiny_parameters(model_dir, data, output_dir):
    args = ["--model", model_dir, "--data", data, "--output_dir", output_dir, "--max_steps", "2",
            "--num_generations", "2", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
            "--max_completion_length", "8", "--learning_rate", "1e-2", "--lora_r", "8", "--lora_alpha", "16",
            "--val_steps", "1", "--val_limit", "2", "--save_steps", "1"]
    return f"MODEL = {model_dir!r}\nDATA = {data!r}\nOUTPUT_DIR = {output_dir!r}\nARGS = {args!r}\n"


def install_cell(notebook):
    """The code cell that installs the stack (the one that checks for Colab)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return next(c for c in cells if c.cell_type == "code" and '"COLAB_" in "".join(os.environ)' in c.source)


def assignments(source):
    """{name: value} of a cell's top-level `NAME = ...` lines: literals, and lists with their literal items only."""
    import ast

    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.List):
                values[node.targets[0].id] = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            elif isinstance(node.value, ast.Constant):
                values[node.targets[0].id] = node.value.value
    return values


def test_notebook_layout():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "colab-badge" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "REPO_URL" in assignments(code[0].source)  # the repository is set at the top
    assert '"COLAB_" in "".join(os.environ)' in code[1].source and "unsloth==" in code[1].source
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    for before, cell in zip(nb.cells, nb.cells[1:]):  # a markdown line above every code cell
        if cell.cell_type == "code":
            assert before.cell_type == "markdown" or before.metadata.get("tags") == ["parameters"]
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings == ["## Install", "## Configuration", "## Data", "## Model + LoRA", "## Rewards", "## Train",
                        "## Evaluate", "## Save"]
    assert all(not c.get("outputs") for c in code)  # committed without outputs


def gpu_stack(notebook):
    """The packages a notebook's install cell adds on a GPU runtime: UNSLOTH, plus VLLM where its USE_VLLM."""
    first = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    pins = assignments(install_cell(notebook).source)
    return pins["UNSLOTH"] + (pins["VLLM"] if assignments(first.source)["USE_VLLM"] else [])


def test_notebooks_share_repo_and_install_cells():
    """No OWNER/REPO placeholder is left; the first code cell sets REPO_URL (empty: an uploaded or cloned folder);
    both notebooks have the same install cell text; both ask Colab for a GPU of one type."""
    installs = []
    for notebook in NOTEBOOKS:
        with open(notebook) as f:
            assert "OWNER/REPO" not in f.read(), notebook
        nb = nbformat.read(notebook, as_version=4)
        nbformat.validate(nb)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert isinstance(assignments(first.source)["REPO_URL"], str), notebook
        assert "colab-badge" in nb.cells[0].source, notebook
        assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"], notebook
        installs.append(install_cell(notebook).source)
    assert installs[0] == installs[1]
    assert "REPO_URL" in installs[0] and "git" in installs[0]


def test_notebooks_pass_flags_the_same_way():
    """Both configuration cells hold ARGS, a list of the script's command-line flags; neither repeats a reward
    value or a token budget (the scripts' defaults apply), and grpo.ipynb writes data.json with data.py."""
    for notebook, script in zip(NOTEBOOKS, ("sft", "grpo")):
        nb = nbformat.read(notebook, as_version=4)
        [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        args = assignments(params.source)["ARGS"]  # the literal items: flags and their values
        assert args[0] == "--model" and all(isinstance(a, str) for a in args)
        assert not set(args) & {"--wrong_credit", "--reward_weights", "--max_completion_length", "--max_length"}
        code = "".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f"{script}.parse_args(ARGS)" in code
        assert 'subprocess.run([sys.executable, "data.py", "--out", DATA], check=True)' in code
        assert "data.main(" not in code


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
