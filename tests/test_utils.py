"""utils.py: answer parsers (including the original study's failure cases), rewards, statistics, content keys
(the file I/O is tests/test_records.py's)."""

import json
import math
import os
import random
import re
import time

import pytest

import traces
import utils
from conftest import GSM8K_DIR, TRACE, msg, slowest_ms
from utils import gsm8k_gold, parse_gsm8k_answer, parse_linear_answer

XY = ["x", "y"]


def well_formed(answer, think="work"):
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# ----------------------------------------------------------------------------
# Linear answers


def test_linear_strict_reads_the_answer_block():
    assert parse_linear_answer(well_formed("x = 3, y = -2"), XY) == {"x": 3, "y": -2}
    assert parse_linear_answer(well_formed("x=-3,y=2"), XY) == {"x": -3, "y": 2}
    assert parse_linear_answer(well_formed("y = 2 and x = 3."), XY) == {"x": 3, "y": 2}
    assert parse_linear_answer(well_formed("x = \u22123, y = 2"), XY) == {"x": -3, "y": 2}  # unicode minus
    # Decimals and fractions are read as numbers.
    assert parse_linear_answer(well_formed("x = 7/2, y = -0.25"), XY) == {"x": 3.5, "y": -0.25}
    assert parse_linear_answer(well_formed("x = 6 / 2, y = 2.50"), XY) == {"x": 3, "y": 2.5}
    assert type(parse_linear_answer(well_formed("x = 6/2, y = 1"), XY)["x"]) is int


@pytest.mark.parametrize("text", [
    "x = 3, y = -2",                                                     # no tags
    "<answer>x = 3, y = -2</answer>",                                    # no <think>
    "<think></think><answer>x = 3, y = -2</answer>",                     # empty <think>
    "<think>  \n </think><answer>x = 3, y = -2</answer>",                # blank <think>
    "<think>a</think><think>b</think><answer>x = 3, y = -2</answer>",    # two <think> blocks
    "<think>a</think><answer>x = 3, y = -2</answer><answer>x = 3, y = -2</answer>",  # two answers
    "<answer>x = 3, y = -2</answer><think>a</think>",                    # answer before think
    "<think>a</think><answer>x = 3, y = -2",                             # unclosed answer
    "<think>a<answer>x = 3, y = -2</answer></think>",                    # answer inside think
    "<think>a</think><answer>x = 3</answer>",                            # missing y
    "<think>a</think><answer>x = 3, y = 1/0</answer>",                   # y unreadable
    "<think>a</think><answer>x = 3, x = 4, y = -2</answer>",             # two values for x
    "<think>a</think><answer>x = 3, y = 2x</answer>",                    # y not a number
    "<think>a</think><answer>x = 3, 2y = -4</answer>",                   # not an assignment of y
    "<think>a</think><answer>x = 3 - 2y, y = -2</answer>",               # x is an expression
])
def test_linear_strict_rejects(text):
    assert parse_linear_answer(text, XY, strict=True) is None
    assert not utils.is_correct(text, {"x": 3, "y": -2}, strict=True)


def test_linear_strict_accepts_a_repeated_equal_value():
    assert parse_linear_answer(well_formed("x = 3, y = -2, so x = 3.0"), XY) == {"x": 3, "y": -2}


def test_linear_lenient_recovers_the_original_failure_cases():
    # The study's parser took `950` from `20x = 950`; only an exact `x = ...` assigns x.
    text = "We get 20x = 950 after adding. Dividing, x = 25. Hmm, 20x = 950 checks out."
    assert parse_linear_answer(text, ["x"], strict=False) == {"x": 25}
    assert parse_linear_answer(text, ["x"], strict=True) is None
    assert parse_linear_answer("<think>20x = 950</think><answer>x = 25</answer>", ["x"]) == {"x": 25}
    # Last match wins outside the answer block: the model corrects itself.
    text = "First guess x = 3, y = 1. Checking fails, so x = 5, y = -1."
    assert parse_linear_answer(text, XY, strict=False) == {"x": 5, "y": -1}
    # The answer block wins over the reasoning when it names every variable...
    text = "<think>x = 1, y = 1</think><answer>x = 2, y = 7</answer> later x = 9"
    assert parse_linear_answer(text, XY, strict=False) == {"x": 2, "y": 7}
    # ...and when it is incomplete the whole text is searched.
    text = "<think>so x = 4 and y = 6</think><answer>x = 4</answer>"
    assert parse_linear_answer(text, XY, strict=False) == {"x": 4, "y": 6}
    assert parse_linear_answer(text, XY, strict=True) is None
    # Not assignments of x: products, sums, other variables' names, chained equalities.
    for text in ["2 * x = 4", "y + x = 5", "max = 3", "x_1 = 3", "ax = 3", "2x=4", "y = x = 3 - y", "x = 3e5"]:
        assert parse_linear_answer(text, ["x"], strict=False) is None, text


