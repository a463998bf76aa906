"""The one error taxonomy every connector raises; no vendor exception leaves a connector.

    ConnectorError                 base: the read failed, the cycle fails, nothing is applied
    ├── TransientError             worth retrying later (timeouts, 429 past retries, 5xx, resets)
    │   └── PartialReadError       a read stopped part-way (malformed page, cursor lost)
    └── PermanentError             retrying will not help without a change of config
        └── AuthError              401/403, bad credentials: quarantines the directory at once

Messages are one line and never contain a secret.
"""


class ConnectorError(Exception):
    """A directory could not be read completely."""


class TransientError(ConnectorError):
    """A failure that may pass on its own; the next cycle retries."""


class PartialReadError(TransientError):
    """A read that stopped part-way: a malformed or truncated page, a lost cursor."""


class PermanentError(ConnectorError):
    """A failure that needs a human: bad configuration, a missing resource."""


class AuthError(PermanentError):
    """The directory refused our credentials (401/403)."""
