"""Training families about free text, file paths, whole rows of cells and yes/no tests."""

from __future__ import annotations

import re

from . import common as C
from . import primitives as P
from . import values as V
from .registry import family


def train(name, recipe, balanced=False):
    return family("train", name, recipe, balanced)


def _text(rng) -> str:
    """Short free text without final punctuation: a phrase, product, job, company or sentence."""
    r = rng.random()
    if r < 0.35:
        return V.phrase(rng)
    if r < 0.5:
        return V.product(rng)
    if r < 0.65:
        return V.job(rng)
    if r < 0.75:
        return V.company(rng)
    return V.sentence(rng, 3, 7)[:-1]


# ---------------------------------------------------------------- file paths
def _path_split(s: str) -> list[str]:
    return re.split(r"[\\/]", s)


@train("path_part", ("path", "split", "extract"))
def _(p):
    """File name, extension ('pdf' / '.pdf' / 'PDF'), stem, folder path or parent folder name."""
    windows = p.pick("windows", (False, False, True))
    part = p.pick("part", ("filename", "extension", "ext_dot", "ext_upper", "stem", "folder", "parent"))

    def fn(s):
        parts = _path_split(s)
        name = parts[-1]
        stem, ext = name.rsplit(".", 1)
        sep = "\\" if windows else "/"
        return {
            "filename": name,
            "extension": ext,
            "ext_dot": "." + ext,
            "ext_upper": ext.upper(),
            "stem": stem,
            "folder": sep.join(parts[:-1]),
            "parent": parts[-2],
        }[part]

    return (lambda rng: V.file_path(rng, windows)), fn


@train("path_convert", ("path", "replace"))
def _(p):
    """'C:\\Users\\ada\\x.pdf' -> 'C:/Users/ada/x.pdf', or a unix path -> Windows with a drive."""
    direction = p.pick("direction", ("win_to_slash", "unix_to_win"))
    drive = p.pick("drive", ("C:", "D:", "Z:"))

    def fn(s):
        return s.replace("\\", "/") if direction == "win_to_slash" else drive + s.replace("/", "\\")

    return (lambda rng: V.file_path(rng, direction == "win_to_slash")), fn


# ---------------------------------------------------------------- free text
@train("text_case", ("text", "case"))
def _(p):
    """Change case of free text: UPPER, lower, Title Case or Sentence case."""
    mode = p.pick("mode", ("upper", "lower", "title", "sentence"))
    return _text, (lambda s: P.apply_case(s, mode))


@train("text_count", ("text", "count"))
def _(p):
    """Count words, characters, vowels, capital letters or one given letter."""
    what = p.pick("what", ("words", "chars", "vowels", "capitals", "letter"))
    letter = p.pick("letter", tuple("aeosnt")) if what == "letter" else None

    def fn(s):
        if what == "words":
            return str(len(s.split()))
        if what == "chars":
            return str(len(s))
        if what == "vowels":
            return str(sum(c in "aeiouAEIOU" for c in s))
        if what == "capitals":
            return str(sum(c.isupper() for c in s))
        return str(s.lower().count(letter))

    return _text, fn


@train("text_nth_word", ("text", "split_words", "extract", "case"))
def _(p):
    """First, second, last or second-to-last word, optionally re-cased."""
    idx = p.pick("index", (0, 1, -1, -2))
    case = p.pick("case", ("keep", "keep", "upper", "lower"))

    def gen(rng):
        s = _text(rng)
        while len(s.split()) < 3:
            s = _text(rng)
        return s

    return gen, (lambda s: P.apply_case(s.split()[idx], case))


@train("text_acronym", ("text", "split_words", "initial", "join"))
def _(p):
    """'Portable Network Graphics' -> 'PNG' / 'P.N.G.'; optionally skipping 'of', 'and', ..."""
    skip = p.pick("skip_small_words", (False, True))
    dot = p.pick("dot", ("", "", "."))

    def gen(rng):
        return rng.choice(V.ORG_NAMES) if rng.random() < 0.4 else P.apply_case(V.phrase(rng), "title")

    return gen, (lambda s: P.acronym(s, skip, dot))