def test_linear_assignments_on_consecutive_lines():
    # The line before `y = -14` ends in a digit; that digit belongs to another line, not to y's left side.
    assert parse_linear_answer("The solution is:\nx = -16\ny = -14", XY, strict=False) == {"x": -16, "y": -14}
    text = "<think>a</think><answer>\nx = 3\ny = -2\n</answer>"
    assert parse_linear_answer(text, XY, strict=True) == {"x": 3, "y": -2}
    assert parse_linear_answer("x = 1\r\ny = 2", XY, strict=False) == {"x": 1, "y": 2}
    assert utils.correctness_reward([text], [{"x": 3, "y": -2}]) == [1.0]
    # Within a line the context still counts: `2 y = 4`, `3 - y = 4`, `y = 4 * 2`, `y = 4\t(2)`.
    for text in ["x = 1\n2 y = 4", "x = 1\n3 -\ty = 4", "x = 1\ny = 4 * 2", "x = 1\ny = 4\t(2)", "x = 1\ny = 4 - z"]:
        assert parse_linear_answer(text, XY, strict=False) is None, text
    # ...and stops at the line's end: what follows on the next line does not spoil an assignment.
    assert parse_linear_answer("x = 1\ny = 4\n(so done)", XY, strict=False) == {"x": 1, "y": 4}
    assert parse_linear_answer("x = 1\ny = 4\n- checked", XY, strict=False) == {"x": 1, "y": 4}


def test_linear_missing_variable_is_none():
    assert parse_linear_answer("x = 3", XY, strict=False) is None
    assert parse_linear_answer(well_formed("x = 3"), XY, strict=False) is None
    assert parse_linear_answer("", XY, strict=False) is None


def test_linear_numbers_compare_numerically():
    answer = {"x": 18, "y": -2}
    for given in ["x = 18, y = -2", "x = 18.0, y = -2", "x = 18.00, y = -2.0", "x = 36/2, y = -4/2"]:
        assert utils.is_correct(well_formed(given), answer, strict=True), given
    assert not utils.is_correct(well_formed("x = 18.01, y = -2"), answer, strict=True)
    assert utils.is_correct(well_formed("x = 0.5, y = 1"), {"x": 0.5, "y": 1})
    assert utils.is_correct(well_formed("x = 1/3, y = 1"), {"x": 1 / 3, "y": 1})
    assert utils.numbers_equal(18, 18.0) and utils.numbers_equal(utils.to_number("18.00"), 18)
    assert not utils.numbers_equal(None, 18) and not utils.numbers_equal(0, None)


def test_to_number():
    assert utils.to_number("3") == 3 and type(utils.to_number("3")) is int
    assert utils.to_number(" -2.50 ") == -2.5
    assert utils.to_number("7/2") == 3.5
    assert utils.to_number("6/2") == 3 and type(utils.to_number("6/2")) is int
    assert utils.to_number("\u22124") == -4
    for bad in ["", "1/0", "0/0", "abc", "1.2.3", "3x", "--3", "1e5"]:
        assert utils.to_number(bad) is None, bad


# ----------------------------------------------------------------------------
# GSM8K answers


