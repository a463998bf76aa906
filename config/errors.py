"""The errors configuration problems raise: a single line naming the key."""


class ConfigError(Exception):
    """Bad or missing configuration. `str()` is one line that names the offending key."""


class InvalidValue(ValueError):
    """Raised by a settings class's own check: which key of its table, and why.

    `config.schema.build` turns it into a `ConfigError` naming the full key
    (`rules.admin_alias: ...`).
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