@train("text_truncate", ("text", "truncate", "insert_const"))
def _(p):
    """Keep the first n characters and mark the cut ('...'); short texts are left as they are."""
    n = p.randint("n", 5, 20)
    ell = p.pick("ellipsis", ("...", "..", "", " [more]"))
    return _text, (lambda s: s if len(s) <= n else s[:n] + ell)


@train("text_clean", ("messy_text", "strip", "case"))
def _(p):
    """Strip and collapse whitespace (optionally lower-case, drop punctuation or all spaces)."""
    mode = p.pick("mode", ("collapse", "collapse_lower", "no_spaces", "strip_punct"))

    def gen(rng):
        ws = _text(rng).split()
        if mode == "strip_punct":
            ws = [w + rng.choice(("", "", "!", ",", "?", "*", ";")) for w in ws]
        out = "".join(w + " " * rng.choice((1, 1, 2, 3)) for w in ws)
        return " " * rng.randint(0, 2) + out.rstrip() + " " * rng.randint(0, 2)

    def fn(s):
        if mode == "no_spaces":
            return "".join(s.split())
        if mode == "strip_punct":
            s = re.sub(r"[!,?*;]", "", s)
        s = P.collapse_ws(s)
        return s.lower() if mode == "collapse_lower" else s

    return gen, fn


@train("text_slug", ("text", "slugify"))
def _(p):
    """'Ergonomic Desk Lamp (2024)' -> 'ergonomic-desk-lamp-2024'."""
    sep = p.pick("sep", ("-", "_"))

    def gen(rng):
        s = _text(rng)
        return s + f" ({rng.randint(2015, 2025)})" if rng.random() < 0.3 else s

    return gen, (lambda s: P.slugify(s, sep))


# (old, new, input source): each replacement is paired with values that actually contain `old`.
_REPLACEMENTS = {
    "space_to_underscore": (" ", "_", _text),
    "amp_to_and": (" & ", " and ", lambda r: f"{V.last_name(r)} & {rng_choice_word(r)}"),
    "dash_to_space": ("-", " ", lambda r: V.product_code(r, r.choice(V.CODE_PATTERNS))),
    "dot_to_comma": (".", ",", lambda r: V.decimal_str(r, 9999)),
    "slash_to_dash": ("/", "-", lambda r: P.format_date(*V.date(r), "MM/DD/YYYY")),
    "space_to_plus": (" ", "+", _text),
}


def rng_choice_word(r) -> str:
    return r.choice(("Sons", "Co", "Partners", V.last_name(r), "Associates"))


@train("text_replace", ("text", "replace"))
def _(p):
    """Replace a constant substring everywhere: spaces -> '_', ' & ' -> ' and ', '.' -> ',' ..."""
    old, new, src = _REPLACEMENTS[p.pick("replacement", tuple(_REPLACEMENTS))]
    return src, (lambda s: s.replace(old, new))


_NUMBER_TEMPLATES = (
    "Order #{n} shipped",
    "Invoice {n} is overdue",
    "Call ext. {n}",
    "Room {n}",
    "{n} items in stock",
    "Ticket {n}: {t}",
    "Ref: {n}",
    "Customer ID {n} ({t})",
    "{t} - batch {n}",
)


@train("text_extract_number", ("text_with_number", "filter_chars"))
def _(p):
    """'Invoice 4821 is overdue' -> '4821' (the one number in the text), optionally zero-padded."""
    width = p.pick("pad_to", (0, 0, 6))

    def gen(rng):
        return rng.choice(_NUMBER_TEMPLATES).format(n=rng.randint(1, 99999), t=V.product(rng))

    return gen, (lambda s: P.pad_left(P.digits_only(s), width))


# ---------------------------------------------------------------- rows of cells
@train("cells_pick", ("cells", "extract"))
def _(p):
    """Pick one cell (first, second or last) of a ' | '-joined row."""
    n = p.randint("n_cells", 2, 4)
    schema = p.draw("schema", lambda r: C.row_schema(r, n))
    idx = p.pick("index", (0, 1, -1))
    return (lambda rng: C.row(rng, schema)), (lambda s: P.cells(s)[idx])


