"""Write data.json: systems of linear equations with a unique integer solution.

    python data.py                                   # 512 train / 64 val / 100 test / 100 test_ood, 2 variables
    python data.py --n-vars 3 --coef-range -10 10 --out data3.json
    python data.py --preset easy --train 3000 --test 1000 --test-near 500 --test-far 500   # SmolLM2's study level

Every system has an integer matrix with non-zero determinant and constants computed from an integer
solution, so the solution is exact and unique. No system appears twice anywhere (equations compared as
a set, each scaled to lowest terms), so the splits are disjoint by construction. The test splits are
drawn first: changing --train does not change them (and train[:n] is the same for every --train >= n).
Each record's `response` is an exact worked elimination written by this program: by default one checkable
operation per line (--solution-format steps, verified by traces.check_trace), or the earlier compact form.
The OOD splits change one factor each: test_near wider coefficients, test_far one more variable.

One record (abridged):
    {"id": "test-0000", "split": "test", "variables": ["x", "y"],
     "equations": ["3x - 5y = -24", "-x + y = 4"], "answer": {"x": 2, "y": 6},
     "prompt": [{"role": "system", ...}, {"role": "user", ...}],
     "response": "<think>\\n(1) 3x - 5y = -24\\n...\\n</think>\\n<answer>x = 2, y = 6</answer>", "hash": "..."}
"""

import argparse
import json
import os
import random
import re
import sys
import time
from fractions import Fraction
from functools import reduce
from math import gcd

from tqdm import tqdm

from records import atomic_write_json
from utils import (VARIABLE_NAMES, UserError, canonical_key, cli, key_hash, linear_prompt, one_line_errors,
                   renamed_key)

MAX_REJECTIONS = 5000  # consecutive duplicate/singular draws before we call the ranges exhausted
MAX_RECORDS = 1_000_000  # data.json is built in memory and written as one file: ~1.4 GB at 2 variables, ~5 min
ESTIMATE_FROM = 20_000  # records from which an estimate of size and time is printed first (and a progress bar shown)
PRESETS = {  # difficulty: ranges of the in-domain splits
    "default": {"coef_range": [-30, 30], "solution_range": [-30, 30], "nonzero_coefs": False},
    "easy": {"coef_range": [-5, 5], "solution_range": [-9, 9], "nonzero_coefs": True},  # SmolLM2-135M's level
}

# ----------------------------------------------------------------------------
# Equations as text


def format_equation(coefs, const, variables):
    """[3, -5], -24 -> '3x - 5y = -24'; coefficient 1 shown as 'x', zero terms left out."""
    text = ""
    for c, v in zip(coefs, variables):
        if c == 0:
            continue
        magnitude = "" if abs(c) == 1 else str(abs(c))
        if not text:
            text = ("-" if c < 0 else "") + magnitude + v
        else:
            text += (" - " if c < 0 else " + ") + magnitude + v
    return f"{text or '0'} = {const}"


def parse_equation(text, variables):
    """'3x - 5y = -24' -> ([3, -5], -24): the inverse of format_equation."""
    left, right = text.split("=")
    coefs = dict.fromkeys(variables, 0)
    for sign, magnitude, v in re.findall(r"([-+]?)\s*(\d*)([a-z])", left.replace(" ", "")):
        coefs[v] += (-1 if sign == "-" else 1) * (int(magnitude) if magnitude else 1)
    return [coefs[v] for v in variables], int(right)


# ----------------------------------------------------------------------------
# Systems


def determinant(matrix):
    """Exact determinant by fraction-valued elimination."""
    m = [[Fraction(x) for x in row] for row in matrix]
    n, det = len(m), Fraction(1)
    for k in range(n):
        pivot = next((i for i in range(k, n) if m[i][k] != 0), None)
        if pivot is None:
            return 0
        if pivot != k:
            m[k], m[pivot], det = m[pivot], m[k], -det
        det *= m[k][k]
        for i in range(k + 1, n):
            f = m[i][k] / m[k][k]
            m[i] = [a - f * b for a, b in zip(m[i], m[k])]
    return int(det)


