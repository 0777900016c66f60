"""Worked-solution traces: each line's arithmetic verified by itself, whatever the wording around it.

check_trace reads the first <think> block line by line: _linear reads each side of an "=" as a linear expression in
exact arithmetic; consecutive numbers must be equal, and the equations either side of "->" the same. It scores GRPO's
trace reward (utils.trace_reward), keeps sample.py's verified samples (--verify trace) and counts the study report's
valid traces, and the tests check data.py's step-format solutions with it; utils' content keys read a prompt's
equations with _linear. Pure Python, no file I/O.
"""

import re
from fractions import Fraction

_TRACE_LINE_CHARS = 400  # a longer line is prose, not one step (6-variable steps reach ~180)
# Characters of checked lines, plus 20 a line for its fixed cost: a 6-variable trace needs under 9k, and
# the cap keeps a looping or garbage completion under ~40 ms. Lines past it go unchecked.
_TRACE_BUDGET = 12_000
_TOKEN_RE = re.compile(r"[ \t]*(?:(\d+(?:\.\d+)?)|([a-z]+)|([-+*/()]))")
_LEADING_LABEL_RE = re.compile(r"\(\d+\)\s+(?=-?[\w(])")  # "(1) -3x + 5y = 48", not "(2) - (3) = -1"
# "(1) + (2)" names equations, while "(4)*5y" and "2*(3)" are numbers: read as numbers, labels would fail checks
_LABEL_RE = re.compile(r"(?<![*/])(?<![*/] )\(\d+\)(?!\s*[*/a-z])")


class _NotLinear(Exception):
    pass


def _tokens(segment):
    tokens, pos, end = [], 0, len(segment.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(segment, pos)
        if not m or (m.group(2) and len(m.group(2)) > 1):  # words are prose
            raise _NotLinear
        if m.group(2) and m.start(2) == pos and tokens and (tokens[-1][0].isdigit() or tokens[-1] == ")"):
            tokens.append("*")  # `5y`, `(-20 - 3)y`, `(-4)*5y`: a variable right after a factor multiplies it
        tokens.append(m.group(m.lastindex))
        pos = m.end()
    return tokens


def _linear(segment):
    """A linear expression as {variable: coefficient, "": constant} in exact arithmetic, zeros dropped.

    Raises _NotLinear for anything else, ZeroDivisionError for a division by zero.
    """
    tokens, i = _tokens(segment), 0

    def take(*ops):
        nonlocal i
        if i < len(tokens) and tokens[i] in ops:
            i += 1
            return tokens[i - 1]
        return None

    def scale(form, k):
        return form if k == 1 else {v: c * k for v, c in form.items()}

    def constant(form):
        if any(v and c for v, c in form.items()):
            raise _NotLinear  # a product or quotient of two variable terms
        return form.get("", 0)

    def expr(depth):
        form = term(depth)
        while op := take("+", "-"):
            other = scale(term(depth), 1 if op == "+" else -1)
            form = {v: form.get(v, 0) + other.get(v, 0) for v in form.keys() | other.keys()}
        return form

    def term(depth):
        form = unary(depth)
        while op := take("*", "/"):
            other = unary(depth)
            if op == "/":
                form = scale(form, Fraction(1, constant(other)))
            elif any(v and c for v, c in form.items()):
                form = scale(form, constant(other))
            else:
                form = scale(other, form.get("", 0))
        return form

    def unary(depth):
        sign = 1
        while op := take("+", "-"):
            sign = -sign if op == "-" else sign
        return scale(primary(depth), sign)

    def primary(depth):
        nonlocal i
        token = tokens[i] if i < len(tokens) else ")"
        i += 1
        if token[0].isdigit():  # ints until a division: Fraction arithmetic is 10x slower
            return {"": Fraction(token) if "." in token else int(token)}
        if token.isalpha():
            return {token: 1}
        if token == "(" and depth < 20:  # the depth cap keeps recursion far from Python's limit
            form = expr(depth + 1)
            if take(")"):
                return form
        raise _NotLinear

    form = expr(0)
    if i != len(tokens):
        raise _NotLinear
    return {v: c for v, c in form.items() if c}


def _check_line(line):
    """(checks, failures) for one line: number chains must agree, and so must the equations either side of `->`."""
    line = _LEADING_LABEL_RE.sub("", line.rsplit(": ", 1)[-1], count=1).rstrip(" .")
    checks = failures = 0
    equations = []  # per part: lhs - rhs of a two-sided equation with a variable, else None
    for part in line.split("->"):
        segments = part.split("=")
        forms = []
        for segment in segments:
            try:
                if _LABEL_RE.search(segment):
                    raise _NotLinear
                forms.append(_linear(segment))
            except _NotLinear:
                forms = None
                break
            except ZeroDivisionError:
                forms.append(None)
        if forms is None or None in forms:
            checks, failures = checks + (forms is not None), failures + (forms is not None)
            equations.append(None)
            continue
        numeric = [not re.search("[a-z]", s) for s in segments]
        for a, b, num_a, num_b in zip(forms, forms[1:], numeric, numeric[1:]):
            if num_a and num_b:
                checks, failures = checks + 1, failures + (a != b)
        if len(forms) == 2 and not all(numeric):
            lhs, rhs = forms
            equations.append({v: lhs.get(v, 0) - rhs.get(v, 0) for v in lhs.keys() | rhs.keys()})
        else:
            equations.append(None)
    for a, b in zip(equations, equations[1:]):
        if a is not None and b is not None:
            checks += 1
            failures += {v: c for v, c in a.items() if c} != {v: c for v, c in b.items() if c}
    return checks, failures


def check_trace(text):
    """Verify the arithmetic of every line of the first <think> block (the whole text if none) on its own.

    Each line is read after its last ": ", split on "->" into equations and on "=" into linear expressions;
    consecutive pure numbers must be equal and consecutive two-sided equations must be the same equation
    (lhs - rhs identical). Lines that do not parse are skipped. first_error counts non-empty lines from 1.

    >>> check_trace("<think>y = -138 / (-23) = 6\\n-3x + 5*6 = 48 -> -3x + 30 = 48</think>")["valid"]
    True
    >>> check_trace("-190 / 25 = -7")["first_error_line"]
    '-190 / 25 = -7'
    """
    from utils import _blocks, _normalise  # here, not at the top: utils imports this module

    text = _normalise(text)
    thinks = _blocks(text, "think")
    lines = [line.strip() for line in (thinks[0] if thinks else text).splitlines() if line.strip()]
    checked = errors = 0
    first, budget = None, _TRACE_BUDGET
    for number, line in enumerate(lines, 1):
        if "=" not in line or len(line) > _TRACE_LINE_CHARS:
            continue
        if (budget := budget - len(line) - 20) < 0:
            break
        checks, failures = _check_line(line)
        checked, errors = checked + checks, errors + failures
        if failures and first is None:
            first = number
    return {"checked": checked, "errors": errors, "valid": checked > 0 and errors == 0,
            "first_error": first, "first_error_line": lines[first - 1] if first else None}