def test_gsm8k_original_failure_cases():
    dollar = "<think>6 * 3 = 18</think><answer>$18</answer>"
    assert parse_gsm8k_answer(dollar, "strict") is None
    assert parse_gsm8k_answer(dollar, "flexible") == 18
    assert parse_gsm8k_answer(dollar, "lenient") == 18
    commas = "<think>3 * 360</think><answer>1,080</answer>"
    assert [parse_gsm8k_answer(commas, m) for m in utils.GSM8K_MODES] == [1080, 1080, 1080]
    boxed = "So the answer is \\boxed{72}."
    assert [parse_gsm8k_answer(boxed, m) for m in utils.GSM8K_MODES] == [None, None, 72]
    # First match vs last match: the final number is the answer, not the first one mentioned.
    steps = "<think>a</think><answer>3 boxes of 6 eggs, so 18 eggs</answer>"
    assert parse_gsm8k_answer(steps, "strict") is None
    assert parse_gsm8k_answer(steps, "flexible") == 18
    assert parse_gsm8k_answer("He had 5 apples, bought 7, now has 12.", "lenient") == 12
    two = "<answer>1</answer> no wait <answer>2</answer>"
    assert parse_gsm8k_answer(two, "strict") is None
    assert parse_gsm8k_answer(two, "flexible") == 2


@pytest.mark.parametrize("inner, strict, flexible", [
    ("18", 18, 18), ("18.00", 18, 18), ("-7", -7, -7), ("+7", 7, 7), ("0.5", 0.5, 0.5),
    ("1,000,000", 1000000, 1000000), ("12,345.5", 12345.5, 12345.5), (" 42 ", 42, 42),
    ("$1,080.00", None, 1080), ("18 dollars", None, 18), ("7/2", None, 3.5),
    ("\\boxed{72}", None, 72), ("\\frac{3}{4}", None, 0.75), ("about 3.", None, 3),
    ("none", None, None), ("", None, None), ("1/0", None, None),
])
def test_gsm8k_answer_block(inner, strict, flexible):
    text = f"<think>t</think><answer>{inner}</answer>"
    assert parse_gsm8k_answer(text, "strict") == strict
    assert parse_gsm8k_answer(text, "flexible") == flexible
    if flexible is not None:
        assert parse_gsm8k_answer(text, "lenient") == flexible


def test_gsm8k_lenient_fallbacks():
    # An answer block without a number falls back to boxed, then to the last number anywhere.
    assert parse_gsm8k_answer("\\boxed{5} then 9 <answer>unknown</answer>", "lenient") == 5
    assert parse_gsm8k_answer("it is 9 <answer>unknown</answer>", "lenient") == 9
    assert parse_gsm8k_answer("\\boxed{3} or rather \\boxed{4}", "lenient") == 4
    assert parse_gsm8k_answer("\\boxed{\\boxed{7}}", "lenient") == 7
    assert parse_gsm8k_answer("\\boxed{\\dfrac{1}{2}}", "lenient") == 0.5
    assert parse_gsm8k_answer("\\boxed{12 apples", "lenient") == 12  # unbalanced: last number
    assert parse_gsm8k_answer("\\boxed{} and 3 }", "lenient") == 3
    assert parse_gsm8k_answer("no digits at all", "lenient") is None
    with pytest.raises(ValueError, match="mode must be one of"):
        parse_gsm8k_answer("1", "exact")


def test_gsm8k_numbers_compare_numerically():
    for given in ["18", "18.0", "18.00", "+18"]:
        assert utils.is_correct(well_formed(given), 18, strict=True), given
        assert utils.is_correct(well_formed(given), 18.0, strict=True), given
    assert utils.is_correct(well_formed("$18"), 18, strict=False)
    assert not utils.is_correct(well_formed("$18"), 18, strict=True)
    assert not utils.is_correct(well_formed("19"), 18, strict=False)


def independent_gold(answer_field):
    text = answer_field.split("####")[-1].strip().replace(",", "")
    return int(text) if text.lstrip("-").isdigit() else float(text)


