"""Every code block in README.md and docs/*.md that is meant to run, runs.

Sybil (a maintained library for testing documentation examples) finds the fenced blocks and
the ``<!-- doc-test: ... -->`` comments before them, and evaluates Python blocks in one
namespace per document with tracebacks pointing at the Markdown lines. How each kind runs:

- ``python``: in-process, in the scratch project (``tests/doc_project.py``: the files the
  examples name, written small, and a champion model in its MLflow store) as the current
  folder and ``$ESCPREDICT_HOME``; what it prints is its output.
- ``bash``: command by command in that project, stopping at the first that fails (so
  ``a && b`` is ``a`` then ``b``). A plain ``escpredict ...`` line (no pipe, redirection or
  expansion) runs in-process through the CLI's own typer app, as tests/test_cli.py does: the
  same argument parsing and code, without four seconds of imports per command. Every other
  command runs in ``bash -e -u`` with the venv's ``escpredict`` on ``PATH`` and no MLflow URI
  inherited, so commands use the project's embedded store; a block that keeps shell state
  (``export``, ``cd``) runs whole in bash. ``curl`` runs with ``--fail-with-body``, so an
  HTTP error fails the block; blocks that talk to ``http://127.0.0.1:8000`` talk to a real
  ``escpredict serve`` started for them on a free port (the address is rewritten), with the
  keys the README exports.
- ``console``: a transcript. Each ``$`` line runs as above; every output line shown (``...``
  marks lines left out) must appear in the real output in order, compared without
  whitespace and table borders, so wrapping and box drawing do not matter.
- ``yaml``: a mapping. A block with ``columns:`` is a whole mapping and must load with
  ``load_mapping``; a shorter block is a fragment of the document's whole mapping, merged
  into it and loaded the same way.
- ``text`` and unlabelled blocks are prose (diagrams, trees, output shown); any other
  language fails the test until it is given a way to run here.

A comment right before a block says what is special about it, visibly in the Markdown:
``<!-- doc-test: skip WHY -->`` (shown as a skip with WHY in the test summary) and
``<!-- doc-test: output WORD ... -->`` (each word must appear in the block's output).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from sybil import Document, Example, Region
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer
from typer.testing import CliRunner

from escpredict import cli
from escpredict.ingest.mapping import load_mapping
from tests import doc_project
from tests.hardening_helpers import Server, serve

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python", "bash", "console", "yaml"}
PROSE = {"", "text"}
#: The address README's service examples use; rewritten to the server started for them.
README_SERVER = "http://127.0.0.1:8000"
#: The keys README's service block exports before ``escpredict serve``.
README_KEYS = {"ESCPREDICT_API_KEYS": "bot-key-1", "ESCPREDICT_ADMIN_KEY": "admin-key"}
BLOCK_TIMEOUT_S = 600

#: Blocks known to fail on a bug being fixed elsewhere: (file, first line of the block) →
#: (the bug, the exception it raises). Each runs as a strict xfail for that exception only,
#: so the fix turns it into a failure until the entry is removed here.
KNOWN_FAILURES: dict[tuple[str, str], tuple[str, type[BaseException]]] = {}


@dataclass
class Block:
    """One fenced block and the doc-test directives right before it."""

    path: Path
    example: Example
    language: str
    skip: str | None = None
    output: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return str(self.example.parsed)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.example.line}-{self.language or 'prose'}"


def _fences(document: Document) -> Iterator[Region]:
    lexer = FencedCodeBlockLexer(language=r"[^\n]*")
    for region in lexer(document):
        region.parsed = region.lexemes["source"]  # a Lexeme: Sybil keeps its line numbers
        yield region


def _directives(document: Document) -> Iterator[Region]:
    for region in DirectiveInHTMLCommentLexer(directive="doc-test")(document):
        verb, _, rest = region.lexemes["arguments"].strip().partition(" ")
        if verb not in ("skip", "output") or not rest.strip():
            raise ValueError(
                f"{document.path}, {document.line_column(region.start)}: expected "
                f"'doc-test: skip WHY' or 'doc-test: output WORD ...', got {verb!r}"
            )
        region.parsed = (verb, rest.strip())
        yield region


def parse(path: Path) -> list[Block]:
    """The document's fenced blocks, each with the directives placed right before it."""
    document = Document.parse(str(path), _fences, _directives)
    blocks: list[Block] = []
    pending: list[tuple[str, str, Example]] = []
    for example in document.examples():
        if "language" not in example.region.lexemes:  # a doc-test comment
            pending.append((*example.parsed, example))
            continue
        block = Block(path, example, example.region.lexemes["language"].strip())
        for verb, rest, directive in pending:
            between = document.text[directive.end:example.start]
            if between.strip() != "-->":
                raise ValueError(f"{path}:{directive.line}: a doc-test comment must be right before a block")
            if verb == "skip":
                block.skip = rest
            else:
                block.output = shlex.split(rest)
        pending = []
        blocks.append(block)
    if pending:
        raise ValueError(f"{path}:{pending[0][2].line}: a doc-test comment with no block after it")
    return blocks


