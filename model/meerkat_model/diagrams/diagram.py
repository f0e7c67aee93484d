"""What one generated diagram is: its file name, title, DOT text and the tables shown with it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Table:
    """A plain-text table shown next to a diagram. ``colour_column`` (optional) names a column
    whose cells are colours, shown as swatches."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    colour_column: int | None = None

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(
                    f"table {self.caption!r}: row {row!r} has {len(row)} cells, expected {len(self.headers)}"
                )


@dataclass(frozen=True, slots=True)
class Diagram:
    """One diagram. ``slug`` is the file stem (``<slug>.dot``, ``<slug>.svg``) and the HTML anchor;
    ``kind`` is ``lifecycle``, ``reachable`` or ``trace``; ``alerts`` are findings worth telling the
    user about (an invariant violation)."""

    slug: str
    kind: str
    title: str
    caption: str
    dot: str
    tables: tuple[Table, ...] = field(default_factory=tuple)
    alerts: tuple[str, ...] = ()
