"""`gridcredit validate taiwan`: the real-data check of the arrears model.

1. ``gridcredit.ingestion.taiwan`` maps the Taiwan credit default data into the billing extract;
2. the extract is loaded into its own database (``gridcredit_taiwan`` on the same server) by the
   normal ingestion, and the dbt project builds the feature and label marts there;
3. the normal ML step (`score_all`) runs on it (models without enough history are skipped);
4. the arrears model (same features and estimator as in production; booster settings from the
   ``chosen`` block of ``ml/taiwan_settings.yaml``, else production's) is trained on the
   70% of cardholders outside a fixed stratified holdout (seed 0) and tested on the holdout's
   September rows, whose label "in arrears at the end of next month" is the data set's
   "default next month". The model reads only feature-mart columns.
5. ``baseline_gbm_auc``: a plain gradient boosting on the raw columns, same split.
6. optionally (``cv_folds``), cross-validation on the training cardholders only: the figure on
   which mapping or feature choices are made before the holdout is read;
7. ``search``: the declared settings search by that cross-validation (holdout not read).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from rich.console import Console
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from gridcredit import warehouse
from gridcredit.ml import arrears
from gridcredit.ml import metrics as M
from gridcredit.ml.config import load_config
from gridcredit.ml.features import MONTH_INDEX, load_dataset, month_index
from gridcredit.ml.modelling import usable_features

# The pipeline's first dbt phase (dbt_project/selectors.yml `before_scoring`: seeds, staging,
# intermediate and marts up to the feature mart, with their data tests), in its own target and log
# folders because the main project's dbt runs may be going on at the same time. The calendar spine
# (dbt var calendar_start_date) must reach back to 2005.
DBT_SELECT = [
    "build",
    "--selector",
    "before_scoring",
    "--target-path",
    "target/taiwan",
    "--log-path",
    "logs/taiwan",
    "--vars",
    '{"calendar_start_date": "2004-01-01"}',
]


def _recreate_database(conn: warehouse.Connection, database: str) -> warehouse.Connection:
    admin = conn.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{database}" with (force)')
        pg.execute(f'create database "{database}"')
    return conn.with_dbname(database)


def _model_features(ds, data: pd.DataFrame, rows: np.ndarray, cfg: dict) -> list[str]:
    exclude = set((cfg.get("taiwan") or {}).get("exclude_features") or [])
    return usable_features(data, rows, [f for f in ds.features if f not in exclude])[0]


def _fit(X_train, y_train, features: list[str], cfg: dict, seed: int):
    """The arrears estimator (production code path, ``arrears.fit_classifier``) with the settings in
    ``cfg``; monotonic constraints from ``cfg['taiwan']`` when the search chose them."""
    section = cfg["arrears_warning"]
    params = dict(section["gbm"])
    monotonic = (cfg.get("taiwan") or {}).get("monotonic") or {}
    if monotonic:
        params["monotonic_cst"] = _monotonic_vector(features, monotonic)
    gbm, _ = arrears.fit_classifier(X_train, y_train, X_train[:0], y_train[:0], params, section["calibration"], seed)
    return gbm


def holdout_evaluation(ds, frame: pd.DataFrame, cfg: dict, seed: int = 0) -> dict:
    """Train the arrears model on non-holdout cardholders, test on the holdout's September rows."""
    from gridcredit.ingestion.taiwan import LABEL_COLUMN, MONTHS, customer_id, holdout_customers

    holdout = holdout_customers(frame, 0.3, seed)
    label = ds.labels.get("arrears_next_month")
    if label is None:
        raise LookupError("the label mart has no arrears-next-month column")
    data = ds.frame
    september = int(month_index([pd.Timestamp(MONTHS[-1] + "-01")])[0])
    in_holdout = data[ds.customer_col].isin(holdout).to_numpy()
    labelled = data[label].notna().to_numpy()
    months = data[MONTH_INDEX].to_numpy()
    train = np.flatnonzero(~in_holdout & labelled & (months <= september))
    test = np.flatnonzero(in_holdout & (months == september) & labelled)
    features = _model_features(ds, data, train, cfg)
    X = data[features].to_numpy(dtype=float)
    y = data[label].to_numpy(dtype=float)
    gbm = _fit(X[train], y[train], features, cfg, seed)
    prob = gbm.predict_proba(X[test])[:, 1]
    result = {f"{k}": v for k, v in M.classification_metrics(y[test], prob).items()}

    # Out-of-time variant: learn only from April-August (labels from the repayment status).
    oot = np.flatnonzero(~in_holdout & labelled & (months < september))
    gbm_oot = _fit(X[oot], y[oot], features, cfg, seed)
    prob_oot = gbm_oot.predict_proba(X[test])[:, 1]
    result["auc_out_of_time"] = M.auc(y[test], prob_oot)
    result["ks_out_of_time"] = M.ks(y[test], prob_oot)

    # The label of the holdout rows must be the data set's own label.
    truth = frame.set_index(pd.Index(customer_id(frame["ID"])))[LABEL_COLUMN]
    test_customers = data.iloc[test][ds.customer_col].to_numpy()
    result["label_agreement"] = float(np.mean(truth.reindex(test_customers).to_numpy() == y[test]))

    # Baseline: plain gradient boosting on the raw columns, same cardholders.
    raw = frame.set_index(pd.Index(customer_id(frame["ID"])))
    raw_cols = [c for c in frame.columns if c not in ("ID", LABEL_COLUMN)]
    train_customers = sorted(set(raw.index) - holdout)
    test_customers_sorted = sorted(holdout)
    base = HistGradientBoostingClassifier(random_state=seed)
    base.fit(raw.loc[train_customers, raw_cols], raw.loc[train_customers, LABEL_COLUMN])
    base_prob = base.predict_proba(raw.loc[test_customers_sorted, raw_cols])[:, 1]
    result["baseline_gbm_auc"] = M.auc(raw.loc[test_customers_sorted, LABEL_COLUMN], base_prob)
    result["baseline_gbm_ks"] = M.ks(raw.loc[test_customers_sorted, LABEL_COLUMN], base_prob)
    result.update(
        {
            "n_train_rows": int(len(train)),
            "n_train_customers": int(len(set(data.iloc[train][ds.customer_col]))),
            "n_test": int(len(test)),
            "features": features,
            "n_features": len(features),
        }
    )
    return result


