"""``gridcredit scorecard ...`` commands (a typer app the main CLI mounts as ``scorecard``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
app = typer.Typer(help="Fit application scorecards from CSV files.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _main() -> None:
    """Fit application scorecards from CSV files."""


@app.command("fit")
def fit(
    csv: Annotated[Path, typer.Option("--csv", help="CSV file with a header row.")],
    target: Annotated[str, typer.Option("--target", help="Outcome column.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for scorecard.csv/.json, "
                                                    "report.json and score.sql.")],
    id_column: Annotated[str | None, typer.Option("--id", help="Identifier column "
                                                  "(not a feature; kept in score.sql).")] = None,
    bad_value: Annotated[str | None, typer.Option("--bad-value", help="Target value meaning "
                                                  "bad (default 1 for a 0/1 target).")] = None,
    test_size: Annotated[float, typer.Option("--test-size", help="Holdout share.")] = 0.3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split.")] = 0,
) -> None:
    """Fit a scorecard on CSV, evaluate on a stratified holdout, write its artefacts."""
    from gridcredit.ml.scorecard import ScorecardInputError, fit_scorecard_from_csv

    try:
        result = fit_scorecard_from_csv(csv, target, id_column=id_column, bad_value=bad_value,
                                        test_size=test_size, seed=seed, out_dir=out)
    except (ScorecardInputError, ValueError, TypeError) as error:
        # ScorecardInputError: unusable file; ValueError/TypeError: bad option or no usable
        # variable. Either way a message, not a traceback.
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(2) from error
    console.print(
        f"holdout AUC {result['auc']:.4f}  KS {result['ks']:.4f}  Gini {result['gini']:.4f}  "
        f"(baseline logistic regression AUC {result['baseline_lr_auc']:.4f}); "
        f"{len(result['selected_variables'])} variables; "
        f"n_train={result['n_train']} n_test={result['n_test']}",
        highlight=False,
    )
    console.print(f"wrote {out}/scorecard.csv, scorecard.json, report.json, score.sql",
                  highlight=False)