def random_system(rng, n_vars, coef_range, solution_range, nonzero=False, outside=None):
    """(matrix, constants, solution), or None for a draw to reject: a singular matrix, a zero coefficient when
    `nonzero`, or, with `outside` = (lo, hi), no coefficient outside that range (a shifted split)."""
    solution = [rng.randint(*solution_range) for _ in range(n_vars)]
    matrix = [[rng.randint(*coef_range) for _ in range(n_vars)] for _ in range(n_vars)]
    if any(not any(row) for row in matrix) or (nonzero and any(0 in row for row in matrix)):
        return None
    if outside and all(outside[0] <= c <= outside[1] for row in matrix for c in row):
        return None
    if determinant(matrix) == 0:
        return None
    constants = [sum(a * s for a, s in zip(row, solution)) for row in matrix]
    return matrix, constants, solution


# ----------------------------------------------------------------------------
# Worked solution: integer elimination, then back-substitution


def _reduced(row):
    g = reduce(gcd, row)
    return [x // g for x in row] if g > 1 else row


def worked_solution(matrix, constants, variables, solution):
    n = len(variables)
    lines = []
    rows = {}  # label -> [coefs..., const]
    for i, (coefs, const) in enumerate(zip(matrix, constants), 1):
        rows[i] = list(coefs) + [const]
        lines.append(f"({i}) {format_equation(coefs, const, variables)}")
    active, pivots, next_label = list(rows), [], n + 1
    for k in range(n - 1):
        candidates = [label for label in active if rows[label][k] != 0]
        pivot = min(candidates, key=lambda label: (abs(rows[label][k]), label))
        pivots.append((k, pivot))
        active.remove(pivot)
        targets = [label for label in active if rows[label][k] != 0]
        if targets:
            lines.append(f"Eliminate {variables[k]} using ({pivot}).")
        for label in targets:
            a, p = rows[label][k], rows[pivot][k]
            g = gcd(a, p)
            f_label, f_pivot = p // g, a // g  # f_label*(label) - f_pivot*(pivot) cancels variable k
            if f_label < 0:
                f_label, f_pivot = -f_label, -f_pivot
            new = [f_label * x - f_pivot * y for x, y in zip(rows[label], rows[pivot])]
            new = _reduced(new)
            left = f"({label})" if f_label == 1 else f"{f_label}*({label})"
            op = "-" if f_pivot > 0 else "+"
            right = f"({pivot})" if abs(f_pivot) == 1 else f"{abs(f_pivot)}*({pivot})"
            divisor = reduce(gcd, [f_label * x - f_pivot * y for x, y in zip(rows[label], rows[pivot])])
            note = f", divided by {divisor}" if divisor > 1 else ""
            rows[next_label] = new
            lines.append(f"({next_label}) = {left} {op} {right}{note}: {format_equation(new[:-1], new[-1], variables)}")
            active.remove(label)
            active.append(next_label)
            next_label += 1
    pivots.append((n - 1, active[0]))
    # Back-substitution, last variable first.
    known = {}
    for k, label in reversed(pivots):
        row = rows[label]
        c, const = row[k], row[-1]
        substituted = [(row[j], known[j]) for j in range(n) if j != k and row[j] != 0]
        head = format_equation([c if j == k else 0 for j in range(n)], const, variables).split(" = ")[0]
        if substituted:
            terms = "".join(f" {'-' if a * v < 0 else '+'} {abs(a * v)}" for a, v in substituted)
            values = ", ".join(f"{variables[j]} = {known[j]}" for j in sorted(known) if row[j] != 0)
            rest = const - sum(a * v for a, v in substituted)
            lines.append(f"Substitute {values} into ({label}): {head}{terms} = {const}, so {head} = {rest}.")
        else:
            rest = const
        value = Fraction(rest, c)
        assert value == solution[k], "worked solution disagrees with the generated solution"
        if c == -1:
            lines.append(f"{head} = {rest}, so {variables[k]} = {int(value)}.")
        elif c != 1:
            lines.append(f"{head} = {rest}, so {variables[k]} = {rest} / {c} = {int(value)}.")
        known[k] = int(value)
    answer = ", ".join(f"{v} = {s}" for v, s in zip(variables, solution))
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + answer + "</answer>"


# ----------------------------------------------------------------------------
# Worked solution, step format: every number is one operation on numbers already written


def _paren(n):
    """A number as an operand: negatives in parentheses."""
    return f"({n})" if n < 0 else str(n)


def _scaled_line(label, multiplier, row, variables):
    """'(1) * (-4): (-4)*(-3)x + (-4)*5y = (-4)*48 -> 12x - 20y = -192'"""
    terms = " + ".join(f"({multiplier})*{_paren(c)}{v}" for c, v in zip(row, variables) if c)
    scaled = [multiplier * x for x in row]
    return (f"({label}) * ({multiplier}): {terms} = ({multiplier})*{_paren(row[-1])} -> "
            f"{format_equation(scaled[:-1], scaled[-1], variables)}"), scaled


def worked_solution_steps(matrix, constants, variables, solution):
    """Elimination written so that a reader (or traces.check_trace) can verify each line by itself: each scaled
    equation term by term, then the difference term by term, then the division, results before reductions."""
    n = len(variables)
    rows = {i: list(coefs) + [const] for i, (coefs, const) in enumerate(zip(matrix, constants), 1)}
    lines = [f"({i}) {format_equation(row[:-1], row[-1], variables)}" for i, row in rows.items()]
    active, pivots, next_label = list(rows), [], n + 1
    for k in range(n - 1):
        pivot = min((label for label in active if rows[label][k]), key=lambda label: (abs(rows[label][k]), label))
        pivots.append((k, pivot))
        active.remove(pivot)
        for target in [label for label in active if rows[label][k]]:
            p, t = rows[pivot][k], rows[target][k]
            g = gcd(p, t)
            m_pivot, m_target = t // g, p // g  # m_pivot*(pivot) - m_target*(target) cancels variable k
            lines.append(f"Eliminate {variables[k]}: multiply ({pivot}) by {m_pivot} and ({target}) by {m_target}.")
            line, a = _scaled_line(pivot, m_pivot, rows[pivot], variables)
            lines.append(line)
            line, b = _scaled_line(target, m_target, rows[target], variables)
            lines.append(line)
            new = [x - y for x, y in zip(a, b)]
            terms = " + ".join(f"({x} - {_paren(y)}){v}" for x, y, v in zip(a, b, variables) if (x or y) and x != y)
            lines.append(f"({next_label}) = ({pivot}) * ({m_pivot}) - ({target}) * ({m_target}): {terms} = "
                         f"{a[-1]} - {_paren(b[-1])} -> {format_equation(new[:-1], new[-1], variables)}")
            rows[next_label] = new
            active[active.index(target)] = next_label
            next_label += 1
    pivots.append((n - 1, active[0]))
    known = {}
    for k, label in reversed(pivots):  # back-substitution, last variable first
        row = rows[label]
        c, const, v = row[k], row[-1], variables[k]
        head = format_equation([c if j == k else 0 for j in range(n)], 0, variables).split(" = ")[0]
        others = [j for j in range(n) if j != k and row[j]]
        rest = const
        if others:
            values = ", ".join(f"{variables[j]} = {known[j]}" for j in others)
            products = "".join(f" + {_paren(row[j])}*{_paren(known[j])}" for j in others)
            total = sum(row[j] * known[j] for j in others)
            sign = "-" if total < 0 else "+"
            lines.append(f"Substitute {values} into ({label}): {head}{products} = {const} -> "
                         f"{head} {sign} {abs(total)} = {const}")
            rest = const - total
            lines.append(f"{head} = {const} - {_paren(total)} = {rest}")
        value = Fraction(rest, c)
        assert value == solution[k], "worked solution disagrees with the generated solution"
        lines.append(f"{v} = {rest} / {_paren(c)} = {int(value)}")
        known[k] = int(value)
    answer = ", ".join(f"{v} = {s}" for v, s in zip(variables, solution))
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + answer + "</answer>"


SOLUTION_FORMATS = {"steps": worked_solution_steps, "compact": worked_solution}


# ----------------------------------------------------------------------------
# Splits


def make_record(split, index, matrix, constants, solution, variables, key, solution_format="steps"):
    equations = [format_equation(c, b, variables) for c, b in zip(matrix, constants)]
    return {
        "id": f"{split}-{index:04d}",
        "split": split,
        "variables": variables,
        "equations": equations,
        "prompt": linear_prompt(equations, variables),
        "response": SOLUTION_FORMATS[solution_format](matrix, constants, variables, solution),
        "answer": dict(zip(variables, solution)),
        "hash": key_hash(key),  # = utils.content_key(record), which the contamination guard recomputes
    }


def generate(args):
    rng = random.Random(args.seed)
    seen = set()
    ood_vars = args.ood_n_vars or args.n_vars + 1
    ood_coefs = args.ood_coef_range or [2 * args.coef_range[0], 2 * args.coef_range[1]]
    near_coefs = args.near_coef_range or [2 * args.coef_range[0], 2 * args.coef_range[1]]
    far_vars = args.far_n_vars or args.n_vars + 1
    # (split, size, variables, coefficient range, a range of which some coefficient must lie outside)
    plan = [  # test splits first, so resizing train leaves them unchanged
        ("test", args.test, args.n_vars, args.coef_range, None),
        ("test_ood", args.test_ood, ood_vars, ood_coefs, None),
        ("test_near", args.test_near, args.n_vars, near_coefs, args.coef_range),  # one factor: wider coefficients
        ("test_far", args.test_far, far_vars, args.coef_range, None),  # one factor: more variables
        ("val", args.val, args.n_vars, args.coef_range, None),
        ("train", args.train, args.n_vars, args.coef_range, None),
    ]
    records = []
    progress = tqdm(total=sum(p[1] for p in plan), desc="systems", unit=" systems", disable=sum(p[1] for p in plan) < ESTIMATE_FROM)
    for split, size, n_vars, coef_range, outside in plan:
        variables = list(VARIABLE_NAMES[:n_vars])
        made, rejections = 0, 0
        while made < size:
            system = random_system(rng, n_vars, coef_range, args.solution_range, args.nonzero_coefs, outside)
            # distinct up to the variables' names: x and y swapped is the same problem (the eval guard's view)
            key, renamed = (canonical_key(*system[:2]), renamed_key(*system[:2])) if system else (None, None)
            if key is None or renamed in seen:
                rejections += 1
                if rejections > MAX_REJECTIONS:
                    raise UserError(
                        f"cannot make {size} distinct {n_vars}-variable systems for split {split!r} with "
                        f"coefficients in {coef_range} and solutions in {args.solution_range} "
                        f"(found {made}); widen the ranges or ask for fewer items")
                continue
            rejections = 0
            seen.add(renamed)
            records.append(make_record(split, made, *system, variables, key, args.solution_format))
            made += 1
            progress.update()
    progress.close()
    meta = {k: v for k, v in vars(args).items() if k != "out"}
    meta.update(ood_n_vars=ood_vars, ood_coef_range=ood_coefs, near_coef_range=near_coefs, far_n_vars=far_vars,
                counts={split: size for split, size, *_ in plan})
    return {"meta": meta, "records": records}


def estimate(args, total, sample=20):
    """(bytes, seconds) of `total` records, extrapolated from `sample` in-domain ones drawn with another seed."""
    rng, variables = random.Random(args.seed + 1), list(VARIABLE_NAMES[:args.n_vars])
    start, size, made = time.perf_counter(), 0, 0
    for _ in range(MAX_REJECTIONS):
        if made == sample:
            break
        if system := random_system(rng, args.n_vars, args.coef_range, args.solution_range, args.nonzero_coefs):
            record = make_record("train", made, *system, variables, canonical_key(*system[:2]), args.solution_format)
            size, made = size + len(json.dumps(record, indent=1)), made + 1
    seconds = time.perf_counter() - start
    return (size / made * total, seconds / made * total) if made else (0, 0)


def check_size(args):
    """Refuse more than MAX_RECORDS; from ESTIMATE_FROM on, say how big and how long first."""
    total = sum(getattr(args, s) for s in ("train", "val", "test", "test_ood", "test_near", "test_far"))
    if total < ESTIMATE_FROM:
        return
    size, seconds = estimate(args, total)
    what = f"{total:,} records: about {size / 1e9:.2f} GB of JSON and {seconds / 60:.1f} min (more with --test-ood/--test-far)"
    if total > MAX_RECORDS:
        raise UserError(f"{what}, built in memory; at most {MAX_RECORDS:,} records are supported: ask for fewer")
    print(what)


def apply_preset(args):
    """Fill the range flags left unset from --preset (explicit flags win)."""
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def check_args(args):
    apply_preset(args)
    for name in ("n_vars", "ood_n_vars", "far_n_vars"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    most = len(VARIABLE_NAMES)
    for name, split in (("n_vars", None), ("ood_n_vars", "test_ood"), ("far_n_vars", "test_far")):
        n, flag = getattr(args, name) or args.n_vars + 1, "--" + name.replace("_", "-")
        if n <= most or (split and not getattr(args, split)):  # an empty split needs no variables
            continue
        if getattr(args, name) is None:  # the default, one more than --n-vars
            raise UserError(f"--n-vars {args.n_vars}: {split} has --n-vars + 1 = {n} variables by default, and at most "
                            f"{most} are supported; pass {flag} {most} or less, or --{split.replace('_', '-')} 0")
        raise UserError(f"{flag} {n}: at most {most} variables are supported")
    near = args.near_coef_range or [2 * args.coef_range[0], 2 * args.coef_range[1]]
    if args.test_near and near[0] >= args.coef_range[0] and near[1] <= args.coef_range[1]:
        raise UserError(f"--near-coef-range {near} lies inside --coef-range {args.coef_range}: test_near needs "
                        "coefficients outside the training range")
    for name in ("coef_range", "solution_range", "ood_coef_range", "near_coef_range"):
        lo_hi = getattr(args, name)
        if lo_hi is not None and lo_hi[0] > lo_hi[1]:
            raise UserError(f"--{name.replace('_', '-')} is empty: {lo_hi[0]} > {lo_hi[1]}")
    for name in ("coef_range", "ood_coef_range"):
        lo_hi = getattr(args, name)
        if lo_hi is not None and lo_hi[0] == lo_hi[1] == 0:
            raise UserError(f"--{name.replace('_', '-')} holds only 0: no equation could have a term")
    for name in ("train", "val", "test", "test_ood", "test_near", "test_far"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")


def parse_args(argv=None):
    p = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                                formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="difficulty: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()) + " (flags override it)")
    p.add_argument("--n-vars", type=int, default=2, help="variables (and equations) per system")
    p.add_argument("--coef-range", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                   help="coefficients are drawn uniformly from [LO, HI] (default: the preset's)")
    p.add_argument("--solution-range", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                   help="each variable's solution is drawn uniformly from [LO, HI] (default: the preset's)")
    p.add_argument("--nonzero-coefs", action=argparse.BooleanOptionalAction, default=None,
                   help="every coefficient non-zero (default: the preset's)")
    p.add_argument("--solution-format", choices=sorted(SOLUTION_FORMATS), default="steps",
                   help="steps: every line one checkable operation (traces.check_trace); compact: one line per "
                        "elimination (the earlier format, for the ablation)")
    p.add_argument("--train", type=int, default=512, help="train items (SFT and GRPO train on these only)")
    p.add_argument("--val", type=int, default=64, help="validation items (eval loss / val accuracy during training)")
    p.add_argument("--test", type=int, default=100, help="in-domain test items")
    p.add_argument("--test-ood", type=int, default=100, help="out-of-distribution test items")
    p.add_argument("--ood-n-vars", type=int, default=None, help="variables in test_ood (default: --n-vars + 1)")
    p.add_argument("--ood-coef-range", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                   help="coefficient range of test_ood (default: --coef-range doubled)")
    p.add_argument("--test-near", type=int, default=0,
                   help="OOD items that change one factor, the coefficients: drawn from --near-coef-range with at "
                        "least one outside --coef-range; same number of variables")
    p.add_argument("--near-coef-range", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                   help="coefficient range of test_near (default: --coef-range doubled)")
    p.add_argument("--test-far", type=int, default=0,
                   help="OOD items that change one factor, the size: --far-n-vars variables, the in-domain ranges")
    p.add_argument("--far-n-vars", type=int, default=None, help="variables in test_far (default: --n-vars + 1)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    p.add_argument("--out", default="data.json", help="output file")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    if os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is a directory; give a file path such as {args.out}/data.json")
    check_size(args)
    data = generate(args)
    atomic_write_json(args.out, data)
    counts = ", ".join(f"{k} {v}" for k, v in data["meta"]["counts"].items())
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    cli(lambda: main(sys.argv[1:]))
