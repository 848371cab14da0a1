"""Training families about numbers, money, units and product codes.

All arithmetic goes through ``Decimal``/ints (see primitives) so outputs are exact strings.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from . import common as C
from . import primitives as P
from . import values as V
from .registry import family


def train(name, recipe, balanced=False):
    return family("train", name, recipe, balanced)


# Money layouts: (name, decimal separator, renderer from cents).
MONEY_STYLES = {
    "usd": (".", lambda c: "$" + P.fmt_money(c)),
    "eur_suffix": (",", lambda c: P.fmt_money(c, ".", ",") + " €"),
    "eur_prefix": (",", lambda c: "€" + P.fmt_money(c, ".", ",")),
    "usd_code": (".", lambda c: "USD " + P.fmt_money(c)),
    "gbp": (".", lambda c: "£" + P.fmt_money(c)),
    "chf": (".", lambda c: "CHF " + P.fmt_money(c, "'", ".")),
    "code_suffix": (".", lambda c: P.fmt_money(c) + " USD"),
}


def _plain_amount(cents: int) -> str:
    """Cents as a bare number the way people type it: '1234.5', '1234', '0.05'."""
    return P.fmt_decimal(Decimal(cents) / 100)


@train("price_to_number", ("money", "parse", "reformat"))
def _(p):
    """'$1,234.50' / '1.234,50 €' -> '1234.50' (or trimmed '1234.5', or whole units '1234')."""
    style = p.pick("style", tuple(MONEY_STYLES))
    out = p.pick("out", ("2dp", "trim", "units"))
    dec, render = MONEY_STYLES[style]

    def fn(s):
        x = P.parse_decimal(s, dec)
        if out == "units":
            return str(int(x))
        return P.fmt_decimal(x, 2 if out == "2dp" else None)

    return (lambda rng: render(V.amount_cents(rng))), fn


@train("currency_format", ("number", "parse", "group_thousands", "insert_const"))
def _(p):
    """Bare amount '1234.5' -> '$1,234.50' / '1.234,50 €' / 'CHF 1'234.50' ..."""
    style = p.pick("style", tuple(MONEY_STYLES))
    render = MONEY_STYLES[style][1]
    return (lambda rng: _plain_amount(V.amount_cents(rng))), (lambda s: render(P.to_cents(Decimal(s))))


@train("number_thousands", ("int", "group_thousands"))
def _(p):
    """'1234567' <-> '1,234,567' (separator , . space or ')."""
    sep = p.pick("sep", (",", ".", " ", "'"))
    direction = p.pick("direction", ("add", "remove"))

    def gen(rng):
        n = rng.randint(0, 10 ** rng.randint(3, 9))
        return str(n) if direction == "add" else P.group_thousands(n, sep)

    def fn(s):
        return P.group_thousands(int(s), sep) if direction == "add" else s.replace(sep, "")

    return gen, fn


@train("number_round", ("decimal", "round"))
def _(p):
    """'3.14159' -> rounded (half up) or truncated to 0-2 decimals."""
    places = p.pick("places", (0, 1, 2))
    mode = p.pick("mode", ("round", "round", "truncate"))

    def gen(rng):
        return V.decimal_str(rng, rng.choice((9, 99, 9999)), rng.randint(places + 1, 4))

    def fn(s):
        x = Decimal(s)
        if mode == "truncate":
            return f"{x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):f}"
        return P.fmt_decimal(x, places)

    return gen, fn


@train("percent_convert", ("decimal", "arithmetic", "insert_const"))
def _(p):
    """'0.125' -> '12.5%' or '12.5%' -> '0.125'."""
    direction = p.pick("direction", ("to_percent", "from_percent"))
    space = p.pick("space", ("", " "))

    def gen(rng):
        x = Decimal(rng.randint(0, 15000)) / 10000
        return P.fmt_decimal(x) if direction == "to_percent" else P.fmt_decimal(x * 100) + space + "%"

    def fn(s):
        if direction == "to_percent":
            return P.fmt_decimal(Decimal(s) * 100) + space + "%"
        return P.fmt_decimal(Decimal(s.rstrip("% ")) / 100)

    return gen, fn


