"""The published ``ml`` schema: every table the ML step writes, with column descriptions.

One definition drives the DDL of ``ml.*``, the build area ``ml__build.*`` (same columns), the
write-back (column order for COPY) and the documentation (COMMENT ON, read by dbt docs and
Superset). Tables are created once and never dropped, so dbt sources, views and dashboards that
depend on them keep working across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "ml"
BUILD_SCHEMA = "ml__build"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # Secondary indexes of the published table (column lists, e.g. ("as_of_month desc", "risk_rank")).
    indexes: tuple[tuple[str, ...], ...] = ()
    # Partial indexes (columns, predicate) for lists that show only flagged rows: walking a full index
    # would skip every unflagged customer of each month, so a list's cost would grow with customers.
    partial_indexes: tuple[tuple[tuple[str, ...], str], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, type_: str, description: str, not_null: bool = False) -> Column:
    return Column(name, type_, description, not_null)


RUN = (
    _c("run_id", "text", "Model run that produced the model used (joins ml.model_runs).", True),
    _c("model_version", "text", "Version of the model used: <last training month>.<fingerprint>.", True),
    _c(
        "scored_at",
        "timestamptz",
        "When this month's rows were first published by this run (kept on identical reruns).",
        True,
    ),
)
WINDOW = _c(
    "is_in_training_window",
    "boolean",
    "True when the as-of month (forecast: the target month) lies inside the model's training window: "
    "in-sample, so not an honest out-of-time figure.",
    True,
)
KEYS = (
    _c("customer_id", "text", "Customer (billing system id).", True),
    _c(
        "as_of_month",
        "date",
        "Month the prediction is made for, as of its month end (same value as the feature mart).",
        True,
    ),
)
REASONS = (
    _c("reason_1", "text", "Strongest reason, in plain words (indicator: value (effect))."),
    _c("reason_2", "text", "Second reason."),
    _c("reason_3", "text", "Third reason."),
    _c("reason_codes", "text", "Feature columns behind the reasons, strongest first, comma-separated."),
)
SEGMENT_CODES = (
    _c("industry_code", "text", "Industry (national classification section) of the customer that month."),
    _c("region_code", "text", "Supply region of the customer that month."),
)

TABLES: dict[str, Table] = {}


def _add(table: Table) -> None:
    TABLES[table.name] = table


_add(
    Table(
        "model_runs",
        "One row per model run key (model + training window + fingerprint of data, code and configuration). "
        "A rerun with the same inputs rewrites the same row; each attempt is in ml.model_run_attempts.",
        (
            _c("run_id", "text", "Run key: <model>-<first training month>-<last training month>-<fingerprint>.", True),
            _c("model_name", "text", "credit_score, arrears_warning, theft_suspicion or consumption_forecast.", True),
            _c("model_version", "text", "<last training month>.<fingerprint prefix>.", True),
            _c("train_window_first_month", "date", "First month the model learned from.", True),
            _c("train_window_last_month", "date", "Last month the model learned from (training or calibration).", True),
            _c("test_first_month", "date", "First out-of-time test month."),
            _c("test_last_month", "date", "Last out-of-time test month."),
            _c("label_column", "text", "Label learned (feature-mart label column); null for the forecast."),
            _c("fingerprint", "text", "sha256 of model name, training data, code and configuration.", True),
            _c("data_fingerprint", "text", "sha256 of the rows and columns used to train and test.", True),
            _c("code_fingerprint", "text", "sha256 of the gridcredit.ml source files.", True),
            _c("config_fingerprint", "text", "sha256 of ml/config.yaml as loaded.", True),
            _c("parameters", "jsonb", "Model parameters (hyper-parameters, features used, split).", True),
            _c(
                "metrics",
                "jsonb",
                "Out-of-time metrics (AUC, KS, Gini, Brier; precision at capacity; MAE ratio, MASE, "
                "WAPE), baselines, simulator-truth comparisons and notes.",
                True,
            ),
            _c("status", "text", "promoted (this version became or stays the current one) or rejected.", True),
            _c("status_reason", "text", "Why the promotion gate decided so.", True),
            _c("compared_with_run_id", "text", "Current version the gate compared against (null for the first)."),
            _c("is_current", "boolean", "True for the version currently used to score new months.", True),
            _c("created_at", "timestamptz", "First attempt of this run key.", True),
        ),
        ("run_id",),
    )
)
_add(
    Table(
        "model_run_metrics",
        "Numeric metrics of each run, one row per metric (for dashboards: AUC/KS over runs).",
        (
            _c("run_id", "text", "Model run.", True),
            _c("model_name", "text", "Model.", True),
            _c("metric", "text", "Metric name (auc, ks, gini, brier, precision_at_capacity, mae_ratio, ...).", True),
            _c("value", "double precision", "Value on the out-of-time test months."),
        ),
        ("run_id", "metric"),
    )
)
_add(
    Table(
        "model_metrics_by_decile",
        "Calibration: mean predicted probability versus observed rate per decile of the prediction on the "
        "out-of-time test months (decile 10 = highest predictions).",
        (
            _c("run_id", "text", "Model run.", True),
            _c("model_name", "text", "Model.", True),
            _c("decile", "integer", "1 (lowest predictions) to 10 (highest).", True),
            _c("customers", "integer", "Customer-months in the decile.", True),
            _c("mean_predicted", "double precision", "Mean predicted probability (theft: suspicion score)."),
            _c("observed_rate", "double precision", "Observed rate of the label."),
            _c("min_predicted", "double precision", "Lowest prediction in the decile."),
            _c("max_predicted", "double precision", "Highest prediction in the decile."),
        ),
        ("run_id", "decile"),
    )
)
_add(
    Table(
        "model_artifacts",
        "Pickled model of each promoted run (the current version scores new months from it).",
        (
            _c("run_id", "text", "Model run.", True),
            _c("model_name", "text", "Model.", True),
            _c(
                "artifact",
                "bytea",
                "Python pickle of the fitted model (trusted, written only by gridcredit score).",
                True,
            ),
            _c("artifact_sha256", "text", "sha256 of the pickle.", True),
        ),
        ("run_id",),
    )
)
_add(
    Table(
        "credit_scores",
        "Behavioural credit score: one row per customer per as-of month. Score 0-100 from a WOE scorecard on "
        '"bad within 12 months", model grade from the cut-offs, final grade after the credit policy\'s overrides.',
        (
            *KEYS,
            _c(
                "score", "integer", "Credit score 0-100 (higher = lower risk): floor(points) clipped to [0, 100].", True
            ),
            _c(
                "points", "double precision", "Scorecard points before rounding (pdo and base in ml/config.yaml).", True
            ),
            _c("probability_bad", "double precision", "Probability of being bad within 12 months (model).", True),
            _c(
                "model_grade",
                "text",
                "Grade from the score: AAA [90,100], AA [80,90), A [70,80), B [60,70), C [0,60).",
                True,
            ),
            _c("final_grade", "text", "Grade after the override rules (forced C, capped at A).", True),
            _c("override_reason", "text", "Reasons of the override rules that lowered the grade; null if none."),
            *REASONS,
            WINDOW,
            *RUN,
        ),
        ("customer_id", "as_of_month"),
    )
)
_add(
    Table(
        "arrears_warnings",
        "Arrears early warning, customer level: one row per customer per as-of month with the probability of being "
        "in arrears at the end of the next month and a warning level.",
        (
            *KEYS,
            _c(
                "probability",
                "double precision",
                "Calibrated probability of being in arrears at the end of next month.",
                True,
            ),
            _c(
                "warning_level",
                "text",
                "red, orange, yellow or none (thresholds or collector capacity, ml/config.yaml).",
                True,
            ),
            _c("risk_rank", "integer", "1 = highest probability of the month.", True),
            *SEGMENT_CODES,
            *REASONS,
            WINDOW,
            *RUN,
        ),
        ("customer_id", "as_of_month"),
        # The dashboards' high-risk list: latest month first, then by rank (reads ~row_limit rows).
        (("as_of_month desc", "risk_rank"),),
    )
)
_add(
    Table(
        "arrears_warnings_by_segment",
        "Arrears early warning, industry and region level: one row per segment per as-of month.",
        (
            _c("segment_type", "text", "industry or region.", True),
            _c("segment_code", "text", "Industry section or supply region code.", True),
            _c("as_of_month", "date", "As-of month.", True),
            _c("customers", "integer", "Customers scored in the segment.", True),
            _c("mean_probability", "double precision", "Mean arrears probability of the segment.", True),
            _c("expected_customers_in_arrears", "double precision", "Sum of probabilities.", True),
            _c("portfolio_mean_probability", "double precision", "Mean probability of all customers that month.", True),
            _c("lift", "double precision", "Segment mean / portfolio mean."),
            _c("red_customers", "integer", "Customers at red.", True),
            _c("orange_customers", "integer", "Customers at orange.", True),
            _c("yellow_customers", "integer", "Customers at yellow.", True),
            _c("warning_level", "text", "Segment level by lift (ml/config.yaml arrears_warning.segments).", True),
            _c("reason", "text", "Why the segment is flagged."),
            *RUN,
        ),
        ("segment_type", "segment_code", "as_of_month"),
    )
)
_add(
    Table(
        "arrears_warnings_environment",
        "Arrears early warning, economic environment level: one row per as-of month for the whole portfolio.",
        (
            _c("as_of_month", "date", "As-of month.", True),
            _c("customers", "integer", "Customers scored.", True),
            _c("mean_probability", "double precision", "Mean arrears probability of the portfolio.", True),
            _c("previous_3_months_mean_probability", "double precision", "Mean of the three previous months."),
            _c("relative_rise", "double precision", "mean_probability / previous_3_months_mean_probability - 1."),
            _c("flagged_industry_share", "double precision", "Share of industries at orange or red.", True),
            _c(
                "activity_indicator",
                "double precision",
                "Mean of the macro activity feature named in activity_indicator_column.",
            ),
            _c("activity_indicator_column", "text", "Feature used as the macro activity indicator, if any."),
            _c("warning_level", "text", "red, orange, yellow or none.", True),
            _c("reason", "text", "Why the level was raised."),
            *RUN,
        ),
        ("as_of_month",),
    )
)
_add(
    Table(
        "theft_suspicion",
        "Theft suspicion: one row per customer per as-of month with a score 0-1, its rank and whether the customer "
        "is on the month's inspection list (top inspection_capacity).",
        (
            *KEYS,
            _c(
                "suspicion_score",
                "double precision",
                "Percentile blend of the supervised probability and the anomaly score (0-1).",
                True,
            ),
            _c(
                "supervised_probability",
                "double precision",
                "Probability of an inspection confirming theft (null without labels).",
            ),
            _c("anomaly_score", "double precision", "Isolation-forest anomaly score of the consumption pattern.", True),
            _c("suspicion_rank", "integer", "1 = most suspicious of the month.", True),
            _c("is_on_inspection_list", "boolean", "Rank within the monthly inspection capacity.", True),
            *SEGMENT_CODES,
            *REASONS,
            WINDOW,
            *RUN,
        ),
        ("customer_id", "as_of_month"),
        # The dashboards' inspection list: latest month first, then by rank (reads ~row_limit rows).
        (("as_of_month desc", "suspicion_rank"),),
        # ... of the customers on the list only (the list filters on the flag).
        ((("as_of_month desc", "suspicion_rank"), "is_on_inspection_list"),),
    )
)
_add(
    Table(
        "consumption_forecasts",
        "Consumption forecast: one row per customer per as-of month per horizon (1-3 months ahead).",
        (
            *KEYS,
            _c("target_month", "date", "Month forecast.", True),
            _c("horizon", "integer", "Months ahead (1-3).", True),
            _c(
                "kwh_forecast",
                "double precision",
                "Forecast kWh of the target month (the published forecast: the global "
                "model combined with seasonal naive, weights in ml/config.yaml).",
                True,
            ),
            _c("global_model_kwh", "double precision", "Forecast of the global gradient-boosting model alone.", True),
            _c("seasonal_naive_kwh", "double precision", "Baseline: kWh of the same month one year before the target."),
            _c(
                "method",
                "text",
                "model+seasonal_naive, model, or fallback (seasonal naive / last value) for short or empty histories.",
                True,
            ),
            WINDOW,
            *RUN,
        ),
        ("customer_id", "as_of_month", "horizon"),
    )
)
_add(
    Table(
        "consumption_forecasts_by_segment",
        "Consumption forecast per industry and region: sums of the customer forecasts.",
        (
            _c("segment_type", "text", "industry or region.", True),
            _c("segment_code", "text", "Segment code.", True),
            _c("as_of_month", "date", "As-of month.", True),
            _c("target_month", "date", "Month forecast.", True),
            _c("horizon", "integer", "Months ahead.", True),
            _c("customers", "integer", "Customers forecast.", True),
            _c("kwh_forecast", "double precision", "Sum of forecast kWh.", True),
            _c("seasonal_naive_kwh", "double precision", "Sum of the seasonal-naive baseline where it exists.", True),
            _c("customers_with_seasonal_naive", "integer", "Customers with a baseline value.", True),
            *RUN,
        ),
        ("segment_type", "segment_code", "as_of_month", "horizon"),
    )
)
_add(
    Table(
        "monitoring_psi",
        "Population stability index month over month of each model's score and of each feature "
        "(< 0.1 stable, 0.1-0.25 investigate, >= 0.25 act; thresholds in ml/config.yaml).",
        (
            _c("model_name", "text", "Model whose score is monitored, or 'features'.", True),
            _c("variable", "text", "Score column or feature column.", True),
            _c("variable_kind", "text", "score or feature.", True),
            _c("as_of_month", "date", "Month compared.", True),
            _c("reference_month", "date", "Previous month (the reference distribution).", True),
            _c("psi", "double precision", "PSI on the reference month's deciles (missing values in their own bin)."),
            _c("flag", "text", "stable, investigate or act."),
            _c("n_current", "integer", "Rows in the month.", True),
            _c("n_reference", "integer", "Rows in the reference month.", True),
        ),
        ("model_name", "variable", "as_of_month"),
    )
)
_add(
    Table(
        "monitoring_grade_bad_rate",
        "Observed bad rate (bad within 12 months) per as-of month and grade, for model and final grades; "
        "null until the 12-month outcome is known.",
        (
            _c("as_of_month", "date", "As-of month of the grade.", True),
            _c("grade_type", "text", "model or final.", True),
            _c("grade", "text", "AAA, AA, A, B or C.", True),
            _c("customers", "integer", "Customers with this grade.", True),
            _c("customers_with_outcome", "integer", "Customers whose outcome is known.", True),
            _c("bads", "integer", "Customers bad within 12 months (null until mature)."),
            _c("bad_rate", "double precision", "bads / customers_with_outcome (null until mature)."),
            _c("is_outcome_mature", "boolean", "True once 12 months have passed.", True),
        ),
        ("as_of_month", "grade_type", "grade"),
    )
)

RUN_ATTEMPTS_DDL = f"""
create table if not exists {SCHEMA}.model_run_attempts (
    attempt_id bigint generated always as identity primary key,
    run_id text,
    model_name text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    outcome text not null default 'running',
    message text
);
comment on table {SCHEMA}.model_run_attempts is
    'Every attempt to run a model (also failed and skipped ones), appended outside the atomic switch.';