BLOCKS = [block for path in DOCS for block in parse(path)]


def _params() -> list[Any]:
    params = []
    for block in BLOCKS:
        if block.language in PROSE:
            continue
        marks = []
        if block.skip:
            marks.append(pytest.mark.skip(reason=f"{block.name}: {block.skip}"))
        known = KNOWN_FAILURES.get((block.path.name, block.source.splitlines()[0]))
        if known:
            bug, raises = known
            marks.append(pytest.mark.xfail(reason=bug, raises=raises, strict=True))
        params.append(pytest.param(block, id=block.name, marks=marks))
    return params


# --- the scratch project and the environment every block runs in ---------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with _keeping_mlflow_uris():
        yield doc_project.build(tmp_path_factory.mktemp("doc-project"))


@contextlib.contextmanager
def _keeping_mlflow_uris() -> Iterator[None]:
    """Examples point MLflow's process-wide store at the project: later tests must not see it."""
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def environment(project: Path) -> dict[str, str]:
    """The shell's environment: the project as home, the venv first on PATH, no MLflow URI."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ESCPREDICT_TRACKING_URI")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # wide enough that no line of escpredict's output wraps (transcripts compare lines)
    return {**env, "ESCPREDICT_HOME": str(project), "PATH": path, "COLUMNS": "400"}


@pytest.fixture(scope="module")
def readme_server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`escpredict serve` on the project's champion, with the README's keys."""
    log = tmp_path_factory.mktemp("doc-server") / "server.log"
    uri = f"sqlite:///{project / 'models' / 'mlflow.db'}"
    with serve("models:/escalation-risk@champion", uri, log, ESCPREDICT_HOME=str(project),
               **README_KEYS) as server:
        yield server


#: Before every bash command: curl fails on an HTTP error status instead of printing it.
SHELL_PRELUDE = 'curl() { command curl --fail-with-body "$@"; }\n'
#: Shell operators outside quotes, or what may expand (even quoted): such a command goes to bash.
_OPERATOR = re.compile(r"^[();<>|&]+$")
_EXPANSION = re.compile(r"[$`*?~]")
_SHELL_STATE = re.compile(r"^\s*(export|cd|source|\.|[A-Za-z_][A-Za-z0-9_]*=)\s", re.MULTILINE)


def commands(source: str) -> list[str]:
    """The block's commands: continued lines joined, a quote spanning lines kept whole."""
    found, pending = [], ""
    for line in source.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            continue
        try:
            words = shlex.split(_joined(pending), comments=True)
        except ValueError:  # a quote not closed yet
            continue
        if words:
            found += _and_list(pending)
        pending = ""
    if pending.strip():
        raise ValueError(f"unfinished command at the end of the block: {pending!r}")
    return found


def _and_list(command: str) -> list[str]:
    """``a && b`` as ``a`` then ``b``: the same, since a block stops at its first failure."""
    for at in (m.start() for m in re.finditer("&&", command)):
        left = _joined(command[:at])
        try:
            words = shlex.split(left)
        except ValueError:  # inside a quote
            continue
        if words != shlex.split(left, comments=True):  # inside a comment
            break
        return [command[:at].rstrip(), *_and_list(command[at + 2:].lstrip())]
    return [command]


def _joined(command: str) -> str:
    """One line: a backslash at a line's end continues the command on the next."""
    return command.replace("\\\n", " ")


