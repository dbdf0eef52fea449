"""Canonical tickets from an export's partitions, with the local engine's own mapping.

A ticket-level export is mapped partition by partition. An event export is first shuffled
by ticket id, so every event of a ticket lands in one partition whatever block of the file
it came from; each partition is put back in the export's order and collapsed by
``loaders.map_tickets``, the function the local engine runs on the whole file. Collapsing
is per ticket (events, ``derive:``, value maps, roles), so the tickets are the same.

Bad rows are refused with the partition they were read in and their row within it, or,
with a quarantine folder, written there one file per partition (``part-00003.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from dask.utils import has_keyword

from escpredict.config import ConfigError
from escpredict.ingest.csvfile import ReadNotes
from escpredict.ingest.loaders import map_tickets
from escpredict.ingest.mapping import Mapping, load_mapping, select, type_columns
from escpredict.ingest.validation import DataValidationError, Problem
from escpredict.scaleout.read import BLOCKSIZE, read_blocks

#: Columns an event partition carries through the shuffle: the ticket id it is shuffled on,
#: and where each row was read (partition, row), which restores the export's order.
KEY, PART, ROW = "_ticket", "_part", "_row"
QUARANTINE_FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class Loaded:
    """Canonical tickets as partitions, and how the file was read (``csvfile.ReadNotes``)."""

    tickets: dd.DataFrame
    notes: ReadNotes


def read_tickets(
    path: Path,
    mapping: str | Mapping = "generic",
    agents: pd.DataFrame | None = None,
    quarantine: Path | None = None,
    blocksize: int = BLOCKSIZE,
) -> Loaded:
    """The canonical ticket frame of any export the local engine reads, as partitions.

    ``agents`` gives roles to an event export's collapse. ``quarantine`` is a folder: each
    partition writes its bad rows there (Parquet when the folder's name ends in .parquet,
    else CSV) instead of refusing them; ``quarantined_rows`` counts them afterwards.
    """
    spec = load_mapping(mapping)
    raw = read_blocks(path, blocksize, spec)
    if quarantine is not None:
        _clear(Path(quarantine))
    where = (str(path), spec, agents, quarantine)
    if spec.events is None:
        return Loaded(partitionwise(raw.frame, _ticket_rows, *where), raw.notes)
    keyed = partitionwise(raw.frame, _keyed, spec)
    shuffled = keyed.shuffle(KEY, shuffle_method=_shuffle_method(keyed))
    return Loaded(partitionwise(shuffled, _event_rows, *where), raw.notes)


def partitionwise(frame: dd.DataFrame, func: Any, *args: Any) -> dd.DataFrame:
    """map_partitions with the meta taken from `func` on an empty partition, and every
    partition given the meta's dtypes.

    Dask's default runs `func` on made-up rows, which validation refuses. pandas may type
    a column by its values (all missing: object), and partitions that disagree on a type
    break a later shuffle, so the empty partition's types, which depend on no value, win.
    """
    meta = func(frame._meta, *args)
    return frame.map_partitions(_typed, func, meta.dtypes.to_dict(), *args, meta=meta)


def _typed(
    part: pd.DataFrame, func: Any, dtypes: dict[str, Any], *args: Any,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    if has_keyword(func, "partition_info"):
        out = func(part, *args, partition_info=partition_info)
    else:
        out = func(part, *args)
    differ = {name: dtype for name, dtype in dtypes.items() if out[name].dtype != dtype}
    return out.astype(differ) if differ else out


def _shuffle_method(frame: dd.DataFrame) -> str:
    """Dask's disk-backed p2p shuffle, unless a column holds Python objects (JSON values,
    which may mix numbers and text): those travel pickled, through the task shuffle."""
    objects = (frame._meta.dtypes == object).any()
    return "tasks" if objects else "p2p"


def _keyed(raw: pd.DataFrame, spec: Mapping, partition_info: dict | None = None) -> pd.DataFrame:
    """Raw rows plus the mapped ticket id and where each row was read."""
    ticket_id = tuple(f for f in spec.output_fields() if f.name == "ticket_id")
    ids = type_columns(select(raw, spec, ticket_id), spec, ticket_id)
    key = ids["ticket_id"].to_numpy() if "ticket_id" in ids else np.full(len(raw), None)
    number = (partition_info or {}).get("number", 0)
    return raw.reset_index(drop=True).assign(
        **{KEY: pd.array(key, dtype="str"), PART: number, ROW: np.arange(len(raw))}
    )


def _ticket_rows(
    raw: pd.DataFrame, source: str, spec: Mapping, agents: pd.DataFrame | None,
    quarantine: Path | None, partition_info: dict | None = None,
) -> pd.DataFrame:
    number = (partition_info or {}).get("number", 0)
    refs = np.column_stack([np.full(len(raw), number), np.arange(len(raw))])
    folder = quarantine if partition_info is not None else None
    return _mapped(raw.reset_index(drop=True), refs, source, spec, agents, folder, number)


def _event_rows(
    part: pd.DataFrame, source: str, spec: Mapping, agents: pd.DataFrame | None,
    quarantine: Path | None, partition_info: dict | None = None,
) -> pd.DataFrame:
    """All events of the partition's tickets, in the export's order, collapsed."""
    ordered = part.sort_values([PART, ROW], kind="stable")
    refs = ordered[[PART, ROW]].to_numpy()
    raw = ordered.drop(columns=[KEY, PART, ROW]).reset_index(drop=True)
    number = (partition_info or {}).get("number", 0)
    folder = quarantine if partition_info is not None else None
    return _mapped(raw, refs, source, spec, agents, folder, number)


def _mapped(
    raw: pd.DataFrame, refs: np.ndarray, source: str, spec: Mapping,
    agents: pd.DataFrame | None, quarantine: Path | None, number: int,
) -> pd.DataFrame:
    """``map_tickets`` on one partition; problems name the partition the rows were read in."""
    target = None if quarantine is None else quarantine / f"part-{number:05d}{_format(quarantine)}"
    try:
        return map_tickets(raw, spec, source, target, agents).tickets
    except DataValidationError as exc:
        raise DataValidationError(_as_read(exc.problems, refs)) from None


def _as_read(problems: list[Problem], refs: np.ndarray) -> list[Problem]:
    """Rows of a (shuffled) partition → the partition and 1-based row they were read at."""
    out = []
    for p in problems:
        if not p.rows:
            out.append(p)
            continue
        where = refs[np.asarray(p.rows) - 1]
        for part in np.unique(where[:, 0]):
            rows = np.sort(where[where[:, 0] == part, 1]) + 1
            out.append(Problem(f"{p.source} (partition {part})", rows.tolist(), p.field, p.message))
    return out


# --- quarantine folder --------------------------------------------------------------------


def _format(folder: Path) -> str:
    return ".parquet" if folder.suffix.lower() == ".parquet" else ".csv"


def _clear(folder: Path) -> None:
    """Create the folder, or empty it of an earlier run's part files: a stale file would
    be counted, and read, as this run's."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{folder}: the Dask engine writes quarantined rows to a folder, one file per "
            "partition; give a folder (a name ending in .parquet writes Parquet files)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*"):
        if old.suffix in QUARANTINE_FORMATS:
            old.unlink()


def quarantined_rows(folder: Path | None) -> int:
    """Rows the partitions wrote to the quarantine folder (counted from the files)."""
    if folder is None:
        return 0
    total = 0
    for part in sorted(Path(folder).glob("part-*")):
        if part.suffix == ".parquet":
            total += pq.ParquetFile(part).metadata.num_rows
        elif part.suffix == ".csv":
            total += len(pd.read_csv(part, dtype=str, keep_default_na=False, usecols=[0]))
    return total
