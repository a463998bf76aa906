"""The one error configuration problems raise: a single line naming the key."""


class ConfigError(Exception):
    """Bad or missing configuration. `str()` is one line that names the offending key."""
