"""Check-digit and format rules for Chinese identifiers used in the source extracts.

Shared by the simulator (to generate valid identifiers) and by ingestion validation (to check
them). Pure functions, no dependencies.

- Resident identity number (GB 11643-1999): 6-digit region code, birth date ``YYYYMMDD``,
  3-digit sequence, check character from ISO 7064 MOD 11-2 (``0``-``9`` or ``X``).
- Unified social credit code (GB 32100-2015): registration authority, organisation type,
  6-digit region code, 9-character organisation code, check character (MOD 31).
- Mainland mobile phone number: 11 digits starting ``1[3-9]``.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = [
    "USCC_CHARSET",
    "is_valid_phone_cn",
    "is_valid_resident_id",
    "is_valid_resident_id_or_uscc",
    "is_valid_uscc",
    "org_code_check_char",
    "resident_id_check_char",
    "uscc_check_char",
]

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_MAP = "10X98765432"
# fullmatch everywhere: `$` would accept a trailing newline
_RID_RE = re.compile(r"[1-9][0-9]{5}(18|19|20)[0-9]{2}[0-9]{4}[0-9]{3}[0-9X]")

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")

# Organisation code (GB 11714): 8 characters + check character.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_PHONE_RE = re.compile(r"1[3-9][0-9]{9}")


def resident_id_check_char(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID.

    Parameters
    ----------
    first17 : str
        The first 17 characters (all digits).

    Returns
    -------
    str
        ``'0'``-``'9'`` or ``'X'``.
    """
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("first17 must be 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_MAP[total % 11]


def is_valid_resident_id(s: object) -> bool:
    """True if ``s`` is an 18-character resident ID with a real birth date and a correct check char.

    A lowercase ``x`` check character is not accepted (sources must deliver ``X``).
    """
    if not isinstance(s, str) or len(s) != 18 or not _RID_RE.fullmatch(s):
        return False
    try:
        _dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return resident_id_check_char(s[:17]) == s[17]


def uscc_check_char(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters of a USCC.

    Parameters
    ----------
    first17 : str
        The first 17 characters, each from :data:`USCC_CHARSET`.
    """
    if len(first17) != 17:
        raise ValueError("first17 must have 17 characters")
    try:
        total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} not allowed in a USCC") from None
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(s: object) -> bool:
    """True if ``s`` is an 18-character unified social credit code with a correct check char."""
    if not isinstance(s, str) or len(s) != 18 or not _USCC_RE.fullmatch(s):
        return False
    return uscc_check_char(s[:17]) == s[17]


def org_code_check_char(first8: str) -> str:
    """Return the GB 11714 check character of an organisation code (characters 9-17 of a USCC)."""
    if len(first8) != 8:
        raise ValueError("first8 must have 8 characters")
    total = 0
    for c, w in zip(first8, _ORG_WEIGHTS, strict=True):
        if c.isdigit():
            v = int(c)
        elif "A" <= c <= "Z":
            v = ord(c) - ord("A") + 10
        else:
            raise ValueError(f"character {c!r} not allowed in an organisation code")
        total += v * w
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def is_valid_resident_id_or_uscc(s: object) -> bool:
    """True if ``s`` is a valid resident ID or a valid USCC."""
    return is_valid_resident_id(s) or is_valid_uscc(s)


def is_valid_phone_cn(s: object) -> bool:
    """True if ``s`` is an 11-digit mainland mobile number starting with ``1[3-9]``."""
    return isinstance(s, str) and bool(_PHONE_RE.fullmatch(s))
