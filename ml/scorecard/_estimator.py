"""The :class:`Scorecard` estimator: optimal WOE binning + logistic regression, scaled to points."""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

MONOTONIC_TRENDS = (
    "auto",
    "auto_heuristic",
    "auto_asc_desc",
    "ascending",
    "descending",
    "concave",
    "convex",
    "peak",
    "valley",
    "peak_heuristic",
    "valley_heuristic",
    None,
)

#: Columns of :attr:`Scorecard.table_` (and of ``scorecard.csv``).
TABLE_COLUMNS = (
    "variable",
    "dtype",
    "bin_index",
    "bin",
    "bin_kind",
    "lower",
    "upper",
    "categories",
    "count",
    "event_rate",
    "woe",
    "coefficient",
    "points",
)


def _clear_fit_timings(process: BinningProcess) -> None:
    """Zero the wall-clock seconds optbinning stores in every fitted object (``_time_total``, ...).

    They are diagnostics only, but they made two fits on the same data pickle to different bytes,
    so a rerun (or a run resumed after a crash) wrote a different model artifact (issues 4 and 7).
    """
    for fitted in (process, *getattr(process, "_binned_variables", {}).values()):
        for name, value in vars(fitted).items():
            if name.startswith("_time_") and value is not None:
                setattr(fitted, name, 0.0)


@contextlib.contextmanager
def _quiet_optbinning():
    """Silence pandas deprecation warnings raised inside optbinning (not ours to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"optbinning")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"optbinning")
        yield


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _as_binning_frame(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Numeric columns as float64 (NaN = missing), categoricals as object str (NaN = missing)."""
    out = {}
    for name in X.columns:
        col = X[name]
        if name in categorical:
            out[name] = col.astype("string").to_numpy(dtype=object, na_value=np.nan)
        else:
            out[name] = pd.to_numeric(col, errors="raise").astype("float64").to_numpy()
    return pd.DataFrame(out, index=X.index)


