"""Pure string primitives that task functions are composed from.

Contract: every function here is deterministic and depends only on its arguments, so a task's
output is a function of its input string (exact match is meaningful). Arithmetic uses integers
or ``Decimal`` — never floats — so results never depend on binary rounding.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

CELL_SEP = " | "  # how a spreadsheet row with several cells is written as one input

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTH_INDEX = {m.lower(): i + 1 for i, m in enumerate(MONTHS)} | {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}

# yes/no label pairs people use in spreadsheets (IF(...,"Yes","No"), TRUE/FALSE, 1/0).
YES_NO = (("Yes", "No"), ("TRUE", "FALSE"), ("Y", "N"), ("1", "0"), ("yes", "no"), ("OK", "-"))


# ---------------------------------------------------------------- case and words
def apply_case(s: str, mode: str) -> str:
    """mode: keep | upper | lower | title | sentence (first letter up, rest down)."""
    if mode == "upper":
        return s.upper()
    if mode == "lower":
        return s.lower()
    if mode == "title":
        return " ".join(w[:1].upper() + w[1:].lower() for w in s.split(" "))
    if mode == "sentence":
        return s[:1].upper() + s[1:].lower()
    return s


def initial(word: str, dot: str = ".") -> str:
    return word[:1].upper() + dot


def cells(s: str) -> list[str]:
    return s.split(CELL_SEP)


def split_name(s: str) -> tuple[str, list[str], str]:
    """'First [Middle ...] Last' -> (first, middles, last); tokens are space-separated."""
    t = s.split()
    return t[0], t[1:-1], t[-1]


def acronym(s: str, skip_small: bool = False, dot: str = "") -> str:
    """First letter of each word (hyphens split words), upper-cased."""
    small = {"of", "and", "the", "for", "a", "an"}
    ws = [w for w in re.split(r"[\s-]+", s) if w and not (skip_small and w.lower() in small)]
    return "".join(w[0].upper() + dot for w in ws)


def collapse_ws(s: str) -> str:
    return " ".join(s.split())


def slugify(s: str, sep: str = "-") -> str:
    return sep.join(re.findall(r"[a-z0-9]+", s.lower()))


def pad_left(s: str, width: int, ch: str = "0") -> str:
    return s.rjust(width, ch)


def mask_keep_last(s: str, keep: int, ch: str = "*") -> str:
    """Replace every digit/letter except the last ``keep`` ones; punctuation is preserved."""
    idx = [i for i, c in enumerate(s) if c.isalnum()]
    hide = set(idx[: max(0, len(idx) - keep)])
    return "".join(ch if i in hide else c for i, c in enumerate(s))


def digits_only(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def letters_only(s: str) -> str:
    return "".join(c for c in s if c.isalpha())


# ---------------------------------------------------------------- dates and times
_TOKEN_RE = re.compile(r"YYYY|YY|MMMM|MMM|MM|M|DD|D")
_TOKEN_RX = {
    "YYYY": r"(?P<Y>\d{4})",
    "YY": r"(?P<y>\d{2})",
    "MMMM": r"(?P<B>[A-Za-z]+)",
    "MMM": r"(?P<b>[A-Za-z]{3})",
    "MM": r"(?P<m>\d{2})",
    "M": r"(?P<m>\d{1,2})",
    "DD": r"(?P<d>\d{2})",
    "D": r"(?P<d>\d{1,2})",
}


def format_date(y: int, m: int, d: int, pattern: str) -> str:
    """Tokens: YYYY YY MMMM (March) MMM (Mar) MM M DD D; everything else is literal."""
    vals = {
        "YYYY": f"{y:04d}",
        "YY": f"{y % 100:02d}",
        "MMMM": MONTHS[m - 1],
        "MMM": MONTHS[m - 1][:3],
        "MM": f"{m:02d}",
        "M": str(m),
        "DD": f"{d:02d}",
        "D": str(d),
    }
    return _TOKEN_RE.sub(lambda t: vals[t.group(0)], pattern)


@lru_cache(maxsize=None)
def _date_regex(pattern: str) -> re.Pattern:
    out, pos = [], 0
    for t in _TOKEN_RE.finditer(pattern):
        out.append(re.escape(pattern[pos : t.start()]) + _TOKEN_RX[t.group(0)])
        pos = t.end()
    return re.compile("^" + "".join(out) + re.escape(pattern[pos:]) + "$")


def parse_date(s: str, pattern: str) -> tuple[int, int, int]:
    """Inverse of ``format_date`` (YY is read as 20YY)."""
    g = _date_regex(pattern).match(s).groupdict()
    y = int(g["Y"]) if g.get("Y") else 2000 + int(g["y"])
    m = int(g["m"]) if g.get("m") else MONTH_INDEX[(g.get("B") or g.get("b")).lower()]
    return y, m, int(g["d"])


def format_time12(h: int, m: int, am: str = "AM", pm: str = "PM") -> str:
    return f"{(h % 12) or 12}:{m:02d} {pm if h >= 12 else am}"


def parse_time(s: str) -> tuple[int, int]:
    """'14:05', '2:05 PM', '2:05 p.m.', '2:05pm' -> (14, 5)."""
    mt = re.match(r"^(\d{1,2}):(\d{2})\s*([AaPp])?", s)
    h, m = int(mt.group(1)), int(mt.group(2))
    if mt.group(3):
        h = h % 12 + (12 if mt.group(3).lower() == "p" else 0)
    return h, m


# ---------------------------------------------------------------- numbers and money
def group_thousands(n: int, sep: str = ",") -> str:
    s = f"{abs(n):,}".replace(",", sep)
    return ("-" if n < 0 else "") + s


def parse_decimal(s: str, dec: str = ".") -> Decimal:
    """Read the number in '$1,234.50' (dec='.') or '1.234,50 EUR' (dec=','): every character
    other than digits, '-' and the decimal separator is dropped (thousands separators, symbols)."""
    t = "".join(c for c in s if c.isdigit() or c == "-" or c == dec)
    return Decimal(t.replace(dec, "."))


def fmt_decimal(x: Decimal, places: int | None = None) -> str:
    """Fixed-point text; ``places`` rounds half-up, None strips trailing zeros ('2.50' -> '2.5')."""
    if places is not None:
        return f"{x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    s = f"{x:f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def fmt_money(cents: int, thou: str = ",", dec: str = ".") -> str:
    """1234550 -> '12,345.50' with the given separators."""
    return f"{group_thousands(cents // 100, thou)}{dec}{cents % 100:02d}"


def to_cents(x: Decimal) -> int:
    return int((x * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------- units
# (from, to, factor): value_in_to = value_in_from * factor. Metric and time only, so every
# factor is exact in decimal and the task is unambiguous.
UNIT_CONVERSIONS = (
    ("kg", "g", Decimal(1000)),
    ("g", "kg", Decimal("0.001")),
    ("km", "m", Decimal(1000)),
    ("m", "cm", Decimal(100)),
    ("cm", "mm", Decimal(10)),
    ("mm", "cm", Decimal("0.1")),
    ("L", "ml", Decimal(1000)),
    ("ml", "L", Decimal("0.001")),
    ("h", "min", Decimal(60)),
    ("min", "s", Decimal(60)),
    ("m", "km", Decimal("0.001")),
    ("t", "kg", Decimal(1000)),
    ("GB", "MB", Decimal(1000)),
    ("MB", "GB", Decimal("0.001")),
    ("cm", "m", Decimal("0.01")),
)
UNITS = ("kg", "g", "km", "m", "cm", "mm", "L", "ml", "h", "min", "s", "lb", "oz", "GB", "MB", "pcs")
