"""The product rules (DESIGN.md section 4) as pure checks on single values.

Each check returns the cleaned value or a `Violation` with a stable reason code and one
human sentence. `plan` and the local admin actions both call these, so a rule lives in
one place whichever path changes the store.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from reconcile.model import RuleSettings

MAX_EMAIL_LENGTH = 254

# ASCII addresses only: a homoglyph (Cyrillic "а" for Latin "a") would otherwise create a
# second account that looks identical to an existing one.
_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}(?<!\.)"
    r"@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

# Letters of other scripts that look like Latin ones (the common part of Unicode's
# confusables for Cyrillic and Greek), for telling when a name only looks like another.
_LOOKALIKES = str.maketrans(
    "аbсdеһіјӏорԛѕսԝхуАВСЕНІЈКМНОРЅТХУЬαβεικνορτυχАΒΕΗΙΚΜΝΟΡΤΥΧΖ",
    "abcdehijlopqsuwxyABCEHIJKMHOPSTXYbaBeiKvopTuxABEHIKMNOPTYXZ",
)
# C0/C1 control characters (Unicode category Cc), and the bidirectional embeddings,
# overrides and isolates that reorder how a name displays ("Ana \u202egnp.exe").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Invisible format characters (category Cf: zero-width space, soft hyphen, BOM, bidi
# marks, ...) that a display field loses. The zero-width joiner and non-joiner stay: they
# are part of the spelling of Persian and Indic names and of emoji sequences.
_KEPT_IN_TEXT = frozenset("\u200c\u200d")


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    detail: str


def text_key(text: str) -> str:
    """The one key emails and group names are matched and kept unique by, in the planner,
    the store's unique columns and every lookup: NFKC (fullwidth forms and ligatures fold
    to their plain letters), full case folding ("Straße" and "STRASSE" are one name), NFKC
    again (folding can leave unnormalised text, as for "ǰ"), then trimmed.

    No language-specific folding: "İ" (Turkish capital dotted I) keys as "i" plus a
    combining dot, so "İSTANBUL" and "istanbul" are two names, and so are "ı" and "i".
    Idempotent: `text_key(text_key(t)) == text_key(t)`.
    """
    if text.isascii():  # NFKC leaves ASCII alone and folds it as lower() does; far faster
        key = text.lower().strip()
        # Most text is its own key: return it, so that a planner keying a million users
        # holds their addresses once, not a copy of each besides.
        return text if key == text else key
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return folded.strip()


def email_key(email: str) -> str:
    """The key users are matched and kept unique by (R1): `text_key`."""
    return text_key(email)


def name_key(name: str) -> str:
    """The key groups are matched and kept unique by (R6): `text_key`."""
    return text_key(name)


def check_email(raw: object) -> str | Violation:
    """R1: the trimmed email, or why it cannot be a user's key.

    Compatibility forms fold to plain ASCII first (NFKC: a fullwidth "ＡＮＡ@example.com"
    is "ANA@example.com", the same user as "ana@example.com"); what is still not ASCII
    after that (a Cyrillic "а") is refused.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Violation("missing-email", "the user has no email address")
    if not isinstance(raw, str):
        return Violation("invalid-email", f"the email is a {type(raw).__name__}, not text")
    email = raw.strip()
    if len(email) > MAX_EMAIL_LENGTH:
        return Violation("invalid-email", f"the email is {len(email)} characters long")
    if _has_control(email):
        return Violation("control-characters", "the email contains control characters")
    if _has_format(email):
        return Violation("invisible-characters", f"the email {email!r} contains invisible format characters")
    email = unicodedata.normalize("NFKC", email).strip()
    if len(email) > MAX_EMAIL_LENGTH:  # some compatibility characters expand
        return Violation("invalid-email", f"the email is {len(email)} characters long")
    if not email.isascii():
        return Violation("invalid-email", f"the email {email!r} contains non-ASCII characters")
    if not _EMAIL.match(email):
        return Violation("invalid-email", f"{email!r} is not a valid email address")
    return email