class Scorecard(ClassifierMixin, BaseEstimator):
    """Application scorecard: monotonic optimal binning, WOE logistic regression, points.

    Every feature is binned with :class:`optbinning.OptimalBinning` (through
    :class:`optbinning.BinningProcess`), replaced by the weight of evidence (WOE) of its bin,
    and a logistic regression predicts the probability of the *bad* class (``y == 1``).
    The log-odds are then scaled to points:

    ``factor = pdo / ln 2``, ``offset = base_score - factor * ln(base_odds)`` and, for a
    variable with coefficient ``coef`` among ``n`` selected variables,
    ``points(bin) = -(coef * woe(bin) + intercept / n) * factor + offset / n``.

    The score of a customer is the sum of the points of their bins, which equals
    ``offset + factor * ln(odds_good)`` where ``odds_good = (1 - p_bad) / p_bad``.
    **Higher score = lower risk**: the score is ``base_score`` at good:bad odds of
    ``base_odds``:1 and rises by ``pdo`` points each time those odds double.

    WOE follows optbinning's convention ``ln(share of goods / share of bads)``, so a
    bin with a lower bad rate than average has a positive WOE; coefficients on WOE are
    therefore expected to be negative (see ``enforce_sign``).

    Parameters
    ----------
    pdo : float, default=20
        Points to double the odds (good:bad). Must be > 0.
    base_score : float, default=600
        Score at which the good:bad odds equal ``base_odds``.
    base_odds : float, default=50
        Good:bad odds at ``base_score``. Must be > 0.
    monotonic_trend : str or None, default="auto_asc_desc"
        Event-rate trend imposed on numeric variables, passed to ``OptimalBinning``.
        One of ``"auto"``, ``"auto_heuristic"``, ``"auto_asc_desc"``, ``"ascending"``,
        ``"descending"``, ``"concave"``, ``"convex"``, ``"peak"``, ``"valley"``,
        ``"peak_heuristic"``, ``"valley_heuristic"`` or None (no constraint).
        Categorical variables are always ordered by event rate.
    max_n_bins : int, default=8
        Maximum number of bins per variable (excluding the special and missing bins).
    min_bin_size : float, default=0.05
        Minimum share of records per bin, in (0, 0.5].
    min_iv : float, default=0.02
        Variables whose information value on the training data is below this are dropped.
    special_codes : list of numbers, optional
        Numeric values that mean "special" (e.g. -999 for "no bureau file"); they get
        their own bin. Missing values (NaN / None / empty) always get their own bin.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    enforce_sign : bool, default=True
        Drop, one at a time, variables whose WOE coefficient is positive (which would give
        more points to riskier bins, usually a sign of collinearity) and refit.
    categorical_features : list of str, optional
        Columns to treat as categorical. Default: every non-numeric, non-boolean column.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``.
    categorical_features_ : list of str
        Columns binned as categorical.
    binning_process_ : optbinning.BinningProcess
        The fitted binning of every input column.
    selected_features_ : list of str
        Variables in the final model, in model order.
    logistic_regression_ : sklearn.linear_model.LogisticRegression
        Fitted on the WOE of ``selected_features_``.
    information_value_ : dict of str to float
        Training IV of every input column.
    factor_, offset_ : float
        Scaling constants (see above).
    table_ : pandas.DataFrame
        One row per variable bin (including ``special``, ``missing`` and, for categorical
        variables, ``unknown`` category rows) with columns :data:`TABLE_COLUMNS`.
    classes_ : ndarray
        ``array([0, 1])``.

    Examples
    --------
    >>> card = Scorecard(pdo=20, base_score=600, base_odds=50).fit(X_train, y_train)
    >>> scores = card.predict_score(X_test)
    >>> sql = card.to_sql(table="{{ table }}", keep_columns=["customer_id"])
    """

    def __init__(
        self,
        pdo: float = 20.0,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        monotonic_trend: str | None = "auto_asc_desc",
        max_n_bins: int = 8,
        min_bin_size: float = 0.05,
        min_iv: float = 0.02,
        special_codes: list | None = None,
        C: float = 1.0,
        enforce_sign: bool = True,
        categorical_features: list[str] | None = None,
    ):
        self.pdo = pdo
        self.base_score = base_score
        self.base_odds = base_odds
        self.monotonic_trend = monotonic_trend
        self.max_n_bins = max_n_bins
        self.min_bin_size = min_bin_size
        self.min_iv = min_iv
        self.special_codes = special_codes
        self.C = C
        self.enforce_sign = enforce_sign
        self.categorical_features = categorical_features

    # -- validation ------------------------------------------------------------------------
    def _validate_params(self) -> None:
        for name in ("pdo", "base_odds", "C"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a positive number, got {value!r}")
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if isinstance(self.base_score, bool) or not isinstance(self.base_score, numbers.Real):
            raise TypeError(f"base_score must be a number, got {self.base_score!r}")
        if self.monotonic_trend not in MONOTONIC_TRENDS:
            raise ValueError(
                f"monotonic_trend must be one of {list(MONOTONIC_TRENDS)}, "
                f"got {self.monotonic_trend!r}"
            )
        if isinstance(self.max_n_bins, bool) or not isinstance(self.max_n_bins, numbers.Integral):
            raise TypeError(f"max_n_bins must be an integer >= 2, got {self.max_n_bins!r}")
        if self.max_n_bins < 2:
            raise ValueError(f"max_n_bins must be an integer >= 2, got {self.max_n_bins!r}")
        if not isinstance(self.min_bin_size, numbers.Real) or not 0 < self.min_bin_size <= 0.5:
            raise ValueError(f"min_bin_size must be in (0, 0.5], got {self.min_bin_size!r}")
        if not isinstance(self.min_iv, numbers.Real) or self.min_iv < 0:
            raise ValueError(f"min_iv must be a number >= 0, got {self.min_iv!r}")
        if self.special_codes is not None:
            if not isinstance(self.special_codes, list | tuple) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in self.special_codes
            ):
                raise TypeError(
                    f"special_codes must be None or a list of numbers, got {self.special_codes!r}"
                )
        if not isinstance(self.enforce_sign, bool):
            raise TypeError(f"enforce_sign must be True or False, got {self.enforce_sign!r}")

    def _validate_X(self, X, *, fitting: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        if X.columns.duplicated().any():
            dupes = sorted(set(X.columns[X.columns.duplicated()]))
            raise ValueError(f"X has duplicated column names: {dupes}")
        if fitting:
            if X.shape[1] == 0:
                raise ValueError("X has no columns")
            return X
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing columns seen in fit: {missing}")
        return X[list(self.feature_names_in_)]

    @staticmethod
    def _validate_y(y, n_rows: int) -> np.ndarray:
        arr = np.asarray(y)
        if arr.ndim != 1 or arr.shape[0] != n_rows:
            raise ValueError(f"y must be 1-D with {n_rows} values (one per row of X), got {arr.shape}")
        if pd.isna(arr).any():
            raise ValueError("y contains missing values; allowed values are 0 and 1")
        values = set(np.unique(arr).tolist())
        if not values <= {0, 1}:
            raise ValueError(f"y must be binary with values 0 (good) and 1 (bad), got {sorted(values)}")
        if len(values) < 2:
            raise ValueError(f"y has a single class {sorted(values)}; both 0 and 1 are needed")
        return arr.astype(int)

    # -- fit -------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y) -> Scorecard:
        """Bin every column, select variables, fit the logistic regression and scale to points.

        Parameters
        ----------
        X : pandas.DataFrame
            Features; numeric columns are binned as numbers, other columns as categories.
            Missing values are allowed.
        y : array-like of shape (n_samples,)
            1 = bad (event), 0 = good.

        Returns
        -------
        self : Scorecard
        """
        self._validate_params()
        X = self._validate_X(X, fitting=True)
        y = self._validate_y(y, len(X))

        if self.categorical_features is None:
            categorical = [c for c in X.columns if _is_categorical(X[c])]
        else:
            unknown = [c for c in self.categorical_features if c not in X.columns]
            if unknown:
                raise ValueError(f"categorical_features not in X: {unknown}")
            categorical = list(self.categorical_features)
        names = [str(c) for c in X.columns]
        if names != list(X.columns):
            raise TypeError("X column names must be strings")
        Xb = _as_binning_frame(X, categorical)

        fit_params = {}
        for name in names:
            params = {"max_n_bins": int(self.max_n_bins), "min_bin_size": float(self.min_bin_size)}
            if name not in categorical:
                params["monotonic_trend"] = self.monotonic_trend
            fit_params[name] = params
        bp = BinningProcess(
            names,
            categorical_variables=categorical or None,
            special_codes=list(self.special_codes) if self.special_codes else None,
            binning_fit_params=fit_params,
            selection_criteria={"iv": {"min": float(self.min_iv)}},
            n_jobs=1,
        )
        with _quiet_optbinning():
            bp.fit(Xb, y)
            summary = bp.summary().set_index("name")
        _clear_fit_timings(bp)
        self.information_value_ = {n: float(summary.loc[n, "iv"]) for n in names}
        selected = [str(n) for n in bp.get_support(names=True)]
        if not selected:
            best = max(self.information_value_.values(), default=0.0)
            raise ValueError(
                f"no variable has information value >= min_iv={self.min_iv} "
                f"(best is {best:.4f}); lower min_iv or add features"
            )
        woe = self._woe(bp, Xb)

        dropped_for_sign = []
        while True:
            lr = LogisticRegression(C=float(self.C), max_iter=1000)
            lr.fit(woe[selected].to_numpy(), y)
            coefs = lr.coef_[0]
            if not self.enforce_sign or len(selected) == 1 or (coefs <= 0).all():
                break
            worst = selected[int(np.argmax(coefs))]
            dropped_for_sign.append(worst)
            selected = [s for s in selected if s != worst]

        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.categorical_features_ = categorical
        self.binning_process_ = bp
        self.selected_features_ = selected
        self.dropped_for_sign_ = dropped_for_sign
        self.logistic_regression_ = lr
        self.classes_ = np.array([0, 1])
        self.factor_ = float(self.pdo) / math.log(2.0)
        self.offset_ = float(self.base_score) - self.factor_ * math.log(float(self.base_odds))
        with _quiet_optbinning():
            self.table_ = self._build_table()
        return self

    # -- transforms ------------------------------------------------------------------------
    @staticmethod
    def _woe(bp: BinningProcess, Xb: pd.DataFrame) -> pd.DataFrame:
        """WOE of every selected column; missing and special values use their own bin's WOE."""
        return bp.transform(Xb, metric="woe", metric_missing="empirical", metric_special="empirical")

    def _woe_selected(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "table_")
        X = self._validate_X(X, fitting=False)
        Xb = _as_binning_frame(X, self.categorical_features_)
        return self._woe(self.binning_process_, Xb)[self.selected_features_].to_numpy()

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of *bad* (``ln(p_bad / (1 - p_bad))``) for each row of ``X``."""
        return self.logistic_regression_.decision_function(self._woe_selected(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities, shape (n_samples, 2): column 0 = good, column 1 = bad."""
        return self.logistic_regression_.predict_proba(self._woe_selected(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted class (1 = bad) at probability threshold 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        """Scorecard points for each row of ``X`` (higher = lower risk).

        Equals the sum over selected variables of the points in :attr:`table_` for the bin
        each value falls in, and ``offset_ - factor_ * decision_function(X)``.
        """
        return self.offset_ - self.factor_ * self.decision_function(X)

    # -- scorecard table -------------------------------------------------------------------
    def _points(self, coef: float, woe: float) -> float:
        n = len(self.selected_features_)
        intercept = float(self.logistic_regression_.intercept_[0])
        return -(coef * woe + intercept / n) * self.factor_ + self.offset_ / n

    def _build_table(self) -> pd.DataFrame:
        rows = []
        specials = list(self.special_codes) if self.special_codes else []
        for name, coef in zip(self.selected_features_, self.logistic_regression_.coef_[0],
                              strict=True):
            optb = self.binning_process_.get_binned_variable(name)
            built = optb.binning_table.build()
            labels = [str(b) for b in built["Bin"].iloc[:-1]]
            counts = built["Count"].iloc[:-1].to_numpy()
            rates = built["Event rate"].iloc[:-1].to_numpy()
            is_cat = optb.dtype == "categorical"
            # One representative value per bin, pushed through optbinning's own transform so
            # the table (and the SQL built from it) reproduces predict_score exactly.
            reps, specs = [], []
            if is_cat:
                for i, cats in enumerate(optb.splits):
                    cats = [str(c) for c in cats]
                    reps.append(cats[0])
                    specs.append(dict(bin_kind="bin", lower=None, upper=None, categories=cats,
                                      label=labels[i]))
            else:
                splits = [float(s) for s in optb.splits]
                edges = [-math.inf, *splits, math.inf]
                for i in range(len(edges) - 1):
                    lo, hi = edges[i], edges[i + 1]
                    reps.append(lo if math.isfinite(lo) else (hi - 1.0 if math.isfinite(hi) else 0.0))
                    specs.append(dict(bin_kind="bin", lower=lo if math.isfinite(lo) else None,
                                      upper=hi if math.isfinite(hi) else None, categories=None,
                                      label=labels[i]))
            n_bins = len(specs)
            # optbinning matches special codes by equality, so they never hit text values.
            use_special = bool(specials) and not is_cat
            if use_special:
                reps.append(specials[0])
                specs.append(dict(bin_kind="special", lower=None, upper=None,
                                  categories=[float(s) for s in specials],
                                  label=f"Special {list(specials)}"))
            reps.append(np.nan)
            specs.append(dict(bin_kind="missing", lower=None, upper=None, categories=None,
                              label="Missing"))
            stat_idx = list(range(n_bins)) + ([n_bins] if use_special else []) + [len(labels) - 1]
            if is_cat:
                reps.append("\x00unknown category\x00")
                specs.append(dict(bin_kind="unknown", lower=None, upper=None, categories=None,
                                  label="Unknown category"))
            arr = np.array(reps, dtype=object if is_cat else float)
            woes = optb.transform(arr, metric="woe", metric_missing="empirical",
                                  metric_special="empirical")
            for k, spec in enumerate(specs):
                stat = stat_idx[k] if k < len(stat_idx) else None
                rows.append({
                    "variable": name,
                    "dtype": "categorical" if is_cat else "numerical",
                    "bin_index": k,
                    "bin": spec["label"],
                    "bin_kind": spec["bin_kind"],
                    "lower": spec["lower"],
                    "upper": spec["upper"],
                    "categories": spec["categories"],
                    "count": int(counts[stat]) if stat is not None else 0,
                    "event_rate": float(rates[stat]) if stat is not None else float("nan"),
                    "woe": float(woes[k]),
                    "coefficient": float(coef),
                    "points": self._points(float(coef), float(woes[k])),
                })
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    def to_sql(self, table: str = "{{ table }}", keep_columns: list[str] | None = None) -> str:
        """PostgreSQL (and SQLite) ``select`` that scores every row of ``table``.

        See :func:`gridcredit.ml.scorecard.scorecard_sql` for the conventions.
        """
        from gridcredit.ml.scorecard._sql import scorecard_sql

        check_is_fitted(self, "table_")
        return scorecard_sql(self, table=table, keep_columns=keep_columns)
