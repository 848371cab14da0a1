"""Training families about people and contacts: names, e-mails, phones, addresses, URLs, cards.

Each builder samples its parameters through ``p`` and returns ``(gen, fn)``; ``fn`` parses the
input string itself (it never peeks at how ``gen`` made it), so outputs are exact.
"""

from __future__ import annotations

import re

from . import common as C
from . import primitives as P
from . import values as V
from .registry import family


def train(name, recipe, balanced=False):
    return family("train", name, recipe, balanced)


def _name_gen(middle: str):
    """Name inputs: 'First Last', with a full middle name or a middle initial if asked; some surnames
    are double-barrelled."""

    def gen(rng):
        f, m, surname = V.person(rng)
        surname = V.maybe_double_barrelled(rng, surname)
        if middle == "name":
            return f"{f} {m} {surname}"
        if middle == "initial":
            return f"{f} {m[0]}. {surname}"
        return f"{f} {surname}"

    return gen


def _user(s: str) -> str:
    return V.ascii_fold(s).lower().replace("'", "")


# ---------------------------------------------------------------- names
@train("name_last_comma_initial", ("name", "split_words", "initial", "reorder", "join"))
def _(p):
    """'Ada Lovelace' -> 'Lovelace, A.'; middle names/initials become initials too."""
    middle = p.pick("middle", ("none", "name", "initial"))

    def fn(s):
        f, ms, surname = P.split_name(s)
        return f"{surname}, " + " ".join(P.initial(w) for w in [f, *ms])

    return _name_gen(middle), fn


@train("name_initials", ("name", "split_words", "initial", "join"))
def _(p):
    """'Ada Lovelace' -> 'AL' / 'A.L.' / 'A. L.'."""
    dot, space = p.pick("dot", (".", "")), p.pick("space", ("", " "))
    middle = p.pick("middle", ("none", "name"))

    def fn(s):
        return space.join(P.initial(w, dot) for w in s.split())

    return _name_gen(middle), fn


@train("name_part", ("name", "split_words", "extract", "case"))
def _(p):
    """First or last name, optionally re-cased."""
    part = p.pick("part", ("first", "last"))
    case = p.pick("case", ("keep", "keep", "upper", "lower"))
    middle = p.pick("middle", ("none", "name", "initial"))

    def fn(s):
        f, _, surname = P.split_name(s)
        return P.apply_case(f if part == "first" else surname, case)

    return _name_gen(middle), fn


@train("name_swap_comma", ("name", "split_words", "reorder", "join"))
def _(p):
    """'Lovelace, Ada' <-> 'Ada Lovelace'."""
    direction = p.pick("direction", ("to_first_last", "to_last_first"))
    sep = p.pick("sep", (", ", ","))

    def gen(rng):
        f, _, surname = V.person(rng)
        return f"{surname}{sep}{f}" if direction == "to_first_last" else f"{f} {surname}"

    def fn(s):
        if direction == "to_first_last":
            surname, f = s.split(",", 1)
            return f"{f.strip()} {surname.strip()}"
        f, _, surname = P.split_name(s)
        return f"{surname}{sep}{f}"

    return gen, fn


@train("name_username", ("name", "split_words", "fold_lower", "initial", "join", "insert_const"))
def _(p):
    """'Ada Lovelace' -> login such as 'alovelace', 'ada.lovelace', 'lovelace_a' (+ constant)."""
    tpl = p.pick(
        "template",
        ("{f}{last}", "{first}.{last}", "{first}_{last}", "{last}{f}", "{first}{l}", "{last}.{first}", "{last}_{f}"),
    )
    suffix = p.pick("suffix", ("", "", "1", "01", "_hr", "99", "-ext"))

    def fn(s):
        first, _, last = P.split_name(s)
        first, last = _user(first), _user(last)
        return tpl.format(first=first, last=last, f=first[:1], l=last[:1]) + suffix

    return _name_gen("none"), fn


@train("name_fix_case", ("name", "split_words", "case"))
def _(p):
    """Messy-case names ('aDA LOVELACE', 'ada lovelace') -> 'Ada Lovelace' or 'Ada LOVELACE'."""
    style = p.pick("style", ("title", "last_upper", "upper"))

    def gen(rng):
        f, _, surname = V.person(rng)
        r = rng.random()
        if r < 0.3:
            return f"{f} {surname}".upper()
        if r < 0.6:
            return f"{f} {surname}".lower()
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in f"{f} {surname}")

    def fn(s):
        f, _, surname = P.split_name(s)
        if style == "last_upper":
            return f"{P.apply_case(f, 'title')} {surname.upper()}"
        return P.apply_case(f"{f} {surname}", style)

    return gen, fn


