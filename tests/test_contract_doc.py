"""The published data contract lists every canonical column the code knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from escpredict.contract import AGENT_FIELDS, HISTORY_FIELDS, TICKET_FIELDS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "data-contract.md").read_text()


@pytest.mark.parametrize("field", TICKET_FIELDS + AGENT_FIELDS + HISTORY_FIELDS, ids=lambda f: f.name)
def test_every_contract_field_is_documented_with_its_type(field) -> None:
    assert f"| `{field.name}` | {field.kind} |" in DOC
