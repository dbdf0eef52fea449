"""Draft a mapping YAML for an unfamiliar export (``escpredict mapping init``).

``layouts`` recognises the ticketing system from the header, ``guess`` reads formats and
markers off a sample of values, ``build`` assembles the mapping with a comment for every
doubt, ``emit`` writes it as YAML. ``read_sample`` bounds how much of a large export is read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from escpredict.draft.build import Draft, draft_mapping
from escpredict.draft.emit import to_yaml
from escpredict.loaders import read_table

__all__ = ["Draft", "draft_mapping", "draft_yaml", "read_sample", "to_yaml"]

#: Rows of the export a draft looks at: the first ones (whole tickets of an event export)
#: and as many drawn at random (formats that only show later, e.g. a day above 12).
SAMPLE_ROWS = 2000


def read_sample(path: Path) -> pd.DataFrame:
    """The head of the export plus a seeded random draw from the rest."""
    frame = read_table(path)
    head = frame.head(SAMPLE_ROWS)
    rest = frame.iloc[SAMPLE_ROWS:]
    drawn = rest.sample(min(SAMPLE_ROWS, len(rest)), random_state=0).sort_index()
    return pd.concat([head, drawn])


def draft_yaml(path: Path) -> str:
    """The draft mapping for the export at ``path``, as commented YAML."""
    return to_yaml(draft_mapping(read_sample(path), Path(path).stem))
