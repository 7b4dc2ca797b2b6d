"""Errors a user can fix, and the exit codes. The CLI prints an error as one line and exits 2."""

#: A bad setting or usage.
EXIT_USAGE = 2
#: A run finished, but some of its cases ended as ``error`` rows (``OOM`` rows are results).
EXIT_CASES_FAILED = 4
#: A run ended with cases left open (no row: stopped from outside too often); ``--resume``.
EXIT_INCOMPLETE = 5
#: Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130
#: Stopped by SIGTERM (128 + 15, as shells report it).
EXIT_TERMINATED = 143


class ConfigError(ValueError):
    """A bad setting: the message names the bad value and what is allowed."""


class SuiteLimitError(ConfigError):
    """A suite beyond the size limits: refused before it is expanded, even by `suite list`."""


def check_choice(what: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose from: {', '.join(map(str, allowed))}")
