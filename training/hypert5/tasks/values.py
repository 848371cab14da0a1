"""Realistic spreadsheet values: pools built once from Faker, plus hand-made lists.

Contract: every sampler takes a ``random.Random`` and uses only it (never the global random
state), so callers control reproducibility. Faker is only used at pool-building time, with a
fixed seed, so the pools are identical in every process; sampling is then a few ``rng.choice``
calls (microseconds), which keeps ~100k episodes/minute feasible.

Values are single-line, contain no ``" | "`` (the cell separator) and are short, so that
task inputs stay within the byte budget without truncation.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field

POOL_SEED = 1815  # fixed: pools must be the same in every process (Ada Lovelace's birth year)
LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT")
# en_US dominates (60%); the others add accented names/cities for variety.
_LOCALE_TABLE = ("en_US",) * 6 + ("de_DE", "fr_FR", "es_ES", "it_IT")

_NAME_RE = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'-]{1,13}$")  # one token, letters only
_CITY_RE = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ' .-]{1,19}$")
_PLAIN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9' &./-]*$")


@dataclass
class Pools:
    first: dict[str, list[str]] = field(default_factory=dict)
    last: dict[str, list[str]] = field(default_factory=dict)
    city: dict[str, list[str]] = field(default_factory=dict)
    street: list[str] = field(default_factory=list)
    company: list[str] = field(default_factory=list)
    job: list[str] = field(default_factory=list)
    phrase: list[str] = field(default_factory=list)  # catch phrases / business-speak
    word: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    color: list[str] = field(default_factory=list)


def _unique(xs, pattern: re.Pattern, limit: int) -> list[str]:
    # dict keeps first-seen order, so the pool order is deterministic (a set would not be).
    out = dict.fromkeys(x.strip() for x in xs if pattern.match(x.strip()))
    return list(out)[:limit]


def _city_source(f, loc: str, n: int, seed: int) -> list[str]:
    """n city names. Some Faker locales (it_IT) keep cities in a list made from a *set*, whose
    order changes with PYTHONHASHSEED; seeding Faker alone would then give other cities in every
    process. Such lists are sorted first and sampled with our own seeded Random."""
    import importlib

    cities = getattr(importlib.import_module(f"faker.providers.address.{loc}").Provider, "cities", None)
    if isinstance(cities, list):
        return random.Random(seed).sample(sorted(cities), min(n, len(cities)))
    return [f.city() for _ in range(n)]


def _build() -> Pools:
    from faker import Faker  # imported lazily: importing this module must stay cheap

    p = Pools()
    for i, loc in enumerate(LOCALES):
        f = Faker(loc)
        f.seed_instance(POOL_SEED + i)
        n = 700 if loc == "en_US" else 250
        p.first[loc] = _unique((f.first_name() for _ in range(n)), _NAME_RE, n)
        p.last[loc] = _unique((f.last_name() for _ in range(n)), _NAME_RE, n)
        p.city[loc] = _unique(_city_source(f, loc, n // 2, POOL_SEED + i), _CITY_RE, n)
    f = Faker("en_US")
    f.seed_instance(POOL_SEED)
    p.street = _unique((f.street_name() for _ in range(400)), re.compile(r"^[A-Za-z ]{4,20}$"), 400)
    p.company = _unique((f.company() for _ in range(400)), re.compile(r"^[A-Za-z &.-]{3,26}$"), 400)
    p.job = _unique((f.job() for _ in range(400)), re.compile(r"^[A-Za-z ]{4,30}$"), 400)
    p.phrase = _unique((f.catch_phrase() for _ in range(300)), re.compile(r"^[A-Za-z -]{8,40}$"), 300)
    p.phrase += _unique((f.bs() for _ in range(300)), re.compile(r"^[a-z -]{8,40}$"), 300)
    from faker.providers.lorem.en_US import Provider as _Lorem

    p.word = [w for w in _Lorem.word_list if 3 <= len(w) <= 10]
    p.country = _unique((f.country() for _ in range(400)), re.compile(r"^[A-Za-z ]{4,20}$"), 200)
    p.color = _unique((f.color_name() for _ in range(300)), re.compile(r"^[A-Za-z]{3,14}$"), 200)
    return p


_POOLS: Pools | None = None


def pools() -> Pools:
    """The shared pools, built on first use (about 0.2 s) and cached for the process."""
    global _POOLS
    if _POOLS is None:
        _POOLS = _build()
    return _POOLS


# ---------------------------------------------------------------- hand-made lists
# Faker has nothing (or nothing tidy) for these; short curated lists read as real data.
US_STATES = (
    ("Alabama", "AL"),
    ("Alaska", "AK"),
    ("Arizona", "AZ"),
    ("Arkansas", "AR"),
    ("California", "CA"),
    ("Colorado", "CO"),
    ("Connecticut", "CT"),
    ("Delaware", "DE"),
    ("Florida", "FL"),
    ("Georgia", "GA"),
    ("Hawaii", "HI"),
    ("Idaho", "ID"),
    ("Illinois", "IL"),
    ("Indiana", "IN"),
    ("Iowa", "IA"),
    ("Kansas", "KS"),
    ("Kentucky", "KY"),
    ("Louisiana", "LA"),
    ("Maine", "ME"),
    ("Maryland", "MD"),
    ("Massachusetts", "MA"),
    ("Michigan", "MI"),
    ("Minnesota", "MN"),
    ("Mississippi", "MS"),
    ("Missouri", "MO"),
    ("Montana", "MT"),
    ("Nebraska", "NE"),
    ("Nevada", "NV"),
    ("New Hampshire", "NH"),
    ("New Jersey", "NJ"),
    ("New Mexico", "NM"),
    ("New York", "NY"),
    ("North Carolina", "NC"),
    ("North Dakota", "ND"),
    ("Ohio", "OH"),
    ("Oklahoma", "OK"),
    ("Oregon", "OR"),
    ("Pennsylvania", "PA"),
    ("Rhode Island", "RI"),
    ("South Carolina", "SC"),
    ("South Dakota", "SD"),
    ("Tennessee", "TN"),
    ("Texas", "TX"),
    ("Utah", "UT"),
    ("Vermont", "VT"),
    ("Virginia", "VA"),
    ("Washington", "WA"),
    ("West Virginia", "WV"),
    ("Wisconsin", "WI"),
    ("Wyoming", "WY"),
)
STREET_SUFFIX = ("St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter")
TITLES = ("Dr.", "Prof.", "Rev.", "Hon.", "Sen.")  # gender-neutral: names are not gendered
TLDS = ("com", "com", "com", "org", "net", "io", "de", "fr", "it", "es", "co", "biz")
EMAIL_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "example.com",
    "mail.de",
    "gmx.net",
    "orange.fr",
    "libero.it",
)
PRODUCT_ADJ = (
    "Ergonomic",
    "Compact",
    "Deluxe",
    "Classic",
    "Wireless",
    "Portable",
    "Organic",
    "Smart",
    "Vintage",
    "Heavy Duty",
    "Slim",
    "Premium",
    "Eco",
    "Mini",
    "Pro",
    "Rustic",
    "Modern",
)
PRODUCT_NOUN = (
    "Chair",
    "Desk Lamp",
    "Kettle",
    "Backpack",
    "Notebook",
    "Headphones",
    "Mug",
    "Blender",
    "Keyboard",
    "Monitor",
    "Water Bottle",
    "Sneakers",
    "Jacket",
    "Wallet",
    "Toaster",
    "Umbrella",
    "Bookshelf",
    "Candle",
    "Tent",
    "Drill",
    "Speaker",
    "Pillow",
    "Scarf",
)
SIZES = ("XS", "S", "M", "L", "XL", "XXL")
FILE_EXT = (
    "pdf",
    "docx",
    "xlsx",
    "csv",
    "txt",
    "jpg",
    "png",
    "mp3",
    "zip",
    "json",
    "py",
    "html",
    "pptx",
    "md",
    "gif",
    "mp4",
    "xml",
    "log",
)
DIR_WORDS = (
    "reports",
    "invoices",
    "photos",
    "archive",
    "projects",
    "backup",
    "drafts",
    "data",
    "scans",
    "music",
    "contracts",
    "exports",
    "clients",
    "finance",
    "notes",
    "media",
)
FILE_WORDS = (
    "report",
    "invoice",
    "summary",
    "budget",
    "notes",
    "photo",
    "scan",
    "draft",
    "final",
    "minutes",
    "contract",
    "export",
    "backup",
    "resume",
    "letter",
    "plan",
    "slides",
    "data",
)
CURRENCIES = (("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"), ("CHF", "CHF"))
# Multi-word names that have a conventional acronym; used with Faker catch phrases for text tasks.
ORG_NAMES = (
    "Portable Network Graphics",
    "Human Resources",
    "Chief Executive Officer",
    "Frequently Asked Questions",
    "Value Added Tax",
    "Personal Identification Number",
    "Key Performance Indicator",
    "Return On Investment",
    "Search Engine Optimization",
    "Customer Relationship Management",
    "Bill Of Materials",
    "Purchase Order",
    "Year To Date",
    "Out Of Office",
    "Service Level Agreement",
    "Point Of Sale",
    "Research And Development",
    "General Data Protection Regulation",
    "Annual General Meeting",
    "Application Programming Interface",
    "Central Processing Unit",
    "Stock Keeping Unit",
)


def ascii_fold(s: str) -> str:
    """Drop accents (é -> e, ß kept as ss) so names can become e-mail users and URLs."""
    s = s.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("æ", "ae")
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


# ---------------------------------------------------------------- samplers
def locale(rng: random.Random) -> str:
    return _LOCALE_TABLE[int(rng.random() * len(_LOCALE_TABLE))]


def person(rng: random.Random) -> tuple[str, str, str]:
    """(first, middle, last) from one locale; middle is another given name of that locale."""
    p, loc = pools(), locale(rng)
    return rng.choice(p.first[loc]), rng.choice(p.first[loc]), rng.choice(p.last[loc])


COMPOUND_SURNAME_RATE = 0.15


def maybe_double_barrelled(rng: random.Random, last: str) -> str:
    """``last``, or at COMPOUND_SURNAME_RATE a double-barrelled surname ('Garcia-Lopez'), which
    Faker's pools lack. Without them a model learns that a surname never holds a hyphen, and a real
    spreadsheet's 'Tim Berners-Lee' comes out as 'Berners' (models/default/README.md). Used by
    training data only (training name families, token programs): the held-out families are unchanged."""
    return f"{last}-{last_name(rng)}" if rng.random() < COMPOUND_SURNAME_RATE else last


def first_name(rng: random.Random) -> str:
    return rng.choice(pools().first[locale(rng)])


def last_name(rng: random.Random) -> str:
    return rng.choice(pools().last[locale(rng)])


def city(rng: random.Random, us_only: bool = False) -> str:
    return rng.choice(pools().city["en_US" if us_only else locale(rng)])


def word(rng: random.Random) -> str:
    return rng.choice(pools().word)


def phrase(rng: random.Random) -> str:
    """A short business phrase (Faker catch phrase / bs, or a known multi-word term)."""
    if rng.random() < 0.25:
        return rng.choice(ORG_NAMES)
    return rng.choice(pools().phrase)


def sentence(rng: random.Random, n_min: int = 3, n_max: int = 8) -> str:
    ws = [word(rng) for _ in range(rng.randint(n_min, n_max))]
    return " ".join(ws).capitalize() + rng.choice((".", ".", "!", "?"))


def company(rng: random.Random) -> str:
    return rng.choice(pools().company)


def job(rng: random.Random) -> str:
    return rng.choice(pools().job)


def country(rng: random.Random) -> str:
    return rng.choice(pools().country)


def color(rng: random.Random) -> str:
    return rng.choice(pools().color)


def product(rng: random.Random) -> str:
    return f"{rng.choice(PRODUCT_ADJ)} {rng.choice(PRODUCT_NOUN)}"


def date(rng: random.Random, y0: int = 1950, y1: int = 2035) -> tuple[int, int, int]:
    """A valid calendar date (y, m, d)."""
    y, m = rng.randint(y0, y1), rng.randint(1, 12)
    dim = (31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[
        m - 1
    ]
    return y, m, rng.randint(1, dim)


def time(rng: random.Random) -> tuple[int, int]:
    return rng.randint(0, 23), rng.randint(0, 59)


def phone_digits(rng: random.Random) -> str:
    """Ten NANP digits: area and exchange codes never start with 0 or 1."""
    return str(rng.randint(200, 999)) + str(rng.randint(200, 999)) + f"{rng.randint(0, 9999):04d}"


def domain(rng: random.Random) -> str:
    """A company-like domain such as ``acme-corp.com`` (ASCII, no www)."""
    r = rng.random()
    if r < 0.4:
        base = ascii_fold(last_name(rng)).lower()
    elif r < 0.7:
        base = word(rng)
    else:
        base = f"{word(rng)}-{rng.choice((word(rng), ascii_fold(last_name(rng)).lower()))}"
    return f"{base.replace(chr(39), '')}.{rng.choice(TLDS)}"


def email(rng: random.Random) -> str:
    """An e-mail address whose user part is derived from a name, as people's addresses are."""
    f, _, surname = person(rng)
    f, surname = ascii_fold(f).lower().replace("'", ""), ascii_fold(surname).lower().replace("'", "")
    style = rng.randint(0, 5)
    user = (
        f"{f}.{surname}",
        f"{f[0]}{surname}",
        f"{f}_{surname}",
        f"{f}{rng.randint(1, 99)}",
        f"{surname}.{f[0]}",
        f"{f}{surname}",
    )[style]
    dom = rng.choice(EMAIL_DOMAINS) if rng.random() < 0.5 else domain(rng)
    return f"{user}@{dom}"


