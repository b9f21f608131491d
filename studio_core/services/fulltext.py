"""Full-text search over prompts and post titles: the one place that knows SQLite FTS5 and PostgreSQL tsvector.

The indexes are ``generated_images_fts`` and ``community_posts_fts`` (raw DDL, see ``models.fulltext_ddl``).
User input is never spliced into SQL. PostgreSQL gets it as a bound parameter of ``plainto_tsquery``, which has
no operators; SQLite gets a bound MATCH expression built here from the input's words only, each one quoted, so
``%``, ``_``, quotes, ``OR``, ``NEAR`` or ``*`` typed in a search box are just text. Every word must match, as
a whole word (lower case; accents folded on SQLite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, TableClause, bindparam, column, func, literal_column, table

from studio_core.db import Database

MAX_QUERY_CHARS = 200
MAX_TERMS = 12
_WORD = re.compile(r"[^\W_]+")


def search_terms(query: str) -> list[str]:
    """The words of a search as the tokenizers split them (letters and digits); [] means "no search"."""
    return _WORD.findall((query or "")[:MAX_QUERY_CHARS].lower())[:MAX_TERMS]


def _fts5_all(terms: list[str], columns: str | None = None) -> str:
    # Terms are letters and digits only, so a double-quoted term is always one plain FTS5 string.
    prefix = f"{columns} : " if columns else ""
    return " AND ".join(f'{prefix}"{t}"' for t in terms)


@dataclass(frozen=True)
class Match:
    """A search ready to join: ``index`` (the side table), ``key`` (its column holding the indexed row's id,
    in id order) and ``condition`` (the bound full-text predicate)."""

    index: TableClause
    key: ColumnElement[int]
    condition: ColumnElement[bool]


def _match(db: Database, name: str, key: str, fts5_expression: str, query: str) -> Match:
    if db.is_sqlite:
        # FTS5 exposes a hidden column named after the table: "<table> MATCH ?" runs the full-text query, and
        # "ORDER BY rowid DESC" is served from the index itself (no sort).
        index = table(name, column("rowid", Integer), column(name))
        return Match(index, index.c.rowid, index.c[name].op("MATCH")(bindparam("fts_match", fts5_expression)))
    index = table(name, column(key, Integer), column("document"))
    tsquery = func.plainto_tsquery(literal_column("'simple'"), bindparam("fts_query", query[:MAX_QUERY_CHARS]))
    return Match(index, index.c[key], index.c.document.op("@@")(tsquery))


def image_match(db: Database, query: str, owner_id: int) -> Match | None:
    """One owner's images whose prompt (original or final) contains every word; None if the search has none."""
    terms = search_terms(query)
    if not terms:
        return None
    # The owner is a token of its own ("u42"), so SQLite intersects two posting lists rather than scanning
    # every user's matches.
    expression = f'owner : "u{int(owner_id)}" AND ' + _fts5_all(terms, "{prompt final_prompt}")
    return _match(db, "generated_images_fts", "image_id", expression, query)


def post_match(db: Database, query: str) -> Match | None:
    """Posts whose title or prompt contains every word; None if the search has none."""
    terms = search_terms(query)
    if not terms:
        return None
    return _match(db, "community_posts_fts", "post_id", _fts5_all(terms), query)
