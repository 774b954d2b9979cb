"""The verify report: one ``Check`` per check, a verdict, and how it is shown.

``verify`` decides what each check found; this module only holds the results and
renders them (text for people, ``to_dict`` for ``--json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]
CHECK_NAMES = (
    "manifest", "extract", "python", "imports", "spark-imports", "gpu-imports", "linkage",
    "pyspark-guards",
)  # fmt: skip
#: Checks that run only when asked for, placed before ``pyspark-guards``:
#: ``licenses`` with ``--deny-license``.
ON_REQUEST = ("licenses",)
NEED_EXTRACTION = ("python", "imports", "spark-imports", "gpu-imports", "linkage")
# Without these the environment was not shown to run here: a report that skipped one
# of them (an archive for another platform) is "not verified" (exit 1), never OK.  The
# others may be skipped for a reason the report names: manifest (a foreign archive has
# none), imports (none listed), spark-imports (no Spark found), gpu-imports (no GPU),
# pyspark-guards (no pyspark).
ESSENTIAL = ("extract", "python", "linkage")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str
    details: tuple[str, ...] = ()  # what was seen, one line each
    problems: tuple[str, ...] = ()  # what is wrong (failed checks only), one line each
    # what the user should know but does not fail the check (an optional module that
    # cannot load, a library only the host provides), one line each
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "details": list(self.details),
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def passed(
    name: str, summary: str, details: Iterable[str] = (), warnings: Iterable[str] = ()
) -> Check:
    return Check(name, "passed", summary, tuple(details), warnings=tuple(warnings))


def failed(
    name: str,
    summary: str,
    problems: Iterable[str] = (),
    details: Iterable[str] = (),
    warnings: Iterable[str] = (),
) -> Check:
    return Check(
        name, "failed", summary, tuple(details), tuple(problems) or (summary,), tuple(warnings)
    )


def skipped(name: str, reason: str, details: Iterable[str] = ()) -> Check:
    return Check(name, "skipped", reason, tuple(details))


@dataclass(frozen=True)
class VerifyReport:
    archive: Path
    checks: tuple[Check, ...]
    manifest_path: Path | None = None
    variant: str | None = None
    platform: str | None = None

    @property
    def failed(self) -> bool:
        return any(c.status == "failed" for c in self.checks)

    @property
    def not_run(self) -> list[Check]:
        return [c for c in self.checks if c.status == "skipped"]

    @property
    def incomplete(self) -> list[Check]:
        """The checks that show the environment runs (``ESSENTIAL``) but did not run."""
        return [c for c in self.not_run if c.name in ESSENTIAL]

    @property
    def ok(self) -> bool:
        """Nothing failed and the environment really ran: every ``ESSENTIAL`` check passed."""
        return not self.failed and not self.incomplete

    @property
    def verdict(self) -> Literal["ok", "failed", "not-verified"]:
        return "failed" if self.failed else "not-verified" if self.incomplete else "ok"

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def problems(self) -> list[str]:
        """One line per problem, ``check: detail``, for the failed checks."""
        lines: list[str] = []
        for c in self.checks:
            if c.status == "failed":
                lines.extend(f"{c.name}: {p}" for p in c.problems)
        return lines

    def warnings(self) -> list[str]:
        """One line per warning, ``check: warning``, whatever the check's status."""
        return [f"{c.name}: {w}" for c in self.checks for w in c.warnings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "manifest": str(self.manifest_path) if self.manifest_path else None,
            "variant": self.variant,
            "platform": self.platform,
            "ok": self.ok,
            "verdict": self.verdict,
            "ran": [c.name for c in self.checks if c.status != "skipped"],
            "skipped": [c.name for c in self.not_run],
            "not_run": {c.name: c.summary for c in self.not_run},
            "checks": [c.to_dict() for c in self.checks],
            "problems": self.problems(),
            "warnings": self.warnings(),
        }

    def render(self, max_details: int = 12) -> str:
        what = ", ".join(x for x in (self.variant, self.platform) if x)
        lines = [f"verify {self.archive}" + (f" ({what})" if what else "")]
        width = max(len(c.name) for c in self.checks) if self.checks else 0
        labels = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
        for c in self.checks:
            lines.append(f"  {labels[c.status]}  {c.name:<{width}}  {c.summary}")
            shown = c.details[:max_details]
            lines.extend(f"        {d}" for d in shown)
            if len(c.details) > len(shown):
                lines.append(f"        ... and {len(c.details) - len(shown)} more")
            lines.extend(f"        WARN {w}" for w in c.warnings)
        ran = len(self.checks) - len(self.not_run)
        counts = f"{_count(ran, 'check')} ran"
        if self.not_run:
            counts += f"; not run: {', '.join(c.name for c in self.not_run)}"
        if self.failed:
            failed = [c.name for c in self.checks if c.status == "failed"]
            problems = self.problems()
            lines.append(
                f"FAILED: {', '.join(failed)} ({_count(len(problems), 'problem')}; {counts})"
            )
            lines.extend(f"  - {p}" for p in problems)
        elif self.incomplete:
            lines.append(f"NOT VERIFIED: nothing failed, but not everything could run ({counts})")
            lines.extend(f"  - {c.name} not run: {c.summary}" for c in self.incomplete)
        else:
            warned = self.warnings()
            tail = f" ({_count(len(warned), 'warning')} above)" if warned else ""
            lines.append(f"OK: {counts}; none failed{tail}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
