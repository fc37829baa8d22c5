"""Progress display shared by the long-running stages (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def simulator_progress(console: Console) -> Iterator[Callable[[str, int], None]]:
    """Yield a callback(label, rows_written) that shows generation progress."""
    with Progress(
        TextColumn("[bold]generate[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def update(label: str, rows: int) -> None:
            progress.update(task, description=str(label), completed=rows)

        yield update
