"""The package's version, in one place (pyproject.toml reads it; outputs record it)."""

__version__ = "0.1.0"
