"""report.py on small synthetic results files: table values, CIs, paired tests, plots, input errors."""

import json
import os

import numpy as np
import pytest
from conftest import run_script

import records
import report
import stats
import traces
from utils import UserError

N = 20  # items per synthetic split


def write_result(path, name, benchmark, split, strict, lenient=None, sha="sha-linear", ids=None,
                 answers=None, texts=None, **summary_extra):
    """A results JSON in the contract's schema. strict/lenient: per item, a list of per-output bools;
    texts: per item, the output texts ("..." when None)."""
    lenient = lenient or strict
    ids = ids or [f"{split}-{i:04d}" for i in range(len(strict))]
    answers = answers or [{"x": i, "y": -i} if benchmark == "linear_equation" else i for i in range(len(strict))]
    modes = ["strict", "lenient"] if benchmark == "linear_equation" else ["strict", "flexible", "lenient"]
    records, outputs = [], 0
    texts = texts or [["..."] * len(item) for item in strict]
    for item_id, answer, s_item, l_item, t_item in zip(ids, answers, strict, lenient, texts):
        outs = [{"text": t, "num_tokens": 5, "truncated": False, "parsed": {},
                 "correct": {"strict": s, "flexible": l, "lenient": l}} for s, l, t in zip(s_item, l_item, t_item)]
        records.append({"id": item_id, "answer": answer, "outputs": outs})
        outputs += len(outs)
    flat = {"strict": [c for item in strict for c in item], "lenient": [c for item in lenient for c in item]}
    flat["flexible"] = flat["lenient"]
    accuracy = {m: {"correct": sum(flat[m]), "total": outputs, "accuracy": sum(flat[m]) / outputs,
                    "ci95": list(report.wilson_interval(sum(flat[m]), outputs))} for m in modes}
    summary = {"benchmark": benchmark, "name": name, "model": "Qwen/Qwen2.5-1.5B-Instruct",
               "adapter": None if name == "baseline" else f"outputs/quick/{name}", "data_file": "data.json",
               "data_sha256": sha, "split": split, "num_items": len(records), "num_outputs": outputs,
               "modes": modes, "accuracy": accuracy, "format_failures": outputs - sum(flat["strict"]),
               "truncated": 1, "generation": {"temperature": 0.0, "max_new_tokens": 512},
               "allow_overlap": False, **summary_extra}
    with open(path, "w") as f:
        json.dump({"summary": summary, "records": records}, f)


def single(correct_items, n=N):
    return [[i in correct_items] for i in range(n)]


@pytest.fixture
def study(tmp_path):
    """baseline 2/20, sft 10/20 (lost 1, gained 9) on linear test; a test_ood file under an odd name;
    GSM8K with 2 samples per item for grpo; sft's training log as a copy in the folder."""
    d = tmp_path / "quick"
    d.mkdir()
    write_result(d / "baseline_linear_equation.json", "baseline", "linear_equation", "test",
                 single({0, 1}), lenient=single({0, 1, 2}))
    write_result(d / "sft_linear_equation.json", "sft", "linear_equation", "test",
                 single(set(range(1, 11))), lenient=single(set(range(0, 12))))
    write_result(d / "baseline_ood_whatever.json", "baseline", "linear_equation", "test_ood", single({3}))
    write_result(d / "baseline_gsm8k.json", "baseline", "gsm8k", "test", single({0}, 4), sha=None,
                 ids=[f"gsm8k-test-{i:04d}" for i in range(4)])
    # grpo: 2 outputs per item; item accuracies 1, .5, .5, 0 vs baseline 1, 0, 0, 0 -> diffs 0, .5, .5, 0
    write_result(d / "grpo_gsm8k.json", "grpo", "gsm8k", "test",
                 [[True, True], [True, False], [False, True], [False, False]], sha=None,
                 ids=[f"gsm8k-test-{i:04d}" for i in range(4)])
    (d / "study_config.json").write_text(json.dumps({"not": "a results file"}))
    with open(d / "sft_train_log.jsonl", "w") as f:
        for step in range(1, 6):
            f.write(json.dumps({"step": step, "loss": 2.0 / step, "learning_rate": 1e-4}) + "\n")
        f.write(json.dumps({"step": 5, "eval_loss": 0.6}) + "\n")
    return d


