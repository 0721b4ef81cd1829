"""Matching children by identity data: normalised names, dates of birth and nationality.

Pure functions (no database, no Flask): the child index (:mod:`exchange.children`) stores what
:func:`profile_from_child` returns and :mod:`exchange.child_search` scores with
:func:`score_match`. Everything here concerns data of the ``identity`` category only.

Names. :func:`normalize_text` lowercases, strips accents (Unicode NFKD, combining marks
dropped, so ``Núñez`` → ``nunez``), turns hyphens and punctuation into spaces and collapses
runs of spaces. :func:`name_tokens` splits into tokens and drops Spanish (and a few other)
surname particles (``de la Cruz`` → ``cruz``), so a compound surname written in one field
(``García López``) or two (``García`` / ``López``) gives the same tokens.

Similarity of two tokens (:func:`token_similarity`): 1 when equal, 0.95 when they sound alike
in Spanish (:func:`phonetic_key`: ``Hernández``/``Hernandes``, ``Jonathan``/``Jhonatan``,
``Yesenia``/``Yessenia``), 0.7 for an initial and the name it starts, otherwise the Jaccard
index of their character trigrams. Two token lists are compared by the mean best match of the
shorter list, times ``(shorter/longer) ** 0.15`` so a missing second surname costs a little.

Numbers. Offices give unnamed children numbered aliases (``Niño 7``, ``Niño 777``), so a
number in a name is an identifier, not something spelled: tokens with digits agree only when
they are the same (leading zeros aside), and two token lists whose numbers differ do not
agree at all (``Niño 7`` against ``Niño 777``, or against ``Niño``), however alike the rest is.

Score (:func:`score_match`), between 0 and 1::

    0.6 × name + 0.3 × date of birth + 0.1 × nationality

where a part unknown on either side counts 0.5 (no evidence either way). A date of birth that
cannot be the same child (more than two years apart, or outside an age estimation's range)
multiplies the score by 0.6, and a different sex (both recorded as female/male) by 0.5, so
that a common name alone never passes :data:`SEARCH_MIN_SCORE`.

Telling children apart (:func:`clearly_another_child`): two profiles that cannot be of one
child — another sex, given names each of which has a word near none of the other's, surnames
none of whose words is near, or a score below :data:`SEARCH_MIN_SCORE`.
:func:`curp_contradictions` reads what a CURP codes (date of birth, sex) against the record
stating it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

#: Candidates scoring below this are not answered by a search.
SEARCH_MIN_SCORE = 0.5
#: Pairs of children at or above this are listed as probable duplicates.
DUPLICATE_MIN_SCORE = 0.85
#: An age estimation is widened by this many years on each side (estimates err by 1–2 years).
ESTIMATE_SLACK_YEARS = 1

WEIGHT_NAME, WEIGHT_BIRTH, WEIGHT_NATIONALITY = 0.6, 0.3, 0.1
NEUTRAL = 0.5
BIRTH_CONTRADICTION_FACTOR = 0.6
SEX_CONTRADICTION_FACTOR = 0.5

#: Words that join or precede surnames and carry no identity on their own.
PARTICLES = frozenset("de del la las los lo y e da das do dos di van von der den le du".split())
#: Abbreviations common in Mexican and Central American records (given names only).
GIVEN_NAME_ABBREVIATIONS = {"ma": "maria", "gpe": "guadalupe", "fco": "francisco"}
#: Sex codes that can contradict each other ("intersex" and "unknown" never do).
BINARY_SEXES = frozenset({"female", "male"})
#: ISO 3166-1 "XX": stateless or undetermined — no evidence for or against a match.
UNKNOWN_COUNTRY = "XX"
#: Longest stored name key (the column is String(60)).
KEY_LENGTH = 60

_APOSTROPHES = str.maketrans("", "", "'’`´")


@functools.lru_cache(maxsize=65536)
def normalize_text(text: str) -> str:
    """Lowercase, accents stripped, punctuation and hyphens as single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    letters = (
        char if char.isalnum() else " "
        for char in decomposed.casefold()
        if not unicodedata.combining(char)
    )
    return " ".join("".join(letters).split())


@functools.lru_cache(maxsize=65536)  # names repeat a lot across a bulk push
def name_tokens(text: str | None, *, given: bool = False) -> tuple[str, ...]:
    """Normalised tokens of a name part, particles dropped (kept if nothing else is left)."""
    if not text:
        return ()
    words = normalize_text(text).split()
    if given:
        words = [GIVEN_NAME_ABBREVIATIONS.get(word, word) for word in words]
    kept = [word for word in words if word not in PARTICLES]
    return tuple(kept or words)


_PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    (r"ph", "f"),
    (r"ch", "\x01"),  # kept apart from c/k and from the silent h
    (r"ll", "y"),
    (r"qu(?=[ei])", "k"),
    (r"q", "k"),
    (r"gu(?=[ei])", "\x02"),  # hard g before e/i: Guillermo, Miguel
    (r"g(?=[ei])", "j"),
    (r"c(?=[ei])", "s"),
    (r"c", "k"),
    (r"z", "s"),
    (r"v", "b"),
    (r"w", "u"),
    (r"h", ""),
    (r"y(?![aeiou])", "i"),
    (r"(.)\1+", r"\1"),
    ("\x01", "ch"),
    ("\x02", "g"),
)
_COMPILED_PHONETIC = tuple((re.compile(pattern), repl) for pattern, repl in _PHONETIC_RULES)


@functools.lru_cache(maxsize=65536)
def phonetic_key(token: str) -> str:
    """A Spanish sound-alike key: spellings a clerk may hear the same map to one key."""
    key = token
    for pattern, replacement in _COMPILED_PHONETIC:
        key = pattern.sub(replacement, key)
    return key or token


@functools.lru_cache(maxsize=65536)
def _trigrams(token: str) -> frozenset[str]:
    padded = f"  {token} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


_NUMBER = re.compile(r"\d+")


@functools.lru_cache(maxsize=65536)
def token_numbers(token: str) -> tuple[int, ...]:
    """The numbers written in a token (``"777"`` → ``(777,)``, ``"07"`` → ``(7,)``)."""
    return tuple(int(number) for number in _NUMBER.findall(token))


@functools.lru_cache(maxsize=65536)
def _without_leading_zeros(token: str) -> str:
    return _NUMBER.sub(lambda number: str(int(number[0])), token)


@functools.lru_cache(maxsize=262144)
def token_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if token_numbers(a) or token_numbers(b):
        # A number is not spelled but assigned: "7" and "777" sound alike once repeated
        # letters collapse, and "1" is the initial of "1000", yet they are different children.
        return 1.0 if _without_leading_zeros(a) == _without_leading_zeros(b) else 0.0
    if phonetic_key(a) == phonetic_key(b):
        return 0.95
    if min(len(a), len(b)) == 1 and a[0] == b[0]:
        return 0.7  # an initial: "J" and "Jose"
    left, right = _trigrams(a), _trigrams(b)
    return len(left & right) / len(left | right)


def tokens_similarity(a: Sequence[str], b: Sequence[str]) -> float | None:
    """How alike two lists of name tokens are, order ignored; ``None`` if one is empty.

    Symmetric: with lists of equal length both directions are averaged.
    """
    if not a or not b:
        return None
    if _numbers_in(a) != _numbers_in(b):
        return 0.0  # numbered aliases ("Niño 7", "Niño 777") differ in what identifies them
    if len(a) == len(b):
        return (_best_matches(a, b) + _best_matches(b, a)) / 2
    shorter, longer = (a, b) if len(a) < len(b) else (b, a)
    coverage = float((len(shorter) / len(longer)) ** 0.15)
    return _best_matches(shorter, longer) * coverage


def _numbers_in(tokens: Sequence[str]) -> list[int]:
    return sorted(number for token in tokens for number in token_numbers(token))


def _best_matches(shorter: Sequence[str], longer: Sequence[str]) -> float:
    total: float = sum(max(token_similarity(s, t) for t in longer) for s in shorter)
    return total / len(shorter)


# -- dates of birth ---------------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class BirthWindow:
    """When a child was born: an exact date, or a range from an age estimation."""

    earliest: date
    latest: date
    exact: date | None = None

    @classmethod
    def on(cls, day: date) -> BirthWindow:
        return cls(day, day, day)

    @classmethod
    def from_age(cls, years: int, on: date, slack: int = ESTIMATE_SLACK_YEARS) -> BirthWindow:
        """Born so as to be ``years`` old on ``on``, widened by ``slack`` years each side."""
        earliest = _years_before(on, years + 1 + slack) + timedelta(days=1)
        return cls(earliest, _years_before(on, max(years - slack, 0)))

    @property
    def precision(self) -> str:
        return "exact" if self.exact else "estimated"


def _days_apart(a: BirthWindow, b: BirthWindow) -> int:
    """0 when the windows overlap, else the days between them."""
    if a.latest < b.earliest:
        return (b.earliest - a.latest).days
    if b.latest < a.earliest:
        return (a.earliest - b.latest).days
    return 0