def _training_folds(ds, frame: pd.DataFrame, folds: int, seed: int):
    """Row positions (fit, test) of each fold of the training cardholders; the holdout is never used.

    The 70% of cardholders outside the holdout are split into ``folds`` folds stratified by the
    default label (seed ``seed``); a fold's model learns from every labelled month (April-September)
    of the other folds and is tested on the fold's September rows.
    """
    from sklearn.model_selection import StratifiedKFold

    from gridcredit.ingestion.taiwan import LABEL_COLUMN, MONTHS, customer_id, holdout_customers

    label = ds.labels.get("arrears_next_month")
    if label is None:
        raise LookupError("the label mart has no arrears-next-month column")
    data = ds.frame
    holdout = holdout_customers(frame, 0.3, seed)
    raw = frame.set_index(pd.Index(customer_id(frame["ID"])))
    train_customers = np.array(sorted(set(raw.index) - holdout))
    september = int(month_index([pd.Timestamp(MONTHS[-1] + "-01")])[0])
    months = data[MONTH_INDEX].to_numpy()
    labelled = data[label].notna().to_numpy()
    customers = data[ds.customer_col]
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fit_idx, test_idx in splitter.split(train_customers, raw.loc[train_customers, LABEL_COLUMN].to_numpy()):
        # pandas isin hashes; numpy's isin on text ids compares every pair (minutes at 30,000)
        in_fit = customers.isin(train_customers[fit_idx]).to_numpy()
        in_test = customers.isin(train_customers[test_idx]).to_numpy()
        yield (
            np.flatnonzero(in_fit & labelled & (months <= september)),
            np.flatnonzero(in_test & labelled & (months == september)),
        )


def training_cross_validation(ds, frame: pd.DataFrame, cfg: dict, folds: int = 5, seed: int = 0) -> dict:
    """AUC of the arrears model by cross-validation on the training cardholders only.

    The holdout is never touched (:func:`_training_folds`). The model uses the feature-mart
    features and the settings the validation uses (:func:`taiwan_model_settings`). This is the
    figure to compare mapping, feature or booster choices on, before the holdout is read (ADR 0033).
    """
    label = ds.labels.get("arrears_next_month")
    if label is None:
        raise LookupError("the label mart has no arrears-next-month column")
    data = ds.frame
    y = data[label].to_numpy(dtype=float)
    aucs = []
    for train, test in _training_folds(ds, frame, folds, seed):
        features = _model_features(ds, data, train, cfg)
        X = data[features].to_numpy(dtype=float)
        gbm = _fit(X[train], y[train], features, cfg, seed)
        aucs.append(M.auc(y[test], gbm.predict_proba(X[test])[:, 1]))
    return {"cv_auc_training": float(np.mean(aucs)), "cv_auc_training_folds": [float(a) for a in aucs]}