-- Which database role ran it (`gridcredit run` works as gridcredit_ml; ADR 0080).
alter table {SCHEMA}.model_run_attempts add column if not exists database_user text default current_user;
"""


def create_table_sql(
    table: Table, schema: str = SCHEMA, unlogged: bool = False, with_comments: bool = True, storage: str = ""
) -> str:
    """``storage``: storage parameters for ``with (...)``, e.g. ``autovacuum_enabled = false``."""
    cols = ",\n    ".join(f"{c.name} {c.type}{' not null' if c.not_null else ''}" for c in table.columns)
    pk = ", ".join(table.primary_key)
    kind = "unlogged table" if unlogged else "table"
    options = f" with ({storage})" if storage else ""
    statement = f"create {kind} if not exists {schema}.{table.name} (\n    {cols},\n    primary key ({pk})\n){options};"
    return statement + ("\n" + comments_sql(table, schema) if with_comments else "")


def comments_sql(table: Table, schema: str = SCHEMA) -> str:
    """COMMENT ON the table and each column (dbt docs and Superset show them)."""
    statements = [f"comment on table {schema}.{table.name} is {_literal(table.description)};"]
    for c in table.columns:
        statements.append(f"comment on column {schema}.{table.name}.{c.name} is {_literal(c.description)};")
    return "\n".join(statements)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ensure_schema(pg) -> None:
    """Create schema ``ml`` and every table in it (idempotent; never drops)."""
    pg.execute(f"create schema if not exists {SCHEMA}")
    for table in TABLES.values():
        pg.execute(create_table_sql(table, with_comments=False))
        for c in table.columns:  # columns added by a later version of this module
            pg.execute(f"alter table {SCHEMA}.{table.name} add column if not exists {c.name} {c.type}")
        pg.execute(comments_sql(table))
        for statement in index_sql(table):
            pg.execute(statement)
    pg.execute(RUN_ATTEMPTS_DDL)


def index_sql(table: Table, schema: str = SCHEMA) -> list[str]:
    """``create index if not exists`` of the table's secondary indexes. Only the published tables
    carry them (dashboards read ``ml``): the build area stays cheap to fill, and the publish switch
    updates rows in place, so an index made once stays."""
    statements = []
    for columns in table.indexes:
        name = "_".join([table.name, *(c.split()[0] for c in columns), "idx"])
        statements.append(f"create index if not exists {name} on {schema}.{table.name} ({', '.join(columns)})")
    for columns, predicate in table.partial_indexes:
        name = "_".join([table.name, predicate.split()[0], "idx"])
        statements.append(
            f"create index if not exists {name} on {schema}.{table.name} ({', '.join(columns)}) where {predicate}"
        )
    return statements


def table_checksums(pg, schema: str = SCHEMA) -> dict[str, tuple[int, str]]:
    """Row count and md5 of every published ml table's rows in primary-key order (tests, audits)."""
    out = {}
    for table in TABLES.values():
        order = ", ".join(table.primary_key)
        row = pg.execute(
            f"select count(*), md5(coalesce(string_agg(t::text, '|' order by {order}), '')) "
            f"from {schema}.{table.name} as t"
        ).fetchone()
        out[table.name] = (int(row[0]), row[1])
    return out
