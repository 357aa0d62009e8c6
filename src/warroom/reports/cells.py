"""A report table's cells rendered once each: the Markdown and the HTML post-mortem share it."""

from __future__ import annotations

from collections.abc import Callable

CELLS_REMEMBERED = 4096  # distinct cells of a table rendered once (kinds, actors, repeated messages)


def cell_renderer(render: Callable[[str], str]) -> Callable[[str], str]:
    """`render`, remembering what it made of each text for one table: a long launch's timeline
    repeats its kinds, actors and messages hundreds of thousands of times. Only plain text is
    remembered (a cell the report marked up itself is a str subclass that renders otherwise)."""
    made: dict[str, str] = {}

    def cell(value: str) -> str:
        if type(value) is not str:
            return render(value)
        found = made.get(value)
        if found is None:
            if len(made) >= CELLS_REMEMBERED:
                made.clear()
            found = made[value] = render(value)
        return found

    return cell