def birth_agreement(a: BirthWindow | None, b: BirthWindow | None) -> tuple[float | None, str]:
    """(score, label): 1 same date, 0.85 day and month swapped, 0.7 inside an estimation,
    0.6 a typo away or two overlapping estimations, down to 0 when they cannot match."""
    if a is None or b is None:
        return None, ""
    if a.exact and b.exact:
        x, y = a.exact, b.exact
        if x == y:
            return 1.0, "date_of_birth"
        if x.year == y.year and (x.day, x.month) == (y.month, y.day):
            return 0.85, "date_of_birth_swapped"
        gap = abs((x - y).days)
        if (x.year, x.month) == (y.year, y.month) or (
            (x.month, x.day) == (y.month, y.day) and abs(x.year - y.year) == 1
        ):
            return 0.6, "date_of_birth_near"
        if gap <= 366:
            return 0.4, "date_of_birth_near"
        if gap <= 731:
            return 0.2, "date_of_birth_near"
        return 0.0, ""
    gap = _days_apart(a, b)
    if gap == 0:
        return (0.7 if a.exact or b.exact else 0.6), "date_of_birth_estimated"
    if gap <= 366:
        return 0.3, "date_of_birth_near"
    return 0.0, ""


# -- profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityProfile:
    """What matching needs to know about a child (or a search): identity data only.

    ``unplaced`` holds tokens of a full name whose given/surname split is unknown.
    """

    given: tuple[str, ...] = ()
    surnames: tuple[str, ...] = ()
    alias: tuple[str, ...] = ()
    unplaced: tuple[str, ...] = ()
    birth: BirthWindow | None = None
    sex: str | None = None
    nationalities: frozenset[str] = frozenset()
    #: The source record's CURP and UNHCR individual numbers, ``kind:value``, sorted: kept with
    #: its profile so that child linking can tell which identifier a new version no longer
    #: states (exchange.child_linking); not used in matching.
    identifiers: tuple[str, ...] = ()

    @property
    def all_tokens(self) -> tuple[str, ...]:
        named = self.given + self.surnames + self.unplaced
        return named or self.alias


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def nationality_set(codes: Iterable[Any]) -> frozenset[str]:
    return frozenset(
        str(code).upper() for code in codes if isinstance(code, str) and code != UNKNOWN_COUNTRY
    )


def profile_from_child(
    child: Mapping[str, Any], today: date, identifiers: tuple[str, ...] = ()
) -> IdentityProfile:
    """The identity profile of a ``child/1`` document (as found in ``case-record/1``), with
    ``identifiers`` (:attr:`IdentityProfile.identifiers`).

    An age estimation without an assessment date is taken as of ``today`` (the push).
    """
    given_names = child.get("names")
    names: Mapping[str, Any] = given_names if isinstance(given_names, Mapping) else {}
    birth: BirthWindow | None = None
    exact = _parse_date(child.get("date_of_birth"))
    estimation = child.get("age_estimation")
    if exact is not None:
        birth = BirthWindow.on(exact)
    elif isinstance(estimation, Mapping) and isinstance(estimation.get("estimated_age_years"), int):
        assessed = _parse_date(estimation.get("assessed_on")) or today
        birth = BirthWindow.from_age(estimation["estimated_age_years"], assessed)
    sex = child.get("sex")
    nationality = child.get("nationality")
    return IdentityProfile(
        given=name_tokens(names.get("given_names"), given=True),
        surnames=name_tokens(names.get("first_surname")) + name_tokens(names.get("second_surname")),
        alias=name_tokens(child.get("alias") if isinstance(child.get("alias"), str) else None),
        birth=birth,
        sex=sex if sex in BINARY_SEXES else None,
        nationalities=nationality_set(nationality if isinstance(nationality, list) else ()),
        identifiers=identifiers,
    )


def _key(part: str, token: str) -> str:
    return f"{part}:{phonetic_key(token)}"[:KEY_LENGTH]


def index_keys(profile: IdentityProfile) -> set[str]:
    """Blocking keys stored for indexed lookup: ``g:`` + sound key of each given-name (or
    alias) token, ``s:`` + sound key of each surname token. Initials are too common to use."""
    keys = {f"s:{phonetic_key(t)}"[:KEY_LENGTH] for t in profile.surnames if len(t) > 1}
    keys |= {
        f"g:{phonetic_key(t)}"[:KEY_LENGTH] for t in profile.given + profile.alias if len(t) > 1
    }
    return keys


