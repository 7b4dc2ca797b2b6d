"""Errors a user can fix, and every exit code (a run's and the gate's, one table). The CLI
prints an error as one line and exits 2."""

import difflib
from collections.abc import Iterable

#: ``hilobench gate``: nothing regressed, every case judged.
EXIT_PASS = 0
#: ``hilobench gate``: a regression or a failed claim (or the candidate's code does not start).
EXIT_REGRESSION = 1
#: A bad setting or usage.
EXIT_USAGE = 2
#: ``hilobench gate``: the baseline is missing or cannot be compared with the candidate.
EXIT_BASELINE = 3
#: ``hilobench gate``: every case compared, but some had too few samples for a verdict.
EXIT_UNJUDGED = 4
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


def did_you_mean(value: object, allowed: Iterable[object]) -> str:
    """``" (did you mean 'hilo'?)"`` for the allowed names closest to a misspelt ``value``,
    or "" when none is close."""
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=3, cutoff=0.6)
    if not close:
        return ""
    shown = [repr(c) for c in close]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f" (did you mean {listed}?)"


def unknown(
    what: str,
    value: object,
    allowed: Iterable[object],
    extra: str = "",
    also: Iterable[object] = (),
) -> ConfigError:
    """The one-line refusal of a name not among ``allowed``: the closest ones (among ``allowed``
    and ``also``, other names not listed), then the list, ending with ``extra``."""
    allowed = list(allowed)
    hint = did_you_mean(value, [*allowed, *also])
    return ConfigError(
        f"unknown {what} {value!r}{hint}; choose from: {', '.join(map(str, allowed))}{extra}"
    )


def check_choice(what: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise unknown(what, value, allowed)
