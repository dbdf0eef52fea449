"""Write a draft as YAML with its doubts as comments beside the lines they are about.

ruamel.yaml (round-trip mode) carries comments on its mapping nodes, so the YAML itself is
emitted (and quoted) by a maintained library rather than assembled from strings; PyYAML
drops comments.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from escpredict.onboard.draft.state import Draft

#: Inline (flow) style for small leaf dicts and lists: ``{constant: unknown}``.
_FLOW_MAX_ITEMS = 4
_FLOW_MAX_CHARS = 72
_WIDTH = 96
#: Longer comments go on their own lines above their entry.
_EOL_MAX = 60


def to_yaml(draft: Draft) -> str:
    """The draft as YAML text: notes on top, unused columns listed at the end."""
    root = _node(draft.tree, depth=0)
    for path, comment in draft.comments.items():
        parent = _at(root, path[:-1])
        if not isinstance(parent, CommentedMap) or path[-1] not in parent:
            continue
        if len(comment) <= _EOL_MAX:
            parent.yaml_add_eol_comment(comment, path[-1])
        else:  # a long doubt reads better on its own lines above the entry
            indent = 2 * (len(path) - 1)
            lines = _wrapped([comment], _WIDTH - indent - 2)
            parent.yaml_set_comment_before_after_key(path[-1], before="\n".join(lines),
                                                     indent=indent)
    notes = ["Draft mapping written by `escpredict mapping init`: review every commented line.",
             "Format: docs/mappings.md.", *draft.notes]
    root.yaml_set_start_comment("\n".join(_wrapped(notes)))
    yaml = YAML()
    yaml.width = _WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(root, out)
    if draft.unused:
        # a trailing comment belongs to no key: ruamel would attach it inside the last entry
        tail = "Export columns this draft does not read: " + ", ".join(draft.unused)
        out.write("".join(f"# {line}\n" for line in _wrapped([tail])))
    return out.getvalue()


def _node(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        node = CommentedMap((str(k), _node(v, depth + 1)) for k, v in value.items())
        if depth >= 2 and _is_leafy(value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list | tuple):
        seq = CommentedSeq(_node(v, depth + 1) for v in value)
        seq.fa.set_flow_style()
        return seq
    return value


def _is_leafy(value: dict[str, Any]) -> bool:
    """A small entry such as ``{column: x, kind: numeric}`` reads best on one line; one that
    would wrap reads best as a block."""
    if len(value) > _FLOW_MAX_ITEMS or len(str(value)) > _FLOW_MAX_CHARS:
        return False
    return all(not isinstance(v, dict) or _is_leafy(v) for v in value.values())


def _at(root: CommentedMap, path: tuple[str, ...]) -> Any:
    node: Any = root
    for key in path:
        if not isinstance(node, CommentedMap) or key not in node:
            return None
        node = node[key]
    return node


def _wrapped(lines: list[str], width: int = _WIDTH - 2) -> list[str]:
    return [part for line in lines for part in textwrap.wrap(line, width) or [""]]