def query_keys(query: IdentityProfile) -> set[str]:
    """Keys to look up for a search: a full name's tokens may be given names or surnames."""
    keys = index_keys(query)
    for token in query.unplaced:
        if len(token) > 1:
            keys |= {
                f"g:{phonetic_key(token)}"[:KEY_LENGTH],
                f"s:{phonetic_key(token)}"[:KEY_LENGTH],
            }
    return keys


#: At or above this score two children can only match if their birth windows share a calendar
#: year, or their exact dates share month and day (a year typo): any other pair of dates scores
#: at most 0.4 (see birth_agreement), so at most 0.6 + 0.3 × 0.4 + 0.1 = 0.82.
YEAR_BLOCKING_MIN_SCORE = 0.83


def duplicate_block_keys(profile: IdentityProfile, *, by_year: bool) -> set[tuple[str, ...]]:
    """Blocks for finding duplicates; two profiles are compared only if they share one.

    A block is a (given-name sound, surname sound) pair — both names agreeing is needed for a
    probable duplicate — or the sound of a one-word name (an alias); below
    :data:`YEAR_BLOCKING_MIN_SCORE` also a pair of surname sounds. ``by_year`` (for scores
    of at least :data:`YEAR_BLOCKING_MIN_SCORE`) adds each birth year of the profile's window,
    or the month and day of an exact date, which keeps blocks small with 100,000 children.
    """
    given = sorted({phonetic_key(t) for t in profile.given + profile.alias if len(t) > 1})
    surnames = sorted({phonetic_key(t) for t in profile.surnames if len(t) > 1})
    names: set[tuple[str, ...]] = {(g, s) for g in given for s in surnames}
    if not names:
        names = {(g, "") for g in given} | {("", s) for s in surnames}
    if not by_year:
        # Lower thresholds also compare children sharing both surnames (twins, siblings).
        return names | {(a, b) for a in surnames for b in surnames if a < b}
    birth = profile.birth
    if birth is None:
        return {(*name, "?") for name in names}
    stamps = {str(year) for year in range(birth.earliest.year, birth.latest.year + 1)}
    if birth.exact:
        stamps.add(birth.exact.strftime("--%m-%d"))
    return {(*name, stamp) for name in names for stamp in stamps}


# -- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    score: float
    matched_on: tuple[str, ...]


def name_agreement(query: IdentityProfile, candidate: IdentityProfile) -> float:
    """0..1: given names against given names and surnames against surnames, or every token
    against every token (a full name, or parts recorded in the wrong field)."""
    cross = tokens_similarity(query.all_tokens, candidate.all_tokens) or 0.0
    if query.unplaced:
        structured = 0.0
    else:
        cand_given = candidate.given or candidate.alias
        parts = [
            part
            for part in (
                tokens_similarity(query.given, cand_given),
                tokens_similarity(query.surnames, candidate.surnames),
            )
            if part is not None
        ]
        structured = sum(parts) / len(parts) if parts else 0.0
        if len(parts) == 1:
            structured *= 0.85  # one part could be compared: less evidence
        cross *= 0.9
    alias = 0.0
    if query.alias or candidate.alias:
        alias = max(
            tokens_similarity(query.alias, candidate.all_tokens) or 0.0,
            tokens_similarity(query.all_tokens, candidate.alias) or 0.0,
        )
    return max(structured, cross, alias)


def score_match(query: IdentityProfile, candidate: IdentityProfile) -> Match:
    """How likely ``candidate`` is the child ``query`` describes (see module docstring)."""
    name = name_agreement(query, candidate)
    birth, birth_label = birth_agreement(query.birth, candidate.birth)
    nationality: float | None = None
    if query.nationalities and candidate.nationalities:
        nationality = 1.0 if query.nationalities & candidate.nationalities else 0.0
    score = (
        WEIGHT_NAME * name
        + WEIGHT_BIRTH * (NEUTRAL if birth is None else birth)
        + WEIGHT_NATIONALITY * (NEUTRAL if nationality is None else nationality)
    )
    if birth == 0.0:
        score *= BIRTH_CONTRADICTION_FACTOR
    sex_differs = bool(query.sex and candidate.sex and query.sex != candidate.sex)
    if sex_differs:
        score *= SEX_CONTRADICTION_FACTOR
    matched: list[str] = []
    if name >= 0.9:
        matched.append("name")
    elif name >= 0.5:
        matched.append("name_similar")
    if birth_label:
        matched.append(birth_label)
    if nationality == 1.0:
        matched.append("nationality")
    if query.sex and query.sex == candidate.sex:
        matched.append("sex")
    return Match(round(min(score, 1.0), 3), tuple(matched))


