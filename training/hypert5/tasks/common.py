"""Input-side helpers shared by the family modules: value renderers, row schemas, balancing.

These produce *inputs* only; outputs always come from a task's pure ``fn``.
"""

from __future__ import annotations

import random
from typing import Callable

from . import primitives as P
from . import values as V

PHONE_FORMATS = (
    "({a}) {e}-{n}",
    "{a}-{e}-{n}",
    "{a}.{e}.{n}",
    "{a}{e}{n}",
    "+1 {a} {e} {n}",
    "+1-{a}-{e}-{n}",
    "{a} {e} {n}",
)


def render_phone(digits: str, fmt: str) -> str:
    return fmt.format(a=digits[:3], e=digits[3:6], n=digits[6:])


def phone(rng: random.Random, fmt: str | None = None) -> str:
    """A US phone number in ``fmt`` (one of PHONE_FORMATS) or a random one."""
    return render_phone(V.phone_digits(rng), fmt or rng.choice(PHONE_FORMATS))


def full_name(rng: random.Random) -> str:
    f, _, surname = V.person(rng)
    return f"{f} {surname}"


def iso_date(rng: random.Random) -> str:
    return P.format_date(*V.date(rng), "YYYY-MM-DD")


def price_usd(rng: random.Random) -> str:
    return "$" + P.fmt_money(V.amount_cents(rng, 100000))


# Cell kinds for spreadsheet rows; each renders one short cell (never containing " | ").
CELL_KINDS: dict[str, Callable[[random.Random], str]] = {
    "first": V.first_name,
    "last": V.last_name,
    "name": full_name,
    "email": V.email,
    "city": V.city,
    "country": V.country,
    "date": iso_date,
    "phone": lambda r: phone(r, "{a}-{e}-{n}"),
    "price": price_usd,
    "qty": lambda r: str(r.randint(1, 250)),
    "product": V.product,
    "code": lambda r: V.product_code(r, "LLL-DDDD"),
    "color": V.color,
    "state": lambda r: V.us_state(r)[1],
    "company": V.company,
}


def row_schema(rng: random.Random, n: int) -> tuple[str, ...]:
    """n distinct cell kinds; wide (4-cell) rows avoid the longest kinds to fit 80 bytes."""
    kinds = list(CELL_KINDS)
    if n >= 4:
        kinds = [k for k in kinds if k not in ("email", "company", "product", "name")]
    return tuple(rng.sample(kinds, n))


def row(rng: random.Random, schema: tuple[str, ...]) -> str:
    return P.CELL_SEP.join(CELL_KINDS[k](rng) for k in schema)


def balanced(pred: Callable[[str], bool], propose: Callable[[random.Random, bool], str]):
    """Generator yielding inputs for which ``pred`` is True about half of the time.

    ``propose(rng, want)`` tries to make an input with pred == want; we retry a few times, and the
    label always comes from ``pred`` (the task fn), never from ``want``, so labels stay exact.
    """

    def gen(rng: random.Random) -> str:
        want = rng.random() < 0.5
        x = propose(rng, want)
        for _ in range(20):
            if pred(x) == want:
                break
            x = propose(rng, want)
        return x

    return gen
