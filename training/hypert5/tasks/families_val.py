"""Held-out validation families.

Each one reuses primitives and value kinds seen in training, but as a composition (recipe) and
under a name that no training family has — so validation measures generalisation to new tasks,
not to new samples of known tasks. Tests check that the recipes are disjoint from training's.
"""

from __future__ import annotations

import re
from decimal import Decimal

from . import common as C
from . import primitives as P
from . import values as V
from .registry import family
from .train_numbers import MONEY_STYLES


def val(name, recipe, balanced=False):
    return family("val", name, recipe, balanced)


@val("name_last_upper_first", ("name", "split_words", "reorder", "case_part", "join"))
def _(p):
    """'Ada Lovelace' -> 'LOVELACE, Ada' / 'LOVELACE Ada' (swap + upper-case the surname)."""
    sep = p.pick("sep", (", ", " "))

    def fn(s):
        f, _, surname = P.split_name(s)
        return f"{surname.upper()}{sep}{f}"

    return C.full_name, fn


@val("email_to_full_name", ("email", "extract_user", "split", "case", "join"))
def _(p):
    """'ada.lovelace@x.com' -> 'Ada Lovelace' (user part split on '.' or '_', title-cased)."""
    sep = p.pick("sep", (".", "_"))
    order = p.pick("user_order", ("first_last", "last_first"))

    def gen(rng):
        f, _, surname = V.person(rng)
        f, surname = V.ascii_fold(f).lower().replace("'", ""), V.ascii_fold(surname).lower().replace("'", "")
        user = f"{f}{sep}{surname}" if order == "first_last" else f"{surname}{sep}{f}"
        return f"{user}@{rng.choice(V.EMAIL_DOMAINS) if rng.random() < 0.5 else V.domain(rng)}"

    def fn(s):
        a, b = s.split("@")[0].split(sep)
        f, surname = (a, b) if order == "first_last" else (b, a)
        return f"{P.apply_case(f, 'title')} {P.apply_case(surname, 'title')}"

    return gen, fn