# -- telling children apart -------------------------------------------------------------------


def near_words(a: str, b: str) -> bool:
    """Two name words one person may have been written with: alike as child search finds them
    (the same sound, an initial, shared letter groups), or a typo apart."""
    if token_similarity(a, b) >= 0.5:
        return True
    shorter = min(len(a), len(b))
    return shorter >= 4 and within_edits(a, b, 1 if shorter < 8 else 2)


def within_edits(a: str, b: str, most: int) -> bool:
    """Whether ``a`` becomes ``b`` with at most ``most`` insertions, deletions, replacements
    or swaps of neighbouring letters (optimal string alignment)."""
    if abs(len(a) - len(b)) > most:
        return False
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        earlier, before, row = before, row, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(before[j] + 1, row[j - 1] + 1, before[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], earlier[j - 2] + 1)
    return row[-1] <= most


def clearly_another_child(one: IdentityProfile, other: IdentityProfile) -> bool:
    """Whether two profiles cannot be of one child: a different sex (both recorded), given
    names each with a word near none of the other's (:func:`given_names_differ`: José Luis
    and José Antonio, not José Luis and José), surnames none of whose words is near
    (:func:`near_words`), or a score below
    :data:`SEARCH_MIN_SCORE` (where the date of birth counts: a corrected typo passes, another
    year does not). Nothing is said when either names no one and the sexes agree.

    The test ``puente import`` tells two children sharing a local id by
    (:mod:`exchange.import_siblings`), and child linking a record from the child a CURP or
    UNHCR number of it already links to (:mod:`exchange.child_linking`): a mistyped CURP, or
    siblings given one, must not join two children's records, consents and access requests.
    """
    if one.sex and other.sex and one.sex != other.sex:
        return True
    if not one.all_tokens or not other.all_tokens:
        return False  # no name on one side: nothing more to weigh
    if given_names_differ(one.given or one.alias, other.given or other.alias):
        return True
    mine, theirs = one.surnames, other.surnames
    if mine and theirs and not any(near_words(a, b) for a in mine for b in theirs):
        return True
    return score_match(one, other).score < SEARCH_MIN_SCORE


def given_names_differ(mine: Sequence[str], theirs: Sequence[str]) -> bool:
    """Whether each side has a given-name word near none of the other's: twins or siblings
    given one CURP often share a first name (José Luis, José Antonio), while one child's
    records leave a name out (José Luis, José) or shorten it (José Luis, J. Luis)."""

    def unmatched(words: Sequence[str], others: Sequence[str]) -> bool:
        return any(not any(near_words(word, other) for other in others) for word in words)

    return bool(mine and theirs) and unmatched(mine, theirs) and unmatched(theirs, mine)


#: A CURP's parts: 4 letters of the names, the date of birth (yymmdd), the sex (H hombre,
#: M mujer, X non-binary), the state and 3 consonants, a character telling the century (a
#: digit for births before 2000, a letter after) and a check digit.
_CURP_PARTS = re.compile(r"[A-Z]{4}(\d{6})([HMX])[A-Z]{5}([0-9A-Z])\d")
_CURP_SEXES = {"H": "male", "M": "female"}


def curp_contradictions(curp: str, profile: IdentityProfile) -> tuple[tuple[str, str, str], ...]:
    """What a CURP codes that the record stating it contradicts, as (field, the CURP's value,
    the record's): ``date_of_birth`` (positions 5–10, the century from position 17, against
    the record's exact date) and ``sex`` (position 11, H or M, against female or male). An
    age estimation, a sex coded X, or a value that is no CURP contradicts nothing."""
    parts = _CURP_PARTS.fullmatch(curp)
    if parts is None:
        return ()
    found = []
    stamp, coded, century = parts[1], _CURP_SEXES.get(parts[2]), parts[3]
    exact = profile.birth.exact if profile.birth is not None else None
    if exact is not None:
        try:
            born: date | None = date(
                (1900 if century.isdigit() else 2000) + int(stamp[:2]),
                int(stamp[2:4]),
                int(stamp[4:]),
            )
        except ValueError:
            born = None  # a date that does not exist: the CURP is wrong, but says no date
        if born is not None and born != exact:
            found.append(("date_of_birth", born.isoformat(), exact.isoformat()))
    if coded and profile.sex and profile.sex != coded:
        found.append(("sex", coded, profile.sex))
    return tuple(found)
