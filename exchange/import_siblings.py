"""One local id, one child: rows of one import file that share a local id are versions of one
record only when they describe the same child.

A spreadsheet that gives two siblings the same folio used to have the later row stored as a new
version of the earlier one (the child's profile became the sibling's, under the first child's
consents), or, when the earlier row was rejected, that row dropped from the rejects file as an
"older version". :class:`LocalIdChildren` remembers, per local id, a short fingerprint of the
first item's child, in a temporary SQLite file so that memory does not grow with the file, and
tells a later item naming another child (another sex, names not close, or a low match score).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from adapters.base import Item, Problem
from exchange.child_matching import (
    BINARY_SEXES,
    BirthWindow,
    IdentityProfile,
    clearly_another_child,
    near_words,
    normalize_text,
    profile_from_child,
)


def local_id_of(item: Item) -> str | None:
    """The local id the hub would store an item under: its document's, the one the hub keys
    a record on (with the agency). The adapter's ``Item.local_id`` may be a label of its own
    (a display folio, where the envelope carries the system's id): taken for the key, two
    records sharing a folio became one, and one record under two folios two. Only an item
    without a document is known by the adapter's local id, the only one it has."""
    document = item.document
    if document is None:
        return item.local_id or None
    local_id = document.get("local_id")
    return local_id if isinstance(local_id, str) and local_id else None


def labelled_alike(item: Item) -> bool:
    """Whether the adapter's local id of ``item`` is its document's (or it gives none): then
    the adapter's local ids are the hub's, and an item without a document under the same one
    is this record."""
    document = item.document
    return not item.local_id or (document is not None and document.get("local_id") == item.local_id)


#: Words of a rejected item's source kept to tell its child by (the adapter gave no document):
#: enough for a spreadsheet row's names, which come early; short, as one is kept per local id.
MAX_SOURCE_WORDS = 24
_FIELD = "\x1f"
#: Local ids per lookup of the temporary store (SQLite's oldest limit is 999 parameters).
_STORE_CHUNK = 500
_SEEN_AMONG = "SELECT local_id, child FROM seen WHERE local_id IN ({})"


class LocalIdChildren:
    """The child each local id of the file names: the first item with the local id says who,
    in a short fingerprint (its position, then the child's name tokens, sex and exact date of
    birth), and a later good item naming another child is rejected rather than stored as a
    version of that record — two siblings sharing a case number, or a folio typed twice.

    Another child: a different sex (both recorded), given names or surnames none of whose
    words is near (a sound-alike, a typo, an initial), or a score below
    :data:`~exchange.child_matching.SEARCH_MIN_SCORE` as child search weighs a match (the
    date of birth counts there: a corrected typo passes, another year does not):
    :func:`~exchange.child_matching.clearly_another_child`, the test child linking applies
    to a record a CURP would link to another child. When the
    first item was rejected without a document (a row with a bad date), the words of its
    source stand in for its names: a later item none of whose names is among them names
    another child. Nothing is said when either item names no one.

    The fingerprints wait in a temporary SQLite file, looked up and written once per window
    of items: memory does not grow with the file (a few microseconds a row).
    """

    def __init__(self) -> None:
        self._store: sqlite3.Connection | None = None
        self._today = date.today()

    def checked(self, window: list[Item]) -> tuple[list[Item], set[str]]:
        """``window`` with each good item that names another child than the first item of its
        local id rejected, and the positions of those."""
        named = {local_id for item in window if (local_id := local_id_of(item)) is not None}
        if not named:
            return window, set()
        seen = self._looked_up(named)
        changed: dict[str, str] = {}
        others: set[str] = set()
        checked: list[Item] = []
        for item in window:
            local_id = local_id_of(item)
            if local_id is None:
                checked.append(item)
                continue
            earlier, mine = seen.get(local_id), self._fingerprint(item)
            if earlier is None or _unnamed(earlier):
                seen[local_id] = changed[local_id] = mine
            elif _another_child(earlier, mine):
                # Rejected, or with that reason added: no later item of the first child is
                # taken to supersede it.
                others.add(item.position)
                item = replace(item, problems=(*item.problems, _other_child(local_id, earlier)))
            elif item.ok and _words_only(earlier):  # a rejected row's words: now its child's
                seen[local_id] = changed[local_id] = mine
            checked.append(item)
        self._remember(changed)
        return checked, others

    def fingerprint(self, local_id: str) -> str | None:
        """What is kept of the child ``local_id`` named first (None: not seen)."""
        return self._looked_up({local_id}).get(local_id)

    def close(self) -> None:
        """Remove the temporary file (it is opened again if more items come)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _opened(self) -> sqlite3.Connection:
        if self._store is None:
            # "": a private temporary file that SQLite removes when it is closed. It holds
            # names and dates of birth, as the file being imported does. (The standard
            # library's sqlite3, not the hub's SQL helpers: an import through the API loads
            # no SQLAlchemy.)
            store = sqlite3.connect("", isolation_level=None)
            store.execute("PRAGMA journal_mode=OFF")
            store.execute("PRAGMA synchronous=OFF")
            store.execute(
                "CREATE TABLE seen (local_id TEXT PRIMARY KEY, child TEXT NOT NULL) WITHOUT ROWID"
            )
            self._store = store
        return self._store

    def _looked_up(self, local_ids: set[str]) -> dict[str, str]:
        store, found = self._opened(), {}
        ordered = sorted(local_ids)
        for start in range(0, len(ordered), _STORE_CHUNK):
            part = ordered[start : start + _STORE_CHUNK]
            found.update(store.execute(_seen_among(len(part)), part))
        return found

    def _remember(self, changed: dict[str, str]) -> None:
        if changed:
            store = self._opened()
            store.execute("BEGIN")
            store.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?)", sorted(changed.items()))
            store.execute("COMMIT")

    def _child(self, document: Any) -> IdentityProfile:
        data = document.get("data") if isinstance(document, Mapping) else None
        child = data.get("child") if isinstance(data, Mapping) else None
        return profile_from_child(child if isinstance(child, Mapping) else {}, self._today)

    def _fingerprint(self, item: Item) -> str:
        """The child of an item's document; for a rejected item without one, the child of its
        source if that is an envelope (the native formats), else the words of its source."""
        source = item.document if item.document is not None else item.source
        if isinstance(source, Mapping) and isinstance(source.get("data"), Mapping):
            child = self._child(source)
            birth = child.birth.exact.isoformat() if child.birth and child.birth.exact else ""
            names = (" ".join(part) for part in (child.given, child.surnames, child.alias))
            return _FIELD.join((item.position, "c", *names, (child.sex or "")[:1], birth))
        words = " ".join(_source_words(source, [], 0))
        return _FIELD.join((item.position, "w", words))


@functools.lru_cache(maxsize=8)
def _seen_among(count: int) -> str:
    """The lookup of ``count`` local ids in the temporary store (placeholders only)."""
    return _SEEN_AMONG.format(", ".join("?" * count))


def _words_only(fingerprint: str) -> bool:
    """Whether a fingerprint holds the words of a rejected item's source, not a child."""
    return fingerprint.split(_FIELD, 2)[1] == "w"


def _unnamed(fingerprint: str) -> bool:
    """Whether a fingerprint says nothing of who the child is."""
    return not fingerprint.split(_FIELD, 2)[2].strip(_FIELD)


def _profile(fields: list[str]) -> IdentityProfile:
    given, surnames, alias, sex, birth = fields
    return IdentityProfile(
        given=tuple(given.split()),
        surnames=tuple(surnames.split()),
        alias=tuple(alias.split()),
        birth=BirthWindow.on(date.fromisoformat(birth)) if birth else None,
        sex=next((code for code in BINARY_SEXES if sex and code.startswith(sex)), None),
    )


def _another_child(first: str, later: str) -> bool:
    """Whether two fingerprints name different children (see :class:`LocalIdChildren`)."""
    _position, first_kind, *first_fields = first.split(_FIELD)
    _position, later_kind, *later_fields = later.split(_FIELD)
    if first_kind == "w" or later_kind == "w":
        if first_kind == later_kind:
            return False  # two rows' words: nothing to weigh
        words, fields = (
            (first_fields[0], later_fields)
            if first_kind == "w"
            else (later_fields[0], first_fields)
        )
        child = _profile(fields)
        return bool(words) and any(
            part and not any(near_words(token, word) for token in part for word in words.split())
            for part in (child.given or child.alias, child.surnames)
        )
    return clearly_another_child(_profile(first_fields), _profile(later_fields))


def _source_words(source: Any, words: list[str], depth: int) -> list[str]:
    """The name-like words (letters only, two or more) of the text in ``source`` — a row's
    cells, a case's values — in order, each once, at most :data:`MAX_SOURCE_WORDS`."""
    if isinstance(source, str):
        if len(source) <= 80:
            for word in normalize_text(source).split():
                if len(words) < MAX_SOURCE_WORDS and _name_like(word) and word not in words:
                    words.append(word)
    elif depth < 4 and isinstance(source, Mapping | list | tuple):
        for value in source.values() if isinstance(source, Mapping) else source:
            if len(words) >= MAX_SOURCE_WORDS:
                break
            _source_words(value, words, depth + 1)
    return words


def _name_like(word: str) -> bool:
    return len(word) > 1 and word.isalpha()


def _other_child(local_id: str, fingerprint: str) -> Problem:
    position = fingerprint.split(_FIELD, 1)[0]
    return Problem(
        "/local_id",
        f"el mismo id local «{local_id}» que la posición {position}, pero otra niña, niño o "
        "adolescente (otro nombre, sexo o fecha de nacimiento): no se guardó como versión de "
        "aquel expediente; dé a cada niña, niño o adolescente su propio id local",
        f"the same local id '{local_id}' as position {position}, but another child (another "
        "name, sex or date of birth): not stored as a version of that record; give each child "
        "its own local id",
    )
