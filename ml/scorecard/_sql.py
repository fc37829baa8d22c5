"""Render a fitted :class:`Scorecard` as a portable SQL ``select`` (PostgreSQL, SQLite)."""

from __future__ import annotations

import math
import re

import pandas as pd

TABLE_PLACEHOLDER = "{{ table }}"


def quote_identifier(name: str) -> str:
    """Double-quote an SQL identifier (standard SQL; keeps case and odd characters)."""
    return '"' + str(name).replace('"', '""') + '"'


def _quote_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _number(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write non-finite number {value!r} as SQL")
    text = repr(value)
    return text if "e" in text or "." in text else text + ".0"


def _points_column(variable: str) -> str:
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", variable).strip("_").lower() or "variable"
    return f"points__{slug}"


def _case_expression(column: str, rows: pd.DataFrame) -> str:
    col = quote_identifier(column)
    lines = ["case"]
    by_kind = {kind: part for kind, part in rows.groupby("bin_kind", sort=False)}
    missing = by_kind["missing"].iloc[0]
    lines.append(f"            when {col} is null then {_number(missing['points'])}")
    if "special" in by_kind:
        special = by_kind["special"].iloc[0]
        codes = ", ".join(_number(c) for c in special["categories"])
        lines.append(f"            when {col} in ({codes}) then {_number(special['points'])}")
    bins = by_kind["bin"].sort_values("bin_index")
    if rows["dtype"].iloc[0] == "categorical":
        for _, row in bins.iterrows():
            cats = ", ".join(_quote_text(c) for c in row["categories"])
            lines.append(f"            when {col} in ({cats}) then {_number(row['points'])}")
        unknown = by_kind["unknown"].iloc[0]
        lines.append(f"            else {_number(unknown['points'])}")
    else:
        for _, row in bins.iloc[:-1].iterrows():
            lines.append(
                f"            when {col} < {_number(row['upper'])} then {_number(row['points'])}"
            )
        lines.append(f"            else {_number(bins.iloc[-1]['points'])}")
    lines.append("        end")
    return "\n".join(lines)


def scorecard_sql(card, table: str = TABLE_PLACEHOLDER, keep_columns: list[str] | None = None) -> str:
    """Render a fitted scorecard as one SQL ``select`` statement.

    The statement uses only standard SQL (``case when``, ``<``, ``in``, ``is null``,
    double-quoted identifiers), so it runs unchanged on PostgreSQL and SQLite.

    Parameters
    ----------
    card : Scorecard
        A fitted scorecard.
    table : str, default="{{ table }}"
        What goes after ``from``. The default is a Jinja-style placeholder: substitute it
        with a table name or a parenthesised subquery (``str.replace``, dbt, sed) before
        running. Pass a real table name to get a ready-to-run statement.
    keep_columns : list of str, optional
        Input columns to carry through (e.g. the customer id). Default: all input columns
        (``source_rows.*``).

    Returns
    -------
    str
        ``select <kept columns>, points__<variable>..., score from <table> as source_rows``
        wrapped in a CTE. One output row per input row; ``score`` is the sum of the
        ``points__*`` columns (higher score = lower risk). A numeric value is binned by
        ``value < upper`` from the lowest bin up (bins are ``[lower, upper)``), ``null`` gets
        the missing bin, categorical values not seen in training get the ``unknown`` points.
        Categorical columns must hold text in the database (compared to quoted literals).
    """
    t = card.table_
    keep = "source_rows.*" if keep_columns is None else ",\n        ".join(
        f"source_rows.{quote_identifier(c)}" for c in keep_columns
    )
    point_cols = []
    cases = []
    for variable in card.selected_features_:
        rows = t[t["variable"] == variable]
        alias = _points_column(variable)
        point_cols.append(alias)
        cases.append(f"        {_case_expression(variable, rows)} as {quote_identifier(alias)}")
    total = "\n        + ".join(quote_identifier(a) for a in point_cols)
    header = (
        "-- gridcredit scorecard: scores every row of the input table.\n"
        f"-- Input: replace {TABLE_PLACEHOLDER} with the table (or a parenthesised subquery) "
        "holding the columns below.\n"
        f"-- Variables: {', '.join(card.selected_features_)}.\n"
        f"-- Scaling: pdo={card.pdo}, base_score={card.base_score}, base_odds={card.base_odds}"
        " (good:bad); higher score = lower risk.\n"
    )
    return (
        f"{header}"
        "with points as (\n"
        "    select\n"
        f"        {keep},\n"
        + ",\n".join(cases)
        + f"\n    from {table} as source_rows\n"
        ")\n\n"
        "select\n"
        "    points.*,\n"
        f"    (\n        {total}\n    ) as score\n"
        "from points\n"
    )