# -- settings search (ADR 0033): declared here, before it ran; selection on training folds only ----
SETTINGS_FILE = Path(__file__).with_name("taiwan_settings.yaml")


def taiwan_model_settings(cfg: dict, settings_file: Path | None = SETTINGS_FILE) -> tuple[dict, dict]:
    """The configuration the Taiwan validation trains with, and the chosen settings applied.

    Production's arrears settings (``ml/config.yaml``), overridden by the ``chosen`` block of
    ``ml/taiwan_settings.yaml`` (booster parameters and excluded features picked by the
    cross-validated search on the training cardholders, :func:`search_settings`).
    """
    import copy

    import yaml

    chosen = {}
    if settings_file is not None and Path(settings_file).exists():
        chosen = (yaml.safe_load(Path(settings_file).read_text()) or {}).get("chosen") or {}
    cfg = copy.deepcopy(cfg)
    section = cfg["arrears_warning"]
    section["gbm"] = {**section["gbm"], **(chosen.get("gbm") or {})}
    cfg.setdefault("taiwan", {})["exclude_features"] = list(chosen.get("exclude_features") or [])
    cfg["taiwan"]["monotonic"] = dict(chosen.get("monotonic") or {})
    return cfg, chosen


def _monotonic_vector(features: list[str], monotonic: dict) -> list[int] | None:
    """HistGradientBoosting ``monotonic_cst`` for ``features`` from {feature: 1 (increasing) | -1}."""
    if not monotonic:
        return None
    return [int(monotonic.get(f, 0)) for f in features]


def _staged_fold_aucs(X_train, y_train, X_test, y_test, params, monotonic_cst, checkpoints, seed) -> dict:
    """Test AUC of one fold's booster at each checkpoint (staged predictions of one fit)."""
    with threadpool_limits(limits=1):
        gbm = HistGradientBoostingClassifier(
            random_state=seed, early_stopping=False, max_iter=checkpoints[-1], monotonic_cst=monotonic_cst, **params
        )
        gbm.fit(X_train, y_train.astype(int))
        return {
            k: M.auc(y_test, prob[:, 1])
            for k, prob in enumerate(gbm.staged_predict_proba(X_test), start=1)
            if k in checkpoints
        }


