"""`gridcredit score` and `gridcredit validate taiwan|household` (typer app, mounted by gridcredit/cli.py).

Mount with ``app.add_typer(gridcredit.ml.cli.app)`` (no name: ``score`` and ``validate`` become
top-level commands), or mount ``score_command`` and ``validate_app`` one by one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gridcredit import warehouse
from gridcredit.locking import PipelineBusyError, pipeline_lock

console = Console(stderr=True)
app = typer.Typer(
    help="Score customers (credit, arrears, theft, forecast) and validate on real data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
validate_app = typer.Typer(
    help="Validate the pipeline on real public data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(validate_app, name="validate")


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command("score")
def score_command(
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset: credit_score,arrears_warning,theft_suspicion,consumption_forecast."),
    ] = None,
    rescore: Annotated[
        bool,
        typer.Option(
            help="Rescore the whole backfill window with the current model versions (default: only new months)."
        ),
    ] = False,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Simulator truth folder for extra metrics (default: truth/ next to the latest loaded extract)."
        ),
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            help="Train a new version of every model now, whatever discipline.retrain_every_months says"
            " (the promotion gate still decides)."
        ),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the run summary as JSON here.")] = None,
) -> None:
    """Train (on the retrain cadence) or reuse, gate, score and monitor every model; publish to schema `ml`
    in one atomic switch."""
    from gridcredit import access
    from gridcredit.ml.config import ConfigError
    from gridcredit.ml.scoring import score_all

    conn = warehouse.ensure_running()
    try:
        with pipeline_lock("score", conn):
            # Work as the ML stage's role (access.ml_role), as `gridcredit run` does (ADR 0080): the
            # grants first, so the role reads the feature marts however they were last built.
            if access.stage_role("ml"):
                access.apply(conn)
            summary = score_all(
                conn,
                console,
                models=models.split(",") if models else None,
                rescore=rescore,
                truth_dir=truth,
                work_as="ml",
                retrain=retrain,
            )
    except PipelineBusyError as error:
        raise _fail(str(error), 75) from error
    except (LookupError, ConfigError, ValueError) as error:
        raise _fail(str(error)) from error
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        console.print(f"wrote {json_out}")


@validate_app.command("taiwan")
def validate_taiwan_command(
    csv: Annotated[
        Path | None, typer.Option(help="Taiwan credit default CSV (default: ../shared/data/real/...).")
    ] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("data/validation/taiwan.json"),
    work_dir: Annotated[Path, typer.Option(help="Where the converted extract is written.")] = Path(
        "data/taiwan-extract"
    ),
    database: Annotated[
        str, typer.Option(help="Database created for the validation (dropped and recreated).")
    ] = "gridcredit_taiwan",
    cv_folds: Annotated[
        int,
        typer.Option(help="Also cross-validate on the training cardholders only (0: skip; holdout untouched)."),
    ] = 0,
    search: Annotated[
        Path | None,
        typer.Option(
            help="Search the arrears booster settings declared in ml/taiwan_settings.yaml by cross-validation "
            "on the training cardholders; write every candidate's CV AUC to this JSON and stop (holdout not read)."
        ),
    ] = None,
    search_space: Annotated[
        str,
        typer.Option(help="Which declared search of ml/taiwan_settings.yaml --search runs (search, indicator_search)."),
    ] = "search",
    reuse_database: Annotated[
        bool,
        typer.Option(
            help="Reuse the marts an earlier full run built in --database (skip convert, ingest, dbt, score)."
        ),
    ] = False,
) -> None:
    """Map the Taiwan credit default data into the billing extract, run ingest -> dbt -> ML in its own
    database, and report the arrears model's holdout AUC/KS against a plain GBM on the raw columns."""
    from gridcredit.ml.validate_taiwan import validate_taiwan

    conn = warehouse.ensure_running()
    try:
        report = validate_taiwan(
            conn,
            csv=csv,
            out=out,
            work_dir=work_dir,
            database=database,
            console=console,
            cv_folds=cv_folds,
            search=search,
            search_space=search_space,
            reuse_database=reuse_database,
        )
    except (LookupError, RuntimeError, ValueError) as error:
        raise _fail(str(error)) from error
    if search:
        typer.echo(json.dumps({"chosen": report["chosen"], "n_candidates": report["n_candidates"]}, indent=2))
        return
    typer.echo(json.dumps({k: report[k] for k in ("auc", "ks", "baseline_gbm_auc")}, indent=2))


@validate_app.command("household")
def validate_household_command(
    csv: Annotated[
        Path | None, typer.Option(help="Daily household consumption CSV (default: ../shared/data/real/...).")
    ] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("data/validation/household.json"),
) -> None:
    """Rolling-origin backtest of the consumption forecast on the real household series (monthly totals)."""
    from gridcredit.ml.validate_household import backtest_household

    report = backtest_household(csv=csv, out=out)
    typer.echo(
        json.dumps(
            {k: report[k] for k in ("mae_ratio", "model_mae", "seasonal_naive_mae", "origins")}, indent=2, default=str
        )
    )
