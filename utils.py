"""Prompts, answer parsing, reward scoring and error helpers shared by every script.

Pure Python and no file I/O (reading and writing files is records.py's, which imports from here): nothing
here imports torch, so data.py, report.py and the tests stay light.
Parsers never raise; they return None when no answer can be read.

    >>> parse_linear_answer("<think>2x = 6</think><answer>x = 3, y = -2</answer>", ["x", "y"])
    {'x': 3, 'y': -2}
    >>> parse_gsm8k_answer("<think>6 * 3</think><answer>$18</answer>", mode="flexible")
    18
"""

import hashlib
import itertools
import json
import math
import os
import re
import sys
from fractions import Fraction
from functools import reduce
from math import gcd

from traces import _TRACE_LINE_CHARS, _NotLinear, _linear, check_trace  # the checker; _linear reads prompts too

# ----------------------------------------------------------------------------
# Settings: each default's one home (flags override them; the reward values are under Scoring below)

# Token budgets
MAX_NEW_TOKENS = 512  # one greedy answer: both eval scripts, sft.py's val answers, sample.py, generation.py
LINEAR_PROTOCOL_MAX_NEW_TOKENS = 512  # the original study's sampling (--protocol original), linear systems
GSM8K_PROTOCOL_MAX_NEW_TOKENS = 1024  # the same, GSM8K
SFT_MAX_LENGTH = 768  # sft.py --max_length: prompt + response tokens of a training row, longer rows cut (study)
GRPO_MAX_COMPLETION_LENGTH = 384  # grpo.py --max_completion_length: tokens per completion (study)
GRPO_MAX_PROMPT_TOKENS = 512  # grpo.py: Unsloth/vLLM sequence budget = this + the completion's (our prompts: ~200)

# LoRA (the original study's; TRL's ModelConfig defaults are r=16, alpha=32)
LORA_R = 64
LORA_ALPHA = 64  # scale alpha / r = 1
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # attention + MLP

# ----------------------------------------------------------------------------
# Prompts (in the spirit of the original study: reason in <think>, answer in <answer>)

SYSTEM_PROMPT = (
    "You are a helpful assistant. You first think about the reasoning process step by step "
    "and then give the user the answer. Put your reasoning inside <think> </think> tags and "
    "the final answer inside <answer> </answer> tags, i.e. <think> reasoning here </think> "
    "<answer> answer here </answer>."
)