def test_every_gsm8k_gold_parses():
    count = 0
    for split in ("train", "test"):
        with open(os.path.join(GSM8K_DIR, f"{split}.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        for row in rows:
            gold = gsm8k_gold(row["answer"])
            assert gold is not None and gold == independent_gold(row["answer"]), row["answer"][-80:]
            assert isinstance(gold, (int, float)) and not isinstance(gold, bool)
        count += len(rows)
    assert count == 8792


def test_gsm8k_gold_examples():
    assert gsm8k_gold("so 1,080 dollars.\n#### 1,080") == 1080
    assert gsm8k_gold("#### -5") == -5
    assert gsm8k_gold("#### 2.5") == 2.5
    assert gsm8k_gold("#### 0.50") == 0.5
    assert gsm8k_gold("no marker 42") is None
    assert gsm8k_gold("") is None and gsm8k_gold(None) is None


# ----------------------------------------------------------------------------
# Format and rewards


def test_has_strict_format():
    assert utils.has_strict_format("<think>a</think><answer>1</answer>")
    assert utils.has_strict_format("Sure!\n<think>\na\n</think>\n\n<answer> 1 </answer>\n")
    for text in ["<think></think><answer>1</answer>", "<answer>1</answer>", "<think>a</think>",
                 "<answer>1</answer><think>a</think>", "<think>a</think><answer>1</answer><answer>1</answer>",
                 "<think>a</think><answer>1", "", "<think>a</think><think>b</think><answer>1</answer>"]:
        assert not utils.has_strict_format(text), text


def test_correctness_reward_linear():
    answer = {"x": 3, "y": -2}
    good, wrong = well_formed("x = 3, y = -2"), well_formed("x = 3, y = 2")
    completions = [good, wrong, "x = 3, y = -2", "<answer>x = 3, y = -2</answer>", well_formed("x = 3"),
                   msg(good), msg(wrong), msg("nothing")]
    expected = [1.0, 0.1, 0.0, 0.0, 0.0, 1.0, 0.1, 0.0]
    assert utils.correctness_reward(completions, [answer] * 8) == expected
    assert utils.correctness_reward(completions, [answer] * 8, wrong_credit=0.0) == \
        [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert utils.correctness_reward([wrong], [answer], wrong_credit=0.5, prompts=["ignored"]) == [0.5]


def test_correctness_reward_gsm8k():
    completions = [well_formed("18"), well_formed("17"), well_formed("$18"), msg(well_formed("18.0")),
                   "18", well_formed("1,080")]
    golds = [18, 18, 18, 18, 18, 1080]
    assert utils.correctness_reward(completions, golds) == [1.0, 0.1, 0.0, 1.0, 0.0, 1.0]


def test_format_reward():
    completions = [well_formed("1"), "<answer>1</answer>", "1", "<think>a</think>",
                   "<think>a</think><answer>1</answer><answer>2</answer>", msg(well_formed("x = 1")), msg("")]
    assert utils.format_reward(completions) == [1.0, 0.5, 0.0, 0.5, 0.5, 1.0, 0.0]
    # Every tag once but not the strict format: partial credit, never the full 1.0.
    for text in ["<think></think><answer>1</answer>", "<answer>1</answer><think>a</think>"]:
        assert utils.format_reward([text]) == [0.75], text


def test_completion_text():
    assert utils.completion_text("abc") == "abc"
    assert utils.completion_text(msg("abc")) == "abc"
    assert utils.completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert utils.completion_text([]) == "" and utils.completion_text(None) == ""
    assert utils.completion_text([{"role": "assistant"}]) == ""


def test_prompts():
    messages = utils.linear_prompt(["3x - 5y = -24", "-x + y = 4"], XY)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == utils.SYSTEM_PROMPT
    assert "3x - 5y = -24\n-x + y = 4\n" in messages[1]["content"]
    assert "<answer>x = 1, y = 2</answer>" in messages[1]["content"]
    messages = utils.gsm8k_prompt("How many?")
    assert messages[1]["content"].startswith("How many?\n") and "<answer>42</answer>" in messages[1]["content"]


# ----------------------------------------------------------------------------
# Statistics


@pytest.mark.parametrize("correct, total, lo, hi", [
    # Hand-computed: centre = (p + z^2/2n) / (1 + z^2/n), half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 100, 0.7222, 0.8749),
    (1, 1, 0.2065, 1.0),
])
def test_wilson_interval(correct, total, lo, hi):
    got = utils.wilson_interval(correct, total)
    assert got == pytest.approx((lo, hi), abs=1e-4)
    assert got[0] <= correct / total <= got[1]


def test_wilson_interval_empty_and_narrowing():
    assert utils.wilson_interval(0, 0) == (0.0, 0.0)
    widths = [hi - lo for lo, hi in (utils.wilson_interval(n // 2, n) for n in (10, 100, 1000))]
    assert widths[0] > widths[1] > widths[2]


# ----------------------------------------------------------------------------
# Fuzz: no parser raises, every result has its documented type

PIECES = [
    "<think>", "</think>", "<answer>", "</answer>", "<answer", "answer>", "</think", "<think/>", "<ANSWER>",
    "\\boxed{", "\\boxed{\\boxed{", "{", "}", "}}", "\\frac{", "\\frac{1}{0}", "\\dfrac{", "$", ",", ".", "/",
    "1/0", "0/0", "-", "+", "\u2212", "=", " = ", " ", "\n", "x", "y", "z", "x = ", "y=", "20x = 950", "x = -",
    "= 3/", "####", "#### ", "#### ,", "1e5", "NaN", "inf", "\u221e", "\u00bd", "\u0663", "\uff11\uff12", "\U0001f642",
    "\x00", "\ud800", "\u200b", "1,080", "1,08", ",000", ".5", "5.", "-0", "00012", "18.00", "$1,000,000.00",
]


def number(rng):
    if rng.random() < 0.01:  # past float range or Python's 4300-digit limit; slow to scan, so rare
        if rng.random() < 0.3:
            return "1/" + "3" * rng.choice([309, 400])
        return "9" * rng.choice([20, 308, 309, 400, 4300, 4301, 5000]) + rng.choice(["", ".5", "/7", "/0"])
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randint(-10**6, 10**6))
    if kind == 1:
        return f"{rng.uniform(-1e4, 1e4):.{rng.randrange(6)}f}"
    if kind == 2:
        return f"{rng.randint(-99, 99)}/{rng.randint(-3, 99)}"
    return f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"


def fuzz_string(rng):
    kind = rng.random()
    if kind < 0.15:  # random unicode, any plane
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(40)))
    if kind < 0.3:  # a well-formed shell around junk
        inner = "".join(rng.choice(PIECES) if rng.random() < 0.7 else number(rng) for _ in range(rng.randrange(6)))
        return f"<think>{rng.choice(PIECES)}</think><answer>{inner}</answer>"
    if kind < 0.45:  # a nearly valid answer with one piece of junk spliced in
        answer = rng.choice([f"x = {number(rng)}, y = {number(rng)}", number(rng)])
        text = f"<think>{rng.choice(PIECES)}</think><answer>{answer}</answer>"
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(PIECES + [""] * 10) + text[i:]
    return "".join(rng.choice(PIECES) if rng.random() < 0.7 else number(rng) for _ in range(rng.randrange(25)))


def is_number(value):
    return type(value) in (int, float) and (type(value) is int or math.isfinite(value))


def test_fuzz_parsers_never_raise_and_return_documented_types():
    rng = random.Random(1234)
    texts = [fuzz_string(rng) for _ in range(100_000)]
    assert len(set(texts)) > 80_000
    seen = {"linear": 0, "gsm8k": 0}
    for text in texts:
        assert type(utils.has_strict_format(text)) is bool
        strict = parse_linear_answer(text, XY, strict=True)
        lenient = parse_linear_answer(text, XY, strict=False)
        for got in (strict, lenient):
            assert got is None or (list(got) == XY and all(map(is_number, got.values()))), (text, got)
        if strict is not None:  # what strict reads, lenient reads too
            seen["linear"] += 1
            assert all(utils.numbers_equal(strict[v], lenient[v]) for v in XY), text
        values = [parse_gsm8k_answer(text, mode) for mode in utils.GSM8K_MODES]
        assert all(v is None or is_number(v) for v in values), (text, values)
        if values[0] is not None:
            seen["gsm8k"] += 1
            assert utils.numbers_equal(values[0], values[1]) and utils.numbers_equal(values[1], values[2]), text
        gold = gsm8k_gold(text)
        assert gold is None or is_number(gold), (text, gold)
    assert seen["linear"] > 100 and seen["gsm8k"] > 100  # the fuzz reaches the accepting paths

    completions = [msg(t) if i % 3 == 0 else t for i, t in enumerate(texts)] + [None, [], [{}], msg(None)]
    golds = [{"x": 3, "y": -2} if i % 2 else rng.choice([18, 0.5, -7]) for i in range(len(completions))]
    for credit in (0.1, 0.0):
        rewards = utils.correctness_reward(completions, golds, wrong_credit=credit)
        assert len(rewards) == len(completions) and set(rewards) <= {0.0, credit, 1.0}
    formats = utils.format_reward(completions)
    assert len(formats) == len(completions) and set(formats) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    for c, gold, r, f in zip(completions, golds, rewards, formats):
        assert (f == 1.0) == utils.has_strict_format(utils.completion_text(c))
        if r == 1.0 and isinstance(gold, dict):
            assert f == 1.0, c


def test_fuzz_huge_numbers():
    """Numbers past float range or Python's 4300-digit limit are unreadable or exact, never a crash."""
    huge = "9" * 400
    assert parse_gsm8k_answer(well_formed(huge)) == int(huge)
    assert not utils.is_correct(well_formed(huge), 18) and utils.is_correct(well_formed(huge), int(huge))
    assert not utils.is_correct(well_formed(f"x = {huge}, y = 1"), {"x": 3, "y": 1})
    assert parse_gsm8k_answer(well_formed(huge + ".5")) is None
    assert parse_gsm8k_answer(well_formed("9" * 5000)) is None
    assert parse_gsm8k_answer(well_formed("1/" + huge), "flexible") == 0.0  # underflows, no crash
    assert utils.correctness_reward([well_formed(huge + ".5"), well_formed(huge)], [18, int(huge)]) == [0.0, 1.0]


# The target: 100,000 fuzzed strings up to 100k characters, no exception and no call over 50 ms. The suite
# runs FUZZ_STRINGS=300 (a few seconds); `FUZZ_STRINGS=100000 pytest tests/test_utils.py -k long_fuzz -s` runs it all.
FUZZ_STRINGS = int(os.environ.get("FUZZ_STRINGS", "300"))
CALL_LIMIT_MS = 50


def long_fuzz_string(rng):
    length = int(10 ** rng.uniform(0, 5))  # 1 to 100k characters, log-uniform
    kind = rng.random()
    if kind < 0.4:  # tag and number soup
        parts, n = [], 0
        while n < length:
            parts.append(rng.choice(PIECES) if rng.random() < 0.7 else number(rng))
            n += len(parts[-1])
        text = "".join(parts)
    elif kind < 0.7:  # a looping model: one short fuzz string again and again
        motif = fuzz_string(rng) or "x = 1\n"
        text = motif * (length // len(motif) + 1)
    elif kind < 0.85:  # a well-formed shell around a long junk answer
        inner = "".join(rng.choice(PIECES) if rng.random() < 0.7 else number(rng) for _ in range(length // 4 + 1))
        text = f"<think>{rng.choice(PIECES)}</think><answer>{inner}</answer>"
    else:  # one character class repeated: digits, tags, newlines, minus signs
        text = rng.choice(["9", "<answer>", "<think>", "\n", "-", "x = ", "(1) ", "=", "\\boxed{"]) * length
    return text[:length]


def test_long_fuzz_no_exception_and_no_call_over_50_ms():
    rng = random.Random(2024)
    calls = {
        "linear strict": lambda t: parse_linear_answer(t, XY, strict=True),
        "linear lenient": lambda t: parse_linear_answer(t, XY, strict=False),
        **{f"gsm8k {m}": lambda t, m=m: parse_gsm8k_answer(t, m) for m in utils.GSM8K_MODES},
        "gsm8k_gold": gsm8k_gold,
        "has_strict_format": utils.has_strict_format,
        "check_trace": traces.check_trace,
        "correctness_reward": lambda t: utils.correctness_reward([t, msg(t)], [{"x": 1, "y": 2}, 3]),
        "format_reward": lambda t: utils.format_reward([t]),
        "trace_reward": lambda t: utils.trace_reward([t]),
    }
    worst, raw_worst, chars, start = {}, 0.0, 0, time.perf_counter()
    for _ in range(FUZZ_STRINGS):
        text = long_fuzz_string(rng)
        chars += len(text)
        for what, fn in calls.items():
            t0 = time.perf_counter()
            fn(text)
            ms = (time.perf_counter() - t0) * 1000
            raw_worst = max(raw_worst, ms)
            if ms > CALL_LIMIT_MS:  # a busy machine's moment, or the algorithm? best of three more
                ms = slowest_ms(fn, text)
            if ms > worst.get(what, (0,))[0]:
                worst[what] = (ms, len(text))
    slowest = max(worst, key=lambda k: worst[k][0])
    print(f"\nlong fuzz: {FUZZ_STRINGS} strings, {chars:,} characters, {time.perf_counter() - start:.1f} s; slowest "
          f"call {slowest} {worst[slowest][0]:.1f} ms (best of 3) on {worst[slowest][1]:,} characters, slowest single "
          f"timing {raw_worst:.1f} ms; per function: " + ", ".join(f"{k} {v[0]:.1f}" for k, v in worst.items()))
    assert worst[slowest][0] < CALL_LIMIT_MS, (slowest, worst[slowest])


# ----------------------------------------------------------------------------
# Adversarial inputs: every parser is linear in the text's length

OLD_THINK_RE, OLD_ANSWER_RE = re.compile(r"<think>(.*?)</think>", re.S), re.compile(r"<answer>(.*?)</answer>", re.S)


def adversarial_texts():
    rng = random.Random(7)
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "<answer", "1", "-23", "4.5", " ", "\n", "x = ", "y = "]
    texts = {"answers": "<answer>" * 12500, "thinks": "<think>" * 12000 + "</answer>",
             "unclosed": "<think>a</think>" + "<answer>x = 1" * 7500, "nested": "<think>" * 6000 + "<answer>" * 6000,
             "digits": "<think>a</think><answer>" + "1" * 99000 + "</answer>"}
    for i in range(3):
        text = "".join(rng.choice(pieces) if rng.random() < 0.6 else str(rng.randint(-999, 999)) for _ in range(40000))
        texts[f"random{i}"] = text[:100_000]
    return texts


@pytest.mark.parametrize("name", list(adversarial_texts()))
def test_parsers_are_fast_on_adversarial_text(name):
    text = adversarial_texts()[name]
    assert len(text) >= 84_000
    calls = {
        "linear strict": lambda t: parse_linear_answer(t, XY, strict=True),
        "linear lenient": lambda t: parse_linear_answer(t, XY, strict=False),
        **{f"gsm8k {m}": lambda t, m=m: parse_gsm8k_answer(t, m) for m in utils.GSM8K_MODES},
        "has_strict_format": utils.has_strict_format,
        "format_reward": lambda t: utils.format_reward([t]),
        "correctness_reward": lambda t: utils.correctness_reward([t, t], [{"x": 1, "y": 2}, 3]),
    }
    for what, fn in calls.items():
        assert slowest_ms(fn, text) < 50, what


def test_parsers_are_linear_on_a_looping_model():
    # A model stuck in a loop repeats assignments: every one is read, so allow more time, but not quadratic.
    text = "<think>a</think><answer>" + "".join(f"x = {i}\ny = -{i}\n" for i in range(8000)) + "</answer>"
    assert slowest_ms(lambda t: parse_linear_answer(t, XY, strict=False), text) < 250
    assert parse_linear_answer(text, XY, strict=False) == {"x": 7999, "y": -7999}
    assert parse_linear_answer(text, XY, strict=True) is None


def tag_soup(rng):
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "<answer", "</think", "x = ", "y=", "= ", "\n", " ", "a"]
    n = rng.randrange(30)
    return "".join(rng.choice(pieces) if rng.random() < 0.7 else str(rng.randint(-30, 30)) for _ in range(n))


def test_blocks_match_the_non_greedy_regex():
    rng = random.Random(99)
    for _ in range(500):
        text = tag_soup(rng)
        assert utils._blocks(text, "answer") == OLD_ANSWER_RE.findall(text), text
        assert utils._blocks(text, "think") == OLD_THINK_RE.findall(text), text
        assert type(utils.has_strict_format(text)) is bool
        for strict in (True, False):
            got = parse_linear_answer(text, XY, strict=strict)
            assert got is None or list(got) == XY, text
        assert utils.correctness_reward([text, text], [{"x": 1, "y": 2}, 3]) is not None
        values = [parse_gsm8k_answer(text, m) for m in utils.GSM8K_MODES]
        assert all(v is None or is_number(v) for v in values), text
    for text in ["<answer></answer>", "<answer><answer>1</answer></answer>", "<answer>1</answer",
                 "</answer><answer>2</answer>"]:
        assert utils._blocks(text, "answer") == OLD_ANSWER_RE.findall(text), text


# ----------------------------------------------------------------------------
# Reward values, partial credit, the trace reward


def test_reward_values_come_from_the_named_constants(monkeypatch):
    assert (utils.CORRECT_REWARD, utils.WRONG_BUT_WELL_FORMED_CREDIT) == (1.0, 0.1)
    assert (utils.FORMAT_TAG_CREDIT, utils.FORMAT_PARTIAL_CAP, utils.FORMAT_STRICT_REWARD) == (0.25, 0.75, 1.0)
    for name, value in [("CORRECT_REWARD", 2.0), ("FORMAT_TAG_CREDIT", 0.1), ("FORMAT_PARTIAL_CAP", 0.35),
                        ("FORMAT_STRICT_REWARD", 3.0), ("TRACE_VALID_REWARD", 4.0)]:
        monkeypatch.setattr(utils, name, value)
    good = well_formed("x = 3, y = -2")
    assert utils.correctness_reward([good, well_formed("18")], [{"x": 3, "y": -2}, 18]) == [2.0, 2.0]
    assert utils.correctness_reward([well_formed("x = 3, y = 5")], [{"x": 3, "y": -2}], partial=True) == [1.0]
    assert utils.format_reward([good, "<answer>1</answer>", "<think></think><answer>1</answer>"]) == [3.0, 0.2, 0.35]
    assert utils.trace_reward([TRACE]) == [4.0]


def test_correctness_reward_partial_credit():
    gold = {"x": 3, "y": -2}
    completions = [well_formed("x = 3, y = -2"), well_formed("x = 3, y = 2"), well_formed("x = 1, y = -2.0"),
                   well_formed("x = 1, y = 2"), well_formed("x = 3"), "x = 3, y = 5", msg(well_formed("y = 0, x = 3"))]
    assert utils.correctness_reward(completions, [gold] * 7, partial=True) == [1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.5]
    assert utils.correctness_reward(completions, [gold] * 7) == [1.0, 0.1, 0.1, 0.1, 0.0, 0.0, 0.1]
    three = {"x": 1, "y": 2, "z": 3}
    got = utils.correctness_reward([well_formed("x = 1, y = 2, z = 4")], [three], partial=True)
    assert got == [pytest.approx(2 / 3)]
    # GSM8K has one number: partial credit changes nothing there.
    gsm = [well_formed("18"), well_formed("17"), well_formed("$18")]
    assert utils.correctness_reward(gsm, [18] * 3, partial=True) == utils.correctness_reward(gsm, [18] * 3) == \
        [1.0, 0.1, 0.0]


def test_trace_reward():
    wrong = TRACE.replace("-3x + 30 = 48", "-3x + 31 = 48")
    one_wrong_line = TRACE.replace("<think>", "<think>\n1 + 1 = 3\n")
    completions = [TRACE, msg(TRACE), wrong, one_wrong_line, "x = 1", "", None, msg("")]
    assert utils.trace_reward(completions, answer=[None] * 8) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_doctests():
    import doctest

    assert doctest.testmod(utils).failed == 0


def test_content_key_is_the_problem_not_its_wording(tiny_data):
    import data

    with open(tiny_data) as f:
        records = json.load(f)["records"]
    assert all(utils.content_key(r) == r["hash"] for r in records)  # data.py's hash is the content key
    record = records[0]
    user = record["prompt"][1]["content"]
    first, second = record["equations"]
    coefs, const = data.parse_equation(first, record["variables"])
    doubled = data.format_equation([2 * c for c in coefs], 2 * const, record["variables"])
    variants = [user.replace(f"{first}\n{second}", f"{second}\n{first}"),  # order
                user.replace(first, doubled),  # an equation scaled
                "Solve!\n" + first.replace(" ", "") + "\n  " + second + "  \n"]  # spacing, other wording
    assert {utils.content_key({"prompt": v}) for v in variants} == {record["hash"]}
    assert utils.content_key({"prompt": user.replace(first, first + "1")}) != record["hash"]
    assert utils.content_key({"prompt": "How many apples?"}) == utils.content_key({"prompt": " How  many apples? "})
