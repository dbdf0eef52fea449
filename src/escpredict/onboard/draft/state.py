"""The draft being built and the sample it is built from, shared by the drafting steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from escpredict.ingest.validation import text
from escpredict.onboard.draft import guess
from escpredict.onboard.draft.cases import Tickets
from escpredict.onboard.draft.layouts import Layout, Match, find, synonyms

KeyPath = tuple[str, ...]  # where an entry sits in the YAML: ("columns", "channel")


@dataclass
class Draft:
    """A draft mapping: YAML data, comments by key path, and notes for the file's top."""

    tree: dict[str, Any]
    comments: dict[KeyPath, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    layout: str = "unknown"


@dataclass
class Drafting:
    """A draft in progress: the sample, what is known about it, and the columns used so far
    (a column feeds one field, so later fields do not take it again)."""

    sample: pd.DataFrame
    layout: Layout | None
    missing: list[str]
    draft: Draft
    used: set[str] = field(default_factory=set)
    changelog: bool = False  # rows are changes: event columns are sparse
    tickets: Tickets | None = None  # rows are events: which ticket each row belongs to

    @property
    def header(self) -> list[str]:
        return [str(c) for c in self.sample.columns]

    def note(self, path: KeyPath, message: str) -> None:
        self.draft.comments[path] = message

    def find(self, key: str, events: bool = False, avoid: set[str] = frozenset()) -> Match | None:
        """The column for a canonical field or event key; by similarity if no layout fits."""
        taken = self.used | set(avoid)
        names = synonyms(self.layout, key, events)
        return find(self.header, names, taken, fuzzy=self.layout is None)


def filled(state: Drafting, column: str) -> pd.Series:
    """Per sampled row: does ``column`` hold a value (not blank, not a missing marker)?"""
    values = text(state.sample[column]).str.strip()
    return values.notna() & ~values.isin(state.missing)


def column_of(source: Any) -> str | None:
    """The single export column behind a source, if it has one."""
    if isinstance(source, dict):
        source = source.get("column")
    return source if isinstance(source, str) else None


def shared_ids(state: Drafting, a: str, b: str) -> bool:
    """Whether two people columns name anyone in common: ids from one namespace."""
    left = set(guess.present(state.sample[a], state.missing).str.strip())
    right = set(guess.present(state.sample[b], state.missing).str.strip())
    return bool(left & right)
