"""The month-by-month simulation of the utility and its customers.

Everything random comes from ``numpy.random.default_rng`` streams keyed by
``SeedSequence(seed, spawn_key=(purpose, month))``: what happens in month ``k`` only depends on
the seed, the size argument and the state carried over from months ``< k``. Nothing ever looks at
the number of months to simulate, so a shorter run is a prefix of a longer one.

Money is held in integer hundredths of a yuan (``centi``), energy in hundredths of a kWh, dates as
days since 1970-01-01, months as an index ``k`` from the start month (``-1`` = before the start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import names as nm
from . import refdata as rd
from .store import Store
from .writer import (
    Cat,
    Centi,
    Days,
    Fixed4,
    Id,
    Int,
    Month,
    Secs,
    Text,
    fmt_centi,
    format_column,
    month_first_day,
)

PURPOSES = [
    "plan", "init", "macro", "arrivals", "health", "theft", "bills", "pay", "collect", "writeoff",
    "close", "changes", "meters", "inspect", "read", "mevents", "legal", "owner", "groups",
]
_PID = {p: i for i, p in enumerate(PURPOSES)}

# ID number offsets (ids are prefix + zero-padded offset + sequence).
CUST_BASE, METER_BASE, ENT_BASE = 100_000_001, 1_000_000_001, 10_000_001
BILL_BASE, PAY_BASE = 100_000_000_001, 100_000_000_001

# Monthly consumption factors by customer type (Fujian: summer air-conditioning peak).
SEASON = np.array([
    [1.05, 0.95, 0.85, 0.85, 0.95, 1.15, 1.45, 1.50, 1.20, 0.95, 0.90, 1.00],  # residential
    [0.92, 0.80, 0.95, 1.00, 1.00, 1.10, 1.20, 1.20, 1.10, 1.00, 1.00, 1.00],  # general C&I
    [0.95, 0.78, 1.00, 1.02, 1.02, 1.03, 1.05, 1.05, 1.03, 1.02, 1.03, 1.05],  # large industrial
    [0.40, 0.40, 0.70, 1.00, 1.30, 1.60, 1.80, 1.80, 1.40, 1.00, 0.60, 0.40],  # agricultural
])
SPRING_FESTIVAL = {
    2019: "02-05", 2020: "01-25", 2021: "02-12", 2022: "02-01", 2023: "01-22", 2024: "02-10",
    2025: "01-29", 2026: "02-17", 2027: "02-06", 2028: "01-26", 2029: "02-13", 2030: "02-03",
    2031: "01-23", 2032: "02-11", 2033: "01-31", 2034: "02-19", 2035: "02-08",
}
INDUSTRY_SEASON = np.zeros((20, 12))
for _j, _vals in {
    "C": {0: -0.04, 1: -0.12}, "F": {0: -0.05, 1: -0.14}, "H": {1: 0.04, 6: 0.06, 7: 0.06, 9: 0.05},
    "R": {1: 0.04, 6: 0.06, 7: 0.06, 9: 0.05}, "A": {0: -0.08, 1: -0.08, 5: 0.08, 6: 0.08, 7: 0.08,
                                                     11: -0.08},
    "D": {0: 0.03, 6: 0.06, 7: 0.06}, "G": {0: 0.05, 10: 0.05, 11: 0.04},
}.items():
    for _m, _v in _vals.items():
        INDUSTRY_SEASON[rd.INDUSTRIES.index(_j), _m] = _v

THEFT_TYPES = ["drop", "zero_runs", "flat_line"]
QUALITY = pa.array(["actual", "estimated"])
REMOVAL_REASONS = ["replacement", "fault", "tamper", "account_closed"]
R_REPLACE, R_FAULT, R_TAMPER, R_CLOSED = range(4)
METER_EVENTS = ["cover_open", "reverse_flow", "phase_loss", "magnetic_interference",
                "power_outage", "clock_error"]
EV_COVER, EV_REVERSE, EV_PHASE, EV_MAGNET, EV_OUTAGE, EV_CLOCK = range(6)
COLLECTION_EVENTS = ["dunning_notice", "disconnection", "reconnection"]
DEPOSIT_TYPES = ["deposit", "refund", "applied_to_arrears"]
TRIGGERS = ["routine", "targeted", "tip_off"]
OUTCOMES = ["theft_confirmed", "violation", "normal"]
LEGAL_TYPES = ["supplier_lawsuit", "dishonest_debtor_listed", "dishonest_debtor_removed",
               "tax_violation"]
BILL_STATUS = ["issued", "written_off", "cancelled"]
CHANGE_ATTRS = ["customer_type", "tariff_code", "region_code", "settlement_method",
                "payment_method", "contract_capacity_kva", "voltage_level"]

TARIFF_PRICE_E4 = np.array([int(p.replace(".", "")) for _, _, _, p in rd.TARIFFS], dtype=np.int64)
TARIFF_CODES = [t[0] for t in rd.TARIFFS]
_T = {code: i for i, code in enumerate(TARIFF_CODES)}
DUE_DAYS = np.array([25, 20, 15, 30])  # by customer type
REGION_W = np.array([r[4] for r in rd.REGIONS])
REGION_W = REGION_W / REGION_W.sum()
URBAN_SHARE = np.array([r[5] for r in rd.REGIONS])
IND = {c: i for i, c in enumerate(rd.INDUSTRIES)}


def _mix(d: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    codes = np.array([IND[c] for c in d])
    p = np.array(list(d.values()), dtype=float)
    return codes, p / p.sum()


GCI_IND, LI_IND = _mix(rd.GCI_INDUSTRY_MIX), _mix(rd.LI_INDUSTRY_MIX)
BETA = np.array([rd.INDUSTRY_BETA[c] for c in rd.INDUSTRIES])
TREND = np.array([rd.INDUSTRY_TREND[c] for c in rd.INDUSTRIES])
ECON_W = np.zeros(20)
for _c, _w in rd.GCI_INDUSTRY_MIX.items():
    ECON_W[IND[_c]] += _w
ECON_W /= ECON_W.sum()
WEEKEND_UP = np.isin(np.arange(20), [IND[c] for c in "GHRSI"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def kwh_amount(kwh_c: np.ndarray, tariff: np.ndarray) -> np.ndarray:
    """Bill amount in centi: round(kwh x price, 2), half up, in exact integer arithmetic."""
    return (np.asarray(kwh_c, dtype=np.int64) * TARIFF_PRICE_E4[tariff] + 5000) // 10000


def _ceil_to(x: np.ndarray, step: int) -> np.ndarray:
    return -(-np.asarray(x, dtype=np.int64) // step) * step


def _rand_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform integer day in [lo, hi] (inclusive, elementwise; hi < lo -> lo)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo)
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _secs(day: np.ndarray, rng: np.random.Generator, lo_h: float, hi_h: float) -> np.ndarray:
    s = rng.integers(int(lo_h * 3600), int(hi_h * 3600), len(day))
    return np.asarray(day, dtype=np.int64) * 86400 + s


@dataclass
class MonthOut:
    """What a month's step produced (for progress reporting)."""

    k: int
    rows: int


