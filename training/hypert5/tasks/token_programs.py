"""Token programs: RobustFill-style extraction programs over the realistic values the families use.

``programs.py`` splits rows of random pseudo-words on one delimiter. The held-out families read
names, e-mails, dates, paths and product rows, where the part to take is found by what it is: the
last word, the first number, the text before '@'. A token program joins 1-3 pieces with constants
(the ones ``programs.py`` uses); a piece takes
- ``Token(kind, index)``: the index-th run of a token kind (``word``: letters, joined across inner
  hyphens and apostrophes as in 'Berners-Lee' or "O'Brien", which people count as one word;
  ``number``: digits; ``alnum``: letters and digits; ``cap``: a capitalised word), index 0, 1, 2, -1
  or -2;
- ``Before(char)`` / ``After(char)``: the text before the first / after the last ``char``;
and then cuts and re-cases it as ``programs.py`` does. Where a program cannot run on an input (too
few tokens, the char absent) it gives no output, and the episode draws other inputs. The shipped
HyperT5-LoRA had a quarter of its last 3,000 stage-2 steps drawn from token programs
(models/default/README.md): held-out exact match at k = 3 went from 5.6 to 7.8 % (5.7 to 6.7 % on a second set of
tasks), `name_last_upper_first` from 0 to 31 %, at 0.3-2.5 points less on the training families.

Honest evaluation: a held-out composition never appears in training, so the held-out score measures
reading a new task, not recalling one. ``forbidden`` states the rules, and ``tests/test_token_programs.py``
checks both them and, by behaviour, that no drawn program computes a held-out task on that family's own
inputs:
- ``name_last_upper_first``: a program that re-cases a piece gives no output where its pieces come
  out of their order in the input (``TokenProgram.run`` judges it on each input);
- ``sku_from_cells`` and ``date_month_code`` ('MAR 2024' from '7 March 2024'): at most one piece is
  cut, and a cut piece is never re-cased;
- ``email_company_name`` and ``email_to_full_name``: no piece of an e-mail is re-cased;
- ``date_compact``: pieces of a date are never joined with nothing between them;
- ``contact_tag`` and ``url_user_email``: no source is a name-and-phone or user-and-URL row;
- title case, replacing, padding, masking, month names from numbers, arithmetic and counting are not
  in the language.

The ``token-edits`` language (``--program-language token-edits``) lets a piece also carry one edit
after its cut and case (``EDITS``: title case, zero-padding, masking each word but its first letter,
replacing one separator by another), operations the training families use on other values
(``pad_number``, ``email_mask``, ``path_convert``, ``name_fix_case``). Its rules add:
- ``name_mask``: names are never masked;
- ``path_stem_title``: a path is never title-cased, and no separator in it is replaced;
- ``code_number_padded``: no piece of a code is padded;
- e-mails carry no edit, and title case counts as re-casing in the rules above.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass

from . import primitives as P
from . import values as V
from .episodes import Episode
from .programs import AFTER, BEFORE, CASES, CUTS, SEPARATORS, modify, program_episode


def _mask_words(ch: str):
    return lambda s: " ".join(w[:1] + ch * (len(w) - 1) for w in s.split(" "))


def _replace(old: str, new: str):
    return lambda s: s.replace(old, new)


# A piece's optional edit in the token-edits language, by name. A pad edit cannot run on a piece that
# is not all digits ('' is "no output", as for a missing token).
EDITS = {
    "none": lambda s: s,
    "title": lambda s: P.apply_case(s, "title"),
    **{f"pad{n}": (lambda n: lambda s: P.pad_left(s, n) if s.isdigit() else "")(n) for n in range(3, 7)},
    **{f"mask{ch}": _mask_words(ch) for ch in "*x#"},
    **{
        f"{old}->{new}": _replace(old, new)
        for old, new in (("_", " "), ("-", " "), (".", " "), (" ", "_"), (" ", "-"), (" ", "."), ("/", "-"))
    },
}

FAMILY = "token_program"
TOKEN_KINDS = {"word": r"[^\W\d_]+(?:['-][^\W\d_]+)*", "number": r"\d+", "alnum": r"[^\W_]+", "cap": r"[A-Z][a-z]+"}
INDICES = (0, 1, 2, -1, -2)
CHARS = ("@", ".", "/", "\\", "-", "_", " ", "|", ":", ",")


def _name(rng: random.Random) -> str:
    first, _, last = V.person(rng)
    return f"{first} {V.maybe_double_barrelled(rng, last)}"


DATE_LAYOUTS = ("YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "D MMMM YYYY", "DD.MM.YYYY", "MMMM D, YYYY")
# The kinds of input, each a realistic value from the families' own pools.
SOURCES = {
    "name": _name,
    "titled_name": lambda rng: f"{rng.choice(V.TITLES)} {_name(rng)}",
    "email": V.email,
    "date": lambda rng: P.format_date(*V.date(rng), rng.choice(DATE_LAYOUTS)),
    "path": lambda rng: V.file_path(rng, rng.random() < 0.3),
    "url": V.url,
    "code": lambda rng: V.product_code(rng, rng.choice(V.CODE_PATTERNS)),
    "address": V.street_address,
    "product_row": lambda rng: f"{V.product(rng)} | {V.color(rng)} | {rng.choice(V.SIZES)}",
    "place_row": lambda rng: f"{V.city(rng)} | {V.country(rng)}",
    "company_row": lambda rng: f"{V.company(rng)} | {V.job(rng)}",
    "sentence": lambda rng: V.sentence(rng, 3, 7),
}


@dataclass(frozen=True)
class Piece:
    take: str  # "token", "before" or "after"
    arg: str  # the token kind, or the char
    index: int  # for tokens
    case: str  # CASES
    cut: str  # CUTS
    edit: str = "none"  # EDITS; only the token-edits language draws another

    @property
    def recases(self) -> bool:
        return self.case != "keep" or self.edit == "title"

    def render(self, text: str) -> str:
        """The piece's text cut, re-cased and edited ('' when the edit cannot run on it)."""
        return EDITS[self.edit](modify(text, self.case, self.cut))

    def locate(self, s: str) -> tuple[int, str] | None:
        """Where in ``s`` the piece's text starts, and the text (before cutting and re-casing), or None
        when it is not there."""
        if self.take == "token":
            runs = list(re.finditer(TOKEN_KINDS[self.arg], s))
            if not -len(runs) <= self.index < len(runs):
                return None
            return runs[self.index].start(), runs[self.index].group()
        if self.take == "before":
            i = s.find(self.arg)
            return (0, s[:i]) if i > 0 else None
        i = s.rfind(self.arg)
        return (i + len(self.arg), s[i + len(self.arg) :]) if 0 <= i < len(s) - len(self.arg) else None

    def apply(self, s: str) -> str | None:
        """The piece's text, cut and re-cased, or None when it is not there."""
        found = self.locate(s)
        return (self.render(found[1]) or None) if found else None


