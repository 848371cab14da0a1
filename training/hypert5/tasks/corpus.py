"""Domain text for pretraining the frozen T5 with span corruption.

``sample_corpus_text(rng)`` returns one line of 20-200 characters (and <= 200 UTF-8 bytes):
labelled records, ' | '-joined spreadsheet rows, short sentences mentioning such values, or
input -> output pairs rendered as text. Pairs come from TRAINING families only, so pretraining
never sees a held-out composition.
"""

from __future__ import annotations

import random
import re

from . import common as C
from . import primitives as P
from . import values as V
from .episodes import get_family, list_families, sample_pairs

MIN_CHARS, MAX_CHARS = 20, 200

# Label used for each row cell kind when rendering a record line ("Email: ...").
_LABELS = {
    "first": "First name",
    "last": "Last name",
    "name": "Name",
    "email": "Email",
    "city": "City",
    "country": "Country",
    "date": "Date",
    "phone": "Phone",
    "price": "Price",
    "qty": "Qty",
    "product": "Product",
    "code": "SKU",
    "color": "Color",
    "state": "State",
    "company": "Company",
}

_FILL = {
    "name": C.full_name,
    "first": V.first_name,
    "email": V.email,
    "phone": lambda r: C.phone(r),
    "date": C.iso_date,
    "date_long": lambda r: P.format_date(*V.date(r), r.choice(("MMMM D, YYYY", "D MMM YYYY"))),
    "date_us": lambda r: P.format_date(*V.date(r), "MM/DD/YYYY"),
    "time": lambda r: "{:02d}:{:02d}".format(*V.time(r)),
    "time12": lambda r: P.format_time12(*V.time(r)),
    "product": V.product,
    "qty": lambda r: str(r.randint(1, 50)),
    "price": C.price_usd,
    "company": V.company,
    "job": V.job,
    "city": V.city,
    "street": V.street_address,
    "st": lambda r: V.us_state(r)[1],
    "zip": V.zip_code,
    "url": V.url,
    "path": V.file_path,
    "code": lambda r: V.product_code(r, r.choice(V.CODE_PATTERNS)),
    "inv": lambda r: str(r.randint(1000, 99999)),
    "n": lambda r: str(r.randint(2, 99)),
    "pct": lambda r: str(r.choice((5, 7, 8, 10, 19, 20, 21))),
    "q": lambda r: str(r.randint(1, 4)),
    "year": lambda r: str(r.randint(1990, 2030)),
    "unit": lambda r: f"{V.decimal_str(r, 99, 1)} {r.choice(('kg', 'g', 'lb', 'L', 'ml', 'km', 'cm'))}",
    "sentence": V.sentence,
    "phrase": V.phrase,
    "country": V.country,
    "color": V.color,
}

_TEMPLATES = (
    "{name} ordered {qty} x {product} for {price} on {date}.",
    "Please call {name} at {phone} before {time12}.",
    "Invoice {inv} from {company} is due on {date_long}.",
    "Ship to: {street}, {city}, {st} {zip}",
    "Meeting with {name} ({email}) moved to {date_us} at {time}.",
    "The file {path} was last modified on {date}.",
    "{company} reported revenue of {price} in Q{q} {year}.",
    "Package weighs {unit}; box is {n} x {n} x {n} cm.",
    "Visit {url} for details.",
    "SKU {code} ({color} {product}) is out of stock in {city}.",
    "Contact: {name}, {job}, {company}",
    "{name} <{email}> wrote: {sentence}",
    "Total: {price} incl. {pct}% VAT",
    "{first} moved from {city} to {country} in {year}.",
    "Order #{inv}: {qty} units of {code}, delivered {date_long}.",
    "Our mission: {phrase}.",
)

_PAIR_FORMATS = ("{x} -> {y}", "{x} => {y}", "in: {x} out: {y}", "input: {x} output: {y}", "{x}: {y}")


def _fill(rng: random.Random, tpl: str) -> str:
    # Fields are filled in order of appearance (dict.fromkeys, not a set) so rng use is stable.
    vals = {f: _FILL[f](rng) for f in dict.fromkeys(re.findall(r"{(\w+)}", tpl))}
    return tpl.format(**vals)


def _record(rng: random.Random) -> str:
    kinds = rng.sample(list(_LABELS), rng.randint(1, 4))
    sep = rng.choice((", ", "; ", " / "))
    return sep.join(f"{_LABELS[k]}: {C.CELL_KINDS[k](rng)}" for k in kinds)


def _row(rng: random.Random) -> str:
    n = rng.randint(2, 5)
    line = C.row(rng, C.row_schema(rng, min(n, 4)))
    if n == 5:
        line += P.CELL_SEP + C.CELL_KINDS["qty"](rng)
    return line


def _pairs(rng: random.Random) -> str:
    task = get_family(rng.choice(list_families("train"))).make(rng)
    pairs = sample_pairs(rng, task, rng.randint(1, 3)) or []
    fmt = rng.choice(_PAIR_FORMATS)
    return "; ".join(fmt.format(x=x, y=y) for x, y in pairs)


def sample_corpus_text(rng: random.Random) -> str:
    """One realistic line of the domain, MIN_CHARS..MAX_CHARS characters (<= MAX_CHARS bytes)."""
    while True:
        r = rng.random()
        if r < 0.2:
            s = _record(rng)
        elif r < 0.4:
            s = _row(rng)
        elif r < 0.65:
            s = _fill(rng, rng.choice(_TEMPLATES))
        else:
            s = _pairs(rng)
        if len(s) >= MIN_CHARS and len(s.encode()) <= MAX_CHARS:
            return s
