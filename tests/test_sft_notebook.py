"""sft.ipynb runs top to bottom (nbclient, CPU) with its `parameters` cell swapped for a tiny configuration."""

import json
import os

import nbformat
from conftest import REPO
from nbclient import NotebookClient

import training


def test_notebook_runs_end_to_end(tiny_model_dir, tiny_data, tmp_path):
    nb = nbformat.read(os.path.join(REPO, "sft.ipynb"), as_version=4)
    [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    out, results = tmp_path / "sft", tmp_path / "results"
    params.source = f"""
MODEL = {tiny_model_dir!r}
DATA = {tiny_data!r}
OUTPUT_DIR = {str(out)!r}
RESULTS_DIR = {str(results)!r}
MAX_NEW_TOKENS = 8
EVAL_LIMIT = 2
ARGS = ["--model", MODEL, "--data", DATA, "--output_dir", OUTPUT_DIR, "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--lora_r", "8", "--lora_alpha", "16", "--eval_steps", "1",
        "--disable_tqdm", "true"]
"""
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()

    log = training.read_log(out)
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    assert [r["step"] for r in log if "eval_loss" in r] == [1, 2]
    assert os.path.exists(out / "adapter_model.safetensors") and os.path.exists(out / "training_manifest.json")
    with open(results / "sft-notebook_linear_equation.json") as f:
        summary = json.load(f)["summary"]
    assert summary["adapter"] == str(out) and summary["num_items"] == 2
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("correct:" in o.get("text", "") for o in outputs)  # the before/after answers printed
