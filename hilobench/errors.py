"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class ConfigError(ValueError):
    """A bad setting: the message names the bad value and what is allowed."""


def check_choice(what: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose from: {', '.join(map(str, allowed))}")
