"""Licences as packages declare them, read without guessing.

A conda record has one ``license`` string; a Python distribution's ``METADATA`` has
``License-Expression`` (PEP 639), else ``License``, else ``License ::`` classifiers.
Text that parses as an SPDX expression (``license-expression``'s SPDX index, which
also maps old identifiers such as ``GPL-2.0+`` to ``GPL-2.0-or-later``) becomes that
expression, normalised; anything else is kept as the names the package gave, and a
licence policy treats those as unknown.  Nothing is inferred from a licence file's text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from email.message import Message
from typing import Any, Literal

Source = Literal["conda record", "License-Expression", "License", "classifier"]
_NO_ASSERTION = {"", "unknown", "noassertion", "none", "other", "proprietary"}
_LONG = 100  # a License field longer than this (or on several lines) is a licence text


@functools.cache
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def spdx_expression(text: str) -> str | None:
    """``text`` as a normalised SPDX expression, or None when it is not one."""
    if not text.strip():
        return None
    info = _licensing().validate(text)
    if info.errors or info.invalid_symbols or not info.normalized_expression:
        return None
    return str(info.normalized_expression)


def license_keys(expression: str) -> list[str]:
    """The licence (and exception) identifiers an SPDX expression names."""
    return list(_licensing().license_keys(_licensing().parse(expression)))


def choices(expression: str) -> list[set[str]]:
    """The sets of licences one may comply with: ``MIT OR (A AND B)`` -> {MIT}, {A, B}."""
    licensing = _licensing()
    parsed = licensing.dnf(licensing.parse(expression))
    terms = parsed.args if isinstance(parsed, licensing.OR) else (parsed,)
    return [set(licensing.license_keys(term)) for term in terms]


@dataclass(frozen=True)
class DeclaredLicense:
    """What one package declares: an SPDX expression, or names that are not SPDX."""

    source: Source
    expression: str | None = None  # normalised SPDX
    names: tuple[str, ...] = ()  # as declared, when not SPDX

    def describe(self) -> str:
        return self.expression or " / ".join(self.names)


def from_text(text: str | None, source: Source) -> DeclaredLicense | None:
    """One licence string (a conda record's, a License-Expression); None when empty."""
    text = " ".join((text or "").split())
    if text.lower() in _NO_ASSERTION:
        return None
    expression = spdx_expression(text)
    if expression is not None:
        return DeclaredLicense(source, expression=expression)
    return DeclaredLicense(source, names=(text,))


def from_metadata(metadata: Message) -> DeclaredLicense | None:
    """A distribution's licence from its METADATA headers, in PEP 639's order."""
    declared = from_text(metadata.get("License-Expression"), "License-Expression")
    if declared is not None:
        return declared
    field = str(metadata.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= _LONG:
        declared = from_text(field, "License")
        if declared is not None and declared.expression is not None:
            return declared
    names = tuple(
        c.split("::")[-1].strip()
        for c in metadata.get_all("Classifier") or ()
        if c.startswith("License ::") and c.count("::") >= 2
    )
    if names:
        return DeclaredLicense("classifier", names=names)
    return declared