class Simulation:
    """State of the simulated utility; :meth:`step` advances one calendar month."""

    def __init__(self, seed: int, n_customers: int, start_mi: int):
        self.seed = int(seed)
        self.N = int(n_customers)
        self.start_mi = int(start_mi)
        self.start_day = month_first_day(start_mi)
        self.cust = Store({
            "kind": (np.int8, 0), "ctype": (np.int8, 0), "region": (np.int16, 0),
            "industry": (np.int8, 19), "voltage": (np.int8, 0), "tariff": (np.int8, 0),
            "settle": (np.int8, 0), "paymeth": (np.int8, 0), "capacity": (np.int64, 0),
            "open_day": (np.int64, 0), "close_day": (np.int64, -1), "ent": (np.int32, -1),
            "rec": (np.int16, -1), "base": (np.float64, 1.0), "drift": (np.float64, 0.0),
            "sigma": (np.float64, 0.2), "wkend": (np.float64, 1.0), "sf": (np.float64, 1.0),
            "pv": (bool, False), "seasonal": (bool, False), "urban": (bool, False),
            "h": (np.float64, 0.0), "hm": (np.float64, 0.0), "offset": (np.float64, 0.0),
            "thief": (bool, False), "t_start": (np.int32, 1 << 30), "t_type": (np.int8, 0),
            "t_drop": (np.float64, 0.0), "t_flat": (np.float64, 0.0), "t_active": (bool, False),
            "t_first": (np.int32, -1), "t_confirm": (np.int32, -1), "t_days": (np.int32, 0),
            "vacant_until": (np.int32, -1), "disc": (bool, False), "credit": (np.int64, 0),
            "deposit": (np.int64, 0), "last_amt": (np.int64, 0), "kwh_prev": (np.int64, 0),
            "tariff_prev": (np.int8, 0), "billable": (bool, False), "last_insp": (np.int32, -99),
            "obs_rate": (np.float64, np.nan), "obs_base": (np.float64, np.nan),
            "obs_zero": (np.int32, 0), "obs_flat": (bool, False), "obs_tamper": (np.int32, 0),
        })
        self.c_name: list[str] = []
        self.c_idnum: list[str] = []
        self.c_phone: list[str | None] = []
        self.c_addr: list[str] = []
        self.c_email: list[str | None] = []
        self.ent = Store({
            "industry": (np.int8, 0), "region": (np.int16, 0), "est_day": (np.int64, 0),
            "capital": (np.int64, 0), "group": (np.int32, -1), "holding": (bool, False),
            "h": (np.float64, 0.0), "hm": (np.float64, 0.0), "listed": (bool, False),
            "rec": (np.int16, -1),
        })
        self.e_name: list[str] = []
        self.e_uscc: list[str] = []
        self.e_rep_name: list[str] = []
        self.e_rep_id: list[str] = []
        self.e_ctrl: list[str | None] = []
        self.group_root: list[int] = []
        self.group_ctrl: list[tuple[str, str]] = []
        self.group_h = np.zeros(0)
        self.meter = Store({
            "cust": (np.int32, 0), "install": (np.int64, 0), "remove": (np.int64, -1),
            "reason": (np.int8, -1), "share": (np.float64, 1.0), "rec": (np.int16, -1),
            "miss_p": (np.float64, 0.005), "fault_until": (np.int64, -1),
            "fault_kind": (np.int8, 0), "fault_val": (np.float64, 0.0),
        })
        self._stake: dict[tuple[int, int], int] = {}  # current stake per (owner, owned)
        self._held: dict[int, int] = {}  # sum of current stakes per owned enterprise
        self.links = Store({
            "owner": (np.int32, 0), "owned": (np.int32, 0), "stake": (np.int64, 0),
            "eff_day": (np.int64, 0), "rec": (np.int16, -1),
        })
        self.bills = Store({
            "bid": (np.int64, 0), "cust": (np.int32, 0), "period": (np.int64, 0),
            "issue": (np.int64, 0), "due": (np.int64, 0), "kwh": (np.int64, 0),
            "amt": (np.int64, 0), "tariff": (np.int8, 0), "rem": (np.int64, 0),
            "issue_k": (np.int16, 0),
        })
        self.seq = {k: 0 for k in ("bill", "pay", "event", "coll", "dep", "insp", "legal", "chg")}
        self.used_rid: set[str] = set()
        self.used_uscc: set[str] = set()
        self.used_firm: set[str] = set()
        self.macro_a = np.zeros(20)
        self.shock = np.zeros(20)
        self.index = np.full(20, 100.0)
        self.plan = self._make_plan()
        self.w = None  # writers, set by the driver
        self._fault_start = np.zeros(0, np.int64)

    # ------------------------------------------------------------------ helpers
    def rng(self, purpose: str, k: int = 0) -> np.random.Generator:
        """The random stream for one purpose in month ``k`` (``k >= -1``)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_PID[purpose],
                                                                                   k + 1)))

    def month(self, k: int) -> tuple[int, int]:
        """(first day, number of days) of month ``k``."""
        first = month_first_day(self.start_mi + k)
        return first, month_first_day(self.start_mi + k + 1) - first

    def _make_plan(self) -> list[dict]:
        r = self.rng("plan", -1)
        plan = []
        for i, cands in enumerate(rd.DOWNTURN_CANDIDATES):
            ind = cands[int(r.integers(len(cands)))]
            start = (6 if i == 0 else 18) + int(r.integers(0, 10))
            ramp, hold, recover = int(r.integers(2, 5)), int(r.integers(2, 7)), int(r.integers(4, 10))
            plan.append({
                "industry": ind, "start": start, "bottom": start + ramp,
                "recover": start + ramp + hold, "end": start + ramp + hold + recover,
                "depth": float(r.uniform(0.15, 0.30)),
            })
        return plan

    def _downturn(self, k: int) -> np.ndarray:
        d = np.zeros(20)
        for p in self.plan:
            if p["start"] <= k < p["bottom"]:
                x = (k - p["start"] + 1) / (p["bottom"] - p["start"])
            elif p["bottom"] <= k < p["recover"]:
                x = 1.0
            elif p["recover"] <= k < p["end"]:
                x = 1.0 - (k - p["recover"] + 1) / (p["end"] - p["recover"] + 1)
            else:
                continue
            j = IND[p["industry"]]
            d += 0.15 * p["depth"] * x  # spill-over to the whole economy
            d[j] += 0.85 * p["depth"] * x
        return d

    def _next(self, key: str, n: int) -> np.ndarray:
        s = self.seq[key]
        self.seq[key] = s + n
        return np.arange(s, s + n, dtype=np.int64)

    # ------------------------------------------------------------------ entities
    def _new_person_ids(self, r: np.random.Generator, region_idx: np.ndarray,
                        ref_day: int, age_lo: int, age_hi: int) -> tuple[list[str], list[str]]:
        n = len(region_idx)
        names = nm.person_names(r, n)
        codes = [rd.REGIONS[i][0] for i in region_idx]
        homes = nm.home_region_codes(r, codes)
        ages = r.uniform(age_lo, age_hi, n)
        birth = (ref_day - ages * 365.25).astype(np.int64)
        ids = nm.resident_ids(r, homes, birth, self.used_rid)
        return names, ids

    def _existing_person(self, r: np.random.Generator) -> tuple[str, str] | None:
        """A random person customer (name, id) or None."""
        c = self.cust
        n = len(self.c_name)
        if n == 0:
            return None
        for _ in range(5):
            i = int(r.integers(0, n))
            if c.kind[i] == 0:
                return self.c_name[i], self.c_idnum[i]
        return None

    def _new_enterprises(self, r: np.random.Generator, region: np.ndarray, industry: np.ndarray,
                         latest_day: np.ndarray, k: int, holding: bool,
                         stems: list[str] | None = None) -> np.ndarray:
        n = len(region)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        age_years = r.exponential(8.0, n) + 0.1
        est = np.maximum(latest_day - (age_years * 365.25).astype(np.int64), -7300)  # >= 1950
        cap_mu = np.where(holding, np.log(8e7), np.log(2e6))
        cap = np.exp(r.normal(cap_mu, 1.0, n))
        cap = np.clip(np.round(cap / 1e4) * 1e4, 1e4, 5e10).astype(np.int64) * 100
        hm = r.normal(0.3, 0.7, n)
        h = hm + r.normal(0, 0.5, n)
        idx = self.ent.add(n, industry=industry, region=region, est_day=est, capital=cap,
                           holding=holding, h=h, hm=hm, rec=k)
        rep_names, rep_ids = self._new_person_ids(r, region, self.start_day, 30, 70)
        u = r.random(n)
        for i in range(n):
            reg = rd.REGIONS[region[i]]
            stem = stems[i] if stems else nm.firm_stem(r)
            ind = rd.INDUSTRIES[industry[i]]
            org_type = "3" if ind == "A" and not holding and r.random() < 0.5 else "1"
            if org_type == "3":
                self.ent.industry[idx[i]] = IND["A"]
            self.e_name.append(nm.firm_name(r, reg[3], stem, ind, holding, self.used_firm))
            self.e_uscc.append(nm.uscc(r, reg[0], org_type, self.used_uscc))
            known = self._existing_person(r) if u[i] < 0.2 else None
            rep = known or (rep_names[i], rep_ids[i])
            self.e_rep_name.append(rep[0])
            self.e_rep_id.append(rep[1])
            v = r.random()
            self.e_ctrl.append(rep[1] if v < 0.6 else None if v < 0.8 else
                               self._new_person_ids(r, region[i:i + 1], self.start_day,
                                                    35, 75)[1][0])
        return idx

    def _link_day(self, r: np.random.Generator, a: int, b: int, k: int) -> int:
        """Effective date of a holding created at the start: after both were established."""
        eff = int(max(self.ent.est_day[a], self.ent.est_day[b])) + int(r.integers(0, 1500))
        return min(eff, self.start_day - 1) if k < 0 else eff

    def _add_link(self, owner: int, owned: int, stake: float, eff_day: int, k: int,
                  change: bool = False) -> bool:
        """Register a holding (or, with ``change``, a new stake of an existing one).

        Stakes in a company never add up to more than 100 %; a pair gets a second row only as a
        change with a later effective date. Returns whether a row was added.
        """
        pair = (owner, owned)
        cur = self._stake.get(pair)
        if owner == owned or (cur is None) == change:
            return False
        if not change and (owned, owner) in self._stake and stake > 0.3:
            return False  # no large stakes both ways
        avail = 10000 - self._held.get(owned, 0) + (cur or 0)
        s = min(int(round(stake * 10000)), avail)
        if s <= 0 and not change or s == cur:
            return False
        self._stake[pair] = s
        self._held[owned] = self._held.get(owned, 0) - (cur or 0) + s
        self.links.add(1, owner=owner, owned=owned, stake=s, eff_day=eff_day, rec=k)
        return True

    def _form_groups(self, r: np.random.Generator, members: np.ndarray, k: int) -> None:
        """Group some enterprises under controllers, with the ownership structures real
        registries show: chains, indirect control by summed stakes, cross-holdings, minorities."""
        e = self.ent
        order = r.permutation(members)
        target = int(0.3 * len(order))
        pos = 0
        while pos < target:
            size = min(2 + int(r.geometric(0.45)) - 1, 6, len(order) - pos)
            if size < 2:
                break
            grp = [int(x) for x in order[pos:pos + size]]
            pos += size
            gid = len(self.group_root)
            stem = self.e_name[grp[0]]
            reg = int(e.region[grp[0]])
            latest = int(min(e.est_day[grp]))
            if r.random() < 0.6:
                hold = self._new_enterprises(
                    r, np.array([reg]), np.array([IND["L"] if r.random() < 0.8 else IND["J"]]),
                    np.array([latest]), k, True,
                    stems=[stem[len(rd.REGIONS[reg][3]) - 1:][:2]])
                root = int(hold[0])
            else:
                root = grp[0]
                grp = grp[1:]
            known = self._existing_person(r) if r.random() < 0.3 else None
            if known is None:
                nms, ids = self._new_person_ids(r, np.array([reg]), self.start_day, 40, 75)
                known = (nms[0], ids[0])
            self.group_root.append(root)
            self.group_ctrl.append(known)
            everyone = [root, *grp]
            for x in everyone:
                e.group[x] = gid
                self.e_ctrl[x] = known[1]
                if x == root and r.random() < 0.6 or x != root and r.random() < 0.35:
                    self.e_rep_name[x], self.e_rep_id[x] = known
            controlled = [root]
            for x in grp:
                u = r.random()
                if u < 0.45 or len(controlled) == 1 and u < 0.9:
                    st = 1.0 if r.random() < 0.4 else round(r.uniform(0.51, 0.95), 2)
                    self._add_link(root, x, st, self._link_day(r, root, x, k), k)
                    controlled.append(x)
                elif u < 0.7:
                    parent = controlled[int(r.integers(1, len(controlled)))]
                    self._add_link(parent, x, round(r.uniform(0.51, 0.9), 2),
                                   self._link_day(r, parent, x, k), k)
                    controlled.append(x)
                elif u < 0.9:
                    mid = controlled[int(r.integers(1, len(controlled)))]
                    a = round(r.uniform(0.2, 0.35), 2)
                    b = round(r.uniform(max(0.53 - a, 0.2), 0.45), 2)
                    self._add_link(root, x, a, self._link_day(r, root, x, k), k)
                    self._add_link(mid, x, b, self._link_day(r, mid, x, k), k)
                    controlled.append(x)
                else:  # a minority stake only: same controller person, but no control
                    self._add_link(root, x, round(r.uniform(0.2, 0.45), 2),
                                   self._link_day(r, root, x, k), k)
            if len(grp) >= 2 and r.random() < 0.25:  # cross-holding between two members
                a, b = (int(x) for x in r.choice(grp, 2, replace=False))
                if (a, b) not in self._stake and (b, a) not in self._stake:
                    eff = self._link_day(r, a, b, k)
                    self._add_link(a, b, round(r.uniform(0.05, 0.2), 2), eff, k)
                    self._add_link(b, a, round(r.uniform(0.05, 0.2), 2), eff, k)
        self.group_h = np.concatenate([self.group_h, np.zeros(len(self.group_root) -
                                                               len(self.group_h))])
        # minority stakes between unrelated enterprises (no control)
        n_min = int(0.08 * len(members))
        for _ in range(n_min):
            a, b = (int(x) for x in r.choice(members, 2, replace=False))
            if e.group[a] >= 0 and e.group[a] == e.group[b]:
                continue
            self._add_link(a, b, round(r.uniform(0.05, 0.45), 2), self._link_day(r, a, b, k), k)

    def _create_customers(self, r: np.random.Generator, n: int, k: int) -> np.ndarray:
        """Create ``n`` customers: ``k = -1`` existing at the start, else opening in month k."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        ctype = r.choice(4, n, p=rd.CUSTOMER_TYPE_SHARE).astype(np.int8)
        org_p = np.array([0.0, 0.8, 1.0, 0.3])[ctype]
        kind = (r.random(n) < org_p).astype(np.int8)
        region = r.choice(len(rd.REGIONS), n, p=REGION_W).astype(np.int16)
        urban = r.random(n) < URBAN_SHARE[region]
        industry = np.full(n, IND["T"], dtype=np.int8)
        industry[ctype == rd.AGR] = IND["A"]
        m = ctype == rd.GCI
        industry[m] = r.choice(GCI_IND[0], m.sum(), p=GCI_IND[1])
        m = ctype == rd.LI
        industry[m] = r.choice(LI_IND[0], m.sum(), p=LI_IND[1])
        # voltage, capacity, tariff
        u = r.random(n)
        voltage = np.zeros(n, dtype=np.int8)
        voltage[ctype == rd.GCI] = np.where(u[ctype == rd.GCI] < 0.8, 1, 2)
        voltage[ctype == rd.LI] = np.where(u[ctype == rd.LI] < 0.7, 2,
                                           np.where(u[ctype == rd.LI] < 0.92, 3, 4))
        voltage[ctype == rd.AGR] = np.where(u[ctype == rd.AGR] < 0.85, 1, 2)
        z = r.standard_normal(n)
        cap = np.select(
            [ctype == rd.RES, (ctype == rd.GCI) & (voltage == 1), ctype == rd.GCI,
             (ctype == rd.LI) & (voltage == 2), (ctype == rd.LI) & (voltage == 3), ctype == rd.LI,
             voltage == 1],
            [np.array([4, 6, 8, 8, 10, 12, 16])[r.integers(0, 7, n)],
             np.clip(np.exp(np.log(40) + 0.8 * z), 10, 250),
             np.clip(np.exp(np.log(200) + 0.5 * z), 50, 315),
             np.clip(np.exp(np.log(1250) + 0.7 * z), 315, 8000),
             np.clip(np.exp(np.log(10000) + 0.5 * z), 5000, 40000),
             np.clip(np.exp(np.log(40000) + 0.4 * z), 20000, 100000),
             np.clip(np.exp(np.log(30) + 0.6 * z), 10, 200)],
            np.clip(np.exp(np.log(250) + 0.4 * z), 100, 630),
        )
        cap = (np.round(cap / np.where(cap > 100, 5, 1)) * np.where(cap > 100, 5, 1)).astype(np.int64)
        tariff = np.select(
            [ctype == rd.RES, (ctype == rd.GCI) & (voltage == 1), ctype == rd.GCI,
             (ctype == rd.LI) & (voltage == 2), (ctype == rd.LI) & (voltage == 3), ctype == rd.LI,
             voltage == 1],
            [_T["RES-1"], _T["GCI-LV"], _T["GCI-10"], _T["LI-10"], _T["LI-35"], _T["LI-110"],
             _T["AGR-LV"]], _T["AGR-10"]).astype(np.int8)
        # settlement and payment method
        u = r.random(n)
        settle = np.where(u < np.array([0.11, 0.12, 0.0, 0.05])[ctype], rd.PREPAID, rd.MONTHLY)
        settle = np.where((ctype == rd.LI) & (u < 0.85), rd.SPLIT, settle).astype(np.int8)
        u = r.random(n)
        pm_p = np.array([[0.15, 0.30, 0.55], [0.15, 0.40, 0.45], [0.10, 0.70, 0.20],
                         [0.40, 0.20, 0.40]])[ctype]
        pay = np.where(u < pm_p[:, 0], rd.COUNTER, np.where(u < pm_p[:, 0] + pm_p[:, 1], rd.BANK,
                                                           rd.ONLINE))
        pay = np.where(settle == rd.PREPAID, np.where(r.random(n) < 0.7, rd.CARD, rd.ONLINE), pay)
        # dates
        if k < 0:
            years = np.minimum(r.exponential(7.0, n), (self.start_day - 9131) / 365.25)
            open_day = self.start_day - 1 - (years * 365.25).astype(np.int64)
        else:
            first, nd = self.month(k)
            open_day = first + r.integers(0, nd, n)
        # consumption profile
        z = r.standard_normal(n)
        lf = r.uniform(0.05, 0.25, n)
        base = np.select(
            [ctype == rd.RES, ctype == rd.GCI, ctype == rd.LI],
            [np.exp(np.log(5.5) + 0.55 * z), cap * 24 * lf * 0.8, cap * 24 * (0.15 + lf * 1.6)],
            cap * 24 * lf * 0.4)
        sigma = np.array([0.25, 0.15, 0.08, 0.35])[ctype] * r.uniform(0.7, 1.3, n)
        wkend = np.where(ctype == rd.RES, 1.08, np.where(ctype == rd.LI, 0.9, 1.0))
        wkend = np.where(ctype == rd.GCI, np.where(WEEKEND_UP[industry], 1.15, 0.55), wkend)
        sf = np.where(ctype == rd.RES, np.where(urban, 0.8, 1.2),
                      np.where(ctype == rd.AGR, 1.0, 0.45))
        pv = (r.random(n) < np.array([0.02, 0.04, 0.1, 0.03])[ctype])
        seasonal = (ctype == rd.GCI) & np.isin(industry, [IND["H"], IND["R"], IND["I"]]) & (
            r.random(n) < 0.15)
        # theft
        thief_p = np.array([0.011, 0.028, 0.006, 0.025])[ctype]
        thief = r.random(n) < thief_p
        t_type = r.choice(3, n, p=[0.55, 0.25, 0.20]).astype(np.int8)
        t_drop = r.uniform(0.3, 0.8, n)
        delay = r.geometric(1 / 14.0, n)
        t_start = np.where(thief, np.maximum(k, 0) + delay, 1 << 30)
        if k < 0:
            t_start = np.where(thief & (r.random(n) < 0.25), 0, t_start)  # already stealing
        # persons' latent health
        hm = r.normal(0.4, 0.8, n)
        h = hm + r.normal(0, 0.45, n)
        tariff = np.where((ctype == rd.RES) & (hm < -1.3) & (r.random(n) < 0.5), _T["RES-LI"],
                          tariff).astype(np.int8)
        idx = self.cust.add(
            n, kind=kind, ctype=ctype, region=region, industry=industry, voltage=voltage,
            tariff=tariff, settle=settle, paymeth=pay, capacity=cap, open_day=open_day, rec=k,
            base=base, sigma=sigma, wkend=wkend, sf=sf, pv=pv, seasonal=seasonal, urban=urban,
            h=h, hm=hm, offset=r.normal(0, 0.2, n), thief=thief, t_start=t_start, t_type=t_type,
            t_drop=t_drop, tariff_prev=tariff,
        )
        # identities
        person = kind == 0
        pidx = np.flatnonzero(person)
        ref = self.start_day if k < 0 else int(open_day.min())
        p_names, p_ids = self._new_person_ids(r, region[pidx], ref, 22, 85)
        # a few people hold a second account (second home, shop): same name and ID
        dup = r.random(len(pidx)) < 0.04
        names: list[str] = [""] * n
        ids: list[str] = [""] * n
        for j, i in enumerate(pidx):
            names[i], ids[i] = p_names[j], p_ids[j]
            if dup[j]:
                known = self._existing_person(r)
                if known:
                    names[i], ids[i] = known
        oidx = np.flatnonzero(~person)
        if len(oidx):
            prev_orgs = np.flatnonzero(self.cust.ent[: idx[0]] >= 0)
            reuse = (r.random(len(oidx)) < 0.08) & (len(prev_orgs) > 0) & (k >= 0)
            new_o = oidx[~reuse]
            latest = open_day[new_o] - r.integers(30, 400, len(new_o))
            ents = self._new_enterprises(r, region[new_o], industry[new_o], latest, k, False)
            self.cust.ent[idx[new_o]] = ents
            if k >= 0 and len(ents):
                self._join_groups(r, ents, k)
            for i in oidx[reuse]:  # a second supply account of a known enterprise
                j = int(prev_orgs[int(r.integers(0, len(prev_orgs)))])
                self.cust.ent[idx[i]] = self.cust.ent[j]
            for i in oidx:
                e = int(self.cust.ent[idx[i]])
                names[i], ids[i] = self.e_name[e], self.e_uscc[e]
                self.cust.industry[idx[i]] = self.ent.industry[e]
        self.c_name.extend(names)
        self.c_idnum.extend(ids)
        self.c_phone.extend(nm.phones(r, n, missing_share=0.04))
        industrial = (ctype == rd.LI) | ((ctype == rd.GCI) & (industry == IND["C"]))
        self.c_addr.extend(nm.addresses(r, region, urban | (ctype == rd.GCI), industrial))
        self.c_email.extend(nm.emails(r, n, kind == 1, np.where(kind == 1, 0.7, 0.35)))
        # meters
        two = (kind == 1) & (ctype != rd.AGR) & (r.random(n) < 0.15)
        mc = np.concatenate([idx, idx[two]])
        share = np.ones(len(mc))
        s = r.uniform(0.3, 0.7, two.sum())
        share[np.flatnonzero(two)] = s
        share[n:] = 1 - s
        order = np.argsort(mc, kind="stable")
        mc, share = mc[order], share[order]
        od = self.cust.open_day[mc]
        if k < 0:
            inst = np.maximum(od, self.start_day - 1 - r.integers(0, 3650, len(mc)))
        else:
            inst = od
        miss_p = np.where(r.random(len(mc)) < 0.1, r.uniform(0.03, 0.15, len(mc)),
                          r.uniform(0.0, 0.01, len(mc)))
        self.meter.add(len(mc), cust=mc, install=inst, share=share, rec=k, miss_p=miss_p)
        # deposits for commercial and industrial customers
        dep = ((ctype == rd.GCI) & (r.random(n) < 0.6)) | (ctype == rd.LI)
        if dep.any():
            di = idx[dep]
            est = kwh_amount((base[dep] * 30 * 100).astype(np.int64), tariff[dep])
            amt = np.maximum(_ceil_to(est * r.uniform(1, 2, dep.sum()), 10000), 10000)
            self.cust.deposit[di] = amt
            self._write_deposits(di, open_day[dep], np.zeros(len(di), np.int64), amt,
                                 np.full(len(di), k))
        return idx

    def _join_groups(self, r: np.random.Generator, ents: np.ndarray, k: int) -> None:
        """Some newly registered enterprises are subsidiaries of existing groups."""
        if not self.group_root:
            return
        first, nd = self.month(k)
        for x in ents:
            if r.random() >= 0.12:
                continue
            gid = int(r.integers(0, len(self.group_root)))
            root = self.group_root[gid]
            self.ent.group[x] = gid
            self.e_ctrl[x] = self.group_ctrl[gid][1]
            if r.random() < 0.4:
                self.e_rep_name[x], self.e_rep_id[x] = self.group_ctrl[gid]
            self.ent.est_day[x] = min(int(self.ent.est_day[x]), first - 1)
            self._add_link(root, int(x), 1.0 if r.random() < 0.5 else round(r.uniform(0.51, 0.9),
                                                                              2),
                           first + int(r.integers(0, nd)), k)

    # ------------------------------------------------------------------ writers
    def _write_deposits(self, cust: np.ndarray, day: np.ndarray, typ: np.ndarray,
                        amt: np.ndarray, rec: np.ndarray) -> None:
        n = len(cust)
        if n == 0:
            return
        ids = self._next("dep", n)
        self.w.t["deposits"].write({
            "deposit_txn_id": Id("DP", 10, ids + 1), "customer_id": Id("C", 9, cust + CUST_BASE),
            "txn_date": Days(day), "txn_type": Cat(DEPOSIT_TYPES, typ), "amount": Centi(amt),
        }, rec)

    def _write_bills(self, idx: np.ndarray, status: int, status_k: int | None) -> None:
        b = self.bills
        if len(idx) == 0:
            return
        rec = b.issue_k[idx].astype(np.int64)
        if status_k is not None:
            rec = np.maximum(rec, status_k)
        self.w.t["bills"].write({
            "bill_id": Id("B", 12, b.bid[idx] + BILL_BASE),
            "customer_id": Id("C", 9, b.cust[idx].astype(np.int64) + CUST_BASE),
            "billing_period": Month(b.period[idx]), "issue_date": Days(b.issue[idx]),
            "due_date": Days(b.due[idx]), "kwh": Centi(b.kwh[idx]), "amount": Centi(b.amt[idx]),
            "tariff_code": Cat(TARIFF_CODES, b.tariff[idx]),
            "bill_status": Cat(BILL_STATUS, np.full(len(idx), status)),
        }, rec)
        if status_k is not None:
            self.w.truth["bill_status_changes"].write({
                "bill_id": Id("B", 12, b.bid[idx] + BILL_BASE),
                "bill_status": Cat(BILL_STATUS, np.full(len(idx), status)),
                "change_month": Month(np.full(len(idx), self.start_mi + status_k)),
            }, status_k)

    def _write_coll(self, cust: np.ndarray, day: np.ndarray, typ: np.ndarray, k: int) -> None:
        if len(cust) == 0:
            return
        order = np.lexsort((typ, cust, day))
        ids = self._next("coll", len(cust))
        self.w.t["collection_events"].write({
            "event_id": Id("CE", 10, ids + 1),
            "customer_id": Id("C", 9, cust[order].astype(np.int64) + CUST_BASE),
            "event_type": Cat(COLLECTION_EVENTS, typ[order]), "event_date": Days(day[order]),
        }, k)

    def _write_changes(self, rows: list[tuple[int, int, str | None, str, int]], k: int) -> None:
        if not rows:
            return
        rows.sort(key=lambda x: (x[4], x[0], x[1]))
        ids = self._next("chg", len(rows))
        self.w.t["customer_changes"].write({
            "change_id": Id("CH", 10, ids + 1),
            "customer_id": Id("C", 9, np.array([x[0] for x in rows], dtype=np.int64) + CUST_BASE),
            "attribute": Cat(CHANGE_ATTRS, np.array([x[1] for x in rows])),
            "old_value": Text([x[2] for x in rows]), "new_value": Text([x[3] for x in rows]),
            "effective_date": Days(np.array([x[4] for x in rows], dtype=np.int64)),
        }, k)

    # ------------------------------------------------------------------ initial state
    def init_population(self) -> None:
        r = self.rng("init", -1)
        self._create_customers(r, self.N, -1)
        ents = np.flatnonzero(~self.ent.holding)
        rg = self.rng("groups", -1)
        self._form_groups(rg, ents, -1)
        # a few people hold two supply accounts (second home, a shop): same name and ID
        people = np.flatnonzero(self.cust.kind == 0)
        for i in people[rg.random(len(people)) < 0.03]:
            known = self._existing_person(rg)
            if known:
                self.c_name[i], self.c_idnum[i] = known
        c = self.cust
        org = c.ent >= 0
        c.h[org] = self.ent.h[c.ent[org]] + c.offset[org]

    # ------------------------------------------------------------------ monthly step
    def step(self, k: int) -> None:
        self._macro(k)
        r = self.rng("arrivals", k)
        n_new = int(r.poisson(self.N * 0.004))
        self._create_customers(r, n_new, k)
        self._health(k)
        self._theft(k)
        self._issue_bills(k)
        pay_info = self._payments(k)
        self._collections(k, pay_info)
        self._writeoffs(k)
        self._closures(k)
        self._changes(k)
        self._meter_changes(k)
        self._inspections(k)
        self._readings(k)
        self._meter_events(k)
        self._prepaid_balances(k)
        self._legal(k)
        self._ownership(k)
        self._truth(k)

    def _macro(self, k: int) -> None:
        r = self.rng("macro", k)
        self.macro_a = 0.85 * self.macro_a + r.normal(0, 0.012, 20)
        down = self._downturn(k)
        self.shock = self.macro_a - down
        mi = self.start_mi + k
        t = (mi - 2020 * 12) / 12.0
        self.index = 100.0 * np.exp(TREND * t + INDUSTRY_SEASON[:, mi % 12] + self.shock)
        self.w.t["industry_activity"].write({
            "industry_code": Cat(rd.INDUSTRIES, np.arange(20)),
            "activity_month": Month(np.full(20, mi)),
            "activity_index": Centi(np.rint(self.index * 100).astype(np.int64)),
        }, k)

    def _active(self, k: int) -> np.ndarray:
        """Customers supplied on at least one day of month k."""
        first, nd = self.month(k)
        c = self.cust
        return (c.open_day < first + nd) & ((c.close_day < 0) | (c.close_day > first))

    def _health(self, k: int) -> None:
        r = self.rng("health", k)
        e, c = self.ent, self.cust
        ne, ncu = e.n, c.n
        # group stress from last month's health of group members (contagion)
        g = e.group
        ng = len(self.group_root)
        contag = np.zeros(ne)
        if ng:
            ing = g >= 0
            cnt = np.bincount(g[ing], minlength=ng)
            # bounded: share of members in distress, plus a jolt when one member collapses
            distress = sigmoid(-3.0 * (e.h[ing] + 1.5))
            stress = np.bincount(g[ing], weights=distress, minlength=ng)
            worst = np.full(ng, 10.0)
            np.minimum.at(worst, g[ing], e.h[ing])
            gs = stress / np.maximum(cnt, 1) + 0.3 * (worst < -2.5)
            self.group_h = 0.8 * self.group_h + r.normal(0, 0.1, ng)
            contag[ing] = gs[g[ing]] - self.group_h[g[ing]]
        beta = BETA[e.industry]
        e.hm = e.hm + r.normal(0, 0.03, ne)
        jump = np.where(r.random(ne) < 0.004, -r.uniform(1.0, 2.5, ne), 0.0)
        rho = 0.85
        e.h = e.hm + rho * (e.h - e.hm) + (1 - rho) * (2.0 * beta * self.shock[e.industry]
                                                        - contag) \
            + r.normal(0, 0.3, ne) + jump
        e.h = np.clip(e.h, -6.0, 6.0)
        # persons
        econ = float(ECON_W @ self.shock)
        person = c.ent < 0
        c.hm = c.hm + np.where(person, r.normal(0, 0.02, ncu), 0.0)
        jump = np.where(r.random(ncu) < 0.002, -r.uniform(1.0, 2.0, ncu), 0.0)
        rho = 0.9
        hp = c.hm + rho * (c.h - c.hm) + (1 - rho) * 3.0 * econ + r.normal(0, 0.2, ncu) + jump
        hp = np.clip(hp, -6.0, 6.0)
        org = ~person
        c.h = np.where(person, hp, 0.0)
        c.h[org] = e.h[c.ent[org]] + c.offset[org]

    def _theft(self, k: int) -> None:
        r = self.rng("theft", k)
        c = self.cust
        first, nd = self.month(k)
        open_ = (c.close_day < 0)
        starting = c.thief & (c.t_start == k) & open_ & ~c.t_active
        relapse = c.thief & (c.t_confirm >= 0) & (c.t_confirm <= k - 6) & ~c.t_active & open_ & (
            r.random(c.n) < 0.02)
        stop = c.t_active & (r.random(c.n) < 0.01)
        c.t_active = (c.t_active & ~stop) | starting | relapse
        c.t_start = np.where(starting | relapse, k, c.t_start)
        c.t_first = np.where((starting | relapse) & (c.t_first < 0), k, c.t_first)
        flat = (starting | relapse) & (c.t_type == 2)
        if flat.any():
            est = np.where(np.isnan(c.obs_rate), c.base, c.obs_rate)
            c.t_flat = np.where(flat, np.round(est * (1 - c.t_drop), 1), c.t_flat)
        # thieves at k == 0 were already stealing before the start: all month long
        start_day = first + r.integers(0, nd, c.n) if k > 0 else np.full(c.n, first)
        self._t_from = np.where(starting | relapse, start_day, first)
        self._t_until = np.full(c.n, first + nd, dtype=np.int64)

    def _issue_bills(self, k: int) -> None:
        """Bills for period k-1 are issued on the 1st-5th of month k."""
        c = self.cust
        if k == 0:
            return
        r = self.rng("bills", k)
        first, _ = self.month(k)
        who = np.flatnonzero(c.billable)
        n = len(who)
        if n:
            kwh = c.kwh_prev[who]
            tar = c.tariff_prev[who].astype(np.int64)
            amt = kwh_amount(kwh, tar)
            issue = first + r.integers(0, 5, n)
            due = issue + DUE_DAYS[c.ctype[who]]
            cancel = r.random(n) < 0.003
            nc = int(cancel.sum())
            if nc:
                wrong = (kwh[cancel] * r.uniform(1.3, 3.0, nc)).astype(np.int64)
                ci = self.bills.add(nc, bid=self._next("bill", nc), cust=who[cancel],
                                    period=self.start_mi + k - 1, issue=issue[cancel],
                                    due=due[cancel], kwh=wrong,
                                    amt=kwh_amount(wrong, tar[cancel]), tariff=tar[cancel],
                                    rem=0, issue_k=k)
                self._write_bills(ci, 2, None)
                self.bills.keep(np.arange(self.bills.n) < ci[0])
                issue[cancel] += r.integers(3, 9, nc)
                due[cancel] = issue[cancel] + DUE_DAYS[c.ctype[who[cancel]]]
            self.bills.add(n, bid=self._next("bill", n), cust=who, period=self.start_mi + k - 1,
                           issue=issue, due=due, kwh=kwh, amt=amt, tariff=tar, rem=amt, issue_k=k)
            c.last_amt[who] = amt
        c.billable = False
        self._allocate(k)

    def _allocate(self, k: int) -> None:
        """Apply customers' credit to their open bills, oldest first; write fully paid bills."""
        b, c = self.bills, self.cust
        if b.n == 0:
            return
        order = np.lexsort((b.bid, b.cust))
        for name in ("bid", "cust", "period", "issue", "due", "kwh", "amt", "tariff", "rem",
                     "issue_k"):
            col = getattr(b, name)
            col[:] = col[order]
        cust = b.cust
        cum = np.cumsum(b.rem)
        start = np.r_[0, np.flatnonzero(np.diff(cust)) + 1]
        grp_start_cum = np.repeat(cum[start] - b.rem[start], np.diff(np.r_[start, b.n]))
        before = cum - b.rem - grp_start_cum
        avail = c.credit[cust]
        pay = np.clip(avail - before, 0, b.rem)
        used = np.bincount(cust, weights=pay, minlength=c.n).astype(np.int64)
        c.credit = c.credit - used
        b.rem = b.rem - pay
        done = b.rem == 0
        if done.any():
            self._write_bills(np.flatnonzero(done), 0, None)
            b.keep(~done)

    def _owed(self) -> np.ndarray:
        c, b = self.cust, self.bills
        rem = np.bincount(b.cust, weights=b.rem, minlength=c.n).astype(np.int64) if b.n else \
            np.zeros(c.n, np.int64)
        return rem - c.credit

    def _payments(self, k: int) -> dict:
        r = self.rng("pay", k)
        c, b = self.cust, self.bills
        first, nd = self.month(k)
        last = first + nd - 1
        ncu = c.n
        owed = self._owed()
        # per customer: this month's bill, oldest open bill
        new_issue = np.full(ncu, -1, np.int64)
        new_due = np.full(ncu, -1, np.int64)
        oldest_due = np.full(ncu, 1 << 40, np.int64)
        older = np.zeros(ncu, bool)
        if b.n:
            cur = b.issue_k == k
            new_issue[b.cust[cur]] = b.issue[cur]
            new_due[b.cust[cur]] = b.due[cur]
            np.minimum.at(oldest_due, b.cust, b.due)
            older[b.cust[~cur]] = True
        h = c.h
        closed = (c.close_day >= 0) & (c.close_day <= first)
        rows_c, rows_d, rows_s, rows_a, rows_ch, rows_rev = [], [], [], [], [], []

        def add(cust, day, secs, amt, ch, rev=None):
            rows_c.append(cust)
            rows_d.append(day)
            rows_s.append(secs)
            rows_a.append(amt)
            rows_ch.append(ch)
            rows_rev.append(np.full(len(cust), -1, np.int64) if rev is None else rev)

        full_day = np.full(ncu, -1, np.int64)  # day the customer became fully paid
        paid = np.zeros(ncu, np.int64)
        postpaid = (c.settle != rd.PREPAID) | closed
        # --- monthly / split settlement and closed accounts
        who = np.flatnonzero(postpaid & (owed > 0))
        if len(who):
            hh = h[who]
            p_full = sigmoid(2.8 + 2.0 * hh) * np.where(closed[who], 0.4, 1.0)
            u = r.random(len(who))
            full = u < p_full
            partial = ~full & (r.random(len(who)) < 0.55)
            has_new = new_issue[who] >= 0
            lo = np.where(has_new, new_issue[who], first)
            bank = (c.paymeth[who] == rd.BANK) & has_new
            # direct debits go through on time when the money is there; others choose a day
            p_on_time = np.where(bank, sigmoid(3.0 + 2.0 * hh), sigmoid(1.2 + 1.5 * hh))
            on_time = has_new & ~older[who] & (r.random(len(who)) < p_on_time)
            day = np.where(on_time, _rand_days(r, lo, np.minimum(new_due[who], last)),
                           _rand_days(r, lo, np.full(len(who), last)))
            late_days = r.geometric(1.0 / (2.0 + 5.0 * np.maximum(0, -hh)))
            late_first = has_new & ~older[who] & ~on_time
            day = np.where(late_first, new_due[who] + late_days, day)
            spill = day > last  # would pay next month
            full &= ~spill
            partial &= ~spill
            bank_day = np.minimum(new_issue[who] + 3, last)
            day = np.where(full & bank & on_time, bank_day, day)
            amt = np.where(full, owed[who], 0)
            over = full & (hh > 0.8) & (r.random(len(who)) < 0.06) & ~bank
            amt = np.where(over, np.maximum(_ceil_to(amt, 10000), amt), amt)
            part_amt = np.maximum(np.floor(owed[who] * r.uniform(0.2, 0.8, len(who)) / 100) * 100,
                                  100).astype(np.int64)
            amt = np.where(partial, np.minimum(part_amt, owed[who]), amt)
            # bounced direct debits: unhealthy bank payers, and a few healthy ones by accident
            bounce = bank & ((~(full & on_time) & (r.random(len(who)) < 0.5))
                             | (full & on_time & (r.random(len(who)) < 0.003)))
            nb = int(bounce.sum())
            if nb:
                bw = who[bounce]
                bday = bank_day[bounce]
                rday = np.minimum(bday + r.integers(2, 5, nb), last)
                bamt = owed[bw]
                add(bw, bday, _secs(bday, r, 2, 4), bamt, np.full(nb, rd.BANK),
                    np.full(nb, -2, np.int64))  # -2: marks "will be reversed"
                add(bw, rday, _secs(rday, r, 9, 11), -bamt, np.full(nb, rd.BANK),
                    np.full(nb, -3, np.int64))  # -3: the reversal of the previous block
                # those who pay after all do so after the reversal, online
                rday_all = np.zeros(len(who), np.int64)
                rday_all[bounce] = rday
                day = np.where(bounce, np.maximum(day, rday_all + 1), day)
                spill2 = bounce & (day > last)
                full &= ~spill2
                partial &= ~spill2
                amt = np.where(spill2, 0, amt)
            chan = np.where(bounce | (bank & ~on_time), rd.ONLINE, c.paymeth[who])
            chan = np.where((chan == rd.COUNTER) & (r.random(len(who)) < 0.2), rd.ONLINE, chan)
            chan = np.where(chan == rd.CARD, rd.ONLINE, chan)
            pay_now = (full | partial) & (amt > 0)
            pw = who[pay_now]
            pdays = day[pay_now]
            pch = chan[pay_now]
            secs = np.where(pch == rd.BANK, _secs(pdays, r, 2, 4),
                            np.where(pch == rd.COUNTER, _secs(pdays, r, 8.5, 17.5),
                                     _secs(pdays, r, 7, 24)))
            add(pw, pdays, secs, amt[pay_now], pch)
            paid[pw] += amt[pay_now]
            fw = full[pay_now]
            full_day[pw[fw]] = pdays[fw]
        # --- healthy customers sometimes pay ahead (before a long trip, to be done with it)
        adv = np.flatnonzero((c.settle == rd.MONTHLY) & ~closed & (c.close_day < 0) & (h > 0.8)
                             & (r.random(ncu) < 0.015))
        if len(adv):
            amt = np.array([100, 200, 300, 500, 1000])[r.integers(0, 5, len(adv))] * 100
            d = first + r.integers(0, nd, len(adv))
            add(adv, d, _secs(d, r, 7, 23), amt,
                np.where(c.paymeth[adv] == rd.COUNTER, rd.COUNTER, rd.ONLINE))
            paid[adv] += amt
        # --- split monthly settlement: advance instalments for the running month
        split = np.flatnonzero((c.settle == rd.SPLIT) & ~closed & (c.close_day < 0) & (h > -0.8)
                               & (c.last_amt > 0))
        if len(split):
            inst = np.maximum(np.round(c.last_amt[split] / 3 / 100) * 100, 100).astype(np.int64)
            for dom in (9, 19):
                d = np.full(len(split), first + dom)
                add(split, d, _secs(d, r, 9, 16), inst,
                    np.where(c.paymeth[split] == rd.COUNTER, rd.ONLINE, c.paymeth[split]))
                paid[split] += inst
        # --- prepaid top-ups
        pre = np.flatnonzero((c.settle == rd.PREPAID) & ~closed)
        self._pre_cut = np.full(ncu, -1, np.int64)
        self._pre_topup = np.full(ncu, -1, np.int64)
        if len(pre):
            bal = -owed[pre]
            est = np.maximum(c.last_amt[pre], np.maximum(
                kwh_amount((c.base[pre] * 30 * 100).astype(np.int64), c.tariff[pre]), 1000))
            hh = h[pre]
            need = bal < 1.2 * est
            top = need & (r.random(len(pre)) < sigmoid(2.5 + 2.5 * hh))
            mult = np.where(hh > -0.5, r.uniform(1.5, 4.0, len(pre)), r.uniform(0.3, 1.2,
                                                                                len(pre)))
            amt = _ceil_to(np.maximum(0, -bal) + est * mult, 5000)
            early = bal < est * 0.3
            day = np.where(early & (hh > -0.5), first + r.integers(0, 5, len(pre)),
                           first + r.integers(0, nd, len(pre)))
            cut = (bal < -1000) & (~top | (day > first + 2))
            self._pre_cut[pre[cut]] = first + r.integers(0, 3, int(cut.sum()))
            tw = pre[top]
            td = day[top]
            ch = np.where(c.paymeth[tw] == rd.ONLINE, rd.ONLINE, rd.CARD)
            add(tw, td, _secs(td, r, 8, 21), amt[top], ch)
            paid[tw] += amt[top]
            self._pre_topup[tw] = td
            covered = top & (bal + amt >= 0)
            full_day[pre[covered]] = day[covered]
        # --- assemble, order by time, give ids, resolve reversals
        if rows_c:
            cu = np.concatenate(rows_c).astype(np.int64)
            ss = np.concatenate(rows_s).astype(np.int64)
            aa = np.concatenate(rows_a).astype(np.int64)
            chn = np.concatenate(rows_ch).astype(np.int64)
            rv = np.concatenate(rows_rev)
            # link reversals (-3) to the bounced payment (-2) of the same customer
            orig_pos = np.flatnonzero(rv == -2)
            rev_pos = np.flatnonzero(rv == -3)
            order = np.lexsort((cu, ss))
            ids = np.empty(len(cu), np.int64)
            ids[order] = self._next("pay", len(cu))
            reverses = np.full(len(cu), -1, np.int64)
            reverses[rev_pos] = ids[orig_pos] + PAY_BASE
            self.w.t["payments"].write({
                "payment_id": Id("P", 12, ids[order] + PAY_BASE),
                "customer_id": Id("C", 9, cu[order] + CUST_BASE),
                "paid_at": Secs(ss[order]), "amount": Centi(aa[order]),
                "channel": Cat(rd.PAY_METHODS, chn[order]),
                "reverses_payment_id": Id("P", 12, reverses[order]),
            }, k)
        c.credit = c.credit + paid
        self._allocate(k)
        return {"owed_start": owed, "full_day": full_day, "older": older,
                "oldest_due": oldest_due, "new_due": new_due, "paid": paid}

    def _collections(self, k: int, info: dict) -> None:
        r = self.rng("collect", k)
        c = self.cust
        first, nd = self.month(k)
        last = first + nd - 1
        ncu = c.n
        owed0, full_day = info["owed_start"], info["full_day"]
        closed = (c.close_day >= 0) & (c.close_day <= first)
        post = (c.settle != rd.PREPAID) | closed
        ev_c, ev_d, ev_t = [], [], []
        # dunning
        d1 = first + r.integers(5, 16, ncu)
        dun_old = post & info["older"] & (owed0 > 0) & ((full_day < 0) | (full_day > d1))
        d2 = info["new_due"] + 15 + r.integers(0, 4, ncu)
        dun_new = post & ~info["older"] & (info["new_due"] >= 0) & (d2 <= last) & (
            (full_day < 0) | (full_day > d2)) & (owed0 > 0)
        dun_day = np.where(dun_old, d1, d2)
        dun = dun_old | dun_new
        ev_c.append(np.flatnonzero(dun))
        ev_d.append(dun_day[dun])
        ev_t.append(np.zeros(int(dun.sum()), np.int64))
        # disconnection for long arrears (postpaid) and negative balance (prepaid)
        off_from = np.full(ncu, -1, np.int64)
        off_to = np.full(ncu, -1, np.int64)
        was_disc = c.disc.copy()
        off_from[was_disc] = first
        dday = first + r.integers(14, 28, ncu)
        p_disc = np.array([0.25, 0.45, 0.6, 0.4])[c.ctype]
        cand = post & ~closed & (c.close_day < 0) & ~c.disc & info["older"] & (owed0 > 5000) & (
            info["oldest_due"] <= first + 20 - 40) & ((full_day < 0) | (full_day > dday)) & (
            r.random(ncu) < p_disc)
        pre_cut = (self._pre_cut >= 0) & ~c.disc
        dday = np.where(pre_cut, self._pre_cut, dday)
        newly = cand | pre_cut
        ev_c.append(np.flatnonzero(newly))
        ev_d.append(dday[newly])
        ev_t.append(np.ones(int(newly.sum()), np.int64))
        off_from[newly] = dday[newly]
        disc_now = was_disc | newly
        # reconnection after full payment (or a prepaid top-up covering the debt)
        pay_day = np.where(pre_cut | (was_disc & (c.settle == rd.PREPAID)), self._pre_topup,
                           full_day)
        ok = self._owed() <= 0
        rec_day = np.maximum(pay_day + r.integers(0, 3, ncu), np.where(newly, dday + 1, first))
        recon = disc_now & (pay_day >= 0) & ok & (rec_day <= last) & ~closed & (
            pay_day >= off_from)
        ev_c.append(np.flatnonzero(recon))
        ev_d.append(rec_day[recon])
        ev_t.append(np.full(int(recon.sum()), 2, np.int64))
        off_to[disc_now] = last + 1
        off_to[recon] = rec_day[recon]
        c.disc = disc_now & ~recon
        self._off_from, self._off_to = off_from, off_to
        cu = np.concatenate(ev_c)
        self._write_coll(cu, np.concatenate(ev_d), np.concatenate(ev_t), k)
        # extra deposit demanded from commercial customers after a reconnection
        dep = recon & np.isin(c.ctype, [rd.GCI, rd.LI]) & (r.random(ncu) < 0.4) & (
            c.last_amt > 0)
        if dep.any():
            di = np.flatnonzero(dep)
            amt = np.maximum(_ceil_to(c.last_amt[di], 10000), 10000)
            c.deposit[di] += amt
            self._write_deposits(di, rec_day[di], np.zeros(len(di), np.int64), amt,
                                 np.full(len(di), k))

    def _apply_deposit(self, who: np.ndarray, day: np.ndarray, k: int) -> None:
        """Use deposits against arrears (``applied_to_arrears``)."""
        c = self.cust
        owed = self._owed()[who]
        use = np.minimum(c.deposit[who], np.maximum(owed, 0))
        m = use > 0
        if m.any():
            w = who[m]
            self._write_deposits(w, day[m], np.full(int(m.sum()), 2, np.int64), use[m],
                                 np.full(int(m.sum()), k))
            c.deposit[w] -= use[m]
            c.credit[w] += use[m]
            self._allocate(k)

    def _writeoffs(self, k: int) -> None:
        r = self.rng("writeoff", k)
        c, b = self.cust, self.bills
        if b.n == 0:
            return
        first, nd = self.month(k)
        oldest_k = np.full(c.n, 1 << 20, np.int64)
        np.minimum.at(oldest_k, b.cust, b.issue_k.astype(np.int64))
        closed = c.close_day >= 0
        cand = (oldest_k <= k - 9) & (closed | c.disc) & (r.random(c.n) < np.where(closed, 0.35,
                                                                                    0.15))
        who = np.flatnonzero(cand)
        if len(who) == 0:
            return
        day = first + r.integers(5, nd, len(who))
        self._apply_deposit(who, day, k)
        sel = np.isin(b.cust, who)
        self._write_bills(np.flatnonzero(sel), 1, k)
        b.keep(~sel)
        c.credit[who] = 0
        still_open = who[c.close_day[who] < 0]
        if len(still_open):
            self._close(still_open, first + r.integers(5, nd, len(still_open)), k, r)

    def _close(self, who: np.ndarray, day: np.ndarray, k: int, r: np.random.Generator) -> None:
        c, m = self.cust, self.meter
        c.close_day[who] = day
        c.rec[who] = k
        c.t_active[who] = False
        mw = np.flatnonzero(np.isin(m.cust, who) & (m.remove < 0))
        if len(mw):
            close_of = np.full(c.n, -1, np.int64)
            close_of[who] = day
            m.remove[mw] = np.maximum(close_of[m.cust[mw]], m.install[mw])
            m.reason[mw] = R_CLOSED
            m.rec[mw] = k
        owed = self._owed()[who]
        refund = (owed <= 0) & (c.deposit[who] > 0)
        if refund.any():
            w = who[refund]
            self._write_deposits(w, day[refund], np.ones(len(w), np.int64), c.deposit[w],
                                 np.full(len(w), k))
            c.deposit[w] = 0
        if (~refund).any():
            self._apply_deposit(who[~refund], day[~refund], k)

    def _closures(self, k: int) -> None:
        r = self.rng("close", k)
        c = self.cust
        first, nd = self.month(k)
        open_ = (c.close_day < 0) & (c.open_day < first)
        hz = np.array([0.0025, 0.002, 0.001, 0.002])[c.ctype]
        hz = hz + np.where(c.h < -2.0, np.where(c.kind == 1, 0.04, 0.005), 0.0)
        who = np.flatnonzero(open_ & (r.random(c.n) < hz))
        if len(who):
            self._close(who, first + r.integers(0, nd, len(who)), k, r)

    def _changes(self, k: int) -> None:
        r = self.rng("changes", k)
        c = self.cust
        first, nd = self.month(k)
        ncu = c.n
        open_ = (c.close_day < 0) & (c.open_day < first)
        day = first + r.integers(0, nd, ncu)
        rows: list[tuple[int, int, str | None, str, int]] = []
        a_type, a_tariff, a_region, a_settle, a_pay, a_cap, a_volt = range(7)
        # arrears customers are switched to prepaid (smart meter fee control)
        owed = self._owed()
        sw = open_ & (c.settle == rd.MONTHLY) & np.isin(c.ctype, [rd.RES, rd.GCI]) & (
            owed > 0) & c.disc & (r.random(ncu) < 0.15)
        for i in np.flatnonzero(sw):
            rows.append((i, a_settle, rd.SETTLEMENTS[c.settle[i]], "prepaid", int(day[i])))
            if c.paymeth[i] != rd.CARD:
                rows.append((i, a_pay, rd.PAY_METHODS[c.paymeth[i]], "prepaid_card", int(day[i])))
            c.settle[i], c.paymeth[i] = rd.PREPAID, rd.CARD
        # ordinary payment method changes
        pm = open_ & (c.settle != rd.PREPAID) & ~sw & (r.random(ncu) < 0.0015)
        newpm = r.integers(0, 3, ncu)
        for i in np.flatnonzero(pm & (newpm != c.paymeth)):
            rows.append((i, a_pay, rd.PAY_METHODS[c.paymeth[i]], rd.PAY_METHODS[newpm[i]],
                         int(day[i])))
            c.paymeth[i] = newpm[i]
        # capacity changes follow business health
        org = open_ & (c.ctype != rd.RES)
        grow = org & (c.h > 0.6) & (r.random(ncu) < 0.004)
        shrink = org & (c.h < -0.6) & (r.random(ncu) < 0.006)
        fac = np.where(grow, r.uniform(1.25, 2.0, ncu), r.uniform(0.5, 0.8, ncu))
        for i in np.flatnonzero(grow | shrink):
            old = int(c.capacity[i])
            new = max(5, int(round(old * fac[i] / 5) * 5))
            if new == old:
                continue
            rows.append((i, a_cap, str(old), str(new), int(day[i])))
            c.capacity[i] = new
            c.base[i] *= (new / old) ** 0.7
            if c.ctype[i] == rd.GCI and c.voltage[i] == 1 and new > 250:
                rows.append((i, a_volt, "0.4kV", "10kV", int(day[i])))
                c.voltage[i] = 2
                rows.append((i, a_tariff, TARIFF_CODES[c.tariff[i]], "GCI-10", int(day[i])))
                c.tariff[i] = _T["GCI-10"]
            if c.ctype[i] == rd.GCI and new >= 315 and c.industry[i] in (IND["C"], IND["B"]):
                rows.append((i, a_type, "general_commercial_industrial", "large_industrial",
                             int(day[i])))
                c.ctype[i] = rd.LI
                if c.voltage[i] < 2:
                    rows.append((i, a_volt, rd.VOLTAGES[c.voltage[i]], "10kV", int(day[i])))
                    c.voltage[i] = 2
                rows.append((i, a_tariff, TARIFF_CODES[c.tariff[i]], "LI-10", int(day[i])))
                c.tariff[i] = _T["LI-10"]
        # low-income household tariff granted / withdrawn
        res = open_ & (c.ctype == rd.RES)
        grant = res & (c.tariff == _T["RES-1"]) & (c.h < -1.5) & (r.random(ncu) < 0.02)
        withdraw = res & (c.tariff == _T["RES-LI"]) & (c.h > 0.0) & (r.random(ncu) < 0.03)
        for i in np.flatnonzero(grant | withdraw):
            new = "RES-LI" if grant[i] else "RES-1"
            rows.append((i, a_tariff, TARIFF_CODES[c.tariff[i]], new, int(day[i])))
            c.tariff[i] = _T[new]
        # rare administrative corrections of the supply region (same city)
        for i in np.flatnonzero(open_ & (r.random(ncu) < 0.00005)):
            city = rd.REGIONS[c.region[i]][2]
            same = [j for j, x in enumerate(rd.REGIONS) if x[2] == city and j != c.region[i]]
            if same:
                j = same[int(r.integers(0, len(same)))]
                rows.append((i, a_region, rd.REGIONS[c.region[i]][0], rd.REGIONS[j][0],
                             int(day[i])))
                c.region[i] = j
        if rows:
            changed = np.array(sorted({x[0] for x in rows}), dtype=np.int64)
            c.rec[changed] = k
        self._write_changes(rows, k)

    def _replace_meters(self, midx: np.ndarray, day: np.ndarray, reason: int, k: int) -> None:
        m = self.meter
        if len(midx) == 0:
            return
        m.remove[midx] = day
        m.reason[midx] = reason
        m.rec[midx] = k
        cust = m.cust[midx].copy()
        share = m.share[midx].copy()
        miss = m.miss_p[midx].copy()
        m.add(len(midx), cust=cust, install=day, share=share, rec=k, miss_p=miss)
        self._fault_start = np.r_[self._fault_start, np.full(m.n - len(self._fault_start), -1)]

    def _meter_changes(self, k: int) -> None:
        r = self.rng("meters", k)
        m, c = self.meter, self.cust
        first, nd = self.month(k)
        nm_ = m.n
        live = (m.remove < 0) & (c.close_day[m.cust] < 0)
        # faulty meters scheduled for replacement this month
        fu = m.fault_until.copy()
        due = live & (fu >= first) & (fu < first + nd)
        live &= ~due
        # new faults: stuck at zero or at a constant value until replaced
        fault = live & (fu < 0) & (r.random(nm_) < 0.0015)
        fi = np.flatnonzero(fault)
        fault_start = np.full(nm_, -1, np.int64)
        if len(fi):
            start = first + r.integers(0, nd, len(fi))
            fault_start[fi] = start
            m.fault_until[fi] = start + r.integers(5, 60, len(fi))
            m.fault_kind[fi] = r.integers(0, 2, len(fi))
            m.fault_val[fi] = np.round(c.base[m.cust[fi]] * m.share[fi]
                                       * r.uniform(0.3, 1.0, len(fi)), 1)
        rot = np.flatnonzero(live & ~fault & (r.random(nm_) < 0.0015))
        self._fault_start = fault_start
        self._replace_meters(np.flatnonzero(due), fu[due], R_FAULT, k)
        self._replace_meters(rot, first + r.integers(0, nd, len(rot)), R_REPLACE, k)

    def _inspections(self, k: int) -> None:
        r = self.rng("inspect", k)
        c = self.cust
        first, nd = self.month(k)
        ncu = c.n
        open_ = (c.close_day < 0) & (c.open_day < first)
        fresh = (k - c.last_insp) >= 6
        self._caught_active = np.zeros(ncu, bool)
        routine = open_ & fresh & (r.random(ncu) < np.array([0.002, 0.008, 0.02, 0.004])[c.ctype])
        ratio = np.divide(c.obs_rate, c.obs_base, out=np.ones(ncu), where=c.obs_base > 0)
        ratio = np.where(np.isnan(ratio), 1.0, ratio)
        score = (2.5 * np.clip(1 - ratio, 0, 1) + 0.06 * c.obs_zero + 2.0 * c.obs_flat
                 + 1.2 * np.minimum(c.obs_tamper, 3) + 0.4 * (c.ctype == rd.GCI)
                 + r.normal(0, 0.8, ncu))
        score = np.where(open_ & fresh & ~routine, score, -np.inf)
        cap = max(1, int(round(open_.sum() * 0.0025)))
        cap = min(cap, int(np.isfinite(score).sum()))
        targeted = np.zeros(ncu, bool)
        if cap:
            top = np.argpartition(-score, cap - 1)[:cap]
            targeted[top] = True
        tip = open_ & fresh & ~routine & ~targeted & (
            r.random(ncu) < np.where(c.t_active, 0.015, 0.0002))
        trig = np.full(ncu, -1)
        trig[routine], trig[targeted], trig[tip] = 0, 1, 2
        who = np.flatnonzero(trig >= 0)
        if len(who) == 0:
            return
        t = trig[who]
        day = first + r.integers(0, nd, len(who))
        active = c.t_active[who] & (self._t_from[who] <= day)
        p_det = np.array([0.65, 0.8, 0.75])[t]
        caught = active & (r.random(len(who)) < p_det)
        viol = ~caught & (r.random(len(who)) < np.where(c.ctype[who] == rd.RES, 0.02, 0.07))
        outcome = np.where(caught, 0, np.where(viol, 1, 2))
        # recovered amount: back-billed energy (up to 180 days) plus a 3x penalty
        days_stolen = np.minimum(c.t_days[who] + (day - self._t_from[who]), 180)
        est = np.where(np.isnan(c.obs_base[who]), c.base[who], c.obs_base[who])
        stolen_kwh = (np.maximum(est, 0.1) * c.t_drop[who] * np.maximum(days_stolen, 1) * 100)
        rec_theft = kwh_amount(stolen_kwh.astype(np.int64), c.tariff[who]) * 4
        rec_viol = (np.round(r.lognormal(np.log(800), 0.8, len(who)), 0) * 100).astype(np.int64)
        amount = np.where(caught, rec_theft, np.where(viol, rec_viol, 0))
        order = np.lexsort((who, day))
        ids = self._next("insp", len(who))
        self.w.t["inspections"].write({
            "inspection_id": Id("IN", 10, ids + 1),
            "customer_id": Id("C", 9, who[order].astype(np.int64) + CUST_BASE),
            "inspection_date": Days(day[order]), "trigger": Cat(TRIGGERS, t[order]),
            "outcome": Cat(OUTCOMES, outcome[order]), "recovered_amount": Centi(amount[order]),
        }, k)
        c.last_insp[who] = k
        cw = who[caught]
        if len(cw):
            cday = day[caught]
            c.t_confirm[cw] = k
            self._t_until[cw] = cday
            c.t_active[cw] = False
            m = self.meter
            until = np.full(c.n, -1, np.int64)
            until[cw] = cday
            mi = np.flatnonzero((until[m.cust] >= 0) & (m.remove < 0))
            mi = mi[m.install[mi] < until[m.cust[mi]]]
            self._replace_meters(mi, until[m.cust[mi]], R_TAMPER, k)
        self._caught_active[cw] = True

    def _readings(self, k: int) -> None:
        r = self.rng("read", k)
        c, m = self.cust, self.meter
        first, nd = self.month(k)
        end = first + nd
        mi = self.start_mi + k
        cal = mi % 12
        days = first + np.arange(nd)
        live = np.flatnonzero((m.install < end) & ((m.remove < 0) | (m.remove > first)))
        cu = m.cust[live].astype(np.int64)
        n = len(live)
        ncu = c.n
        # which days each meter reads
        valid = (days[None, :] >= m.install[live][:, None]) & (
            (m.remove[live][:, None] < 0) | (days[None, :] < m.remove[live][:, None]))
        valid &= days[None, :] >= c.open_day[cu][:, None]
        cd = c.close_day[cu]
        valid &= (cd[:, None] < 0) | (days[None, :] < cd[:, None])
        # expected consumption
        ct = c.ctype[cu]
        org = c.kind[cu] == 1
        ind = c.industry[cu]
        c.drift = c.drift + r.normal(0, 0.02, ncu)
        activity = np.where(org, np.exp(0.12 * c.h[cu] + 1.2 * self.shock[ind]),
                            np.exp(0.03 * c.h[cu]))
        level = c.base[cu] * np.exp(c.drift[cu]) * SEASON[ct, cal] * activity * m.share[live]
        wd = (days + 3) % 7
        weekend = wd >= 5
        fac = np.where(weekend[None, :], c.wkend[cu][:, None], 1.0)
        sfd = SPRING_FESTIVAL.get(mi // 12)
        if sfd:
            sday = int(np.datetime64(f"{mi // 12}-{sfd}", "D").astype(np.int64))
            hol = (days >= sday - 2) & (days <= sday + 6)
            if hol.any():
                fac = np.where(hol[None, :], fac * c.sf[cu][:, None], fac)
        smooth = level[:, None] * fac
        sig = c.sigma[cu][:, None]
        val = smooth * np.exp(sig * r.standard_normal((n, nd)) - 0.5 * sig * sig)
        # vacant homes, seasonal businesses
        vac_start = (c.ctype == rd.RES) & (c.vacant_until < k) & (r.random(ncu) < 0.0025)
        c.vacant_until = np.where(vac_start, k + r.geometric(0.25, ncu) - 1, c.vacant_until)
        vac = (c.vacant_until[cu] >= k)
        off_season = c.seasonal[cu] & (cal in (11, 0, 1))
        standby = np.where(r.random((n, nd)) < 0.6, 0.0, r.uniform(0, 0.3, (n, nd)))
        val = np.where((vac | off_season)[:, None], standby, val)
        # disconnected days
        of, ot = self._off_from[cu], self._off_to[cu]
        off = (of[:, None] >= 0) & (days[None, :] >= of[:, None]) & (days[None, :] < ot[:, None])
        val = np.where(off, 0.0, val)
        # theft
        tf, tu = self._t_from[cu], self._t_until[cu]
        thief_on = (c.t_active[cu] | self._caught_active[cu])
        tdays = thief_on[:, None] & (days[None, :] >= tf[:, None]) & (days[None, :] < tu[:, None])
        if tdays.any():
            tt = c.t_type[cu]
            drop = c.t_drop[cu][:, None]
            blocks = r.random((n, (nd + 3) // 4)) < 0.5
            zero_run = np.repeat(blocks, 4, axis=1)[:, :nd]
            stolen = np.where((tt == 0)[:, None], val * (1 - drop),
                              np.where((tt == 1)[:, None],
                                       np.where(zero_run, 0.0, val * (1 - drop / 3)),
                                       c.t_flat[cu][:, None] * m.share[live][:, None]))
            stolen = np.where(off, 0.0, stolen)
            val = np.where(tdays, stolen, val)
            np.add.at(c.t_days, cu, tdays.sum(axis=1))
        # meter faults: stuck at zero or at a constant value
        fu = m.fault_until[live]
        fs = np.where(self._fault_start[live] >= 0, self._fault_start[live], first)
        fdays = (fu[:, None] >= 0) & (days[None, :] >= fs[:, None]) & (days[None, :] < fu[:, None])
        if fdays.any():
            fv = np.where(m.fault_kind[live] == 0, 0.0, m.fault_val[live])
            val = np.where(fdays, fv[:, None], val)
        # communication gaps (rows absent) and estimated values
        miss = r.random((n, nd)) < m.miss_p[live][:, None]
        gap = r.random(n) < 0.01
        if gap.any():
            g0 = r.integers(0, nd, n)
            glen = r.integers(3, 11, n)
            miss |= gap[:, None] & (np.arange(nd)[None, :] >= g0[:, None]) & (
                np.arange(nd)[None, :] < (g0 + glen)[:, None])
        est = ~miss & (r.random((n, nd)) < 0.01) & ~fdays
        val = np.where(est & ~off, smooth, val)
        kwh = np.rint(np.maximum(val, 0) * 100).astype(np.int64)
        write = valid & ~miss
        # ---- write (meter order, then date)
        rows_m, rows_d = np.nonzero(write)
        kw = kwh[rows_m, rows_d]
        q = est[rows_m, rows_d].astype(np.int8)
        meter_labels = format_column(Id("M", 10, live.astype(np.int64) + METER_BASE), n)
        day_labels = format_column(Days(days), nd)
        step = 1_000_000
        for s in range(0, len(kw), step):
            sl = slice(s, s + step)
            self.w.t["readings"].write({
                "meter_id": Cat(meter_labels, rows_m[sl]), "reading_date": Cat(day_labels,
                                                                               rows_d[sl]),
                "kwh": Centi(kw[sl]), "quality": Cat(QUALITY, q[sl]),
            }, k)
        # ---- what the utility sees, what gets billed
        cu_rows = cu[rows_m]
        month_kwh = np.bincount(cu_rows, weights=kw, minlength=ncu).astype(np.int64)
        nread = np.bincount(cu_rows, minlength=ncu)
        nzero = np.bincount(cu_rows, weights=(kw == 0), minlength=ncu).astype(np.int32)
        kwh_max = np.zeros(ncu, np.int64)
        np.maximum.at(kwh_max, cu_rows, kw)
        kwh_min = np.full(ncu, 1 << 50, np.int64)
        np.minimum.at(kwh_min, cu_rows, kw)
        active = self._active(k)
        c.kwh_prev = np.where(active, month_kwh, 0)
        c.tariff_prev = c.tariff
        c.billable = active
        rate = np.where(nread > 0, month_kwh / 100 / np.maximum(nread, 1), np.nan)
        c.obs_base = np.where(np.isnan(c.obs_base), c.obs_rate,
                              np.where(np.isnan(c.obs_rate), c.obs_base,
                                       0.8 * c.obs_base + 0.2 * c.obs_rate))
        c.obs_rate = rate
        c.obs_zero = nzero
        c.obs_flat = (nread >= 10) & (kwh_max == kwh_min) & (kwh_max > 0)
        self._month_cost = np.where(active, kwh_amount(month_kwh, c.tariff), 0)
        self._month_rows = len(kw)

    def _meter_events(self, k: int) -> None:
        r = self.rng("mevents", k)
        c, m = self.cust, self.meter
        first, nd = self.month(k)
        end = first + nd
        live = np.flatnonzero((m.install < end) & ((m.remove < 0) | (m.remove > first)))
        cu = m.cust[live]
        n = len(live)
        thief = c.t_active[cu] | self._caught_active[cu]
        faulty = (m.fault_until[live] >= first)
        nonres = c.ctype[cu] != rd.RES
        t_type = c.t_type[cu]
        rates = np.stack([
            np.where(thief, 0.25, 0.002),                                          # cover_open
            np.where(thief, 0.06, np.where(c.pv[cu], 0.3, 0.0005)),                 # reverse_flow
            np.where(faulty, 0.3, np.where(nonres, 0.01, 0.001)),                   # phase_loss
            np.where(thief & (t_type != 1), 0.12, 0.0005),                          # magnetic
            np.full(n, 0.02),                                                       # outage
            np.where(faulty, 0.3, 0.004),                                           # clock_error
        ], axis=1)
        counts = r.poisson(rates)
        mm, ee = np.nonzero(counts)
        reps = counts[mm, ee]
        ev_m = np.repeat(live[mm], reps)
        ev_t = np.repeat(ee, reps)
        lo = np.maximum(m.install[ev_m], first)
        hi = np.where(m.remove[ev_m] >= 0, np.minimum(m.remove[ev_m], end) - 1, end - 1)
        ev_day = _rand_days(r, lo, hi)
        ev_s = _secs(ev_day, r, 0, 24)
        # region-wide outages hit many meters at once
        reg = c.region[cu]
        out_m, out_s = [], []
        for g in range(len(rd.REGIONS)):
            for _ in range(int(r.poisson(0.5))):
                mine = live[reg == g]
                if len(mine) == 0:
                    continue
                hit = mine[r.random(len(mine)) < r.uniform(0.05, 0.3)]
                d = first + int(r.integers(0, nd))
                ok = (m.install[hit] <= d) & ((m.remove[hit] < 0) | (m.remove[hit] > d))
                hit = hit[ok]
                out_m.append(hit)
                out_s.append(d * 86400 + int(r.integers(0, 86400)) + r.integers(0, 90, len(hit)))
        if out_m:
            om = np.concatenate(out_m)
            ev_m = np.r_[ev_m, om]
            ev_t = np.r_[ev_t, np.full(len(om), EV_OUTAGE)]
            ev_s = np.r_[ev_s, np.concatenate(out_s)]
        tamper = np.isin(ev_t, [EV_COVER, EV_MAGNET, EV_REVERSE])
        c.obs_tamper = np.bincount(m.cust[ev_m[tamper]], minlength=c.n).astype(np.int32)
        if len(ev_m) == 0:
            return
        order = np.lexsort((ev_t, ev_m, ev_s))
        ids = self._next("event", len(ev_m))
        self.w.t["meter_events"].write({
            "event_id": Id("EV", 12, ids + 1),
            "meter_id": Id("M", 10, ev_m[order].astype(np.int64) + METER_BASE),
            "event_at": Secs(ev_s[order]), "event_type": Cat(METER_EVENTS, ev_t[order]),
        }, k)

    def _prepaid_balances(self, k: int) -> None:
        c = self.cust
        first, nd = self.month(k)
        who = np.flatnonzero((c.settle == rd.PREPAID) & self._active(k))
        if len(who) == 0:
            return
        bal = -self._owed()[who] - self._month_cost[who]
        self.w.t["prepaid_balances"].write({
            "customer_id": Id("C", 9, who.astype(np.int64) + CUST_BASE),
            "balance_date": Days(np.full(len(who), first + nd - 1)),
            "balance_amount": Centi(bal),
        }, k)

    def _legal(self, k: int) -> None:
        r = self.rng("legal", k)
        e = self.ent
        first, nd = self.month(k)
        ne = e.n
        h = e.h
        cap = e.capital / 100.0
        suit = r.random(ne) < 0.002 * np.exp(-1.0 * h)
        listed = ~e.listed & (h < -1.5) & (r.random(ne) < 0.04 * (-h - 0.5))
        removed = e.listed & (h > -0.8) & (r.random(ne) < 0.1)
        tax = r.random(ne) < 0.0008 * np.exp(-0.6 * h)
        e.listed = (e.listed | listed) & ~removed
        ent_l, typ_l, amt_l = [], [], []
        for mask, typ, amt in (
            (suit, 0, np.round(cap * r.lognormal(np.log(0.03), 1.0, ne) + 5000, -2)),
            (listed, 1, np.round(cap * r.lognormal(np.log(0.05), 1.0, ne) + 10000, -2)),
            (removed, 2, np.full(ne, -1.0)),
            (tax, 3, np.round(r.lognormal(np.log(20000), 1.0, ne), -2)),
        ):
            ent_l.append(np.flatnonzero(mask))
            typ_l.append(np.full(int(mask.sum()), typ))
            amt_l.append(amt[mask])
        ei = np.concatenate(ent_l)
        if len(ei) == 0:
            return
        ty = np.concatenate(typ_l)
        am = np.concatenate(amt_l)
        day = first + r.integers(0, nd, len(ei))
        order = np.lexsort((ty, ei, day))
        ids = self._next("legal", len(ei))
        amt_c = np.where(am[order] < 0, 0, np.minimum(am[order], 1e11) * 100).astype(np.int64)
        amt_txt = Text([None if a < 0 else s for a, s in zip(
            am[order], fmt_centi(amt_c).to_pylist(), strict=True)])
        self.w.t["legal_events"].write({
            "legal_event_id": Id("LE", 10, ids + 1),
            "enterprise_id": Id("E", 8, ei[order].astype(np.int64) + ENT_BASE),
            "event_type": Cat(LEGAL_TYPES, ty[order]), "event_date": Days(day[order]),
            "amount": amt_txt,
        }, k)

    def _ownership(self, k: int) -> None:
        r = self.rng("owner", k)
        first, nd = self.month(k)
        lk = self.links
        if lk.n == 0:
            return
        # stake changes on existing holdings: gain or lose control, divest (stake 0)
        pairs = [p for p, st in self._stake.items() if st > 0]
        pick = np.flatnonzero(r.random(len(pairs)) < 0.002)
        for i in pick:
            owner, owned = pairs[i]
            old = self._stake[(owner, owned)] / 10000
            u = r.random()
            if old < 0.5:
                new = round(r.uniform(0.51, 0.8), 2) if u < 0.7 else 0.0
            else:
                new = round(r.uniform(0.2, 0.49), 2) if u < 0.4 else min(1.0, round(old + 0.1, 2))
            self._add_link(owner, owned, new, first + int(r.integers(0, nd)), k, change=True)

    def _truth(self, k: int) -> None:
        c = self.cust
        active = self._active(k)
        who = np.flatnonzero(active)
        mi = self.start_mi + k
        thief_now = c.t_active | self._caught_active
        ever = c.t_first >= 0
        self.w.truth["customer_months"].write({
            "customer_id": Id("C", 9, who.astype(np.int64) + CUST_BASE),
            "month": Month(np.full(len(who), mi)),
            "financial_health": Centi(np.rint(c.h[who] * 100).astype(np.int64)),
            "is_thief": Cat(["false", "true"], ever[who].astype(np.int8)),
            "theft_active": Cat(["false", "true"], thief_now[who].astype(np.int8)),
        }, k)
        e = self.ent
        self.w.truth["enterprise_months"].write({
            "enterprise_id": Id("E", 8, np.arange(e.n, dtype=np.int64) + ENT_BASE),
            "month": Month(np.full(e.n, mi)),
            "financial_health": Centi(np.rint(e.h * 100).astype(np.int64)),
            "design_group": Int(e.group, null_negative=True),
        }, k)

    # ------------------------------------------------------------------ end of extract
    def finish(self, last_k: int) -> None:
        """Write the current-state tables (customers, meters, registry) as of the last month."""
        w = self.w
        w.t["supply_regions"].write({
            "region_code": Text([x[0] for x in rd.REGIONS]),
            "region_name": Text([x[1] for x in rd.REGIONS]),
            "city_code": Text([x[2] for x in rd.REGIONS]),
            "city_name": Text([x[3] for x in rd.REGIONS]),
        })
        w.t["tariffs"].write({
            "tariff_code": Text(TARIFF_CODES), "tariff_name": Text([t[1] for t in rd.TARIFFS]),
            "customer_type": Cat(rd.CUSTOMER_TYPES, np.array([t[2] for t in rd.TARIFFS])),
            "price_per_kwh": Fixed4(TARIFF_PRICE_E4),
        })
        c = self.cust
        n = c.n
        w.t["customers"].write({
            "customer_id": Id("C", 9, np.arange(n, dtype=np.int64) + CUST_BASE),
            "customer_kind": Cat(rd.KINDS, c.kind), "customer_name": Text(self.c_name),
            "id_number": Text(self.c_idnum), "phone": Text(self.c_phone),
            "address": Text(self.c_addr),
            "enterprise_id": Id("E", 8, np.where(c.ent >= 0, c.ent.astype(np.int64) + ENT_BASE,
                                                 -1)),
            "region_code": Cat([x[0] for x in rd.REGIONS], c.region),
            "industry_code": Cat(rd.INDUSTRIES, c.industry),
            "customer_type": Cat(rd.CUSTOMER_TYPES, c.ctype),
            "voltage_level": Cat(rd.VOLTAGES, c.voltage),
            "tariff_code": Cat(TARIFF_CODES, c.tariff),
            "settlement_method": Cat(rd.SETTLEMENTS, c.settle),
            "payment_method": Cat(rd.PAY_METHODS, c.paymeth),
            "contract_capacity_kva": Int(c.capacity), "open_date": Days(c.open_day),
            "close_date": Days(c.close_day, null_negative=True), "email": Text(self.c_email),
        }, c.rec.astype(np.int64))
        m = self.meter
        w.t["meters"].write({
            "meter_id": Id("M", 10, np.arange(m.n, dtype=np.int64) + METER_BASE),
            "customer_id": Id("C", 9, m.cust.astype(np.int64) + CUST_BASE),
            "install_date": Days(m.install), "remove_date": Days(m.remove, null_negative=True),
            "removal_reason": Cat(REMOVAL_REASONS, m.reason),
        }, m.rec.astype(np.int64))
        e = self.ent
        w.t["enterprises"].write({
            "enterprise_id": Id("E", 8, np.arange(e.n, dtype=np.int64) + ENT_BASE),
            "enterprise_name": Text(self.e_name), "uscc": Text(self.e_uscc),
            "legal_representative_name": Text(self.e_rep_name),
            "legal_representative_id_number": Text(self.e_rep_id),
            "actual_controller_id_number": Text(self.e_ctrl),
            "registered_capital": Centi(e.capital),
            "industry_code": Cat(rd.INDUSTRIES, e.industry), "established_date": Days(e.est_day),
        }, e.rec.astype(np.int64))
        lk = self.links
        order = np.lexsort((lk.eff_day, lk.owned, lk.owner))
        w.t["ownership_links"].write({
            "owner_enterprise_id": Id("E", 8, lk.owner[order].astype(np.int64) + ENT_BASE),
            "owned_enterprise_id": Id("E", 8, lk.owned[order].astype(np.int64) + ENT_BASE),
            "voting_stake": Fixed4(lk.stake[order]), "effective_date": Days(lk.eff_day[order]),
        }, lk.rec[order].astype(np.int64))
        # open bills at the end of the extract: status "issued"
        b = self.bills
        self._write_bills(np.arange(b.n), 0, None)
        self._truth_final(last_k)

    def _truth_final(self, last_k: int) -> None:
        c, e = self.cust, self.ent
        th = np.flatnonzero(c.t_first >= 0)
        self.w.truth["thieves"].write({
            "customer_id": Id("C", 9, th.astype(np.int64) + CUST_BASE),
            "theft_type": Cat(THEFT_TYPES, c.t_type[th]),
            "drop_fraction": Centi(np.rint(c.t_drop[th] * 100).astype(np.int64)),
            "first_theft_month": Month(c.t_first[th].astype(np.int64) + self.start_mi),
            "last_confirmed_month": Month(np.where(c.t_confirm[th] >= 0,
                                                   c.t_confirm[th] + self.start_mi, -1)),
            "theft_days": Int(c.t_days[th]),
        })
        # control: A controls X if A's own stake plus stakes of companies A controls > 50%
        stakes: dict[int, dict[int, int]] = {}
        for (owner, owned), st in self._stake.items():
            if st > 0:
                stakes.setdefault(owned, {})[owner] = st
        parent, ultimate = control_parents(stakes, e.n)
        self.w.truth["enterprise_control"].write({
            "enterprise_id": Id("E", 8, np.arange(e.n, dtype=np.int64) + ENT_BASE),
            "controlling_enterprise_id": Id("E", 8, np.where(parent >= 0, parent + ENT_BASE, -1)),
            "ultimate_controller_enterprise_id": Id("E", 8, ultimate + ENT_BASE),
            "design_group": Int(e.group, null_negative=True),
            "is_holding_company": Cat(["false", "true"], e.holding.astype(np.int8)),
        })
        sh = []
        for p in self.plan:
            if p["start"] <= last_k:
                sh.append(p)
        self.w.truth["industry_downturns"].write({
            "industry_code": Text([p["industry"] for p in sh]),
            "start_month": Month(np.array([p["start"] for p in sh], np.int64) + self.start_mi),
            "bottom_month": Month(np.array([p["bottom"] for p in sh], np.int64) + self.start_mi),
            "end_month": Month(np.array([p["end"] for p in sh], np.int64) + self.start_mi),
            "depth": Centi(np.array([round(p["depth"] * 100) for p in sh], np.int64)),
        })


def control_sets(stakes: dict[int, dict[int, int]]) -> dict[int, set[int]]:
    """Who controls whom.

    ``stakes[owned][owner]`` = voting stake in ten-thousandths. ``A`` controls ``X`` when A's own
    stake in X plus the stakes held in X by companies A controls exceed 50%. Control of a
    subsidiary can create control one level down, so this iterates to a fixed point (the
    relation only grows, so it terminates).
    """
    ctrl: dict[int, set[int]] = {x: set() for x in stakes}
    changed = True
    while changed:
        changed = False
        for owned in sorted(stakes):
            totals: dict[int, int] = {}
            for owner, s in stakes[owned].items():
                for a in {owner} | ctrl.get(owner, set()):
                    if a != owned:
                        totals[a] = totals.get(a, 0) + s
            new = {a for a, t in totals.items() if t > 5000}
            if new != ctrl[owned]:
                ctrl[owned] = new
                changed = True
    return ctrl


def control_parents(stakes: dict[int, dict[int, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Direct (closest) and ultimate (top) controlling enterprise of each enterprise.

    Returns ``(parent, ultimate)``; ``parent`` is -1 without a controller, ``ultimate`` is the
    enterprise itself then.
    """
    ctrl = control_sets(stakes)
    parent = np.full(n, -1, np.int64)
    ultimate = np.arange(n, dtype=np.int64)
    for x, cs in ctrl.items():
        if not cs:
            continue
        # closest: controlled by the most of the other controllers; top: controlled by none
        parent[x] = max(sorted(cs), key=lambda p: len(ctrl.get(p, set()) & cs))
        ultimate[x] = min(sorted(cs), key=lambda p: len(ctrl.get(p, set()) & cs))
    return parent, ultimate