@train("number_arith_const", ("int", "arithmetic_const"))
def _(p):
    """n -> n + c, n - c or n * c for a constant c fixed by the task."""
    op = p.pick("op", ("+", "-", "*"))
    c = p.randint("c", 2, 12) if op == "*" else p.randint("c", 1, 100)

    def fn(s):
        n = int(s)
        return str(n + c if op == "+" else n - c if op == "-" else n * c)

    return (lambda rng: str(rng.randint(0, rng.choice((99, 999, 9999))))), fn


@train("cells_arith", ("cells_numbers", "arithmetic"))
def _(p):
    """'a | b' -> a+b, a-b, a*b; or 'qty | price' -> line total with 2 decimals."""
    op = p.pick("op", ("sum", "difference", "product", "line_total"))

    def gen(rng):
        if op == "line_total":
            return f"{rng.randint(1, 40)} | {_plain_amount(rng.randint(1, 20000))}"
        return f"{rng.randint(0, 999)} | {rng.randint(0, 99 if op == 'product' else 999)}"

    def fn(s):
        a, b = P.cells(s)
        if op == "line_total":
            return P.fmt_decimal(int(a) * Decimal(b), 2)
        a, b = int(a), int(b)
        return str(a + b if op == "sum" else a - b if op == "difference" else a * b)

    return gen, fn


@train("cells_aggregate", ("cells_numbers", "aggregate"))
def _(p):
    """'3 | 5 | 7' -> sum / max / min over 2-5 cells."""
    agg = p.pick("agg", ("sum", "max", "min"))

    def gen(rng):
        return P.CELL_SEP.join(str(rng.randint(0, 999)) for _ in range(rng.randint(2, 5)))

    def fn(s):
        xs = [int(x) for x in P.cells(s)]
        return str({"sum": sum, "max": max, "min": min}[agg](xs))

    return gen, fn


@train("unit_convert", ("quantity", "parse", "arithmetic_const", "insert_const"))
def _(p):
    """'2.5 kg' -> '2500 g' (or just '2500'); metric and time units only, so factors are exact."""
    conv = {f"{a}->{b}": (a, b, f) for a, b, f in P.UNIT_CONVERSIONS}
    src, dst, factor = conv[p.pick("conversion", tuple(conv))]
    space = p.pick("space", (" ", ""))
    show_unit = p.pick("show_unit", (True, False))

    def gen(rng):
        return V.decimal_str(rng, rng.choice((9, 99, 999)), rng.choice((0, 1, 1, 2))) + space + src

    def fn(s):
        x = Decimal(s[: len(s) - len(src)].strip()) * factor
        return P.fmt_decimal(x) + (space + dst if show_unit else "")

    return gen, fn


@train("number_unit_split", ("quantity", "split", "extract"))
def _(p):
    """'12.5kg' -> '12.5', 'kg', or two cells '12.5 | kg'."""
    part = p.pick("part", ("number", "unit", "cells"))
    space = p.pick("space", ("", " "))

    def gen(rng):
        return P.fmt_decimal(Decimal(V.decimal_str(rng, 999, rng.choice((0, 1, 2))))) + space + rng.choice(P.UNITS)

    def fn(s):
        m = re.match(r"^([\d.]+)\s*(\S+)$", s)
        return {"number": m.group(1), "unit": m.group(2), "cells": f"{m.group(1)} | {m.group(2)}"}[part]

    return gen, fn


@train("pad_number", ("int", "pad", "insert_const"))
def _(p):
    """'42' -> '00042' / 'INV-00042' (zero-pad to a width, optional constant prefix)."""
    width = p.randint("width", 3, 8)
    prefix = p.pick("prefix", ("", "", "INV-", "#", "ID", "No. ", "PO-"))

    def gen(rng):
        return str(rng.randint(0, 10 ** rng.randint(1, width) - 1))

    return gen, (lambda s: prefix + P.pad_left(s, width))