@val("date_compact", ("date", "parse", "filter_chars"))
def _(p):
    """'2024-03-07' (or another layout) -> digits only: '20240307', '240307' or '07032024'."""
    fin = p.pick("in_layout", ("YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "D MMMM YYYY"))
    fout = p.pick("out_layout", ("YYYYMMDD", "YYMMDD", "DDMMYYYY"))
    return (lambda rng: P.format_date(*V.date(rng), fin)), (lambda s: P.format_date(*P.parse_date(s, fin), fout))


@val("date_month_code", ("date", "parse", "reformat", "case"))
def _(p):
    """'2024-03-07' -> 'MAR-24' / 'MAR 2024' / '2024-MAR' (upper-case month abbreviation + year)."""
    fin = p.pick("in_layout", ("YYYY-MM-DD", "MM/DD/YYYY", "DD.MM.YYYY"))
    fout = p.pick("out_layout", ("MMM-YY", "MMM YYYY", "YYYY-MMM"))
    return (lambda rng: P.format_date(*V.date(rng), fin)), (
        lambda s: P.format_date(*P.parse_date(s, fin), fout).upper()
    )


@val("contact_tag", ("cells_name_phone", "split_words", "digits", "extract", "join"))
def _(p):
    """'Ada Lovelace | (555) 123-4567' -> 'Lovelace-4567' / 'A. Lovelace 4567' / 'ALovelace4567'."""
    tpl = p.pick("template", ("{l}-{d}", "{i}. {l} {d}", "{i}{l}{d}", "{l} (x{d})"))
    fmt = p.pick("phone_format", C.PHONE_FORMATS)

    def fn(s):
        name, ph = P.cells(s)
        f, _, surname = P.split_name(name)
        return tpl.format(l=surname, i=f[:1], d=P.digits_only(ph)[-4:])

    return (lambda rng: f"{C.full_name(rng)} | {C.phone(rng, fmt)}"), fn


@val("path_stem_title", ("path", "split", "extract", "replace", "case"))
def _(p):
    """'/home/ada/annual_report_2023.pdf' -> 'Annual Report 2023' (stem, '_'/'-' -> space, title case)."""
    windows = p.pick("windows", (False, True))

    def fn(s):
        stem = re.split(r"[\\/]", s)[-1].rsplit(".", 1)[0]
        return P.apply_case(re.sub(r"[_-]", " ", stem), "title")

    return (lambda rng: V.file_path(rng, windows)), fn


@val("line_total_currency", ("cells_numbers", "arithmetic", "group_thousands", "insert_const"))
def _(p):
    """'3 | 4.50' (qty | unit price) -> '$13.50' / '13,50 €' ... (multiply, then format as money)."""
    render = MONEY_STYLES[p.pick("style", tuple(MONEY_STYLES))][1]

    def gen(rng):
        return f"{rng.randint(1, 60)} | {P.fmt_decimal(Decimal(rng.randint(1, 50000)) / 100)}"

    def fn(s):
        q, price = P.cells(s)
        return render(int(q) * P.to_cents(Decimal(price)))

    return gen, fn


@val("url_user_email", ("cells_url", "extract_domain", "join", "insert_const"))
def _(p):
    """'john | https://www.acme.com/contact' -> 'john@acme.com' (user cell + site's domain)."""
    order = p.pick("cell_order", ("user_url", "url_user"))

    def gen(rng):
        user = V.ascii_fold(V.first_name(rng)).lower().replace("'", "")
        u = V.url(rng)
        return f"{user} | {u}" if order == "user_url" else f"{u} | {user}"

    def fn(s):
        a, b = P.cells(s)
        user, u = (a, b) if order == "user_url" else (b, a)
        host = u.split("://", 1)[1].split("/")[0].split("?")[0]
        return f"{user}@{host[4:] if host.startswith('www.') else host}"

    return gen, fn


@val("sku_from_cells", ("cells_product", "prefix_chars", "case", "join"))
def _(p):
    """'Compact Kettle | Blue | XL' -> 'COM-BLU-XL' (first n letters of each cell, upper-cased)."""
    n = p.pick("n_letters", (2, 3))
    sep = p.pick("sep", ("-", "", "/"))

    def gen(rng):
        return f"{V.product(rng)} | {V.color(rng)} | {rng.choice(V.SIZES)}"

    def fn(s):
        return sep.join(P.letters_only(c)[:n].upper() for c in P.cells(s))

    return gen, fn


@val("code_number_padded", ("code", "split", "extract", "pad"))
def _(p):
    """'AB-7-X' -> '007': the numeric segment of a code, zero-padded to a fixed width."""
    width = p.randint("width", 3, 6)
    sep = p.pick("sep", ("-", "/", "_"))

    def gen(rng):
        num = str(rng.randint(0, 10 ** rng.randint(1, width) - 1))
        return sep.join((V.product_code(rng, "LL"), num, V.product_code(rng, rng.choice(("L", "LL", "LLL")))))

    return gen, (lambda s: P.pad_left(s.split(sep)[1], width))


@val("time_add_minutes", ("time", "parse", "arithmetic_const", "reformat"))
def _(p):
    """'14:05' -> '14:35' for +30 minutes (a constant per task), wrapping past midnight."""
    add = p.pick("minutes", (10, 15, 30, 45, 60, 90, 120))

    def gen(rng):
        h, m = V.time(rng)
        return f"{h:02d}:{m:02d}"

    def fn(s):
        h, m = P.parse_time(s)
        t = (h * 60 + m + add) % (24 * 60)
        return f"{t // 60:02d}:{t % 60:02d}"

    return gen, fn


@val("name_mask", ("name", "split_words", "mask"))
def _(p):
    """'Ada Lovelace' -> 'A** L*******' (keep each word's first letter)."""
    ch = p.pick("char", ("*", "x", "#"))

    def fn(s):
        return " ".join(w[0] + ch * (len(w) - 1) for w in s.split())

    return C.full_name, fn


@val("word_count_test", ("text", "count", "compare_const", "label"), balanced=True)
def _(p):
    """Yes/No: does the text have more than n words?"""
    n = p.pick("n", (3, 4, 5))
    yes, no = p.pick("labels", P.YES_NO)

    def pred(s):
        return len(s.split()) > n

    return C.balanced(pred, lambda rng, want: V.sentence(rng, 2, 2 * n)[:-1]), (lambda s: yes if pred(s) else no)


@val("email_company_name", ("email", "extract_domain", "replace", "case"))
def _(p):
    """'ada@acme-corp.com' -> 'ACME CORP' / 'Acme Corp' (domain name, '-' -> space, re-cased)."""
    case = p.pick("case", ("upper", "title"))

    def gen(rng):
        f, _, surname = V.person(rng)
        return f"{V.ascii_fold(f).lower().replace(chr(39), '')}@{V.domain(rng)}"

    def fn(s):
        name = s.split("@")[1].rsplit(".", 1)[0]
        return P.apply_case(name.replace("-", " "), case)

    return gen, fn
