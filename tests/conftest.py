"""Shared fixtures; each lives in tests/support/ beside the code that builds it."""

from __future__ import annotations
