"""traces.py: check_trace on a worked solution, on every solution data.py writes, on one wrong number at a time, on
single lines, and on garbage (fast, never raises)."""

import random
import re

import pytest

import traces
from conftest import TRACE, msg, slowest_ms

TRACE_LINES = [line for line in TRACE.split("</think>")[0].splitlines()[1:] if line.strip()]


def test_check_trace_accepts_a_worked_solution():
    got = traces.check_trace(TRACE)
    assert got == {"checked": 7, "errors": 0, "valid": True, "first_error": None, "first_error_line": None}
    assert traces.check_trace(TRACE.split("<answer>")[0].replace("<think>", "").replace("</think>", "")) == got
    three = "\n".join([
        "(4) = (2) * (2) - (1) * (3): (2*4 - 3*1)y + (2*(-1) - 3*2)z = 2*5 - 3*7 -> 5y - 8z = -11",
        "(5) = (3) * (1) - (4) * (1): (5 - 5)y + (3 - (-8))z = 1 - (-11) -> 0y + 11z = 12 -> 11z = 12",
        "Substitute y = 2, z = -3 into (1): 2x + 3*2 + (-1)*(-3) = 7 -> 2x + 9 = 7",
        "2x = 7 - 9 = -2", "x = -2 / 2 = -1", "z = 12 / 11 = 12/11"])
    assert traces.check_trace(three) == {"checked": 7, "errors": 0, "valid": True, "first_error": None,
                                         "first_error_line": None}


def test_check_trace_accepts_every_step_solution_data_py_writes():
    import data

    rng = random.Random(5)
    for n in (2, 3, 4):
        variables = list(data.VARIABLE_NAMES[:n])
        for _ in range(40):
            while not (system := data.random_system(rng, n, [-10, 10], [-10, 10])):
                pass
            matrix, constants, solution = system
            got = traces.check_trace(data.worked_solution_steps(matrix, constants, variables, solution))
            assert got["valid"] and got["checked"] >= 2 * n, got
            # The compact form has few checkable lines, but none of them may read as an error.
            assert traces.check_trace(data.worked_solution(matrix, constants, variables, solution))["errors"] == 0


def mutations(line):
    """`line` with each number after its last ': ' changed by one, one at a time."""
    start = line.rfind(": ") + 1
    for m in re.finditer(r"\d+", line[start:]):
        i, j = start + m.start(), start + m.end()
        yield line[:i] + str(int(line[i:j]) + 1) + line[j:]


@pytest.mark.parametrize("number", range(4, 11))
def test_check_trace_points_at_a_wrong_number(number):
    line = TRACE_LINES[number - 1]
    # Numbers a check reads: both sides of '->' are compared, and in a chain only the pure numbers.
    targets = list(mutations(line)) if "->" in line else list(mutations(line.split("=", 1)[1]))
    assert targets
    for changed in targets:
        if "->" not in line:
            changed = line.split("=", 1)[0] + "=" + changed
        got = traces.check_trace(TRACE.replace(line, changed))
        assert got["first_error"] == number and got["first_error_line"] == changed, (changed, got)
        assert got["errors"] == 1 and not got["valid"]


@pytest.mark.parametrize("text, checked, errors", [
    ("-190 / 25 = -7", 1, 1),                        # -7.6: exact arithmetic, no rounding
    ("(-68) - 132 = -190", 1, 1),                    # -200
    ("4 = 2 + 2 = 5", 2, 1),
    ("x = 6 / 0 = 3", 1, 1), ("y = 6 / (2 - 2)", 1, 1),  # a division by zero is a failed check
    ("2x = 4 -> x = 2", 1, 1),                       # the same solutions, but not the same equation
    ("(5 - 5)y + 2x = 4 -> 2x = 4", 1, 0), ("0y + 2x = 4 -> 2x = 4", 1, 0),
    ("x = 18 / (-3) = -6.", 1, 0), ("-(-(-3)) = -3", 1, 0), ("Step 2: 3 + 4 = 7", 1, 0),
    ("(3) = (1) + (2)", 0, 0), ("(2) - (3) = -1", 0, 0),  # equation labels, not numbers
    ("(3) = 3*(1) + 5*(2), divided by 7: y = 4", 0, 0),  # the compact format: nothing to check
    ("so x = 3 and y = 4", 0, 0), ("xy = 2 -> xy = 2", 0, 0), ("X = 1 = 2", 0, 0), ("1 == 2", 0, 0),
    ("3 + 4 = 8!", 0, 0), ("2 ^ 3 = 9", 0, 0), ("5 y = 10 -> y = 2", 0, 0),
    ("(" * 30 + "1" + ")" * 30 + " = 2", 0, 0),      # nesting past the parser's depth cap
    ("", 0, 0), ("<think></think>", 0, 0), ("\n \n", 0, 0),
])
def test_check_trace_lines(text, checked, errors):
    got = traces.check_trace(text)
    assert (got["checked"], got["errors"]) == (checked, errors), got
    assert got["valid"] == (checked > 0 and errors == 0)
    assert (got["first_error"] is None) == (errors == 0)


def test_check_trace_numbers_non_empty_lines_of_the_first_think_block():
    text = "<think>\n\n1 + 1 = 2\n   \nwords\n2 + 2 = 5\n</think><think>1 = 2</think> 3 = 4"
    assert traces.check_trace(text) == {"checked": 2, "errors": 1, "valid": False, "first_error": 3,
                                        "first_error_line": "2 + 2 = 5"}
    assert traces.check_trace("1 = 2\n<think>1 = 1") == {"checked": 1, "errors": 1, "valid": False,
                                                        "first_error": 1, "first_error_line": "1 = 2"}
    assert traces.check_trace(None)["checked"] == 0 and traces.check_trace(msg("1 = 1"))["checked"] == 0


def test_check_trace_is_fast_and_never_raises():
    rng = random.Random(3)
    pieces = ["(", ")", "-", "+", "*", "/", "=", " = ", "->", ": ", "x", "y", "3", "-12", "(-4)", " ", "\n", "0", "ab",
              "(1) ", "<think>", "</think>", ".", "\u2212", "1.5", "9" * 50]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(60))) for _ in range(2000)]
    for text in texts:
        got = traces.check_trace(text)
        assert 0 <= got["errors"] <= got["checked"] and type(got["valid"]) is bool, text
    garbage = {
        "soup": "".join(rng.choice(pieces) for _ in range(40000))[:100_000],
        "unicode": "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(100_000)),
        "ones": "1 = 1\n" * 16600, "chain": ("1 = " * 40 + "1\n") * 600,
        "arrows": "x = 1 -> x = 1 -> x = 1 -> x = 1\n" * 3000, "parens": "(" * 100_000 + " = 1",
        "deep": ("(" * 150 + "1" + ")" * 45 + "=1\n") * 500, "signs": ("-" * 190 + "1 = 1\n") * 500,
        "big": ("99999999*" * 19 + "9 = 1\n") * 500, "one line": "1 = 1 " * 20000,
    }
    for name, text in garbage.items():
        assert slowest_ms(traces.check_trace, text) < 50, name


def test_doctests():
    import doctest

    assert doctest.testmod(traces).failed == 0
