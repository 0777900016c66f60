"""data.py: every generated system is solvable, unique, cleanly printed, and its worked solution is true.

The checks re-derive everything from the printed text with code written here (an independent equation
reader, a Fraction solver, a canonical form), so a bug in data.py cannot hide behind itself.
"""

import json
import os
import random
import re
from fractions import Fraction
from functools import reduce
from math import gcd

import pytest

import data
import traces
import utils
from conftest import run_script

# ----------------------------------------------------------------------------
# Independent helpers


CLEAN = re.compile(r"\S+( [-+] \S+)* = -?\d+")
TERM = re.compile(r"([1-9]\d*)?([a-z])")


def read_equation(text, variables):
    """Read an equation printed as '3x - 5y = -24', asserting the print is clean; -> (coefs, const)."""
    assert CLEAN.fullmatch(text), f"badly spaced equation: {text!r}"
    left, right = text.split(" = ")
    assert right == str(int(right)), f"constant not canonical: {text!r}"
    tokens = left.split(" ")
    coefs = dict.fromkeys(variables, 0)
    order = []
    for i in range(0, len(tokens), 2):
        sign = -1 if (tokens[i].startswith("-") if i == 0 else tokens[i - 1] == "-") else 1
        term = tokens[i][1:] if i == 0 and tokens[i].startswith("-") else tokens[i]
        m = TERM.fullmatch(term)
        assert m, f"bad term {term!r} in {text!r}"
        assert m.group(1) != "1", f"coefficient 1 printed in {text!r}"
        assert m.group(2) in coefs and m.group(2) not in order, f"unknown or repeated variable in {text!r}"
        coefs[m.group(2)] = sign * int(m.group(1) or 1)
        order.append(m.group(2))
    assert order == sorted(order, key=variables.index), f"variables out of order in {text!r}"
    return [coefs[v] for v in variables], int(right)


def bareiss_determinant(matrix):
    """Exact integer determinant, fraction-free (Bareiss)."""
    m, sign, previous = [list(row) for row in matrix], 1, 1
    n = len(m)
    for k in range(n - 1):
        if m[k][k] == 0:
            swap = next((i for i in range(k + 1, n) if m[i][k]), None)
            if swap is None:
                return 0
            m[k], m[swap], sign = m[swap], m[k], -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                m[i][j] = (m[i][j] * m[k][k] - m[i][k] * m[k][j]) // previous
        previous = m[k][k]
    return sign * m[-1][-1]