def search_settings(
    ds, frame: pd.DataFrame, cfg: dict, space: dict, console: Console | None = None, jobs: int = 1
) -> dict:
    """Cross-validated search of the arrears booster settings on the training cardholders only.

    ``space`` (the ``search`` block of ``ml/taiwan_settings.yaml``): ``folds``, ``seed``,
    ``checkpoints`` (iteration counts read from one fit's staged predictions: a fit without early
    stopping or subsampling is the same at iteration k whatever its max_iter), ``stage_1`` (a grid
    of booster parameters) and ``stage_2`` (variations of the stage-1 winner: other parameter
    values, monotonic constraints, excluded features). Every candidate's mean and per-fold AUC is
    returned; the winner is the highest mean CV AUC. The holdout is never read. ``jobs`` folds are
    fitted at once in worker processes (same figures whatever ``jobs``).
    """
    import itertools

    from joblib import Parallel, delayed

    console = console or Console(stderr=True, quiet=True)
    label = ds.labels.get("arrears_next_month")
    data = ds.frame
    y = data[label].to_numpy(dtype=float)
    folds, seed = int(space["folds"]), int(space["seed"])
    jobs = max(int(jobs), int(space.get("jobs", 1)))
    checkpoints = sorted(int(c) for c in space["checkpoints"])
    split = list(_training_folds(ds, frame, folds, seed))
    base = {k: v for k, v in cfg["arrears_warning"]["gbm"].items() if k != "max_iter"}
    rows: list[dict] = []

    def evaluate(stage: str, params: dict, exclude: list[str], monotonic: dict) -> None:
        began = time.perf_counter()
        tasks = []
        for train, test in split:
            features, _ = usable_features(data, train, [f for f in ds.features if f not in exclude])
            X = data[features].to_numpy(dtype=float)
            tasks.append(
                delayed(_staged_fold_aucs)(
                    X[train], y[train], X[test], y[test], params, _monotonic_vector(features, monotonic),
                    checkpoints, seed,
                )
            )
        # Folds in worker processes (one thread each): the figures do not depend on `jobs`.
        results = Parallel(n_jobs=jobs)(tasks) if jobs > 1 else [task[0](*task[1], **task[2]) for task in tasks]
        per_fold = {k: [fold[k] for fold in results] for k in checkpoints}
        for k in checkpoints:
            rows.append(
                {
                    "stage": stage,
                    "gbm": {**params, "max_iter": k},
                    "exclude_features": exclude,
                    "monotonic": monotonic,
                    "cv_auc": round(float(np.mean(per_fold[k])), 5),
                    "cv_auc_folds": [round(float(a), 5) for a in per_fold[k]],
                }
            )
        best = max(rows[-len(checkpoints):], key=lambda r: r["cv_auc"])
        console.print(
            f"  {stage} {params} excl={len(exclude)} mono={len(monotonic)}: best CV AUC {best['cv_auc']:.4f} "
            f"at {best['gbm']['max_iter']} iterations ({time.perf_counter() - began:.0f} s)",
            highlight=False,
        )

    grid = space["stage_1"]
    keys = sorted(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        evaluate("stage_1", {**base, **dict(zip(keys, values, strict=True))}, [], {})
    winner = max(rows, key=lambda r: r["cv_auc"])
    stage_1_best = {k: v for k, v in winner["gbm"].items() if k != "max_iter"}
    for variant in space.get("stage_2") or []:
        params = {**stage_1_best, **(variant.get("gbm") or {})}
        evaluate("stage_2", params, list(variant.get("exclude_features") or []), dict(variant.get("monotonic") or {}))
    winner = max(rows, key=lambda r: r["cv_auc"])
    plain = dict(cfg["arrears_warning"]["gbm"])
    production = next(
        (r for r in rows if r["gbm"] == plain and not r["exclude_features"] and not r["monotonic"]), None
    )
    return {
        "space": space,
        "n_candidates": len(rows),
        "features": list(ds.features),
        "chosen": {k: winner[k] for k in ("gbm", "exclude_features", "monotonic", "cv_auc", "cv_auc_folds")},
        "production_settings_cv_auc": production["cv_auc"] if production else None,
        "candidates": sorted(rows, key=lambda r: -r["cv_auc"]),
        "holdout_read": False,
    }


def validate_taiwan(
    conn: warehouse.Connection,
    csv: Path | None = None,
    out: Path | None = None,
    work_dir: Path = Path("data/taiwan-extract"),
    database: str = "gridcredit_taiwan",
    console: Console | None = None,
    limit: int | None = None,
    cv_folds: int = 0,
    search: Path | None = None,
    reuse_database: bool = False,
    search_space: str = "search",
    settings_file: Path | None = SETTINGS_FILE,
) -> dict:
    """Run the Taiwan validation end to end; write and return the JSON report.

    Parameters
    ----------
    conn : gridcredit.warehouse.Connection
        Server to use; the validation creates (drops and recreates) ``database`` on it.
    csv : Path, optional
        The Taiwan CSV (default: the shared copy).
    out : Path, optional
        JSON report path.
    work_dir : Path
        Folder for the converted extract (recreated).
    limit : int, optional
        Only the first ``limit`` cardholders (tests).
    cv_folds : int
        Also report :func:`training_cross_validation` with this many folds (0: not run).
    search : Path, optional
        Run :func:`search_settings` (the space declared in ``settings_file``) on the training
        cardholders, write every candidate's CV AUC to this JSON file and stop: the holdout is
        not read in this mode. Copy the winner into the ``chosen`` block of ``settings_file``.
    search_space : str
        Which declared search block of ``settings_file`` ``search`` runs: ``search`` (booster
        settings) or ``indicator_search`` (which feature-mart indicators the model reads).
    reuse_database : bool
        Skip conversion, ingestion, dbt and scoring: read the marts an earlier full run of the same
        code built in ``database`` (for repeated searches; a full run is the validation).
    settings_file : Path, optional
        Declared search space and chosen settings (:func:`taiwan_model_settings`); None: the
        production settings alone.
    """
    from gridcredit.cli import run_dbt
    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ingestion.taiwan import convert_taiwan, read_taiwan
    from gridcredit.ml.scoring import score_all

    console = console or Console(stderr=True, quiet=True)
    production_cfg = load_config()
    cfg, chosen = taiwan_model_settings(production_cfg, settings_file)
    timings = {}
    began = time.perf_counter()
    frame = read_taiwan(csv, limit)
    target = conn.with_dbname(database)
    loaded = rejected = None
    scoring = None
    if not reuse_database:
        work_dir = Path(work_dir)
        shutil.rmtree(work_dir, ignore_errors=True)
        convert_taiwan(work_dir, csv, limit)
        timings["convert_s"] = round(time.perf_counter() - began, 1)

        step = time.perf_counter()
        target = _recreate_database(conn, database)
        summary = ingest_directory(work_dir, conn=target, console=console)
        rejected = sum(int(getattr(f, "rows_rejected", 0) or 0) for f in summary.files)
        loaded = sum(int(getattr(f, "rows_loaded", 0) or 0) for f in summary.files)
        timings["ingest_s"] = round(time.perf_counter() - step, 1)

        step = time.perf_counter()
        console.print(f"[bold]dbt {' '.join(DBT_SELECT)}[/] (database {database})")
        code = run_dbt(DBT_SELECT, target)
        if code != 0:
            raise RuntimeError(
                f"dbt build failed on the Taiwan database (exit {code}); see dbt_project/logs/taiwan/dbt.log"
            )
        timings["dbt_s"] = round(time.perf_counter() - step, 1)

        step = time.perf_counter()
        scoring = score_all(target, console, cfg=production_cfg)
        timings["score_all_s"] = round(time.perf_counter() - step, 1)

    step = time.perf_counter()
    threads = int(production_cfg["discipline"].get("threads", 1))
    with threadpool_limits(limits=threads), warehouse.connect(target) as pg:
        ds = load_dataset(pg, production_cfg)
        timings["load_features_s"] = round(time.perf_counter() - step, 1)
        if search:
            import yaml

            declared = yaml.safe_load(Path(settings_file).read_text()) or {}
            if search_space not in declared:
                raise LookupError(f"{settings_file} declares no search block {search_space!r}")
            space = declared[search_space]
            step = time.perf_counter()
            console.print(f"settings search on the training cardholders ({settings_file}); the holdout is not read")
            found = search_settings(ds, frame, production_cfg, space, console)
            found["timings"] = {**timings, "search_s": round(time.perf_counter() - step, 1)}
            search = Path(search)
            search.parent.mkdir(parents=True, exist_ok=True)
            search.write_text(json.dumps(found, indent=2, default=str) + "\n")
            console.print(
                f"wrote {search}: {found['n_candidates']} candidates; best CV AUC {found['chosen']['cv_auc']:.4f} "
                f"{found['chosen']['gbm']} (production settings {found['production_settings_cv_auc']})",
                highlight=False,
            )
            return found
        step = time.perf_counter()
        result = holdout_evaluation(ds, frame, cfg, seed=0)
        if chosen:
            # The production settings on the same split, for comparison (ADR 0033).
            plain = holdout_evaluation(ds, frame, production_cfg, seed=0)
            result["auc_production_settings"] = plain["auc"]
            result["ks_production_settings"] = plain["ks"]
        timings["holdout_s"] = round(time.perf_counter() - step, 1)
        if cv_folds:
            step = time.perf_counter()
            result.update(training_cross_validation(ds, frame, cfg, folds=cv_folds, seed=0))
            timings["cross_validation_s"] = round(time.perf_counter() - step, 1)
    timings["total_s"] = round(time.perf_counter() - began, 1)

    report = {
        "auc": result.pop("auc"),
        "ks": result.pop("ks"),
        "baseline_gbm_auc": result.pop("baseline_gbm_auc"),
        **result,
        "target_auc": 0.775,
        "holdout": "stratified 30% of cardholders by the default label, seed 0 (sklearn train_test_split)",
        "database": database,
        "rows_loaded": loaded,
        "rows_rejected": rejected,
        "model_settings": {
            "gbm": cfg["arrears_warning"]["gbm"],
            **cfg["taiwan"],
            "source": f"{SETTINGS_FILE.name} chosen block (CV-selected)" if chosen else "ml/config.yaml (production)",
        },
        "reused_database": reuse_database,
        "pipeline_models": {
            name: {"status": m["status"], "reason": m["reason"]} for name, m in scoring["models"].items()
        }
        if scoring
        else None,
        "timings": timings,
    }
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        console.print(f"wrote {out}")
    console.print(
        f"Taiwan holdout: arrears model AUC {report['auc']:.4f} KS {report['ks']:.4f}; "
        f"plain GBM on raw columns AUC {report['baseline_gbm_auc']:.4f} (target AUC >= 0.775)",
        highlight=False,
    )
    return report
