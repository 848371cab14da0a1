"""Training families about dates, times and durations.

Date inputs are rendered from a pattern (see ``primitives.format_date``) fixed per task, and the
task fn parses with that same pattern: so e.g. 03/07 is unambiguous within a task.
"""

from __future__ import annotations

from . import primitives as P
from . import values as V
from .registry import family


def train(name, recipe, balanced=False):
    return family("train", name, recipe, balanced)


def _date_gen(pattern: str):
    return lambda rng: P.format_date(*V.date(rng), pattern)


NUMERIC_IN = ("YYYY-MM-DD", "MM/DD/YYYY", "DD.MM.YYYY", "DD/MM/YYYY", "YYYY/MM/DD")


@train("date_iso_to_dmy", ("date", "parse", "reorder", "join"))
def _(p):
    """ISO '2024-03-07' -> day/month/year '07/03/2024' (separator and zero padding vary)."""
    sep, pad = p.pick("sep", ("/", ".", "-")), p.pick("pad", (True, False))
    out = f"DD{sep}MM{sep}YYYY" if pad else f"D{sep}M{sep}YYYY"

    def fn(s):
        return P.format_date(*P.parse_date(s, "YYYY-MM-DD"), out)

    return _date_gen("YYYY-MM-DD"), fn


# Output layouts; deliberately no digits-only (YYYYMMDD) and no upper-case month layouts: those
# compositions are held out for validation.
_OUT_LAYOUTS = (
    "MMMM D, YYYY",
    "D MMM YYYY",
    "MMM D, YYYY",
    "DD-MMM-YYYY",
    "YYYY/MM/DD",
    "D MMMM YYYY",
    "MM/DD/YY",
    "YYYY-MM-DD",
    "MM/DD/YYYY",
    "D.M.YYYY",
)


@train("date_reformat", ("date", "parse", "reformat"))
def _(p):
    """Date from one layout to another, e.g. '03/07/2024' -> 'March 7, 2024'."""
    fin = p.pick("in_layout", NUMERIC_IN + ("D MMMM YYYY", "MMM D, YYYY", "YYYYMMDD"))
    fout = p.pick("out_layout", tuple(x for x in _OUT_LAYOUTS if x != fin))

    def fn(s):
        return P.format_date(*P.parse_date(s, fin), fout)

    return _date_gen(fin), fn


@train("date_part", ("date", "parse", "extract"))
def _(p):
    """Year, month (number or name), day or two-digit year of a date."""
    fin = p.pick("in_layout", NUMERIC_IN + ("D MMMM YYYY",))
    part = p.pick("part", ("year", "month", "month_name", "month_abbr", "day", "yy"))
    tok = {"year": "YYYY", "month": "M", "month_name": "MMMM", "month_abbr": "MMM", "day": "D", "yy": "YY"}[part]

    def fn(s):
        return P.format_date(*P.parse_date(s, fin), tok)

    return _date_gen(fin), fn


@train("date_quarter", ("date", "parse", "arithmetic", "insert_const"))
def _(p):
    """Fiscal quarter of a date: 'Q1', 'Q1 2024', '2024-Q1' or '1'."""
    fin = p.pick("in_layout", ("YYYY-MM-DD", "MM/DD/YYYY", "D MMMM YYYY"))
    tpl = p.pick("template", ("Q{q}", "Q{q} {y}", "{y}-Q{q}", "{q}"))

    def fn(s):
        y, m, _ = P.parse_date(s, fin)
        return tpl.format(q=(m - 1) // 3 + 1, y=y)

    return _date_gen(fin), fn


@train("time_24_to_12", ("time", "parse", "reformat"))
def _(p):
    """'14:05' -> '2:05 PM' (AM/PM label style varies)."""
    am, pm = p.pick("labels", (("AM", "PM"), ("am", "pm"), ("a.m.", "p.m.")))

    def gen(rng):
        h, m = V.time(rng)
        return f"{h:02d}:{m:02d}"

    def fn(s):
        return P.format_time12(*P.parse_time(s), am, pm)

    return gen, fn


@train("time_12_to_24", ("time12", "parse", "reformat"))
def _(p):
    """'2:05 PM' -> '14:05' / '1405' / '14:05:00' / '14h05'."""
    am, pm = p.pick("labels", (("AM", "PM"), ("am", "pm"), ("a.m.", "p.m.")))
    out = p.pick("out", ("{h:02d}:{m:02d}", "{h:02d}{m:02d}", "{h:02d}:{m:02d}:00", "{h}h{m:02d}"))

    def gen(rng):
        return P.format_time12(*V.time(rng), am, pm)

    def fn(s):
        h, m = P.parse_time(s)
        return out.format(h=h, m=m)

    return gen, fn


@train("duration_convert", ("duration", "parse", "arithmetic", "reformat"))
def _(p):
    """'1:30' / '1h 30m' -> '90' (minutes), or minutes '90' -> '1:30' / '1h 30m'."""
    direction = p.pick("direction", ("to_minutes", "from_minutes"))
    layout = p.pick("layout", ("{h}:{m:02d}", "{h}h {m}m", "{h} hr {m} min"))

    def gen(rng):
        mins = rng.randint(1, 600)
        return str(mins) if direction == "from_minutes" else layout.format(h=mins // 60, m=mins % 60)

    def fn(s):
        if direction == "from_minutes":
            n = int(s)
            return layout.format(h=n // 60, m=n % 60)
        h, m = (int(x) for x in "".join(c if c.isdigit() else " " for c in s).split())
        return str(h * 60 + m)

    return gen, fn
