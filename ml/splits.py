"""Out-of-time splits: train on earlier months, validate and test on later ones. Never random."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridcredit.ml.features import MONTH_INDEX, month_from_index


class InsufficientHistory(ValueError):
    """Too few labelled months (or rows) to train and test a model out of time."""


@dataclass(frozen=True)
class TimeSplit:
    """Month indexes (``year * 12 + month - 1``) of each part, each sorted, parts disjoint and ordered."""

    train: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]

    def __post_init__(self) -> None:
        parts = [p for p in (self.train, self.validation, self.test) if p]
        for earlier, later in zip(parts, parts[1:], strict=False):
            if max(earlier) >= min(later):
                raise ValueError("split parts must be in time order: train < validation < test")

    @property
    def train_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last month the model learned from (train and validation)."""
        learned = self.train + self.validation
        return month_from_index(min(learned)), month_from_index(max(learned))

    def describe(self) -> dict[str, str | None]:
        def fmt(part):
            return (
                (f"{month_from_index(part[0]):%Y-%m}", f"{month_from_index(part[-1]):%Y-%m}") if part else (None, None)
            )

        (tf, tl), (vf, vl), (sf, sl) = fmt(self.train), fmt(self.validation), fmt(self.test)
        return {
            "train_first_month": tf,
            "train_last_month": tl,
            "validation_first_month": vf,
            "validation_last_month": vl,
            "test_first_month": sf,
            "test_last_month": sl,
        }

    def mask(self, frame: pd.DataFrame, part: str) -> np.ndarray:
        return frame[MONTH_INDEX].isin(getattr(self, part)).to_numpy()


def out_of_time_split(
    months,
    train_months: int = 24,
    validation_months: int = 3,
    test_months: int = 3,
    min_train_months: int = 2,
    use_validation: bool = True,
) -> TimeSplit:
    """Split labelled months by time: the last ``test_months`` test, the ``validation_months``
    before validate, up to ``train_months`` before those train.

    When history is short, validation and then test shrink (never below one month each)
    before training falls under ``min_train_months``.

    Parameters
    ----------
    months : iterable of int
        Month indexes with known labels.
    use_validation : bool
        False gives an empty validation part (its months go to training).

    Raises
    ------
    InsufficientHistory
        Fewer than ``min_train_months + 1 (+1 with validation)`` months.
    """
    ms = sorted({int(m) for m in months})
    for name, value in (
        ("train_months", train_months),
        ("test_months", test_months),
        ("min_train_months", min_train_months),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    val = validation_months if use_validation else 0
    test = test_months
    while len(ms) < min_train_months + val + test and (val > (1 if use_validation else 0) or test > 1):
        if val > (1 if use_validation else 0):
            val -= 1
        else:
            test -= 1
    if len(ms) < min_train_months + val + test:
        raise InsufficientHistory(
            f"{len(ms)} labelled months; at least {min_train_months + val + test} needed "
            f"({min_train_months} train + {val} validation + {test} test)"
        )
    test_part = ms[len(ms) - test :]
    val_part = ms[len(ms) - test - val : len(ms) - test]
    train_part = ms[: len(ms) - test - val][-train_months:]
    return TimeSplit(tuple(train_part), tuple(val_part), tuple(test_part))


def sample_rows(index: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """A deterministic sample of at most ``max_rows`` positions (sorted)."""
    index = np.asarray(index)
    if len(index) <= max_rows:
        return index
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=max_rows, replace=False))
