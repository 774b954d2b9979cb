"""Events the core reports; the CLI decides how to show them.

The library never prints.  Each long operation takes a ``Reporter`` and calls
``step``, ``progress`` and ``warn`` on it.  ``NullReporter`` is the default, so a
library caller sees nothing unless they ask; ``RecordingReporter`` keeps events
for tests and for ``--json`` output.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A new stage of work starts."""

    def progress(self, task: str, completed: float, total: float | None) -> None:
        """Progress of the current stage; ``total`` None means unknown."""

    def warn(self, message: str) -> None:
        """Something the user should know about but that does not stop the work."""


class NullReporter:
    def step(self, message: str) -> None:
        pass

    def progress(self, task: str, completed: float, total: float | None) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass
class RecordingReporter:
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def step(self, message: str) -> None:
        self.steps.append(message)

    def progress(self, task: str, completed: float, total: float | None) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class SerializedReporter:
    """A reporter that several threads may call: one call at a time reaches ``inner``."""

    def __init__(self, inner: Reporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def step(self, message: str) -> None:
        with self._lock:
            self._inner.step(message)

    def progress(self, task: str, completed: float, total: float | None) -> None:
        with self._lock:
            self._inner.progress(task, completed, total)

    def warn(self, message: str) -> None:
        with self._lock:
            self._inner.warn(message)
