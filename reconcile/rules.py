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
# C0/C1 control characters (Unicode category Cc), and the bidirectional marks, overrides
# and isolates that can make a name display as something else.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    detail: str


def email_key(email: str) -> str:
    """The case-insensitive key users are matched and kept unique by (R1)."""
    return email.strip().lower()


def name_key(name: str) -> str:
    """The case-insensitive key groups are matched and kept unique by (R6)."""
    return name.strip().casefold()


def check_email(raw: object) -> str | Violation:
    """R1: the trimmed email, or why it cannot be a user's key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Violation("missing-email", "the user has no email address")
    if not isinstance(raw, str):
        return Violation("invalid-email", f"the email is a {type(raw).__name__}, not text")
    email = raw.strip()
    if len(email) > MAX_EMAIL_LENGTH:
        return Violation("invalid-email", f"the email is {len(email)} characters long")
    if _has_control(email):
        return Violation("control-characters", "the email contains control characters")
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
    text = value.strip()
    if len(text) > rules.max_field_length:
        return Violation(
            "field-too-long",
            f"{field} is {len(text)} characters long (at most {rules.max_field_length})",
        )
    if _has_control(text):
        return Violation("control-characters", f"{field} contains control characters")
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
            f"{name!r} looks like the reserved {rules.admin_group!r} but is spelt with other letters",
        )
    return name


def looks_like(name: str, other: str) -> bool:
    """Whether `name` reads as `other` once look-alike letters of other scripts and
    compatibility forms (fullwidth, ligatures) are folded."""
    folded = unicodedata.normalize("NFKC", name).translate(_LOOKALIKES)
    return name_key(folded) == name_key(other)


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
