"""Growable column store: numpy arrays that grow as entities (customers, meters, ...) arrive."""

from __future__ import annotations

from typing import Any

import numpy as np


class Store:
    """Columns of equal length with amortised appends.

    ``store.col`` returns a writable view of the first ``n`` values; do not keep views across
    :meth:`add` calls (the buffers may be reallocated).
    """

    def __init__(self, schema: dict[str, tuple[Any, Any]], capacity: int = 1024):
        object.__setattr__(self, "_schema", schema)
        object.__setattr__(self, "n", 0)
        object.__setattr__(
            self, "_d", {k: np.full(capacity, fill, dtype=dt) for k, (dt, fill) in schema.items()}
        )

    def __getattr__(self, name: str) -> np.ndarray:
        d = object.__getattribute__(self, "_d")
        if name in d:
            return d[name][: object.__getattribute__(self, "n")]
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._d:
            self._d[name][: self.n] = value
        else:
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.n

    def add(self, count: int, **values: Any) -> np.ndarray:
        """Append ``count`` rows (missing columns get their fill value); return their indices."""
        unknown = set(values) - set(self._d)
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}")
        start, end = self.n, self.n + count
        cap = len(next(iter(self._d.values())))
        if end > cap:
            new_cap = max(end, cap * 2)
            for k, (dt, fill) in self._schema.items():
                arr = np.full(new_cap, fill, dtype=dt)
                arr[:start] = self._d[k][:start]
                self._d[k] = arr
        for k, v in values.items():
            self._d[k][start:end] = v
        object.__setattr__(self, "n", end)
        return np.arange(start, end)

    def keep(self, mask: np.ndarray) -> None:
        """Drop rows where ``mask`` is False (order preserved)."""
        idx = np.flatnonzero(mask)
        m = len(idx)
        for k in self._d:
            self._d[k][:m] = self._d[k][: self.n][idx]
        object.__setattr__(self, "n", m)