def in_process(command: str) -> list[str] | None:
    """The arguments of a plain ``escpredict`` command line, or None if it needs a shell."""
    lexer = shlex.shlex(_joined(command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)  # comments dropped; operators outside quotes are tokens of their own
    plain = not any(_OPERATOR.match(t) or _EXPANSION.search(t) for t in tokens)
    if plain and tokens[0] == "escpredict" and tokens[1:2] != ["serve"]:
        return tokens[1:]
    return None


def bash(source: str, project: Path) -> tuple[int, str]:
    done = subprocess.run(
        ["bash", "-e", "-u", "-c", SHELL_PRELUDE + source], cwd=project, env=environment(project),
        capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False,
    )
    return done.returncode, done.stdout + done.stderr


def escpredict(args: list[str], project: Path) -> tuple[int, str]:
    """The CLI in-process, in the project, as a separate process would see it."""
    env = {k: v for k, v in environment(project).items() if k != "PATH"}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ESCPREDICT_TRACKING_URI"):
        env[name] = None  # type: ignore[assignment]  # CliRunner unsets a None
    # The CLI's console took its width from $COLUMNS when first imported; a process of its own
    # would read the wide one set here.
    narrow, cli.console.width = cli.console._width, int(env["COLUMNS"])
    try:
        with _keeping_mlflow_uris(), contextlib.chdir(project):
            result = CliRunner().invoke(cli.app, args, env=env)
    finally:
        cli.console.width = narrow
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def shell(source: str, project: Path, server: Server | None) -> str:
    """Run a shell block in the project, command by command; all output, or a failure naming
    the command that failed."""
    if server is not None:
        source = source.replace(README_SERVER, server.base)
    steps = [source] if _SHELL_STATE.search(source) else commands(source)
    output = ""
    for step in steps:
        args = in_process(step)
        code, printed = escpredict(args, project) if args is not None else bash(step, project)
        output += printed
        if code != 0 or "Traceback (most recent call last)" in printed:
            pytest.fail(f"exit code {code}\n--- command ---\n{step}\n--- output ---\n{printed[-6000:]}")
    return output


def python(block: Block, project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a Python block in-process in the project, as a script there would; its stdout."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ESCPREDICT_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ESCPREDICT_HOME", str(project))
    printed = io.StringIO()
    with _keeping_mlflow_uris(), contextlib.chdir(project), contextlib.redirect_stdout(printed):
        PythonEvaluator()(block.example)
    return printed.getvalue()


# --- console transcripts and YAML mappings --------------------------------------------------

_BORDERS = re.compile(r"[\s│┃┆┊║━─┏┓┗┛┡┩┢┪┣┫┳┻╇╈╋┼├┤┬┴└┘┌┐═╔╗╚╝╠╣╦╩╬]+")


def _flat(text: str) -> str:
    """Text without whitespace and table borders: wrapping (even inside a long path) and box
    drawing vary with the terminal, the words and figures do not."""
    return _BORDERS.sub("", text)


def transcript(source: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines, each with the output lines shown under it (``...`` left out)."""
    runs: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        elif runs and line.strip() and line.strip() != "...":
            runs[-1][1].append(line)
    if not runs:
        raise ValueError("a console block needs at least one '$ command' line")
    return runs


def check_transcript(source: str, project: Path) -> None:
    for command, shown in transcript(source):
        actual = _flat(shell(command, project, None))
        at = 0
        for line in shown:
            found = actual.find(_flat(line), at)
            assert found >= 0, f"`{command}` no longer prints, after what came before:\n{line}"
            at = found + len(_flat(line))


def check_mapping(block: Block, project: Path) -> None:
    """A whole mapping loads; a fragment loads merged into the document's whole mapping."""
    tree = yaml.safe_load(block.source)
    whole = next((b for b in BLOCKS if b.path == block.path and b.language == "yaml"
                  and "columns" in (yaml.safe_load(b.source) or {})), None)
    if "columns" not in tree:
        assert whole is not None, f"{block.name}: a mapping fragment with no whole mapping in its page"
        tree = {**yaml.safe_load(whole.source), **tree}
    path = project / "doc-mappings" / f"line-{block.example.line}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    load_mapping(str(path))


# --- the tests ------------------------------------------------------------------------------


def test_every_block_is_run_or_prose_and_every_skip_says_why() -> None:
    """Nothing is skipped silently: a block in a language this test cannot run fails here,
    and the blocks skipped are listed with their reasons (also in pytest's skip summary)."""
    unknown = [b.name for b in BLOCKS if b.language not in RUN | PROSE]
    assert unknown == [], f"blocks in a language the doc test does not run: {unknown}"
    skipped = {b.name: b.skip for b in BLOCKS if b.skip}
    print("\n".join(f"skipped {name}: {why}" for name, why in skipped.items()))
    assert all(len(why.split()) >= 3 for why in skipped.values()), skipped  # a reason, not a word
    assert sum(b.language in RUN and not b.skip for b in BLOCKS) >= 8  # most blocks run


@pytest.mark.parametrize("block", _params())
def test_doc_example_runs(
    block: Block, project: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if block.language == "python":
        output = python(block, project, monkeypatch)
    elif block.language == "bash":
        server = request.getfixturevalue("readme_server") if README_SERVER in block.source else None
        output = shell(block.source, project, server)
    elif block.language == "console":
        check_transcript(block.source, project)
        output = ""
    else:
        check_mapping(block, project)
        output = ""
    missing = [word for word in block.output if word not in output]
    assert not missing, f"{block.name}: output lacks {missing}:\n{output[-4000:]}"