@train("number_threshold", ("int", "compare_const", "label"), balanced=True)
def _(p):
    """n -> 'High'/'Low' (or Pass/Fail, ...) depending on n >= a constant threshold."""
    t = p.pick("threshold", (10, 18, 50, 60, 100, 250, 500, 1000))
    yes, no = p.pick("labels", (("High", "Low"), ("Pass", "Fail"), ("Over", "Under")) + P.YES_NO[:3])

    def fn(s):
        return yes if int(s) >= t else no

    gen = C.balanced(
        lambda s: int(s) >= t, lambda rng, want: str(rng.randint(t, 2 * t) if want else rng.randint(0, t - 1))
    )
    return gen, fn


@train("cells_compare", ("cells_numbers", "compare", "label"), balanced=True)
def _(p):
    """'a | b' -> Yes/No for a > b, a < b or a = b."""
    rel = p.pick("relation", (">", "<", "="))
    yes, no = p.pick("labels", P.YES_NO)
    test = {">": lambda a, b: a > b, "<": lambda a, b: a < b, "=": lambda a, b: a == b}[rel]

    def pred(s):
        a, b = (int(x) for x in P.cells(s))
        return test(a, b)

    def propose(rng, want):
        a = rng.randint(0, 500)
        b = a if (rel == "=" and want) else rng.randint(0, 500)
        return f"{a} | {b}"

    return C.balanced(pred, propose), (lambda s: yes if pred(s) else no)


# ---------------------------------------------------------------- product codes
@train("code_segment", ("code", "split", "extract"))
def _(p):
    """'ABC-1234-XY' -> one segment (first, second or last) by separator."""
    pattern = p.pick("pattern", V.CODE_PATTERNS)
    sep = p.pick("sep", ("-", "_", "/", "."))
    idx = p.pick("index", (0, 1, -1))
    pat = pattern.replace("-", sep)
    return (lambda rng: V.product_code(rng, pat)), (lambda s: s.split(sep)[idx])


# Alternate letter/digit groups, so the canonical grouping can be recovered from a bare code.
_ALTERNATING = ("LLL-DDDD", "LL-DDD-L", "DDDD-LL", "L-DDDDD-LL", "LL-DDDD-LL", "LLLL-DDD", "DD-LLL-DD")


@train("code_normalize", ("code", "split_classes", "case", "join"))
def _(p):
    """'abc1234xy' / 'ABC 1234 XY' -> 'ABC-1234-XY' (split at letter/digit boundaries)."""
    pattern = p.pick("pattern", _ALTERNATING)
    sep, case = p.pick("sep", ("-", "_", " ", "/", "")), p.pick("case", ("upper", "lower"))

    def gen(rng):
        code = V.product_code(rng, pattern)
        r = rng.random()
        code = code.replace("-", "" if r < 0.5 else " ")
        return code.lower() if rng.random() < 0.5 else code

    def fn(s):
        return P.apply_case(sep.join(re.findall(r"[A-Za-z]+|\d+", s)), case)

    return gen, fn


@train("code_affix", ("code", "insert_const"))
def _(p):
    """Add a constant prefix and/or suffix to a code: 'ABC-123' -> 'SKU-ABC-123-EU'."""
    pattern = p.pick("pattern", V.CODE_PATTERNS)
    prefix = p.pick("prefix", ("", "SKU-", "PRD-", "#", "X", "EU-", "P/"))
    suffix = p.pick("suffix", ("", "-EU", "/01", "-2024", ".v2", " (new)") if prefix else ("-EU", "/01", "-B"))
    return (lambda rng: V.product_code(rng, pattern)), (lambda s: f"{prefix}{s}{suffix}")


@train("code_filter", ("code", "filter_chars"))
def _(p):
    """Keep only the digits, or only the letters, of a code."""
    pattern = p.pick("pattern", V.CODE_PATTERNS)
    keep = p.pick("keep", ("digits", "letters"))
    fn = P.digits_only if keep == "digits" else P.letters_only
    return (lambda rng: V.product_code(rng, pattern)), fn
