"""The fenced blocks of README.md and docs/*.md, as the doc tests run them.

A block's language says what it is:

- ``sh`` / ``bash``: commands, run in order in one shell session per document (variables
  and the working directory carry over from block to block); a block fails when a
  command in it does (``set -e -o pipefail``).
- ``console``: ``$ command`` lines, each followed by what it prints (stdout and stderr,
  as a terminal shows them); the output must match, ``...`` standing for any text within
  a line, or, on a line of its own, for any number of lines. A command that fails ends
  its output with ``[exit N]``, which the document shows.
- ``python``: run in one interpreter per document (names carry over; top-level
  ``await`` works, as in ``python -m asyncio`` or a notebook). A Python or YAML block
  whose first line is a comment naming a file (``# tests/test_search.py``) is that file:
  it is written into the document's working directory, not run.
- anything else (``json``, ``yaml``, ``text``, diagrams) is not run.

A comment on the line right above a fence changes how it runs, for what cannot run
here -- keep these few:

- ``<!-- doc-test: skip: REASON -->`` -- not run (an absent outside thing: a Docker
  engine). The reason shows in the test report.
- ``<!-- doc-test: dry-run: REASON -->`` -- each ``make TARGET`` runs as ``make -n
  TARGET`` (the target exists and its recipe expands) instead of for real.
- ``<!-- doc-test: elsewhere: TEST -->`` -- run by another test, named here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "RUNS",
    "Block",
    "Command",
    "Mark",
    "console_commands",
    "document_blocks",
    "output_matches",
]

# Languages of blocks that run.
RUNS = frozenset({"sh", "bash", "console", "python"})
_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*doc-test:\s*(?P<kind>skip|dry-run|elsewhere):\s*(?P<reason>.*?)\s*-->")
_FILE_NAME = re.compile(r"#\s+(?P<name>[\w./-]+\.(?:py|ya?ml|toml|json|txt))\s*$")


@dataclass(frozen=True)
class Mark:
    kind: str  # skip | dry-run | elsewhere
    reason: str


@dataclass(frozen=True)
class Block:
    doc: str  # the document, relative to the repository: README.md, docs/api.md
    line: int  # its opening fence's line
    lang: str
    text: str
    mark: Mark | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """The file this block is (its first line names it), for Python and YAML."""
        if self.lang not in ("python", "yaml", "yml"):
            return None
        first = self.text.split("\n", 1)[0]
        match = _FILE_NAME.fullmatch(first)
        return match.group("name") if match else None

    @property
    def runs(self) -> bool:
        return self.lang in RUNS or self.file_name is not None


@dataclass(frozen=True)
class Command:
    """One ``$ command`` of a console block and the output it must print."""

    text: str
    expected: str
    line: int


def document_blocks(root: Path, doc: str) -> list[Block]:
    text = (root / doc).read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.fullmatch(above.strip())
        found.append(
            Block(
                doc=doc,
                line=line,
                lang=match.group("lang"),
                text=match.group("body"),
                mark=Mark(mark.group("kind"), mark.group("reason")) if mark else None,
            )
        )
    return found


def console_commands(block: Block) -> list[Command]:
    """The commands of a console block: ``$ `` lines (with ``\\`` continuations) and the
    lines up to the next one."""
    commands: list[Command] = []
    lines = block.text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    n = 0
    while n < len(lines):
        line = lines[n]
        if not line.startswith("$ "):
            raise ValueError(f"{block.id}: a console block starts each command with '$ '")
        start = n
        command = [line[2:]]
        while command[-1].endswith("\\") and n + 1 < len(lines):
            n += 1
            command.append(lines[n])
        n += 1
        output = []
        while n < len(lines) and not lines[n].startswith("$ "):
            output.append(lines[n])
            n += 1
        commands.append(
            Command(
                text="\n".join(command),
                expected="\n".join(output),
                line=block.line + 1 + start,
            )
        )
    return commands


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` says: line by line, trailing spaces aside;
    ``...`` within a line is any text, and a line of just ``...`` any number of lines."""
    pattern = []
    for line in expected.rstrip("\n").split("\n") if expected.strip() else []:
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            parts = (re.escape(part) for part in line.rstrip().split("..."))
            pattern.append("[^\n]*?".join(parts) + r"[ \t]*\n")
    lines = [line.rstrip() for line in actual.rstrip("\n").split("\n")] if actual.strip() else []
    normalized = "".join(line + "\n" for line in lines)
    return re.fullmatch("".join(pattern), normalized) is not None