def check_text(value: object, field: str, rules: RuleSettings) -> str | None | Violation:
    """A display field (given, family or display name): None, cleaned text, or a violation."""
    if value is None:
        return None
    if not isinstance(value, str):
        return Violation("invalid-field", f"{field} is a {type(value).__name__}, not text")
    if _has_control(value):
        return Violation("control-characters", f"{field} contains control characters")
    text = strip_format(value).strip()
    if len(text) > rules.max_field_length:
        return Violation(
            "field-too-long",
            f"{field} is {len(text)} characters long (at most {rules.max_field_length})",
        )
    return text or None


def check_group_name(raw: object, rules: RuleSettings) -> str | Violation:
    """R2 and R3: the trimmed group name, or why a directory group may not carry it.

    The configured alias of the admin group is a valid name: the plan maps it (R3).
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Violation("empty-name", "the group has no name")
    if not isinstance(raw, str):
        return Violation("invalid-name", f"the group name is a {type(raw).__name__}, not text")
    name = raw.strip()
    if _has_control(name):
        return Violation("control-characters", "the group name contains control characters")
    if len(name) > rules.max_group_name_length:
        return Violation(
            "name-too-long",
            f"group names must be shorter than {rules.max_group_name_length + 1} characters;"
            f" {name[:40]!r}{'...' if len(name) > 40 else ''} has {len(name)}",
        )
    if name_key(name) == name_key(rules.admin_group):
        return Violation(
            "reserved-name",
            f"{rules.admin_group!r} is reserved; map a directory group onto it by naming it"
            f" {rules.admin_alias!r}",
        )
    if not name.isascii() and looks_like(name, rules.admin_group):
        return Violation(
            "reserved-name",
            f"{name!r} looks like the reserved {rules.admin_group!r} but is spelt with other"
            " letters or invisible characters",
        )
    if _has_format(name):
        return Violation(
            "invisible-characters",
            f"the group name {name!r} contains invisible format characters (zero-width space,"
            " soft hyphen, bidi mark, ...)",
        )
    return name


def looks_like(name: str, other: str) -> bool:
    """Whether `name` reads as `other` once invisible format characters are removed and
    look-alike letters of other scripts and compatibility forms (fullwidth, ligatures)
    are folded."""
    visible = "".join(c for c in name if not _is_format(c))
    folded = unicodedata.normalize("NFKC", visible).translate(_LOOKALIKES)
    return name_key(folded) == name_key(other)


def strip_format(text: str) -> str:
    """`text` without its invisible format characters (category Cf), except the zero-width
    joiner and non-joiner that some scripts and emoji are spelt with."""
    if text.isascii():  # no format character is ASCII; most names are, at C speed
        return text
    return "".join(c for c in text if c in _KEPT_IN_TEXT or not _is_format(c))


def is_admin_alias(name: str, rules: RuleSettings) -> bool:
    """R3: whether a (valid) directory group name is the alias of the admin group."""
    return name_key(name) == name_key(rules.admin_alias)


def is_admin_group(name: str, rules: RuleSettings) -> bool:
    return name_key(name) == name_key(rules.admin_group)


# R9: what each Okta status means for the local account.
OKTA_ACTIVE = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY", "PROVISIONED"})
OKTA_INACTIVE = frozenset({"SUSPENDED", "DEPROVISIONED"})
OKTA_NOT_CREATED = frozenset({"STAGED"})


def okta_status_active(status: str) -> bool | None:
    """R9: True (active), False (inactive) or None (STAGED: not created).

    Raises ValueError for a status this table does not know, so the record is rejected
    instead of guessed.
    """
    if status in OKTA_ACTIVE:
        return True
    if status in OKTA_INACTIVE:
        return False
    if status in OKTA_NOT_CREATED:
        return None
    raise ValueError(f"unknown Okta user status {status!r}")


def entra_active(account_enabled: object, soft_deleted: bool = False) -> bool:
    """R9: an Entra user is active only when enabled and not soft-deleted."""
    return account_enabled is True and not soft_deleted


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def _has_format(text: str) -> bool:
    return not text.isascii() and any(_is_format(c) for c in text)
