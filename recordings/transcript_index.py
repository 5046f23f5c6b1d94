"""The words of the call index: one row per call in ``recording_transcripts``, a column per speaker.

SQLite keeps it in an FTS5 table (``porter unicode61`` tokenizer; its ``rowid`` is the call's
``id``), PostgreSQL in a table with a stored ``tsvector`` and a GIN index per speaker (the
``english`` configuration, which also drops stop words). Neither fits SQLAlchemy's portable
types, so this module holds each dialect's SQL: writing a call's transcript, dropping it, and
the clause that finds calls by a phrase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, literal_column, or_, select, text

from recordings.schema import SPEAKER_COLUMNS, TRANSCRIPTS, TS_CONFIG, calls


def write_transcripts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace transcripts; ``rows`` of ``pk`` (the call's ``id``), ``caller``, ``bot``,
    ``agent``."""
    if not rows:
        return
    params = [dict(row) for row in rows]
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f"INSERT INTO {TRANSCRIPTS} (call_pk, caller, bot, agent) VALUES (:pk, :caller, :bot, :agent)"
                " ON CONFLICT (call_pk) DO UPDATE SET caller = excluded.caller, bot = excluded.bot,"
                " agent = excluded.agent"
            ),
            params,
        )
        return
    delete_transcripts(conn, [row["pk"] for row in params])
    conn.execute(
        text(f"INSERT INTO {TRANSCRIPTS} (rowid, caller, bot, agent) VALUES (:pk, :caller, :bot, :agent)"),
        params,
    )


def delete_transcripts(conn: Connection, pks: Sequence[int]) -> None:
    """Drop the transcripts of these calls; PostgreSQL does it itself when their call row goes
    (``ON DELETE CASCADE``), an FTS5 table has no foreign key to cascade."""
    if pks and conn.dialect.name != "postgresql":
        conn.execute(text(f"DELETE FROM {TRANSCRIPTS} WHERE rowid = :pk"), [{"pk": pk} for pk in pks])


def phrase_clause(dialect: str, words: Sequence[str], speaker: str | None) -> ColumnElement[bool]:
    """Calls in which ``words`` were said, as a phrase, stemmed (by ``speaker``, else by anyone)."""
    columns = (speaker,) if speaker else SPEAKER_COLUMNS
    if dialect == "postgresql":
        query = func.phraseto_tsquery(TS_CONFIG, " ".join(words))
        matches = or_(*(literal_column(f"{column}_tsv").op("@@")(query) for column in columns))
        return calls.c.id.in_(select(literal_column("call_pk")).select_from(text(TRANSCRIPTS)).where(matches))
    phrase = '"' + " ".join(words) + '"'
    fts = f"{speaker} : {phrase}" if speaker else phrase
    inner: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(text(TRANSCRIPTS))
        .where(text(f"{TRANSCRIPTS} MATCH :fts").bindparams(fts=fts))
    )
    return calls.c.id.in_(inner)