@train("name_strip_title", ("title_name", "strip_const", "extract"))
def _(p):
    """'Dr. Ada Lovelace' -> 'Ada Lovelace' / 'Lovelace' / 'Dr. Lovelace'."""
    out = p.pick("out", ("name", "last", "title_last"))

    def gen(rng):
        f, _, surname = V.person(rng)
        return f"{rng.choice(V.TITLES)} {f} {surname}"

    def fn(s):
        t, f, surname = s.split()
        return {"name": f"{f} {surname}", "last": surname, "title_last": f"{t} {surname}"}[out]

    return gen, fn


@train("name_initial_last", ("name", "split_words", "initial", "join"))
def _(p):
    """'Ada Lovelace' -> 'A. Lovelace' / 'A Lovelace' / 'A.Lovelace'."""
    form = p.pick("form", ("{i}. {l}", "{i} {l}", "{i}.{l}", "{i}. {m}. {l}"))

    def fn(s):
        f, ms, surname = P.split_name(s)
        return form.format(i=f[:1].upper(), l=surname, m=ms[0][:1].upper() if ms else "")

    middle = "name" if "{m}" in form else "none"
    return _name_gen(middle), fn


@train("cells_name_join", ("cells_name", "reorder", "join", "insert_const"))
def _(p):
    """'Ada | Lovelace' -> 'Ada Lovelace', 'Lovelace, Ada', 'Ada Lovelace (AL)', ..."""
    order = p.pick("input_order", ("first_last", "last_first"))
    # No upper-cased surname layout: 'LOVELACE Ada' is the held-out name_last_upper_first.
    tpl = p.pick("template", ("{f} {l}", "{l} {f}", "{l}, {f}", "{f}.{l}", "{f} {l} ({i})"))

    def gen(rng):
        f, _, surname = V.person(rng)
        return f"{f} | {surname}" if order == "first_last" else f"{surname} | {f}"

    def fn(s):
        a, b = P.cells(s)
        f, surname = (a, b) if order == "first_last" else (b, a)
        return tpl.format(f=f, l=surname, i=f[:1] + surname[:1])

    return gen, fn


# ---------------------------------------------------------------- e-mail and URLs
_EMAIL_RE = re.compile(r"[^\s<>:]+@[^\s<>]+")


@train("email_user", ("email", "extract_user"))
def _(p):
    """'ada.lovelace@example.com' -> 'ada.lovelace' (also from 'Name <addr>' and 'mailto:')."""
    style = p.pick("style", ("bare", "bare", "angle", "mailto"))

    def gen(rng):
        e = V.email(rng)
        if style == "angle":
            return f"{C.full_name(rng)} <{e}>"
        return "mailto:" + e if style == "mailto" else e

    def fn(s):
        return _EMAIL_RE.search(s).group(0).split("@")[0]

    return gen, fn


@train("email_domain", ("email", "extract_domain"))
def _(p):
    """Domain of an e-mail: 'example.com', its name 'example', or its TLD 'com'."""
    part = p.pick("part", ("domain", "name", "tld"))

    def fn(s):
        d = s.split("@")[1]
        return {"domain": d, "name": d.rsplit(".", 1)[0], "tld": d.rsplit(".", 1)[1]}[part]

    return V.email, fn


@train("email_mask", ("email", "mask"))
def _(p):
    """'ada.lovelace@x.com' -> 'a***@x.com' / 'a**********e@x.com' / 'a***e@x.com'."""
    style = p.pick("style", ("first", "full_length", "first_last"))
    ch = p.pick("char", ("*", "x", "#"))

    def fn(s):
        u, d = s.split("@")
        if style == "first":
            return f"{u[0]}{ch * 3}@{d}"
        if style == "full_length":
            return f"{u[0]}{ch * (len(u) - 1)}@{d}"
        return f"{u[0]}{ch * 3}{u[-1]}@{d}"

    return V.email, fn


@train("email_from_cells", ("cells_name", "fold_lower", "join", "insert_const"))
def _(p):
    """'Ada | Lovelace' -> 'ada.lovelace@acme.com' (constant domain) or domain from a 3rd cell."""
    tpl = p.pick("template", ("{first}.{last}", "{f}{last}", "{first}", "{last}.{f}", "{first}_{last}"))
    dom = p.draw("domain", V.domain)
    from_cell = p.pick("domain_from_cell", (False, True))

    def gen(rng):
        f, _, surname = V.person(rng)
        return f"{f} | {surname}" + (f" | {V.domain(rng)}" if from_cell else "")

    def fn(s):
        cs = P.cells(s)
        first, last = _user(cs[0]), _user(cs[1])
        d = cs[2] if from_cell else dom
        return tpl.format(first=first, last=last, f=first[:1]) + "@" + d

    return gen, fn