@train("cells_reorder", ("cells", "reorder", "join"))
def _(p):
    """Reorder the cells of a row and join them with a separator: 'a | b | c' -> 'c, a, b'."""
    n = p.randint("n_cells", 2, 3)
    schema = p.draw("schema", lambda r: C.row_schema(r, n))
    perm = p.pick("order", {2: ((1, 0),), 3: ((2, 0, 1), (1, 0, 2), (2, 1, 0), (0, 2, 1), (1, 2, 0))}[n])
    sep = p.pick("sep", (" | ", ", ", " - ", " ", "; "))

    def fn(s):
        cs = P.cells(s)
        return sep.join(cs[i] for i in perm)

    return (lambda rng: C.row(rng, schema)), fn


@train("cells_join", ("cells", "join", "case"))
def _(p):
    """Join all cells with a separator ('', ' ', ', ', '-', '/', '; '), optionally re-cased."""
    n = p.randint("n_cells", 2, 4)
    schema = p.draw("schema", lambda r: C.row_schema(r, n))
    sep = p.pick("sep", (", ", " ", "-", "/", "; ", "", "_"))
    case = p.pick("case", ("keep", "keep", "upper", "lower"))
    return (lambda rng: C.row(rng, schema)), (lambda s: P.apply_case(sep.join(P.cells(s)), case))


# ---------------------------------------------------------------- yes/no tests
def _propose_digit(rng, want):
    ws = _text(rng).split()
    if want:
        ws.insert(rng.randint(0, len(ws)), str(rng.randint(1, 999)))
    return " ".join(ws)


def _propose_email(rng, want):
    e = V.email(rng)
    if want:
        return e
    r = rng.random()
    if r < 0.4:
        return e.replace("@", rng.choice(("", " ", " at ", "#")))
    return e.rsplit(".", 1)[0] if r < 0.7 else C.full_name(rng)


_EMAIL_OK = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")

# test name -> (predicate factory (given a constant), proposer factory, constant choices)
_TESTS = {
    "contains_digit": (lambda c: lambda s: any(ch.isdigit() for ch in s), lambda c: _propose_digit, (None,)),
    "starts_with_vowel": (
        lambda c: lambda s: s[:1].lower() in "aeiou",
        lambda c: lambda r, w: C.full_name(r) if r.random() < 0.5 else V.word(r).capitalize(),
        (None,),
    ),
    "is_email": (lambda c: lambda s: bool(_EMAIL_OK.match(s)), lambda c: _propose_email, (None,)),
    "longer_than": (lambda c: lambda s: len(s) > c, lambda c: lambda r, w: V.last_name(r), (5, 6, 7, 8)),
    "contains_word": (
        lambda c: lambda s: c in s.split(),
        lambda c: lambda r, w: V.company(r) + (f" {c}" if w else ""),
        ("Inc", "LLC", "Ltd", "GmbH", "Group"),
    ),
    "ends_with": (
        lambda c: lambda s: s.endswith(c),
        lambda c: lambda r, w: V.file_path(r).rsplit(".", 1)[0] + c if w else V.file_path(r),
        (".pdf", ".csv", ".xlsx", ".jpg"),
    ),
    "is_upper": (
        lambda c: lambda s: s.isupper(),
        lambda c: lambda r, w: P.apply_case(_text(r), "upper" if w else r.choice(("title", "lower"))),
        (None,),
    ),
    "is_number": (
        lambda c: lambda s: bool(re.fullmatch(r"-?\d+(\.\d+)?", s)),
        lambda c: (
            lambda r, w: (
                V.decimal_str(r, 9999, r.choice((0, 1, 2)))
                if w
                else V.product_code(r, r.choice(("DDLD", "DD-DD", "LDDD", "DD.DD.DD")))
            )
        ),
        (None,),
    ),
}


@train("yes_no_test", ("text", "test", "label"), balanced=True)
def _(p):
    """Yes/No (TRUE/FALSE, Y/N, 1/0, ...) for a property: contains a digit, is an e-mail, ..."""
    test = p.pick("test", tuple(_TESTS))
    mk_pred, mk_prop, consts = _TESTS[test]
    c = p.pick("const", consts)
    yes, no = p.pick("labels", P.YES_NO)
    pred = mk_pred(c)
    return C.balanced(pred, mk_prop(c)), (lambda s: yes if pred(s) else no)