def linear_prompt(equations, variables):
    """Chat messages asking to solve a system; `equations` are strings as printed by data.py."""
    example = ", ".join(f"{v} = {i + 1}" for i, v in enumerate(variables))
    user = (
        "Solve this system of linear equations:\n"
        + "\n".join(equations)
        + f"\nShow your work in <think> </think> tags and give the values of {', '.join(variables)} "
        f"in <answer> </answer> tags, for example <answer>{example}</answer>."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def gsm8k_prompt(question):
    user = (
        f"{question}\nShow your work in <think> </think> tags and give only the final number "
        "in <answer> </answer> tags, for example <answer>42</answer>."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ----------------------------------------------------------------------------
# Numbers

_NUM = r"[-+]?\d+(?:\.\d+)?"
NUMBER_RE = re.compile(rf"({_NUM})(?:\s*/\s*({_NUM}))?")  # 3, -2.5, 7/2


def to_number(text):
    """'3' -> 3, '-2.50' -> -2.5, '7/2' -> 3.5, '6/2' -> 3; None if unreadable or x/0."""
    m = NUMBER_RE.fullmatch(text.strip().replace("\u2212", "-"))
    if not m:
        return None
    try:
        if m.group(2) is None and "." not in m.group(1):  # plain integers skip Fraction, 20x slower
            return int(m.group(1))
        value = Fraction(m.group(1))
        if m.group(2) is not None:
            value /= Fraction(m.group(2))
        return int(value) if value.denominator == 1 else float(value)
    except (ZeroDivisionError, ValueError, OverflowError):  # x/0, over 4300 digits, past float range
        return None


def numbers_equal(a, b, tol=1e-6):
    if a is None or b is None:
        return False
    try:
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
    except OverflowError:  # an int past float range (a model can print 400 digits): exact match only
        return a == b


def _normalise(text):
    return text.replace("\u2212", "-") if isinstance(text, str) else ""


def _blocks(text, tag):
    """re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S) in linear time: the regex rescans to the end of
    the text from every unclosed opening tag, so 100k characters of '<answer>' took seconds."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    blocks, i = [], 0
    while (i := text.find(opening, i)) != -1:
        j = text.find(closing, i + len(opening))
        if j == -1:  # no later opening tag can be closed either
            break
        blocks.append(text[i + len(opening): j])
        i = j + len(closing)
    return blocks


def answer_blocks(text):
    """The <answer> blocks of a response, in order (U+2212 minus read as '-')."""
    return _blocks(_normalise(text), "answer")


def completion_text(completion):
    """TRL passes completions as strings or as chat-message lists; return the text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


# ----------------------------------------------------------------------------
# Linear equations


_NOT_AFTER_ASSIGNMENT = re.compile(r"[ \t]*(?:[*/^(]|[-+][ \t]*[\w(])|[A-Za-z(]")


def _assignments(text, variable):
    """The number strings of every `variable = number` whose left side is exactly that variable.

    `20x = 950`, `2 * x = 4`, `y + x = 5` and `x = 3 - 2y` are not assignments of x. Left unconverted
    because a looping model can write thousands and the callers need one or two of them.
    """
    values = []
    pattern = rf"(?<![A-Za-z0-9_.]){re.escape(variable)}\s*=\s*({_NUM}(?:\s*/\s*{_NUM})?)"
    for m in re.finditer(pattern, text):
        # The context stops at the line: `x = -16` ending one line must not hide `y = -14` on the next.
        i = m.start()
        while i and text[i - 1] in " \t":
            i -= 1
        if i and (text[i - 1].isdigit() or text[i - 1] in "+-*/^)=\\"):
            continue
        if _NOT_AFTER_ASSIGNMENT.match(text, m.end()):
            continue
        values.append(m.group(1))
    return values


def _only_value(raws):
    """The one value all readable strings agree on, else None."""
    values = set()
    for raw in dict.fromkeys(raws):
        if (value := to_number(raw)) is not None:
            values.add(value)
            if len(values) > 1:
                return None
    return values.pop() if values else None


def _last_value(raws):
    return next((v for raw in reversed(raws) if (v := to_number(raw)) is not None), None)


def has_strict_format(text):
    """Exactly one non-empty <think> block, then exactly one <answer> block."""
    text = _normalise(text)
    thinks, answers = _blocks(text, "think"), _blocks(text, "answer")
    if len(thinks) != 1 or len(answers) != 1 or not thinks[0].strip():
        return False
    if text.count("<think>") != 1 or text.count("<answer>") != 1:
        return False
    return text.index("</think>") < text.index("<answer>")


def parse_linear_answer(text, variables, strict=True):
    """Read {variable: number} from a response, or None if any variable is missing.

    strict: the response has the strict format and each variable is assigned exactly one
    value inside the answer block. lenient: the answer block if it yields every variable,
    otherwise the LAST exact `var = number` anywhere in the text.

    >>> parse_linear_answer("so 20x = 950, hence x = 47.5", ["x"], strict=False)
    {'x': 47.5}
    """
    text = _normalise(text)
    answers = _blocks(text, "answer")
    if strict:
        if not has_strict_format(text):
            return None
        result = {v: _only_value(_assignments(answers[0], v)) for v in variables}
        return None if None in result.values() else result
    for where in answers[-1:] + [text]:
        result = {v: _last_value(_assignments(where, v)) for v in variables}
        if None not in result.values():
            return result
    return None


def linear_is_correct(predicted, answer):
    return predicted is not None and all(numbers_equal(predicted.get(v), a) for v, a in answer.items())


# ----------------------------------------------------------------------------
# A problem's identity by content, for the contamination guard: stored ids and hashes can be copied or changed

VARIABLE_NAMES = "xyzwvutsrqpnmlkjhgfedcba"  # data.py names a system's variables in this order


MAX_RENAMED_VARIABLES = 6  # 720 orders of the variables; larger systems are compared with their names


def canonical_key(matrix, constants):
    """The system as a set of equations, each divided by its gcd with a positive leading term."""
    rows = []
    for coefs, const in zip(matrix, constants):
        row = list(coefs) + [const]
        g = reduce(gcd, row)
        sign = -1 if next(x for x in row if x != 0) < 0 else 1
        rows.append(tuple(sign * x // g for x in row))
    return tuple(sorted(rows))


def key_hash(key):
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def content_key(record):
    """The problem in a record's prompt: its equations (lines `linear = linear`), each scaled to lowest terms, as a
    set, hashed; equal to data.py's `hash` for its records, whatever ids, hashes or wording a copy has. A prompt
    without equations is keyed by its user text, whitespace collapsed.

    >>> a = {"prompt": [{"role": "user", "content": "Solve:\\n2x + 2y = 4\\n x - y = 0\\n"}]}
    >>> content_key(a) == content_key({"prompt": "Solve\\n y + x=2\\nx = y"})
    True
    """
    system = _prompt_system(record)
    return system if isinstance(system, str) else key_hash(canonical_key(*system))


def content_keys(record):
    """(content_key, the same with the variables' names ignored), from one reading of the prompt. In the second,
    the same system with x and y swapped, or written in a and b, gets the same key (the least canonical form over
    the variables' orders; up to MAX_RENAMED_VARIABLES variables, beyond which the names count)."""
    system = _prompt_system(record)
    if isinstance(system, str):
        return system, system
    return key_hash(canonical_key(*system)), key_hash(renamed_key(*system))


def renamed_key(matrix, constants):
    """canonical_key with the variables' names ignored: the least over their orders (up to MAX_RENAMED_VARIABLES
    variables; beyond, canonical_key)."""
    if len(matrix[0]) > MAX_RENAMED_VARIABLES:
        return canonical_key(matrix, constants)
    return min(canonical_key([[row[i] for i in order] for row in matrix], constants)
               for order in itertools.permutations(range(len(matrix[0]))))


def _prompt_system(record):
    """(integer matrix, constants) of the equations in a record's user prompt, or a text key when it has none."""
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict) and m.get("role") == "user")
    text = _normalise(prompt)
    equations = []
    for line in text.splitlines():
        if line.count("=") != 1 or len(line) > _TRACE_LINE_CHARS:
            continue
        try:
            left, right = (_linear(side) for side in line.split("="))
        except (_NotLinear, ZeroDivisionError):
            continue
        form = {v: left.get(v, 0) - right.get(v, 0) for v in left.keys() | right.keys()}
        if any(v and c for v, c in form.items()):
            equations.append(form)
    if not equations:
        return "text:" + hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]
    variables = sorted({v for form in equations for v, c in form.items() if v and c},
                       key=lambda v: (v not in VARIABLE_NAMES, VARIABLE_NAMES.find(v), v))
    matrix, constants = [], []
    for form in equations:  # integers: scale each equation by the lcm of its denominators
        row = [Fraction(form.get(v, 0)) for v in variables] + [-Fraction(form.get("", 0))]
        scale = reduce(lambda a, b: a * b // gcd(a, b), (x.denominator for x in row), 1)
        matrix.append([int(x * scale) for x in row[:-1]])
        constants.append(int(row[-1] * scale))
    return matrix, constants


# ----------------------------------------------------------------------------
# GSM8K

_GOLD_RE = re.compile(r"####\s*([-+]?[\d,]*\.?\d+)")
_STRICT_NUMBER_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_PLAIN_NUMBER_RE = re.compile(r"[-+]?\d+(?:\.\d+)?(?:/\d+)?")
GSM8K_MODES = ("strict", "flexible", "lenient")


def gsm8k_gold(answer_field):
    """The number after '####' in a GSM8K answer field.

    >>> gsm8k_gold("... so she pays 1,080 dollars.\\n#### 1,080")
    1080
    """
    m = _GOLD_RE.search(answer_field or "")
    return to_number(m.group(1).replace(",", "")) if m else None


_BRACE_RE = re.compile(r"[{}]")


def _boxed_contents(text):
    """Contents of every \\boxed{...}, braces balanced, up to the first one left open. One pass over the braces:
    a char-by-char scan in Python took 14 ms on 77k characters of fuzz."""
    if "\\boxed{" not in text:
        return []
    closing, opened = {}, []  # position of each "{" -> position of its "}"
    for m in _BRACE_RE.finditer(text):
        if m.group() == "{":
            opened.append(m.start())
        elif opened:
            closing[opened.pop()] = m.start()
    out, start = [], 0
    while (i := text.find("\\boxed{", start)) != -1:
        brace = i + len("\\boxed")
        if brace not in closing:
            break
        out.append(text[brace + 1: closing[brace]])
        start = closing[brace] + 1
    return out


def _last_number(text):
    """Last number in free text, after dropping $, thousands commas and \\boxed{} wrappers."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.replace("$", ""))
    text = re.sub(r"\\(?:d|t)?frac\{(\d+)\}\{(\d+)\}", r"\1/\2", text)
    numbers = _PLAIN_NUMBER_RE.findall(text)
    return to_number(numbers[-1]) if numbers else None


def parse_gsm8k_answer(text, mode="strict"):
    """Read the final number of a GSM8K response, or None.

    strict: exactly one <answer> block holding only a number (sign, digits, thousands commas, point).
    flexible: the last number inside the last <answer> block ($, commas, units, \\boxed{} ignored).
    lenient: flexible, else the last \\boxed{} number, else the last number anywhere.

    >>> parse_gsm8k_answer("<answer>1,080</answer>")
    1080
    >>> parse_gsm8k_answer("The answer is \\\\boxed{72}.", mode="lenient")
    72
    """
    if mode not in GSM8K_MODES:
        raise ValueError(f"mode must be one of {GSM8K_MODES}, got {mode!r}")
    text = _normalise(text)
    answers = _blocks(text, "answer")
    if mode == "strict":
        if len(answers) != 1 or not _STRICT_NUMBER_RE.fullmatch(answers[0].strip()):
            return None
        return to_number(answers[0].strip().replace(",", ""))
    if answers:
        value = _last_number(answers[-1])
        if value is not None or mode == "flexible":
            return value
    elif mode == "flexible":
        return None
    for boxed in reversed(_boxed_contents(text)):
        if (value := _last_number(boxed)) is not None:
            return value
    return _last_number(text)


# ----------------------------------------------------------------------------
# Scoring and TRL reward functions: (completions, answer, **kwargs) -> list[float]

# Every reward value in one place (grpo.py's --wrong_credit defaults to WRONG_BUT_WELL_FORMED_CREDIT).
CORRECT_REWARD = 1.0
WRONG_BUT_WELL_FORMED_CREDIT = 0.1  # the original study's partial credit; grpo.py exposes it as a flag
FORMAT_TAG_CREDIT = 0.25  # per tag present exactly once
FORMAT_PARTIAL_CAP = 0.75  # all four tags but not the strict format
FORMAT_STRICT_REWARD = 1.0
TRACE_VALID_REWARD = 1.0


def is_correct(text, answer, strict=True):
    """One rule for training and evaluation: dict answers are linear systems, numbers GSM8K."""
    if isinstance(answer, dict):
        return linear_is_correct(parse_linear_answer(text, list(answer), strict=strict), answer)
    return numbers_equal(parse_gsm8k_answer(text, "strict" if strict else "lenient"), answer)


def correctness_reward(completions, answer, wrong_credit=WRONG_BUT_WELL_FORMED_CREDIT, partial=False, **kwargs):
    """1.0 if correct under the strict parser, `wrong_credit` if well-formed but wrong, else 0.
    partial: a well-formed linear-system answer earns the share of variables it got right instead (0 for none).

    >>> correctness_reward(["<think>a</think><answer>x = 1</answer>", "x = 1"], [{"x": 1}] * 2)
    [1.0, 0.0]
    >>> correctness_reward(["<think>a</think><answer>x = 1, y = 5</answer>"], [{"x": 1, "y": 2}], partial=True)
    [0.5]
    """
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion_text(completion)
        if isinstance(gold, dict):
            predicted = parse_linear_answer(text, list(gold), strict=True)
            if linear_is_correct(predicted, gold):
                rewards.append(CORRECT_REWARD)
            elif predicted is not None and partial:
                right = sum(numbers_equal(predicted[v], a) for v, a in gold.items())
                rewards.append(CORRECT_REWARD * right / len(gold))
            else:
                rewards.append(0.0 if predicted is None else wrong_credit)
        else:  # GSM8K: one number, nothing partial about it
            value = parse_gsm8k_answer(text, "strict")
            rewards.append(CORRECT_REWARD if numbers_equal(value, gold) else 0.0 if value is None else wrong_credit)
    return rewards


def format_reward(completions, **kwargs):
    """0.25 per tag (<think>, </think>, <answer>, </answer>) present exactly once, at most 0.75
    unless the strict format holds (1.0; an empty <think> or the wrong order is not it). Graded,
    so a model that never formats yet still gets a learning signal.

    >>> format_reward(["<think>a</think><answer>1</answer>", "<answer>1</answer>", "1"])
    [1.0, 0.5, 0.0]
    """
    rewards = []
    for completion in completions:
        text = _normalise(completion_text(completion))
        if has_strict_format(text):
            rewards.append(FORMAT_STRICT_REWARD)
        else:
            tags = ("<think>", "</think>", "<answer>", "</answer>")
            rewards.append(min(FORMAT_PARTIAL_CAP, FORMAT_TAG_CREDIT * sum(text.count(tag) == 1 for tag in tags)))
    return rewards


def trace_reward(completions, **kwargs):
    """1.0 when check_trace finds the reasoning's arithmetic checkable and all of it right, else 0:
    an optional process reward for GRPO (it does not look at the answer; pair it with correctness).

    >>> trace_reward(["<think>-3x = 48 - 30 = 18</think>", "<think>2 + 2 = 5</think>", "x = 1"])
    [1.0, 0.0, 0.0]
    """
    return [TRACE_VALID_REWARD if check_trace(completion_text(c))["valid"] else 0.0 for c in completions]


# ----------------------------------------------------------------------------
# Statistics


def wilson_interval(correct, total, z=1.959963984540054):
    """95% Wilson score interval for a proportion; (0.0, 0.0) for an empty sample."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # The interval always holds p; clamping to it keeps 10/10 at exactly 1.0 despite rounding.
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


# ----------------------------------------------------------------------------
# Processes and errors (the file I/O lives in records.py)


class UserError(Exception):
    """A mistake in the user's input: reported as one line, never a traceback."""


def process_info():
    """(rank, world_size, local_rank) as torchrun and accelerate launch set them; (0, 1, 0) for one process."""
    rank = int(os.environ.get("RANK", "0"))
    return rank, int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", str(rank)))


def is_main_process():
    return process_info()[0] == 0


def one_line_errors(parser):
    """Make an argparse (or HfArgumentParser/TrlParser) parser report a bad flag in one line."""

    def error(message):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    return parser


def cli(main):
    """Run `main()`; a UserError becomes one line on stderr and exit status 2."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
