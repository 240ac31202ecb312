"""How --help renders: on/off flags without a value placeholder."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption


def show_flags_without_a_value() -> None:
    """Typer's rich help prints a flag as ``--no-video <bool>``, as if it took a value; it takes none,
    so render flags (not counters) with no type column, as click's plain help does. Idempotent."""
    original = TyperOption.display_type_rich
    if getattr(original, "vidcorr_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and not self.count:
            return None
        return original(self, ctx)

    display_type_rich.vidcorr_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