def canonical(matrix, constants):
    rows = []
    for coefs, const in zip(matrix, constants):
        row = list(coefs) + [const]
        g = reduce(gcd, row)
        lead = next(x for x in row if x)
        rows.append(tuple(x // g * (1 if lead > 0 else -1) for x in row))
    return tuple(sorted(rows))


RESPONSE = re.compile(r"<think>\n(.*)\n</think>\n<answer>(.*)</answer>", re.S)
COMBO = re.compile(r"\((\d+)\) = (?:(\d+)\*)?\((\d+)\) ([-+]) (?:(\d+)\*)?\((\d+)\)(?:, divided by (\d+))?: (.+)")
GIVEN = re.compile(r"\((\d+)\) (?!= )(.+)")
ELIMINATE = re.compile(r"Eliminate ([a-z]) using \((\d+)\)\.")
SUBSTITUTE = re.compile(r"Substitute (.+) into \((\d+)\): (-?\d*)([a-z])((?: [-+] \d+)*) = (-?\d+), so (-?\d*)([a-z]) = (-?\d+)\.")
SOLVE = re.compile(r"(-?\d*)([a-z]) = (-?\d+), so ([a-z]) = (?:(-?\d+) / (-?\d+) = )?(-?\d+)\.")


def coefficient(text):
    return {"": 1, "-": -1}.get(text, None) or int(text)


def check_worked_solution(response, variables, equations, answer):
    """Every line of the <think> block is recognised and numerically true, in a valid order."""
    m = RESPONSE.fullmatch(response)
    assert m, response
    assert m.group(2) == ", ".join(f"{v} = {answer[v]}" for v in variables)
    n = len(variables)
    rows, known, eliminating, last_lhs = {}, {}, None, (None, None, None)

    def learn(row):  # a row with one term `v = c` states a value
        nonzero = [j for j in range(n) if row[j]]
        if len(nonzero) == 1 and row[nonzero[0]] == 1:
            known[variables[nonzero[0]]] = row[-1]

    for line in m.group(1).split("\n"):
        if c := COMBO.fullmatch(line):
            label, f1, l1, op, f2, l2, div, eq = c.groups()
            assert int(label) == len(rows) + 1 and int(l1) in rows and int(l2) in rows, line
            f1, f2, div = int(f1 or 1), int(f2 or 1) * (-1 if op == "-" else 1), int(div or 1)
            assert "1" not in (c.group(2), c.group(5)), f"factor 1 printed: {line}"
            combo = [f1 * a + f2 * b for a, b in zip(rows[int(l1)], rows[int(l2)])]
            assert all(x % div == 0 for x in combo) and (div > 1 or c.group(7) is None), line
            row = [x // div for x in combo]
            coefs, const = read_equation(eq, variables)
            assert coefs + [const] == row, f"false combination: {line}"
            assert eliminating is not None and row[eliminating[0]] == 0, f"does not eliminate: {line}"
            assert int(l2) == eliminating[1], f"combines with a row other than the pivot: {line}"
            rows[int(label)] = row
            learn(row)
        elif g := GIVEN.fullmatch(line):
            label = int(g.group(1))
            assert label == len(rows) + 1 <= n, line
            coefs, const = read_equation(g.group(2), variables)
            assert g.group(2) == equations[label - 1], line
            rows[label] = coefs + [const]
            learn(rows[label])
        elif e := ELIMINATE.fullmatch(line):
            k, label = variables.index(e.group(1)), int(e.group(2))
            assert rows[label][k] != 0, f"pivot has no {e.group(1)}: {line}"
            eliminating = (k, label)
        elif s := SUBSTITUTE.fullmatch(line):
            values, label, c1, v1, terms, const, c2, v2, rest = s.groups()
            row, k = rows[int(label)], variables.index(v1)
            assert (c1, v1) == (c2, v2) and coefficient(c1) == row[k], line
            stated = dict(re.fullmatch(r"([a-z]) = (-?\d+)", part).groups() for part in values.split(", "))
            assert set(stated) == {variables[j] for j in range(n) if j != k and row[j]}, line
            for v, value in stated.items():
                assert known.get(v) == int(value), f"substitutes a value not derived yet: {line}"
            printed = [int(t.replace(" ", "")) for t in re.findall(r" [-+] \d+", terms)]
            assert printed == [row[j] * answer[variables[j]] for j in range(n) if j != k and row[j]], line
            assert int(const) == row[-1] and int(rest) == row[-1] - sum(printed), f"false: {line}"
            if coefficient(c1) == 1:
                known[v1] = int(rest)
            last_lhs = (coefficient(c1), v1, int(rest))
        elif s := SOLVE.fullmatch(line):
            c, v, rhs, v_again, num, den, value = s.groups()
            assert v == v_again and coefficient(c) not in (0, 1), line
            if last_lhs[1] == v:  # follows its Substitute line
                assert (coefficient(c), int(rhs)) == last_lhs[::2], line
            else:  # the pivot row has no other term
                k = variables.index(v)
                assert any(r[k] == coefficient(c) and r[-1] == int(rhs) and sum(map(bool, r[:-1])) == 1
                           for r in rows.values()), f"no row states {line}"
            assert (num is None) == (coefficient(c) == -1), line
            if num is not None:
                assert (int(num), int(den)) == (int(rhs), coefficient(c)), line
            assert Fraction(int(rhs), coefficient(c)) == int(value), f"false division: {line}"
            known[v] = int(value)
        else:
            raise AssertionError(f"unrecognised line {line!r} in\n{response}")
        if not line.startswith("Substitute"):
            last_lhs = (None, None, None)
    assert known == answer, f"the worked solution derives {known}, not {answer}"


# The step format: each line is one operation on numbers already written; every number is re-derived here.
NUM = r"(-?\d+)"
PAREN = r"(\d+|\(-\d+\))"  # an operand: negatives in parentheses
PAREN_NC = r"(?:\d+|\(-\d+\))"
STEP_ELIMINATE = re.compile(r"Eliminate ([a-z]): multiply \((\d+)\) by (-?\d+) and \((\d+)\) by (-?\d+)\.")
STEP_SCALED = re.compile(rf"\((\d+)\) \* \({NUM}\): (.+) = \({NUM}\)\*{PAREN} -> (.+)")
STEP_SCALED_TERM = re.compile(rf"\({NUM}\)\*{PAREN}([a-z])")
STEP_COMBO = re.compile(rf"\((\d+)\) = \((\d+)\) \* \({NUM}\) - \((\d+)\) \* \({NUM}\): (.+) = {NUM} - {PAREN} -> (.+)")
STEP_COMBO_TERM = re.compile(rf"\({NUM} - {PAREN}\)([a-z])")
STEP_SUBSTITUTE = re.compile(rf"Substitute (.+) into \((\d+)\): (-?\d*)([a-z])((?: \+ {PAREN_NC}\*{PAREN_NC})+) = {NUM} -> "
                             rf"(-?\d*)([a-z]) ([-+]) (\d+) = {NUM}")
STEP_REST = re.compile(rf"(-?\d*)([a-z]) = {NUM} - {PAREN} = {NUM}")
STEP_SOLVE = re.compile(rf"([a-z]) = {NUM} / {PAREN} = {NUM}")
STEP_GIVEN = re.compile(r"\((\d+)\) ([^=*].*)")


def operand(text):
    assert text == (f"({int(text[1:-1])})" if text.startswith("(") else str(int(text))), f"bad operand {text!r}"
    assert not text.startswith("(") or int(text[1:-1]) < 0, f"positive number in parentheses: {text!r}"
    return int(text.strip("()"))


def check_step_solution(response, variables, equations, answer):
    """Every line of a step-format <think> block is recognised and each of its numbers re-derived."""
    m = RESPONSE.fullmatch(response)
    assert m, response
    assert m.group(2) == ", ".join(f"{v} = {answer[v]}" for v in variables)
    n = len(variables)
    rows, known, plan, scaled, pending = {}, {}, None, [], None  # pending: (variable, coefficient, value) to divide

    for line in m.group(1).split("\n"):
        if g := STEP_ELIMINATE.fullmatch(line):
            v, a, ma, b, mb = g.groups()
            k = variables.index(v)
            a, ma, b, mb = int(a), int(ma), int(b), int(mb)
            assert rows[a][k] * ma == rows[b][k] * mb != 0, f"multipliers do not cancel {v}: {line}"
            plan, scaled = (k, a, ma, b, mb), []
        elif g := STEP_SCALED.fullmatch(line):
            label, mult, terms, mult2, const, eq = g.groups()
            label, mult = int(label), int(mult)
            assert plan is not None and (label, mult) == plan[1 + 2 * len(scaled): 3 + 2 * len(scaled)], line
            assert int(mult2) == mult and operand(const) == rows[label][-1], line
            printed = [STEP_SCALED_TERM.fullmatch(t) for t in terms.split(" + ")]
            assert all(printed), f"bad term in {line}"
            assert [(int(t[1]), operand(t[2]), t[3]) for t in printed] == \
                [(mult, c, v) for c, v in zip(rows[label], variables) if c], f"wrong terms: {line}"
            coefs, c = read_equation(eq, variables)
            assert coefs + [c] == [mult * x for x in rows[label]], f"false product: {line}"
            scaled.append(coefs + [c])
        elif g := STEP_COMBO.fullmatch(line):
            label, a, ma, b, mb, terms, ca, cb, eq = g.groups()
            assert plan is not None and len(scaled) == 2, line
            assert (int(a), int(ma), int(b), int(mb)) == plan[1:], line
            assert int(label) == len(rows) + 1, line
            x_row, y_row = scaled
            printed = [STEP_COMBO_TERM.fullmatch(t) for t in terms.split(" + ")]
            assert all(printed), f"bad term in {line}"
            assert [(int(t[1]), operand(t[2]), t[3]) for t in printed] == \
                [(x, y, v) for x, y, v in zip(x_row, y_row, variables) if x != y], f"wrong terms: {line}"
            assert (int(ca), operand(cb)) == (x_row[-1], y_row[-1]), line
            coefs, c = read_equation(eq, variables)
            assert coefs + [c] == [x - y for x, y in zip(x_row, y_row)], f"false difference: {line}"
            assert coefs[plan[0]] == 0, f"does not eliminate: {line}"
            rows[int(label)] = coefs + [c]
            plan = None
        elif g := STEP_SUBSTITUTE.fullmatch(line):
            values, label, c1, v1, products, const, c2, v2, sign, total, const2 = g.groups()[:11]
            row, k = rows[int(label)], variables.index(v1)
            assert (c1, v1) == (c2, v2) and coefficient(c1) == row[k] and int(const) == int(const2) == row[-1], line
            others = [j for j in range(n) if j != k and row[j]]
            stated = [re.fullmatch(r"([a-z]) = (-?\d+)", part).groups() for part in values.split(", ")]
            assert stated == [(variables[j], str(known[variables[j]])) for j in others], f"unknown values: {line}"
            factors = re.findall(rf" \+ {PAREN}\*{PAREN}", products)
            assert [(operand(a), operand(b)) for a, b in factors] == \
                [(row[j], known[variables[j]]) for j in others], f"wrong products: {line}"
            value = sum(row[j] * known[variables[j]] for j in others)
            assert (-1 if sign == "-" else 1) * int(total) == value and (int(total) != 0 or sign == "+"), line
            pending = (v1, row[k], row[-1], value)
        elif g := STEP_REST.fullmatch(line):
            c, v, const, total, rest = g.groups()
            assert pending and pending[0] == v and coefficient(c) == pending[1], line
            assert (int(const), operand(total)) == pending[2:], line
            assert int(rest) == int(const) - operand(total), f"false subtraction: {line}"
            pending = (v, coefficient(c), int(rest), None)
        elif g := STEP_SOLVE.fullmatch(line):
            v, rest, c, value = g.groups()
            rest, c, value = int(rest), operand(c), int(value)
            if pending and pending[0] == v:
                assert pending[3] is None and (pending[1], pending[2]) == (c, rest), line
            else:  # the pivot row has no other term
                k = variables.index(v)
                assert any(r[k] == c and r[-1] == rest and sum(map(bool, r[:-1])) == 1 for r in rows.values()), line
            assert Fraction(rest, c) == value, f"false division: {line}"
            assert v not in known, line
            known[v], pending = value, None
        elif g := STEP_GIVEN.fullmatch(line):
            label = int(g.group(1))
            assert label == len(rows) + 1 <= n and g.group(2) == equations[label - 1], line
            coefs, const = read_equation(g.group(2), variables)
            rows[label] = coefs + [const]
        else:
            raise AssertionError(f"unrecognised line {line!r} in\n{response}")
    assert known == answer, f"the worked solution derives {known}, not {answer}"


# ----------------------------------------------------------------------------
# Formatting


@pytest.mark.parametrize("coefs, const, text", [
    ([3, -5], -24, "3x - 5y = -24"),
    ([-1, 1], 4, "-x + y = 4"),
    ([1, -1], 0, "x - y = 0"),
    ([0, 2], -6, "2y = -6"),
    ([-7, 0], 14, "-7x = 14"),
    ([0, 0, -1], 3, "-z = 3"),
    ([12, 0, 1], -30, "12x + z = -30"),
])
def test_format_equation_examples(coefs, const, text):
    variables = list("xyz"[: len(coefs)])
    assert data.format_equation(coefs, const, variables) == text
    assert data.parse_equation(text, variables) == (coefs, const)


def test_format_and_parse_round_trip_random_rows():
    rng = random.Random(0)
    for _ in range(5000):
        n = rng.randint(1, 6)
        variables = list(data.VARIABLE_NAMES[:n])
        coefs = [rng.choice([0, 0, 1, -1, rng.randint(-99, 99)]) for _ in range(n)]
        if not any(coefs):
            coefs[rng.randrange(n)] = rng.choice([1, -1, 5])
        const = rng.randint(-5000, 5000)
        text = data.format_equation(coefs, const, variables)
        assert read_equation(text, variables) == (coefs, const)
        assert data.parse_equation(text, variables) == (coefs, const)


def test_determinant_and_canonical_key():
    rng = random.Random(1)
    for _ in range(2000):
        n = rng.randint(1, 5)
        matrix = [[rng.randint(-3, 3) for _ in range(n)] for _ in range(n)]
        if rng.random() < 0.3 and n > 1:  # make it singular
            matrix[-1] = [a + 2 * b for a, b in zip(matrix[0], matrix[1])]
        assert data.determinant(matrix) == bareiss_determinant(matrix)
    assert data.determinant([[1, 2], [2, 4]]) == 0
    assert data.determinant([[0, 1], [1, 0]]) == -1
    assert data.determinant([[2, 0, 0], [0, 3, 0], [0, 0, -4]]) == -24
    # Scaling an equation or reordering the system gives the same key.
    assert data.canonical_key([[2, 4], [1, -1]], [6, 0]) == data.canonical_key([[-1, 1], [1, 2]], [0, 3])
    assert data.canonical_key([[1, 2], [1, -1]], [3, 0]) != data.canonical_key([[1, 2], [1, -1]], [3, 1])


# ----------------------------------------------------------------------------
# Generated files: >= 10,000 systems of 1..6 variables over several ranges

CONFIGS = [  # argv, systems in the file
    (["--n-vars", "1", "--solution-range", "-2000", "2000", "--train", "1200", "--val", "100"], 1500),
    (["--train", "2800", "--val", "200", "--test", "200", "--test-ood", "200"], 3400),
    (["--coef-range", "-5", "5", "--solution-range", "-9", "9", "--train", "1600"], 1864),
    (["--n-vars", "3", "--coef-range", "-10", "10", "--solution-range", "-12", "0", "--train", "1400"], 1664),
    (["--n-vars", "4", "--coef-range", "0", "9", "--solution-range", "1", "20", "--train", "600",
      "--val", "50", "--test", "50", "--test-ood", "50", "--ood-coef-range", "-1", "1"], 750),
    (["--n-vars", "5", "--coef-range", "-3", "3", "--solution-range", "-5", "5", "--train", "400",
      "--val", "50", "--test", "50", "--test-ood", "50", "--ood-n-vars", "6"], 550),
    (["--n-vars", "6", "--coef-range", "-4", "4", "--train", "300", "--val", "20", "--test", "20",
      "--test-ood", "20", "--ood-n-vars", "2", "--seed", "7"], 360),
]


@pytest.fixture(scope="module")
def generated():
    """The compact format (one line per elimination), read by check_worked_solution above."""
    out = []
    for argv, expected in CONFIGS:
        args = data.parse_args(argv + ["--solution-format", "compact"])
        data.check_args(args)
        out.append((args, data.generate(args), expected))
    return out


@pytest.fixture(scope="module")
def generated_steps():
    """The same configs in the default step format (one checkable operation per line)."""
    out = []
    for argv, expected in CONFIGS:
        args = data.parse_args(argv)
        data.check_args(args)
        assert args.solution_format == "steps"
        out.append((args, data.generate(args), expected))
    return out


def test_no_split_repeats_a_system_with_the_variables_renamed():
    """x and y swapped is the same problem: the eval scripts' guard refuses such a test item after training on its
    twin, so data.py never writes one. The easy preset's small space made 146 of 1000 test items twins of train
    items (in 23000) before; at 3000 a few are expected."""
    args = data.parse_args(["--preset", "easy", "--train", "3000", "--val", "0", "--test", "300", "--test-near", "0",
                            "--test-far", "0", "--test-ood", "0", "--seed", "0"])
    data.check_args(args)
    keys = [utils.content_keys(r)[1] for r in data.generate(args)["records"]]
    assert len(set(keys)) == len(keys) == 3300


@pytest.mark.parametrize("fmt", ["compact", "steps"])
def test_generated_systems_have_all_properties(fmt, generated, generated_steps):
    total = 0
    for args, result, expected in (generated if fmt == "compact" else generated_steps):
        records = result["records"]
        assert len(records) == expected == sum(result["meta"]["counts"].values())
        keys, ids, hashes = set(), set(), set()
        for r in records:
            if r["split"] == "test_ood":  # defaults: one more variable, coefficient range doubled
                n = args.ood_n_vars or args.n_vars + 1
                lo, hi = args.ood_coef_range or [2 * args.coef_range[0], 2 * args.coef_range[1]]
            else:
                n, (lo, hi) = args.n_vars, args.coef_range
            variables = r["variables"]
            assert variables == list(data.VARIABLE_NAMES[:n]) == list(r["answer"])
            assert re.fullmatch(rf"{r['split']}-\d{{4}}", r["id"]) and r["id"] not in ids
            ids.add(r["id"])
            parsed = [read_equation(eq, variables) for eq in r["equations"]]
            assert parsed == [data.parse_equation(eq, variables) for eq in r["equations"]]
            matrix, constants = [p[0] for p in parsed], [p[1] for p in parsed]
            assert len(matrix) == n and all(lo <= a <= hi for row in matrix for a in row)
            solution = [r["answer"][v] for v in variables]
            assert all(type(s) is int and args.solution_range[0] <= s <= args.solution_range[1] for s in solution)
            # The stored answer solves the printed system, and no other solution exists.
            assert [sum(a * s for a, s in zip(row, solution)) for row in matrix] == constants, r["id"]
            assert bareiss_determinant(matrix) != 0, r["id"]
            key = canonical(matrix, constants)
            assert key not in keys, f"{r['id']} repeats an earlier system"
            keys.add(key)
            assert r["hash"] not in hashes
            hashes.add(r["hash"])
            assert r["prompt"] == utils.linear_prompt(r["equations"], variables)
            assert "\n".join(r["equations"]) in r["prompt"][1]["content"]
            assert utils.parse_linear_answer(r["response"], variables, strict=True) == r["answer"]
            if fmt == "compact":
                check_worked_solution(r["response"], variables, r["equations"], r["answer"])
            else:
                check_step_solution(r["response"], variables, r["equations"], r["answer"])
                if (total + len(keys)) % 25 == 0:  # check_trace costs ~3 ms per solution: 1 in 25 of them
                    assert traces.check_trace(r["response"])["valid"], r["response"]
        assert utils.correctness_reward([r["response"] for r in records], [r["answer"] for r in records]) \
            == [1.0] * len(records)
        total += len(records)
    assert total >= 10_000
    sizes = {len(r["variables"]) for _, result, _ in generated for r in result["records"]}
    assert sizes == {1, 2, 3, 4, 5, 6}


def test_splits_are_ordered_and_sized(generated):
    args, result, _ = generated[1]
    splits = [r["split"] for r in result["records"]]
    assert splits == ["test"] * 200 + ["test_ood"] * 200 + ["val"] * 200 + ["train"] * 2800
    assert result["meta"]["counts"] == {"test": 200, "test_ood": 200, "test_near": 0, "test_far": 0, "val": 200,
                                        "train": 2800}
    assert result["meta"]["ood_n_vars"] == 3 and result["meta"]["ood_coef_range"] == [-60, 60]


def test_worked_solution_checker_catches_a_false_line(generated):
    """The checker above must be able to fail: corrupt one number in a real response."""
    r = next(r for r in generated[1][1]["records"] if ", divided by" in r["response"])
    check_worked_solution(r["response"], r["variables"], r["equations"], r["answer"])
    lines = r["response"].split("\n")
    i = next(i for i, line in enumerate(lines) if line.startswith("Substitute"))
    for bad in (re.sub(r"so (-?\d*[a-z]) = (-?\d+)", lambda m: f"so {m[1]} = {int(m[2]) + 1}", lines[i]),
                re.sub(r", divided by (\d+)", lambda m: f", divided by {int(m[1]) + 1}", r["response"])):
        corrupted = "\n".join(lines[:i] + [bad] + lines[i + 1:]) if bad.startswith("Substitute") else bad
        with pytest.raises(AssertionError):
            check_worked_solution(corrupted, r["variables"], r["equations"], r["answer"])


def test_step_checker_catches_a_false_line(generated_steps):
    """Change any one number of a step-format solution: the independent checker (and check_trace) fail."""
    r = next(r for r in generated_steps[3][1]["records"] if r["response"].count("Substitute") >= 2)
    check_step_solution(r["response"], r["variables"], r["equations"], r["answer"])
    lines = r["response"].split("\n")
    rng, tried = random.Random(0), 0
    for _ in range(40):
        i = rng.randrange(len(lines) - 3) + 1  # any line of the <think> block after "<think>"
        if i > len(r["equations"]) + 1 and not lines[i].startswith("Eliminate"):
            numbers = list(re.finditer(r"\d+", lines[i].split(": ", 1)[-1]))
            hit = rng.choice(numbers)
            offset = len(lines[i]) - len(lines[i].split(": ", 1)[-1])
            start, end = offset + hit.start(), offset + hit.end()
            bad = lines[i][:start] + str(int(hit.group()) + 1) + lines[i][end:]
            corrupted = "\n".join(lines[:i] + [bad] + lines[i + 1:])
            with pytest.raises(AssertionError):
                check_step_solution(corrupted, r["variables"], r["equations"], r["answer"])
            tried += 1
    assert tried >= 20


def generate(argv):
    args = data.parse_args(argv)
    data.check_args(args)
    return args, data.generate(args)


def split_of(result, split):
    return [r for r in result["records"] if r["split"] == split]


def read_system(record):
    parsed = [read_equation(eq, record["variables"]) for eq in record["equations"]]
    return [p[0] for p in parsed], [p[1] for p in parsed]


def test_near_and_far_splits_change_one_factor_each():
    args, result = generate(["--preset", "easy", "--train", "300", "--val", "30", "--test", "60", "--test-ood", "20",
                             "--test-near", "80", "--test-far", "50", "--solution-format", "compact"])
    assert result["meta"]["counts"] == {"test": 60, "test_ood": 20, "test_near": 80, "test_far": 50, "val": 30,
                                        "train": 300}
    assert result["meta"]["near_coef_range"] == [-10, 10] and result["meta"]["far_n_vars"] == 3
    keys = {}
    for r in result["records"]:
        matrix, constants = read_system(r)
        key = canonical(matrix, constants)
        assert key not in keys, f"{r['id']} repeats {keys.get(key)}"
        keys[key] = r["id"]
        coefs = [c for row in matrix for c in row]
        assert [sum(a * r["answer"][v] for a, v in zip(row, r["variables"])) for row in matrix] == constants
        assert all(-9 <= s <= 9 for s in r["answer"].values())  # solutions: the in-domain range everywhere
        assert bareiss_determinant(matrix) != 0
        if r["split"] == "test_near":  # 2 variables, some coefficient outside [-5, 5], all within [-10, 10]
            assert r["variables"] == ["x", "y"]
            assert any(abs(c) > 5 for c in coefs) and all(abs(c) <= 10 for c in coefs), r["equations"]
        elif r["split"] == "test_far":  # one more variable at the in-domain coefficients
            assert r["variables"] == ["x", "y", "z"] and all(-5 <= c <= 5 and c != 0 for c in coefs)
        elif r["split"] != "test_ood":
            assert r["variables"] == ["x", "y"] and all(-5 <= c <= 5 and c != 0 for c in coefs)
        check_worked_solution(r["response"], r["variables"], r["equations"], r["answer"])
    # Explicit ranges and sizes
    _, result = generate(["--coef-range", "-3", "3", "--near-coef-range", "-4", "4", "--far-n-vars", "4",
                          "--train", "10", "--val", "0", "--test", "0", "--test-ood", "0", "--test-near", "30",
                          "--test-far", "5"])
    for r in split_of(result, "test_near"):
        coefs = [c for row in read_system(r)[0] for c in row]
        assert any(abs(c) == 4 for c in coefs) and all(abs(c) <= 4 for c in coefs)
    assert {len(r["variables"]) for r in split_of(result, "test_far")} == {4}


def test_presets_and_explicit_flags_override_them():
    easy = data.parse_args(["--preset", "easy"])
    data.check_args(easy)
    assert (easy.coef_range, easy.solution_range, easy.nonzero_coefs) == ([-5, 5], [-9, 9], True)
    default = data.parse_args([])
    data.check_args(default)
    assert (default.coef_range, default.solution_range, default.nonzero_coefs) == ([-30, 30], [-30, 30], False)
    mixed = data.parse_args(["--preset", "easy", "--coef-range", "-7", "7", "--no-nonzero-coefs"])
    data.check_args(mixed)
    assert (mixed.coef_range, mixed.solution_range, mixed.nonzero_coefs) == ([-7, 7], [-9, 9], False)
    _, result = generate(["--preset", "easy", "--solution-range", "0", "3", "--train", "40", "--val", "0",
                          "--test", "0", "--test-ood", "0"])
    for r in result["records"]:
        assert all(0 <= s <= 3 for s in r["answer"].values())
        assert all(-5 <= c <= 5 and c != 0 for row in read_system(r)[0] for c in row)


def test_nonzero_coefs():
    argv = ["--coef-range", "-2", "2", "--train", "200", "--val", "0", "--test", "0", "--test-ood", "0",
            "--n-vars", "3"]
    _, plain = generate(argv)
    assert any(c == 0 for r in plain["records"] for row in read_system(r)[0] for c in row)  # zeros do occur
    _, nonzero = generate(argv + ["--nonzero-coefs"])
    assert all(c != 0 for r in nonzero["records"] for row in read_system(r)[0] for c in row)
    for r in nonzero["records"]:
        check_step_solution(r["response"], r["variables"], r["equations"], r["answer"])


@pytest.mark.parametrize("argv", [["--near-coef-range", "-5", "5"], ["--near-coef-range", "-2", "3"]])
def test_near_range_inside_the_training_range_is_a_clean_error(tmp_path, argv):
    out = tmp_path / "data.json"
    proc = run_script("data.py", "--coef-range", "-5", "5", "--test-near", "10", *argv, "--out", str(out))
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--near-coef-range" in lines[0], proc.stderr
    assert not out.exists()


def test_train_prefix_is_the_same_for_every_larger_train_size():
    base = ["--preset", "easy", "--val", "5", "--test", "5", "--test-ood", "3", "--test-near", "4", "--test-far", "4"]
    trains = {n: split_of(generate(base + ["--train", str(n)])[1], "train") for n in (10, 25, 60)}
    assert [r["id"] for r in trains[60][:10]] == [f"train-{i:04d}" for i in range(10)]
    assert trains[25] == trains[60][:25] and trains[10] == trains[60][:10] == trains[25][:10]


# ----------------------------------------------------------------------------
# The command line


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_same_seed_same_bytes_and_train_size_leaves_tests_alone(tmp_path):
    small = ["--train", "8", "--val", "4", "--test", "4", "--test-ood", "4"]
    paths = {name: str(tmp_path / f"{name}.json") for name in ("a", "b", "seed1", "more_train")}
    for name, extra, train in [("a", [], 8), ("b", [], 8), ("seed1", ["--seed", "1"], 8),
                               ("more_train", ["--train", "40"], 40)]:
        proc = run_script("data.py", *small, *extra, "--out", paths[name])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"wrote {paths[name]}: test 4, test_ood 4, test_near 0, test_far 0, val 4, train {train}"
    assert read_bytes(paths["a"]) == read_bytes(paths["b"])  # separate processes, different hash seeds
    assert read_bytes(paths["a"]) != read_bytes(paths["seed1"])
    a = json.loads(read_bytes(paths["a"]))
    more = json.loads(read_bytes(paths["more_train"]))
    for split in ("test", "test_ood", "val"):
        assert [r for r in a["records"] if r["split"] == split] == \
            [r for r in more["records"] if r["split"] == split] != []
    assert len([r for r in more["records"] if r["split"] == "train"]) == 40
    assert a["meta"]["seed"] == 0 and "out" not in a["meta"]


BAD_FLAGS = [
    (["--coef-range", "5", "1"], "--coef-range"),
    (["--solution-range", "3", "-3"], "--solution-range"),
    (["--ood-coef-range", "2", "-2"], "--ood-coef-range"),
    (["--coef-range", "0", "0"], "--coef-range"),
    (["--n-vars", "0"], "--n-vars"),
    (["--ood-n-vars", "0"], "--ood-n-vars"),
    (["--n-vars", "25"], "variables"),
    (["--train", "-1"], "--train"),
    (["--test-ood", "-5"], "--test-ood"),
    (["--n-vars", "1", "--coef-range", "1", "1", "--solution-range", "0", "0"], "widen the ranges"),
    (["--n-vars", "2", "--coef-range", "1", "1", "--test", "1"], "widen the ranges"),  # every matrix singular
    (["--train", "abc"], "--train"),
    (["--n-vars", "2.5"], "--n-vars"),
    (["--coef-range", "1"], "--coef-range"),
]


@pytest.mark.parametrize("argv, mentions", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flags_fail_cleanly_and_write_nothing(tmp_path, argv, mentions):
    out = tmp_path / "data.json"
    proc = run_script("data.py", *argv, "--out", str(out))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    error_lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1 and mentions in error_lines[0], proc.stderr
    assert error_lines[0] == proc.stderr.splitlines()[-1]
    assert os.listdir(tmp_path) == []
    # An existing file stays as it was.
    out.write_text("keep me")
    assert run_script("data.py", *argv, "--out", str(out)).returncode != 0
    assert out.read_text() == "keep me" and os.listdir(tmp_path) == ["data.json"]


def test_help_lists_every_flag():
    proc = run_script("data.py", "--help")
    assert proc.returncode == 0
    for flag in ("--n-vars", "--coef-range", "--solution-range", "--train", "--val", "--test", "--test-ood",
                 "--ood-n-vars", "--ood-coef-range", "--seed", "--out"):
        assert re.search(rf"^\s+{flag}\b", proc.stdout, re.M), f"{flag} missing from --help"
    assert "(default: 512)" in proc.stdout  # defaults are shown


def test_too_many_variables_for_the_default_ood_split_says_what_to_do(tmp_path):
    out = tmp_path / "data.json"
    result = run_script("data.py", "--n-vars", "24", "--out", str(out))
    assert result.returncode == 2 and not out.exists() and "Traceback" not in result.stderr
    assert "test_ood has --n-vars + 1 = 25 variables by default" in result.stderr
    assert "--ood-n-vars 24 or less, or --test-ood 0" in result.stderr
    args = data.parse_args(["--n-vars", "24", "--test-ood", "0"])
    data.check_args(args)  # test_far is empty by default: its 25 variables are never needed


def test_a_huge_request_is_refused_with_an_estimate(tmp_path):
    out = tmp_path / "data.json"
    result = run_script("data.py", "--train", "100000000", "--out", str(out))
    assert result.returncode == 2 and not out.exists() and len(result.stderr.splitlines()) == 1
    assert re.search(r"100,000,264 records: about \d+\.\d\d GB of JSON and [\d.]+ min.*at most 1,000,000", result.stderr)
    args = data.parse_args(["--train", "50000"])
    data.check_args(args)
    size, seconds = data.estimate(args, 50_000)
    assert 20e6 < size < 200e6 and seconds > 0  # ~1.4 kB a 2-variable record