@dataclass(frozen=True)
class TokenProgram:
    source: str  # a SOURCES key
    pieces: tuple[Piece, ...]
    constants: tuple[str, ...]  # len(pieces) + 1: before, between and after the pieces

    def output(self, s: str) -> str:
        """What the pieces and constants make of ``s``, or '' where a piece is not there."""
        return self._assemble([piece.locate(s) for piece in self.pieces])

    def run(self, s: str) -> str:
        """The program's output, or '' (no episode uses such an input) where it cannot run on ``s`` or
        would re-case a piece while taking the pieces out of their order in ``s`` (the reordering is
        judged on each input, where the pieces are found: name_last_upper_first)."""
        found = [piece.locate(s) for piece in self.pieces]
        starts = [f[0] for f in found if f is not None]
        if any(a > b for a, b in zip(starts, starts[1:])) and any(p.recases for p in self.pieces):
            return ""
        return self._assemble(found)

    def _assemble(self, found: list[tuple[int, str] | None]) -> str:
        out = self.constants[0]
        for piece, where, after in zip(self.pieces, found, self.constants[1:]):
            part = piece.render(where[1]) if where else ""
            if not part:
                return ""
            out += part + after
        return out

    def gen(self, rng: random.Random) -> str:
        return SOURCES[self.source](rng)


