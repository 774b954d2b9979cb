"""``bundler verify --deny-license ID``: the archive's licences against a deny list.

The components are the SBOM's (``bundler.artifact.sbom``): every distribution the
archive holds, each with the licence its conda record or dist-info declares.  A
component is denied when every way to comply with its SPDX expression includes a
denied licence (``MIT OR GPL-3.0-only`` is not denied by ``GPL-3.0-only``;
``MIT AND GPL-3.0-only`` is); an exception (``WITH ...``) does not hide its licence.
A component that declares no licence, or one that is not an SPDX expression, is
listed as unknown: never counted as allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bundler.artifact.licenses import choices, license_keys, spdx_expression
from bundler.artifact.sbom import Component
from bundler.check.report import Check, failed, passed
from bundler.errors import LicensePolicyError


def denied_keys(values: Iterable[str]) -> tuple[str, ...]:
    """The licence identifiers named by ``--deny-license`` values (SPDX, normalised)."""
    keys: list[str] = []
    for value in values:
        expression = spdx_expression(value)
        if expression is None:
            raise LicensePolicyError(
                f"--deny-license {value!r} is not an SPDX licence identifier or expression",
                "use identifiers from https://spdx.org/licenses/ such as GPL-3.0-only",
            )
        keys += [k for k in license_keys(expression) if k not in keys]
    return tuple(keys)


@dataclass(frozen=True)
class LicenseVerdict:
    component: Component
    denied: tuple[str, ...] = ()  # the denied licences it cannot avoid
    unknown: bool = False

    def describe(self) -> str:
        c = self.component
        declared = c.license.describe() if c.license else "none declared"
        return f"{c.name} {c.version} ({c.manager}): {declared}"


def judge(component: Component, denied: Sequence[str]) -> LicenseVerdict:
    declared = component.license
    if declared is None or declared.expression is None:
        return LicenseVerdict(component, unknown=True)
    blocked = [sorted(set(denied) & keys) for keys in choices(declared.expression)]
    if blocked and all(blocked):
        return LicenseVerdict(component, denied=tuple(sorted({k for b in blocked for k in b})))
    return LicenseVerdict(component)


def check_licenses(components: Sequence[Component], denied: Sequence[str]) -> Check:
    """The ``licenses`` check of verify: failed when a component's licence is denied."""
    verdicts = [judge(c, denied) for c in components]
    bad = [v for v in verdicts if v.denied]
    unknown = [v for v in verdicts if v.unknown]
    allowed = len(verdicts) - len(bad) - len(unknown)
    details = [
        f"{len(components)} components: {allowed} allowed, {len(bad)} denied, "
        f"{len(unknown)} unknown",
        *(f"unknown licence: {v.describe()}" for v in unknown),
    ]
    if bad:
        problems = [f"{v.describe()} is under denied {', '.join(v.denied)}" for v in bad]
        summary = f"{len(bad)} component(s) under a denied licence ({', '.join(denied)})"
        return failed("licenses", summary, problems, details)
    summary = f"no component under {', '.join(denied)}"
    if unknown:
        summary += f"; {len(unknown)} with an unknown licence (listed, not allowed)"
    return passed("licenses", summary, details)
