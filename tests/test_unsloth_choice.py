"""The Unsloth choice is explicit: importing a module imports no Unsloth and reads no sys.argv; sft.py and grpo.py
call modeling.import_unsloth before transformers/TRL load, and USE_UNSLOTH / --no_unsloth decide it.

No GPU here, so a fake `unsloth` package records what was loaded when it was imported, and
modeling.unsloth_usable is made to say yes."""

import json
import os
import subprocess
import sys

import pytest

import modeling
from conftest import REPO
from utils import UserError

FAKE = """import json, os, sys
with open(os.environ["UNSLOTH_RECORD"], "w") as f:
    json.dump({name: name in sys.modules for name in ("transformers", "trl", "peft")}, f)
"""

# as a notebook or a test imports a module, or (`main`) as `python sft.py ...` runs it, with Unsloth "usable"
PROBE = r"""
import runpy, sys
import modeling
modeling.unsloth_usable = lambda: True
script, how, *argv = sys.argv[1:]
sys.argv = [script + ".py", *argv]
if how == "main":
    try:
        runpy.run_path(script + ".py", run_name="__main__")
    except SystemExit:
        pass
else:
    __import__(script)
print("UNSLOTH", "unsloth" in sys.modules)
"""


def probe(tmp_path, script, how="import", argv=(), env=None):
    """(whether unsloth got imported, what was loaded at that moment or None)."""
    (tmp_path / "unsloth").mkdir(exist_ok=True)
    (tmp_path / "unsloth" / "__init__.py").write_text(FAKE)
    record = tmp_path / "record.json"
    record.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if k != "USE_UNSLOTH"}
    environ.update(PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]), UNSLOTH_RECORD=str(record), **(env or {}))
    proc = subprocess.run([sys.executable, "-c", PROBE, script, how, *argv], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = proc.stdout.strip().splitlines()[-1] == "UNSLOTH True"
    return imported, json.loads(record.read_text()) if record.exists() else None


def test_importing_training_imports_no_unsloth(tmp_path):
    assert probe(tmp_path, "training", argv=["--unsloth", "true"]) == (False, None)


@pytest.mark.parametrize("script", ["sft", "grpo"])
def test_trainers_import_unsloth_first_and_ignore_argv_on_import(tmp_path, script):
    # imported (a notebook): USE_UNSLOTH decides, the command line of whatever imported it does not
    # (each probe is a fresh interpreter importing TRL: ~10 s, so the cases are spread over the two scripts)
    first = {"transformers": False, "trl": False, "peft": False}
    assert probe(tmp_path, script, argv=["--no_unsloth"] if script == "sft" else []) == (True, first)
    if script == "sft":
        assert probe(tmp_path, script, env={"USE_UNSLOTH": "0"}) == (False, None)
    else:
        assert probe(tmp_path, script, env={"USE_UNSLOTH": "1"}) == (True, first)


def test_the_command_line_flag_keeps_unsloth_out(tmp_path):
    assert probe(tmp_path, "sft", how="main", argv=["--no_unsloth", "--help"]) == (False, None)
    assert probe(tmp_path, "grpo", how="main", argv=["--help"]) == (True, {"transformers": False, "trl": False,
                                                                           "peft": False})


@pytest.mark.parametrize("argv", [["--no_unsloth"], ["--no-unsloth"], ["--unsloth", "false"], ["--unsloth=false"]])
def test_flag_spellings(monkeypatch, argv):
    monkeypatch.delenv("USE_UNSLOTH", raising=False)
    modeling.import_unsloth(["--model", "x", *argv])  # sets the variable, so later calls and child processes agree
    assert os.environ["USE_UNSLOTH"] == "0"
    monkeypatch.delenv("USE_UNSLOTH")
    modeling.import_unsloth(["--unsloth", "true", "--model", "x"])
    assert "USE_UNSLOTH" not in os.environ


def test_use_unsloth_values(monkeypatch):
    for value, choice in (("1", True), ("0", False), (" 0 ", False), ("", None)):
        monkeypatch.setenv("USE_UNSLOTH", value)
        assert modeling.unsloth_choice() is choice
    monkeypatch.delenv("USE_UNSLOTH")
    assert modeling.unsloth_choice() is None
    monkeypatch.setenv("USE_UNSLOTH", "yes")
    with pytest.raises(UserError, match="USE_UNSLOTH='yes': set 1"):
        modeling.unsloth_choice()


def test_no_unsloth_on_cpu(monkeypatch, capsys):
    """Here (no CUDA): nothing is imported; asked for explicitly, one line says why not."""
    monkeypatch.setenv("USE_UNSLOTH", "1")
    assert modeling.import_unsloth() is False and "unsloth" not in sys.modules
    assert "USE_UNSLOTH=1, but Unsloth needs a CUDA GPU" in capsys.readouterr().out
    monkeypatch.delenv("USE_UNSLOTH")
    assert modeling.import_unsloth() is False and capsys.readouterr().out == ""
