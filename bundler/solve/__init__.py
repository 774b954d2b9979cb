"""Stage 2, solve and lock: a variant's specs become lock files (conda-lock v1).

``lock`` solves conda specs with rattler, ``piplock`` resolves ``pip:`` entries with uv
per target platform, ``distnames`` maps conda packages to the Python distributions
they install, ``lockfile`` reads and writes the lock files, ``guards`` holds the rules
for which package versions PySpark supports (used again by ``check``).
"""
