"""The README's shell commands, as a user would copy them into bash.

``readme_commands`` returns every command line of the README's ```bash blocks in
order: continuation lines stay joined with their backslash-newlines (bash handles
them), comment-only lines are dropped, trailing comments stay (bash ignores them).
Tests run these strings through ``bash -c`` after ``swap`` has replaced the names
that cannot exist on a test machine (variants, object-store URIs, image names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")


def bash_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks tagged ``bash``."""
    blocks: list[str] = []
    lang: str | None = None  # None: outside a block
    body: list[str] = []
    for line in text.splitlines():
        fence = _FENCE.match(line.strip())
        if fence is None:
            if lang is not None:
                body.append(line)
        elif lang is None:
            lang, body = fence.group(1), []
        else:
            if lang == "bash":
                blocks.append("\n".join(body))
            lang = None
    return blocks


def split_commands(block: str) -> list[str]:
    """Logical command lines of one block: continuations joined, comment lines dropped."""
    commands: list[str] = []
    pending: list[str] = []
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        if not line.endswith("\\"):
            commands.append("\n".join(pending))
            pending = []
    if pending:
        commands.append("\n".join(pending))
    return commands


def readme_commands(path: Path = README) -> list[str]:
    text = path.read_text()
    return [cmd for block in bash_blocks(text) for cmd in split_commands(block)]


@dataclass(frozen=True)
class Swap:
    """Replace what matches ``pattern`` (a regular expression) with ``replacement``."""

    pattern: str
    replacement: str

    def apply(self, command: str) -> str:
        return re.sub(self.pattern, self.replacement, command)


#: The repository's variants become the test workspace's: ``base`` -> ``app`` and
#: ``gpu`` -> ``gpuapp`` (names only: ``--base`` and ``gpu-iceberg`` stay).
VARIANT_SWAPS = (
    Swap(r"(?<![\w.-])base(?![\w.])(?!-iceberg)", "app"),
    Swap(r"(?<![\w.-])gpu(?![\w.])(?!-iceberg)", "gpuapp"),
)


def swap(command: str, swaps: tuple[Swap, ...]) -> str:
    for s in swaps:
        command = s.apply(command)
    return command


@dataclass(frozen=True)
class Case:
    """How the test suite runs one kind of README command.

    ``match`` is a regular expression searched in the command as printed.  ``how``:
    ``run`` runs it for real; ``record`` runs it with recording stand-ins for programs
    that need a cluster (spark-submit to YARN/Kubernetes, hdfs) and checks the
    arguments they received; ``elsewhere`` is not run here and ``why`` says so.
    """

    name: str
    match: str
    how: str = "run"
    swaps: tuple[Swap, ...] = VARIANT_SWAPS
    why: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def matches(self, command: str) -> bool:
        return re.search(self.match, command, re.S) is not None