def forbidden(program: TokenProgram) -> str | None:
    """Why the program imitates a held-out family, or None (module docstring: the rules; the one about
    reordering depends on the input, and ``TokenProgram.run`` applies it)."""
    pieces = program.pieces
    recased = [p for p in pieces if p.recases]
    cut = [p for p in pieces if p.cut != "all"]
    edits = {p.edit for p in pieces} - {"none"}
    if len(cut) > 1:
        return "cuts several pieces (sku_from_cells)"
    if any(p.recases for p in cut):
        return "re-cases a cut piece (sku_from_cells, date_month_code)"
    if program.source == "email" and (recased or edits):
        return "re-cases or edits a piece of an e-mail (email_company_name, email_to_full_name)"
    if program.source in ("name", "titled_name") and any(e.startswith("mask") for e in edits):
        return "masks a name (name_mask)"
    if program.source == "path" and any(e == "title" or "->" in e for e in edits):
        return "title-cases a path or replaces a separator in it (path_stem_title)"
    if program.source == "code" and any(e.startswith("pad") for e in edits):
        return "pads a piece of a code (code_number_padded)"
    if program.source == "date" and len(pieces) > 1 and "" in program.constants[1:-1]:
        return "joins pieces of a date with nothing between them (date_compact)"
    if program.source not in SOURCES:
        return "reads a source outside the language (contact_tag, url_user_email)"
    if any(
        p.case not in CASES
        or p.cut not in CUTS
        or p.edit not in EDITS
        or (p.take == "token" and p.arg not in TOKEN_KINDS)
        for p in pieces
    ):
        return "uses an operation outside the language"
    return None


def _piece(rng: random.Random, edits: bool) -> Piece:
    cut = "all" if rng.random() < 0.6 else rng.choice(CUTS[1:])
    case = "keep" if rng.random() < 0.5 else rng.choice(CASES[1:])
    if rng.random() < 0.7:
        piece = Piece("token", rng.choice(tuple(TOKEN_KINDS)), rng.choice(INDICES), case, cut)
    else:
        piece = Piece(rng.choice(("before", "after")), rng.choice(CHARS), 0, case, cut)
    # Drawn after the rest, so the tokens language (edits=False) draws exactly what it always drew.
    if edits and rng.random() < 0.4:
        return dataclasses.replace(piece, edit=rng.choice(tuple(EDITS)[1:]))
    return piece


def sample_token_program(rng: random.Random, edits: bool = False) -> TokenProgram:
    """A random program that ``forbidden`` accepts; with ``edits``, of the token-edits language."""
    while True:
        pieces = tuple(_piece(rng, edits) for _ in range(rng.randint(1, 3)))
        constants = (rng.choice(BEFORE), *(rng.choice(SEPARATORS) for _ in pieces[1:]), rng.choice(AFTER))
        program = TokenProgram(rng.choice(tuple(SOURCES)), pieces, constants)
        if forbidden(program) is None:
            return program


def token_program_episode(rng: random.Random, program: TokenProgram, k: int, num_queries: int) -> Episode | None:
    """k demonstrations and queries of one program, with the families' contracts (episodes.py), or
    None when it runs on too few of its source's inputs or copies every input unchanged."""
    if not any(program.run(program.gen(rng)) for _ in range(4)):
        return None  # cheaply: most programs that fail need a token their source rarely has
    return program_episode(rng, program, k, num_queries, FAMILY)


def sample_token_program_episode(rng: random.Random, k: int, num_queries: int, edits: bool = False) -> Episode:
    """An episode of a fresh random token program (with ``edits``: of the token-edits language)."""
    for _ in range(100):
        episode = token_program_episode(rng, sample_token_program(rng, edits), k, num_queries)
        if episode is not None:
            return episode
    raise RuntimeError(f"no token program produced an episode with k={k}, q={num_queries}")


def sample_token_edit_program_episode(rng: random.Random, k: int, num_queries: int) -> Episode:
    """An episode of a fresh random program of the token-edits language."""
    return sample_token_program_episode(rng, k, num_queries, edits=True)