def url(rng: random.Random, path: bool | None = None, query: bool | None = None) -> str:
    """``scheme://[www.]domain[/path][?query]``; path/query forced on/off when given."""
    host = ("www." if rng.random() < 0.5 else "") + domain(rng)
    s = rng.choice(("https://", "https://", "http://")) + host
    if path or (path is None and rng.random() < 0.7):
        s += "/" + "/".join(rng.choice(DIR_WORDS + FILE_WORDS) for _ in range(rng.randint(1, 3)))
    if query or (query is None and rng.random() < 0.2):
        s += f"?{rng.choice(('id', 'page', 'q', 'ref'))}={rng.randint(1, 999)}"
    return s


def street_address(rng: random.Random) -> str:
    """``<number> <street> <suffix>``, e.g. ``742 Evergreen Ter``."""
    name = rng.choice(pools().street).rsplit(" ", 1)[0] if rng.random() < 0.5 else last_name(rng)
    return f"{rng.randint(1, 9999)} {name} {rng.choice(STREET_SUFFIX)}"


def us_state(rng: random.Random) -> tuple[str, str]:
    return rng.choice(US_STATES)


def zip_code(rng: random.Random) -> str:
    return f"{rng.randint(1001, 99950):05d}"


def product_code(rng: random.Random, pattern: str) -> str:
    """Fill a pattern: ``L`` -> uppercase letter, ``D`` -> digit, anything else literal."""
    out = []
    for ch in pattern:
        if ch == "L":
            out.append(chr(65 + int(rng.random() * 26)))
        elif ch == "D":
            out.append(chr(48 + int(rng.random() * 10)))
        else:
            out.append(ch)
    return "".join(out)