def grpo_log(tmp_path):
    out = tmp_path / "outputs" / "grpo"
    out.mkdir(parents=True)
    rows = [{"step": s, "loss": 0.01 * s, "reward": 0.2 * s, "rewards/correctness_reward/mean": 0.1 * s,
             "rewards/format_reward/mean": 0.1 * s, "kl": 0.001 * s} for s in range(1, 5)]
    rows.append({"step": 4, "val_accuracy": 0.35})
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def table_rows(text, section):
    """Rows (lists of cells) of the first markdown table after the heading `section`."""
    blocks = [b.strip("\n") for b in text.split(section, 1)[1].split("\n\n")]
    lines = next(b for b in blocks if b.startswith("|")).splitlines()
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def table_row(text, section, run):
    rows = [row for row in table_rows(text, section) if row[0] == run]
    assert len(rows) == 1, f"no row {run} after {section}"
    return rows[0]


def test_report_tables(study, tmp_path, capsys):
    path = report.main([str(study), "--train-log", f"grpo={grpo_log(tmp_path)}", "--bootstrap-samples", "2000"])
    assert path == str(study / "report.md")
    text = (study / "report.md").read_text()
    assert "skipping" in capsys.readouterr().out  # study_config.json is not a results file

    # main table: strict then lenient per column, Wilson CIs; the OOD file was found by its summary
    base, sft = table_row(text, "## Accuracy", "Baseline"), table_row(text, "## Accuracy", "SFT")
    header = table_row(text, "## Accuracy", "Run")
    assert header[1:7] == ["Linear test strict", "Linear test lenient", "Linear test_ood strict",
                           "Linear test_ood lenient", "GSM8K strict", "GSM8K lenient"]
    assert base[1:4] == ["10.0 [2.8, 30.1]", "15.0 [5.2, 36.0]", "5.0 [0.9, 23.6]"]
    assert sft[1:3] == ["50.0 [29.9, 70.1]", "60.0 [38.7, 78.1]"] and sft[3] == ""
    # the original study's two known figures, and nothing invented elsewhere
    assert base[-1] == "Linear test: 4.2%" and sft[-1] == "GSM8K: 0.73%"
    assert table_row(text, "## Accuracy", "GRPO")[-1] == ""
    assert "88 of its 100 test items" in text and "**Warnings**" not in text
    assert [row[0] for row in table_rows(text, "## Accuracy")[2:]] == ["Baseline", "SFT", "GRPO"]

    # details: counts, failure rates, McNemar with pair counts (strict: lost 1 gained 9; lenient: 0 and 9)
    sft_detail = table_row(text, "### Linear test\n", "SFT")
    assert sft_detail[1:5] == ["20", "20", "10/20 (50.0%)", "12/20 (60.0%)"]
    assert sft_detail[5:7] == ["10 (50.0%)", "1 (5.0%)"]
    assert sft_detail[7] == "+9 / -1, p = 0.0215"
    assert sft_detail[8] == f"+9 / -0, p = {2 / 2 ** 9:.3g}"
    # GSM8K: grpo has 2 outputs per item -> paired bootstrap over items, diffs 0, .5, .5, 0 -> +25 pp
    grpo_detail = table_row(text, "### GSM8K", "GRPO")
    assert grpo_detail[1:6] == ["4", "8", "4/8 (50.0%)", "4/8 (50.0%)", "4/8 (50.0%)"]
    assert grpo_detail[8].startswith("+25.0 pp [+0.0, +50.0], p = ")

    # training: the sft copy in the folder and the grpo flag; inputs listed with their settings
    assert table_row(text, "## Training", "SFT")[1:4] == ["5", "0.4", "0.6"]
    assert table_row(text, "## Training", "GRPO")[1:6] == ["4", "0.04", "", "0.8", "0.35"]
    assert "`Qwen/Qwen2.5-1.5B-Instruct`, adapter \"outputs/quick/sft\"" in text
    assert '"max_new_tokens": 512' in text and "baseline_ood_whatever.json" in text
    for name in ("accuracy.png", "training_sft.png", "training_grpo.png"):
        data = (study / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
        assert f"]({name})" in text
    assert not [f for f in os.listdir(study) if f.startswith(".tmp-")]


def test_paired_test_refuses_different_items(study, tmp_path):
    write_result(study / "sft_linear_equation.json", "sft", "linear_equation", "test", single({1}, 19))
    write_result(study / "grpo_linear_equation.json", "grpo", "linear_equation", "test", single({1}),
                 sha="sha-other")
    out = tmp_path / "elsewhere"
    report.main([str(study), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert table_row(text, "### Linear test\n", "SFT")[-2] == "n/a (item sets differ (20 vs 19 items))"
    assert table_row(text, "### Linear test\n", "GRPO")[-1] == "n/a (different data files)"
    assert (out / "accuracy.png").stat().st_size > 0 and not (study / "report.md").exists()


def test_warnings_and_tiny_p_values(study, tmp_path):
    write_result(study / "sft_linear_equation.json", "sft", "linear_equation", "test",
                 single(set(range(2, 20))), allow_overlap=True)  # gained 18, lost 2: p = 0.000402
    obj = json.loads((study / "grpo_gsm8k.json").read_text())
    obj["summary"]["accuracy"]["strict"]["correct"] = 7  # records hold 4
    (study / "grpo_gsm8k.json").write_text(json.dumps(obj))
    text = open(report.main([str(study), "--out", str(tmp_path)])).read()
    assert table_row(text, "### Linear test\n", "SFT")[7] == "+18 / -2, p < 0.001"
    warnings = sorted(text.split("**Warnings**")[1].split("\n\n")[1].splitlines())
    assert len(warnings) == 2
    assert "grpo_gsm8k.json`: summary strict accuracy 7/8 disagrees with its records" in warnings[0]
    assert "sft_linear_equation.json` was evaluated with allow_overlap" in warnings[1]


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "study folder not found"),
    (lambda d: d.mkdir(), "no results JSON"),
    (lambda d: (d.mkdir(), (d / "x_gsm8k.json").write_text('{"summary": ')), "not valid JSON"),
    (lambda d: (d.mkdir(), (d / "x.json").write_text('{"summary": {"benchmark": "gsm8k"}}')),
     "lacks summary.split or summary.accuracy"),
])
def test_bad_input_is_one_clear_error(tmp_path, setup, message):
    d = tmp_path / "study"
    setup(d)
    with pytest.raises(UserError, match=message):
        report.main([str(d)])


