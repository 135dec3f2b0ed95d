"""The one canonical form of a value from a file, before any rule sees it and as it is stored."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

# Free text keeps what its writer typed (composed, NFC); everything else is compared and stored in compatibility
# form (NFKC), so full-width digits, ligatures and no-break spaces read as what they look like.
FREE_TEXT = frozenset({"notes", "reason", "municipality_name", "contact_name", "interview_location"})
# Values that name one household, offer or round: one copy per thing, so no look-alike may pass for another.
IDENTIFIERS = frozenset({"case_id", "offer_id", "round_id"})

# Unicode's White_Space (Python's str.strip would also take the control characters U+001C-U+001F, which an id
# must not lose unseen).
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
               "\u2028\u2029\u202f\u205f\u3000"
# What a header cell may carry besides its name: a byte-order mark and zero-width characters pasted with it.
_HEADER_NOISE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))


def canonical_text(value: str, column: str) -> str | None:
    """`value` as every rule and the store see it: Unicode-normalised, surrounding whitespace (line breaks
    included) removed; None when nothing is left."""
    if not value.isascii():  # ASCII is its own normal form
        value = unicodedata.normalize("NFC" if column in FREE_TEXT else "NFKC", value)
    return value.strip(_WHITE_SPACE) or None


def canonical_header(value: str) -> str:
    """A header cell as the column name it means: NFKC (full-width letters), without a byte-order mark or
    zero-width characters, trimmed."""
    return unicodedata.normalize("NFKC", value.translate(_HEADER_NOISE)).strip(_WHITE_SPACE)


def _plain(ch: str) -> bool:
    """A letter or digit of any script, or ASCII punctuation or space: what an id is written with. Everything
    else (controls, format and zero-width characters, combining marks, variation selectors, blank symbols such as
    U+2800, non-ASCII punctuation such as U+2010 that looks like '-') could make one id look like another."""
    if ch.isascii():
        return ch.isprintable()
    category = unicodedata.category(ch)
    return category.startswith("L") or category == "Nd"


# What a line of text shows nothing of, or shows out of order: controls (line breaks and tabs too), format characters
# (bidi overrides, zero-width characters, the soft hyphen), surrogates, private-use and unassigned code points, line
# and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def hidden_characters(value: str) -> bool:
    """Whether a one-line text (a name) holds a character that does not show as itself: a bidi override could make
    it read as another name, a line break could start a line of its own in a letter."""
    return any(not (ch.isascii() and ch.isprintable()) and unicodedata.category(ch) in _HIDDEN_CATEGORIES
               for ch in value)


def _script(ch: str) -> str | None:
    """The script a letter or digit is written in (LATIN, CYRILLIC, ...); None for what all scripts share."""
    if ch.isascii() and not ch.isalpha():
        return None
    if not unicodedata.category(ch).startswith(("L", "N")):
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def identifier_problem(value: str) -> str | None:
    """Why `value` cannot be an identifier ("invisible": a character that is not plain, or "mixed_scripts"), or
    None when it can."""
    if not all(_plain(ch) for ch in value) or not any(ch.isalnum() for ch in value):
        return "invisible"  # or only punctuation: "..." or "?" names nothing
    scripts = {s for ch in value if (s := _script(ch)) is not None}
    return "mixed_scripts" if len(scripts) > 1 else None


# Letters and digits drawn alike (after Unicode's confusables, the unambiguous part): Cyrillic, Greek and Cherokee
# letters drawn like Latin ones, digits like letters (0 and O, 1 and l and I, 3 and З), another script's zero. An
# id written in one of these scripts alone is one script, yet looks like a Latin id.
_LOOKALIKES = str.maketrans(
    "АВЕКМНОРСТХЅІЈУаеорсухѕіјԁһӏԛԝԜҮЗΑΒΕΖΗΙΚΜΝΟΡΤΥΧοκνρ"
    "ᎪᏴᏟᎬᎻᏦᎫᎷᏃᏢᏒᏚᎢᏙᏔᎠᏀᏞ"
    "01I|၀٠۰०০",
    "ABEKMHOPCTXSIJYaeopcyxsijdhlqwWY3ABEZHIKMNOPTYXokvp"
    "ABCEHKJMZPRSTVWDGL"
    "OlllOOOOO")
_SPACES = re.compile(r"\s+")


def skeleton(value: str) -> str:
    """What an id looks like: look-alike letters and digits drawn as one, runs of spaces as one. Two different ids
    with one skeleton would be read as one."""
    return _SPACES.sub(" ", value.translate(_LOOKALIKES))


# --- points in time ------------------------------------------------------------------------------------------------

_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                  r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
                  r"\s*(Z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)?)?")
_GERMAN = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})"
                     r"(?:,?\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?(?:\s*(Uhr))?)?")


def _offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "UTC", "Uhr"):
        return UTC  # a time without a zone is read as UTC, as Kobo and ODK Central record it
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_instant(text: str) -> datetime | None:
    """A timestamp as Kobo (`2026-11-20T08:12:33`), ODK Central (`2026-11-20T08:12:33.120Z`), ISO 8601 with an
    offset, or a German spreadsheet (`20.11.2026 08:12`) writes it; a date alone is its midnight. Always aware
    (no zone means UTC); None when it is not a real point in time."""
    if m := _ISO.fullmatch(text):
        year, month, day, hour, minute, second, fraction, zone = m.groups()
    elif m := _GERMAN.fullmatch(text):
        day, month, year, hour, minute, second, fraction, zone = m.groups()
    else:
        return None
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro,
                        tzinfo=_offset(zone))
        when.astimezone(UTC)  # 9999-12-31T23:59-01:00 names no time a calendar holds
        return when
    except (ValueError, OverflowError):
        return None


def parse_day(text: str) -> date | None:
    """A calendar date written as ISO (`2026-11-20`, a time after it ignored) or German (`20.11.2026`)."""
    when = parse_instant(text)
    return when.date() if when is not None else None


# Columns holding a calendar date, and a point in time, in every file kind.
DATES = frozenset({"interview_date", "valid_from", "valid_until"})
INSTANTS = frozenset({"_submission_time", "decided_at"})


def canonical_value(value: str, column: str) -> str | None:
    """The canonical text of a cell of `column`: normalised (`canonical_text`); a readable date as ISO
    (`2026-11-20`), a readable point in time as ISO 8601 with the offset it was given in (UTC when none). What
    cannot be read stays as written, for the rules to report."""
    text = canonical_text(value, column)
    if text is None or (column not in DATES and column not in INSTANTS):
        return text
    when = parse_instant(text)
    if when is None:
        return text
    if column in DATES:
        return when.date().isoformat()
    return when.isoformat(timespec="microseconds" if when.microsecond else "seconds")