CODE_PATTERNS = ("LLL-DDDD", "LL-DDD-L", "DDDD-LL", "LLL-DD-DDDD", "L-DDDDD-LL", "LL-DDDD-LL", "LLLL-DDD", "DD-LLL-DD")


def file_path(rng: random.Random, windows: bool = False) -> str:
    """A plausible absolute file path with an extension, unix or Windows style."""
    user = ascii_fold(first_name(rng)).lower().replace("'", "")
    top = rng.choice(
        (
            f"home/{user}",
            f"Users/{user}/Documents",
            "srv/data",
            "var/www",
            "opt/app",
            f"home/{user}/Downloads",
            "mnt/share",
        )
    )
    if windows:
        top = rng.choice((f"Users/{user}/Documents", f"Users/{user}/Desktop", "Projects", "Shared"))
    dirs = [rng.choice(DIR_WORDS) for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.3:
        dirs.append(str(rng.randint(2015, 2025)))
    stem = rng.choice(FILE_WORDS)
    r = rng.random()
    if r < 0.4:
        stem += f"_{rng.randint(2015, 2025)}"
    elif r < 0.6:
        stem += f"_{rng.choice(FILE_WORDS)}"
    elif r < 0.7:
        stem += f"-v{rng.randint(1, 9)}"
    parts = top.split("/") + dirs + [f"{stem}.{rng.choice(FILE_EXT)}"]
    if windows:
        return rng.choice(("C:", "D:")) + "\\" + "\\".join(parts)
    return "/" + "/".join(parts)


def card_number(rng: random.Random) -> str:
    return str(rng.choice((4, 5))) + "".join(str(int(rng.random() * 10)) for _ in range(15))


def amount_cents(rng: random.Random, hi: int = 500000) -> int:
    """A price in cents, skewed towards everyday amounts (log-uniform-ish)."""
    mag = rng.choice((100, 1000, 10000, 100000, hi))
    return rng.randint(1, mag)


def decimal_str(rng: random.Random, int_hi: int = 999, places: int | None = None) -> str:
    """A decimal literal like ``12.375`` (no exponent, no leading/trailing junk)."""
    p = rng.randint(1, 4) if places is None else places
    if p == 0:
        return str(rng.randint(0, int_hi))
    return f"{rng.randint(0, int_hi)}.{rng.randint(0, 10**p - 1):0{p}d}"
