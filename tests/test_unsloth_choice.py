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

# Each case as a notebook or a test imports a module, or (`main`) as `python sft.py ...` runs it, with Unsloth
# "usable"; after each case, one line says whether unsloth is imported by then
PROBE = r"""
import json, os, runpy, sys
import modeling
modeling.unsloth_usable = lambda: True
for script, how, argv, env in json.loads(sys.argv[1]):
    os.environ.pop("USE_UNSLOTH", None)
    os.environ.update(env)
    sys.argv = [script + ".py", *argv]
    if how == "main":
        try:
            runpy.run_path(script + ".py", run_name="__main__")
        except SystemExit:
            pass
    else:
        __import__(script)
    print("UNSLOTH", "unsloth" in sys.modules, flush=True)
"""


class Probe:
    """A fresh interpreter running `cases` (script, how, argv, env) in turn, started at once: each probe imports
    TRL (~9 s of CPU), so the probes of this file run side by side on the two cores while the tests wait."""

    def __init__(self, folder, *cases):
        (folder / "unsloth").mkdir()
        (folder / "unsloth" / "__init__.py").write_text(FAKE)
        self.folder, self.cases, self.record = folder, cases, folder / "record.json"
        environ = {k: v for k, v in os.environ.items() if k != "USE_UNSLOTH"}
        environ.update(PYTHONPATH=os.pathsep.join([str(folder), REPO]), UNSLOTH_RECORD=str(self.record))
        self.stdout, self.stderr = open(folder / "stdout", "w+"), open(folder / "stderr", "w+")
        # output to files, not pipes: --help prints more than a pipe holds while no one reads it yet
        self.process = subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(cases)], cwd=REPO, env=environ,
                                        stdout=self.stdout, stderr=self.stderr, text=True)

    def results(self):
        """Per case: (whether unsloth is imported after it, what was loaded when unsloth got imported or None)."""
        try:
            self.process.wait(timeout=300)
        finally:
            self.process.kill()  # a no-op once it has exited; after a timeout, it stops the probe
        self.stdout.seek(0), self.stderr.seek(0)
        assert self.process.returncode == 0, (self.cases, self.stderr.read()[-3000:])
        lines = [line for line in self.stdout.read().splitlines() if line.startswith("UNSLOTH ")]
        assert len(lines) == len(self.cases), (self.cases, lines)
        record = json.loads(self.record.read_text()) if self.record.exists() else None  # written once, at import
        return [(line == "UNSLOTH True", record if line == "UNSLOTH True" else None) for line in lines]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """A case where Unsloth must come first needs its own interpreter (nothing of the HF stack loaded yet); the
    cases where Unsloth must stay out share one: each checks that no unsloth got imported, in any case so far."""
    first = {"transformers": False, "trl": False, "peft": False}

    def start(*cases):
        return Probe(tmp_path_factory.mktemp("probe"), *cases)

    started = {
        "kept out": start(("training", "import", ["--unsloth", "true"], {}),  # importing training: no Unsloth
                          ("sft", "import", [], {"USE_UNSLOTH": "0"}),  # imported with USE_UNSLOTH=0
                          ("sft", "main", ["--no_unsloth", "--help"], {})),  # `python sft.py --no_unsloth --help`
        "sft import": start(("sft", "import", ["--no_unsloth"], {})),
        "grpo import": start(("grpo", "import", [], {})),
        "grpo import USE_UNSLOTH=1": start(("grpo", "import", [], {"USE_UNSLOTH": "1"})),
        "grpo main": start(("grpo", "main", ["--help"], {})),
    }
    yield first, started
    for probe in started.values():
        probe.process.kill()
        probe.process.wait()
        probe.stdout.close(), probe.stderr.close()


def test_importing_training_imports_no_unsloth(probes):
    _, started = probes
    assert started["kept out"].results()[0] == (False, None)


@pytest.mark.parametrize("script", ["sft", "grpo"])
def test_trainers_import_unsloth_first_and_ignore_argv_on_import(probes, script):
    # imported (a notebook): USE_UNSLOTH decides, the command line of whatever imported it does not
    first, started = probes
    if script == "sft":
        assert started["sft import"].results() == [(True, first)]  # --no_unsloth in argv: ignored
        assert started["kept out"].results()[1] == (False, None)  # USE_UNSLOTH=0
    else:
        assert started["grpo import"].results() == [(True, first)]
        assert started["grpo import USE_UNSLOTH=1"].results() == [(True, first)]


def test_the_command_line_flag_keeps_unsloth_out(probes):
    first, started = probes
    assert started["kept out"].results()[2] == (False, None)
    assert started["grpo main"].results() == [(True, first)]


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
