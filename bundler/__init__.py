"""bundler: lock, build and pack conda environments for PySpark executors."""

__version__ = "0.1.0"