@train("url_host", ("url", "extract_domain"))
def _(p):
    """'https://www.acme.com/a?b=1' -> 'www.acme.com' / 'acme.com' / 'acme'."""
    part = p.pick("part", ("host", "domain", "name"))

    def fn(s):
        host = s.split("://", 1)[1].split("/")[0].split("?")[0]
        d = host[4:] if host.startswith("www.") else host
        return {"host": host, "domain": d, "name": d.rsplit(".", 1)[0]}[part]

    return V.url, fn


@train("url_path", ("url", "extract_path"))
def _(p):
    """Path '/a/b', last segment 'b', first segment 'a', or the query value of a URL."""
    part = p.pick("part", ("path", "last_segment", "first_segment", "query_value"))

    def gen(rng):
        return V.url(rng, path=True, query=True if part == "query_value" else None)

    def fn(s):
        rest = s.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1].split("?")[0]
        if part == "query_value":
            return s.rsplit("=", 1)[1]
        segs = path.strip("/").split("/")
        return {"path": path, "last_segment": segs[-1], "first_segment": segs[0]}[part]

    return gen, fn


# ---------------------------------------------------------------- phones and cards
@train("phone_reformat", ("phone", "digits", "reformat"))
def _(p):
    """US phone numbers from one (or mixed) format to another, e.g. '555.123.4567' -> '(555) 123-4567'."""
    fin = p.pick("in_format", C.PHONE_FORMATS + ("mixed",))
    fout = p.pick("out_format", tuple(f for f in C.PHONE_FORMATS if f != fin))

    def fn(s):
        d = P.digits_only(s)
        return C.render_phone(d[-10:], fout)

    return (lambda rng: C.phone(rng, None if fin == "mixed" else fin)), fn


@train("phone_area_code", ("phone", "digits", "extract"))
def _(p):
    """Area code of a US phone number: '555' or '(555)'."""
    fin = p.pick("in_format", C.PHONE_FORMATS + ("mixed",))
    paren = p.pick("parens", (False, True))

    def fn(s):
        a = P.digits_only(s)[-10:][:3]
        return f"({a})" if paren else a

    return (lambda rng: C.phone(rng, None if fin == "mixed" else fin)), fn


@train("phone_mask", ("phone", "mask"))
def _(p):
    """Mask all but the last digits: '555-123-4567' -> '***-***-4567'."""
    fin = p.pick("in_format", C.PHONE_FORMATS)
    keep, ch = p.pick("keep", (2, 4)), p.pick("char", ("*", "X", "#"))
    return (lambda rng: C.phone(rng, fin)), (lambda s: P.mask_keep_last(s, keep, ch))


@train("card_mask", ("card", "mask", "reformat"))
def _(p):
    """'4111 1111 1111 1234' -> '**** **** **** 1234' / 'XXXX-1234' / 'ending in 1234'."""
    grouping = p.pick("grouping", (" ", "-", ""))
    style = p.pick("style", ("keep_format", "last4_short", "ending_in"))

    def gen(rng):
        d = V.card_number(rng)
        return grouping.join(d[i : i + 4] for i in range(0, 16, 4))

    def fn(s):
        last4 = P.digits_only(s)[-4:]
        if style == "keep_format":
            return P.mask_keep_last(s, 4, "*")
        return f"XXXX-{last4}" if style == "last4_short" else f"ending in {last4}"

    return gen, fn


# ---------------------------------------------------------------- addresses
def _address(rng):
    ab = V.us_state(rng)[1]
    return f"{V.street_address(rng)}, {V.city(rng, us_only=True)}, {ab} {V.zip_code(rng)}"


@train("address_part", ("address", "split_cells", "extract"))
def _(p):
    """'742 Evergreen Ter, Springfield, IL 62704' -> zip / state / city / street / number / 'Springfield, IL'."""
    part = p.pick("part", ("zip", "state", "city", "street", "number", "city_state"))

    def fn(s):
        street, city, stz = s.split(", ")
        st, z = stz.split(" ")
        return {
            "zip": z,
            "state": st,
            "city": city,
            "street": street,
            "number": street.split(" ")[0],
            "city_state": f"{city}, {st}",
        }[part]

    return _address, fn


@train("address_from_cells", ("cells_address", "join", "insert_const"))
def _(p):
    """'742 Evergreen Ter | Springfield | IL | 62704' -> one address line in a chosen layout."""
    tpl = p.pick(
        "template", ("{s}, {c}, {st} {z}", "{c}, {st} {z}", "{s}, {c}", "{c} ({st})", "{z} {c}", "{s} - {c}, {st}")
    )

    def gen(rng):
        return P.CELL_SEP.join((V.street_address(rng), V.city(rng, us_only=True), V.us_state(rng)[1], V.zip_code(rng)))

    def fn(s):
        st_, c, st, z = P.cells(s)
        return tpl.format(s=st_, c=c, st=st, z=z)

    return gen, fn