def test_bad_train_logs(study, tmp_path):
    with pytest.raises(UserError, match="RUN=PATH"):
        report.main([str(study), "--train-log", "outputs/sft"])
    with pytest.raises(UserError, match="training log not found"):
        report.main([str(study), "--train-log", f"sft={tmp_path / 'nope'}"])
    (study / "sft_train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss"\n')
    with pytest.raises(UserError, match=r"sft_train_log.jsonl:2 is not valid JSON"):
        report.main([str(study)])
    assert not (study / "report.md").exists()


def test_cli_error_is_one_line(tmp_path):
    result = run_script("report.py", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: study folder not found: {tmp_path / 'missing'} "
                                                  f"(run the eval scripts with --out {tmp_path / 'missing'})"]


# ----------------------------------------------------------------------------
# Multi-seed study folders (study_report.py)

STUDY_CONFIG = """
arm_labels: {base: "Base model", s0: "S0 (SFT warm start)", sft_more: "(b) SFT continued", grpo: "(c) GRPO",
             rft: "(d) Rejection-sampling FT", grpo_base: "GRPO from base (control)"}
contrasts:
  primary:
    - {a: grpo, b: sft_more, benchmark: linear_equation, split: test}
    - {a: grpo, b: sft_more, benchmark: linear_equation, split: test_near}
  secondary:
    - {a: grpo, b: rft, benchmark: linear_equation, split: test}
    - {a: grpo, b: base, benchmark: gsm8k, split: test}
mode: strict
"""


def fake_check_trace(text):
    """Stand-in for traces.check_trace with its API: a line reading "bad" is a wrong line."""
    lines = text.splitlines()
    bad = [i for i, line in enumerate(lines, 1) if line == "bad"]
    return {"checked": len(lines), "errors": len(bad), "valid": not bad,
            "first_error": bad[0] if bad else None, "first_error_line": "bad" if bad else None}


def correct_first(k, n=N):
    """Items 0..k-1 right; outputs: right ones check, wrong even items go wrong on line 2, odd ones check."""
    return single(set(range(k)), n), [["ok\nok" if i < k or i % 2 else "ok\nbad"] for i in range(n)]


# correct items per (arm, split) and seed 1, 2, 3 (rft: no results at all)
STUDY_CORRECT = {("base", "test"): (2, 2, 2), ("s0", "test"): (4, 5, 6), ("sft_more", "test"): (5, 5, 5),
                 ("grpo", "test"): (11, 12, 13), ("grpo_base", "test"): (3, 3, 3),
                 ("sft_more", "test_near"): (6, 6, 6), ("grpo", "test_near"): (7, 8, 9)}


@pytest.fixture
def multi_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(traces, "check_trace", fake_check_trace, raising=False)
    d = tmp_path / "small"
    d.mkdir()
    (d / "config.yaml").write_text(STUDY_CONFIG)
    for s in (1, 2, 3):
        sd = d / f"seed{s}"
        sd.mkdir()
        for (arm, split), ks in STUDY_CORRECT.items():
            strict, texts = correct_first(ks[s - 1])
            write_result(sd / f"{arm}_linear_equation_{split}.json", arm, "linear_equation", split, strict,
                         texts=texts)
        ids = [f"gsm8k-test-{i:04d}" for i in range(N)]
        write_result(sd / "grpo_gsm8k.json", "grpo", "gsm8k", "test", single(set(range(8))), ids=ids)
        if s < 3:  # base's GSM8K eval of seed 3 is missing: that contrast uses 2 seeds
            write_result(sd / "base_gsm8k.json", "base", "gsm8k", "test", single(set(range(4))), ids=ids)
            # pass@k, n=4: per-item correct counts 0, 1, 2, 4 (x5)
            write_result(sd / "grpo_passk_linear_equation_test.json", "grpo_passk", "linear_equation", "test",
                         [[j < c for j in range(4)] for c in (0, 1, 2, 4) * 5],
                         generation={"num_samples": 4, "temperature": 1.0, "max_new_tokens": 256})
        rows = [{"step": st, "loss": 1 / st, "num_tokens": 250 * st * s, "elapsed_s": st} for st in (1, 2, 3, 4)]
        rows[1]["val_accuracy"], rows[3]["val_accuracy"] = 0.3, 0.4 + 0.05 * s
        rows.append({"step": 4, "compute_flops": 1e15 * s, "train_seconds": 100.0 * s})
        (sd / "sft_more_train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        rows[1]["val_seconds"], rows[3]["val_seconds"] = 2.0 * s, 5.0 * s  # grpo's log records its val time
        (sd / "grpo_train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (sd / "timings.json").write_text(json.dumps({"train_grpo": 10.0 * s}))
    return d


def contrast_diffs(a_ks, b_ks):
    """Per-seed paired diffs of two 'items 0..k-1 right' arms."""
    return [np.array([float(i < ka) - float(i < kb) for i in range(N)]) for ka, kb in zip(a_ks, b_ks)]


def test_study_report(multi_seed):
    path = report.main([str(multi_seed), "--bootstrap-samples", "500"])
    text = open(path).read()
    assert path == str(multi_seed / "report.md")

    # accuracy: mean over seeds, then each seed; rft has no files; GSM8K base lacks seed 3
    assert table_row(text, "## Accuracy", "Arm")[:5] == ["Arm", "seeds", "linear_equation test",
                                                          "linear_equation test_near", "gsm8k test"]
    assert table_row(text, "## Accuracy", "(c) GRPO")[1:5] == [
        "3", "60.0% (55.0, 60.0, 65.0)", "40.0% (35.0, 40.0, 45.0)", "40.0% (40.0, 40.0, 40.0)"]
    assert table_row(text, "## Accuracy", "Base model")[4] == "20.0% (20.0, 20.0, –)"
    assert table_row(text, "## Accuracy", "(d) Rejection-sampling FT")[1:3] == ["0", "–"]
    assert [r[0] for r in table_rows(text, "## Accuracy")[2:]] == [
        "Base model", "S0 (SFT warm start)", "(b) SFT continued", "(c) GRPO", "(d) Rejection-sampling FT",
        "GRPO from base (control)"]

    # primary contrasts: point estimates are exact (35 and 10 pp); p and Holm as stats computes them
    tests = [stats.hierarchical_bootstrap_diff(contrast_diffs(STUDY_CORRECT[("grpo", sp)],
                                                              STUDY_CORRECT[("sft_more", sp)]), 500, 0)
             for sp in ("test", "test_near")]
    holm = stats.holm([t["p"] for t in tests])
    primary = table_rows(text, "### Primary")[2:]
    assert [r[1] for r in primary] == ["linear_equation test", "linear_equation test_near"]
    for row, t, h in zip(primary, tests, holm):
        lo, hi = t["ci95"]
        assert row[0] == "(c) GRPO vs (b) SFT continued"
        assert row[2] == f"{100 * t['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
        assert row[3:7] == ["3", "20", report_p(t["p"]), report_p(h)]
    assert primary[0][2].startswith("+35.0 [") and primary[1][2].startswith("+10.0 [")
    assert primary[0][5:7] == ["0.002", "0.00399"]  # smallest bootstrap p 1/501, doubled by Holm

    # secondary: unadjusted; the missing arm is named instead of a crash; GSM8K uses the 2 seeds with both
    secondary = table_rows(text, "### Secondary")
    assert "p (Holm)" not in secondary[0] and "exploratory" in text
    assert secondary[2][2] == "n/a (no `rft` results for linear_equation test)"
    assert secondary[3][2].startswith("+20.0 [") and secondary[3][3:5] == ["2", "20"]
    assert "grpo vs base, gsm8k test: seed3 lacks `base`" in text

    # trace validity (stand-in check_trace): sft_more test: 5 right + 8 odd wrong items check = 65%
    valid = [r for r in table_rows(text, "## Trace validity")[2:] if r[0] == "(b) SFT continued"]
    assert valid[0][1:6] == ["test", "60", "65.0% (65.0, 65.0, 65.0)", "0/15 (0.0%)", "24/45 (53.3%)"]
    first = table_row(text, "First wrong line", "(b) SFT continued")
    assert first[1:4] == ["87", "0 (0%)", "42 (48%)"] and first[-1] == "45 (52%)"  # 15 + 14 wrong x 3 seeds

    # pass@k: c = 0, 1, 2, 4 of n = 4 -> pass@1 .4375, pass@2 (0 + 1/2 + 5/6 + 1) / 4, pass@4 .75; 2 seeds
    assert table_row(text, "## pass@k", "(c) GRPO")[1:9] == [
        "linear_equation test", "4", "2", "43.8%", "58.3%", "75.0%", "", ""]
    # compute: mean over seeds of the last values (flops 1e15 s, seconds 100 s, tokens 1000 s)
    assert table_row(text, "## Training", "(c) GRPO")[1:7] == ["3", "4", "2e+03", "2e+15", "200", "10"]
    assert table_row(text, "## Training", "(b) SFT continued")[6] == "–"  # a log from before val_seconds
    assert table_row(text, "Stage wall-clock", "train_grpo")[1:] == ["3", "20"]
    for name in ("seed_accuracy.png", "trace_first_error.png", "passk.png", "learning_curves.png"):
        data = (multi_seed / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
        assert f"]({name})" in text
    assert not [f for f in os.listdir(multi_seed) if f.startswith(".tmp-")]


def report_p(p):
    return f"{p:.3g}" if p >= 0.001 else "< 0.001"


def test_study_report_without_train_twins(multi_seed, tmp_path):
    """--data: the primary contrasts again without the test items whose system, x and y swapped, is a train item."""
    def record(split, i, text):
        return {"id": f"{split}-{i:04d}", "split": split, "prompt": [{"role": "user", "content": text}],
                "answer": {"x": 0, "y": 0}}
    items = [record("test", i, f"Solve:\n{i + 2}x + 3y = {i}\nx - y = 0") for i in range(N)]
    items += [record("test_near", i, f"Solve:\n{i + 2}x - 7y = 1\nx + y = 2") for i in range(N)]
    items += [record("train", i, f"Solve:\n3x + {i + 2}y = {i}\ny - x = 0") for i in range(5)]  # twins of 0-4
    items += [record("train", 5 + i, f"Solve:\n{i + 2}x + 5y = 1\nx + y = 7") for i in range(N)]
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"records": items}))
    with pytest.raises(UserError, match="not the data file the results were evaluated on"):
        report.main([str(multi_seed), "--data", str(data), "--bootstrap-samples", "100"])
    for f in multi_seed.glob("seed*/*.json"):
        if f.name != "timings.json":  # GSM8K's results carry its test file's hash, not data.json's
            result = json.loads(f.read_text())
            result["summary"]["data_sha256"] = "0" * 64 if "gsm8k" in f.name else records.file_sha256(data)
            f.write_text(json.dumps(result))
    text = open(report.main([str(multi_seed), "--data", str(data), "--bootstrap-samples", "500"])).read()
    assert "Left out: 5 of test, 0 of test_near" in text
    rows = table_rows(text, "### Primary, without items")[2:]
    # items 5..19 only: GRPO gets k - 5 of 15 right (k = 11, 12, 13), SFT continued none: 7/15 = 46.7 pp
    assert rows[0][1] == "linear_equation test" and rows[0][2].startswith("+46.7 [") and rows[0][4] == "15"
    assert rows[1][2].startswith("+10.0 [") and rows[1][4] == "20"  # test_near: no twins, as the primary


def test_study_report_missing_arm(multi_seed, tmp_path, monkeypatch):
    """No grpo files for test_near: that primary contrast is n/a and Holm runs over the one left."""
    for f in multi_seed.glob("seed*/grpo_linear_equation_test_near.json"):
        f.unlink()
    monkeypatch.delattr(traces, "check_trace")  # a checkout without it: the section says so
    text = open(report.main([str(multi_seed), "--out", str(tmp_path / "out"), "--bootstrap-samples",
                             "500"])).read()
    primary = table_rows(text, "### Primary")[2:]
    assert primary[0][5:7] == ["0.002", "0.002"]
    assert primary[1][2] == "n/a (no `grpo` results for linear_equation test_near)"
    assert table_row(text, "## Accuracy", "(c) GRPO")[3] == "–"
    assert "`traces.check_trace` is not available" in text
    with pytest.raises(UserError, match="--train-log is for a single results folder"):
        report.main([str(multi_seed), "--train-log", "grpo=x"])
