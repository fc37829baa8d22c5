"""Synthetic Chinese names, identity numbers, phones, e-mails and addresses."""

from __future__ import annotations

import numpy as np

from ..identifiers import USCC_CHARSET, org_code_check_char, resident_id_check_char, uscc_check_char
from . import refdata as rd

_SURNAME_W = 1.0 / np.arange(1, len(rd.SURNAMES) + 1) ** 0.8
_SURNAME_W = _SURNAME_W / _SURNAME_W.sum()
_DAY0 = np.datetime64("1970-01-01", "D")


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    s = rng.choice(len(rd.SURNAMES), size=n, p=_SURNAME_W)
    two = rng.random(n) < 0.7
    g1 = rng.integers(0, len(rd.GIVEN_CHARS), n)
    g2 = rng.integers(0, len(rd.GIVEN_CHARS), n)
    sn, gc = rd.SURNAMES, rd.GIVEN_CHARS
    return [
        sn[s[i]] + gc[g1[i]] + (gc[g2[i]] if two[i] else "") for i in range(n)
    ]


def resident_ids(
    rng: np.random.Generator,
    home_codes: list[str],
    birth_days: np.ndarray,
    used: set[str],
) -> list[str]:
    """Valid, unique resident IDs for people born on ``birth_days`` (days since epoch)."""
    n = len(home_codes)
    seq = rng.integers(1, 1000, n)
    out = []
    for i in range(n):
        bd = str(_DAY0 + int(birth_days[i])).replace("-", "")
        sq = int(seq[i])
        while True:
            first17 = f"{home_codes[i]}{bd}{sq:03d}"
            rid = first17 + resident_id_check_char(first17)
            if rid not in used:
                break
            sq = sq % 999 + 1
        used.add(rid)
        out.append(rid)
    return out


def home_region_codes(rng: np.random.Generator, region_codes: list[str]) -> list[str]:
    """Where people were registered at birth: mostly the county they live in."""
    n = len(region_codes)
    u = rng.random(n)
    other_local = rng.integers(0, len(rd.REGIONS), n)
    other_prov = rng.integers(0, len(rd.OTHER_REGION_CODES), n)
    out = []
    for i in range(n):
        if u[i] < 0.72:
            out.append(region_codes[i])
        elif u[i] < 0.86:
            out.append(rd.REGIONS[other_local[i]][0])
        else:
            out.append(rd.OTHER_REGION_CODES[other_prov[i]])
    return out


def phones(rng: np.random.Generator, n: int, missing_share: float = 0.0) -> list[str | None]:
    pre = rng.integers(0, len(rd.PHONE_PREFIXES), n)
    rest = rng.integers(0, 100_000_000, n)
    miss = rng.random(n) < missing_share
    return [
        None if miss[i] else f"{rd.PHONE_PREFIXES[pre[i]]}{rest[i]:08d}" for i in range(n)
    ]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def emails(rng: np.random.Generator, n: int, org: np.ndarray, share: np.ndarray) -> list[str | None]:
    """E-mail addresses; ``share`` is the per-row probability of having one."""
    has = rng.random(n) < share
    qq = rng.integers(100_000, 3_999_999_999, n)
    dom_p = rng.integers(0, len(rd.EMAIL_DOMAINS_PERSON), n)
    dom_o = rng.integers(0, len(rd.EMAIL_DOMAINS_ORG), n)
    letters = rng.integers(0, 26, (n, 6))
    lens = rng.integers(3, 7, n)
    out: list[str | None] = []
    for i in range(n):
        if not has[i]:
            out.append(None)
            continue
        if org[i]:
            name = "".join(_LETTERS[j] for j in letters[i, : lens[i]])
            out.append(f"{name}{qq[i] % 1000}@{rd.EMAIL_DOMAINS_ORG[dom_o[i]]}")
        else:
            dom = rd.EMAIL_DOMAINS_PERSON[dom_p[i]]
            if dom == "qq.com":
                out.append(f"{qq[i]}@qq.com")
            else:
                name = "".join(_LETTERS[j] for j in letters[i, : lens[i]])
                out.append(f"{name}{qq[i] % 10000}@{dom}")
    return out


def addresses(
    rng: np.random.Generator, region_idx: np.ndarray, urban: np.ndarray, industrial: np.ndarray
) -> list[str]:
    n = len(region_idx)
    a = rng.integers(0, 10_000, (n, 6))
    out = []
    for i in range(n):
        _, county, _, city, _, _ = rd.REGIONS[region_idx[i]]
        prefix = f"福建省{city}{county}"
        r = a[i]
        if industrial[i]:
            park = rd.INDUSTRIAL_PARKS[r[0] % len(rd.INDUSTRIAL_PARKS)]
            road = rd.ROADS[r[1] % len(rd.ROADS)]
            out.append(f"{prefix}{park}{road}{r[2] % 300 + 1}号")
        elif urban[i]:
            road = rd.ROADS[r[0] % len(rd.ROADS)]
            estate = rd.ESTATES[r[1] % len(rd.ESTATES)]
            out.append(
                f"{prefix}{road}{r[2] % 500 + 1}号{estate}{r[3] % 30 + 1}栋"
                f"{r[4] % 30 + 1:d}{r[5] % 6 + 1:02d}室"
            )
        else:
            town = rd.TOWNS[r[0] % len(rd.TOWNS)]
            village = rd.VILLAGES[r[1] % len(rd.VILLAGES)]
            out.append(f"{prefix}{town}{village}{r[2] % 12 + 1}组{r[3] % 200 + 1}号")
    return out


def firm_stem(rng: np.random.Generator) -> str:
    i, j = rng.integers(0, len(rd.FIRM_CHARS), 2)
    return rd.FIRM_CHARS[i] + rd.FIRM_CHARS[j]


def firm_name(rng: np.random.Generator, city: str, stem: str, industry: str, holding: bool,
              used: set[str]) -> str:
    city_short = city.removesuffix("市")
    if holding:
        words = ["投资控股", "实业集团", "控股集团", "投资"]
        word = words[int(rng.integers(0, len(words)))]
        form = "有限公司"
    else:
        ws = rd.INDUSTRY_FIRM_WORDS[industry]
        word = ws[int(rng.integers(0, len(ws)))]
        form = "" if word.endswith(("合作社", "经营部", "协会", "诊所", "幼儿园", "学校")) else \
            rd.LEGAL_FORMS[int(rng.integers(0, len(rd.LEGAL_FORMS)))]
    name = f"{city_short}{stem}{word}{form}"
    k = 1
    while name in used:
        k += 1
        name = f"{city_short}{stem}{word}第{k}{form or '分部'}"
    used.add(name)
    return name


def uscc(rng: np.random.Generator, region_code: str, org_type: str, used: set[str]) -> str:
    """A valid, unique USCC: authority '9' (市场监管), type ('1' company, '2' individual
    business, '3' farmers' cooperative), region code, organisation code, check char."""
    digits = USCC_CHARSET[:10] + "ABCDEFGHJKLMNPQRTUWXY"
    while True:
        k = rng.integers(0, 10, 8)
        first8 = ("M" if rng.random() < 0.3 else str(k[0])) + "".join(str(x) for x in k[1:])
        if rng.random() < 0.15:
            first8 = first8[:6] + digits[int(rng.integers(10, len(digits)))] + first8[7]
        org = first8 + org_code_check_char(first8)
        first17 = f"9{org_type}{region_code}{org}"
        code = first17 + uscc_check_char(first17)
        if code not in used:
            used.add(code)
            return code
