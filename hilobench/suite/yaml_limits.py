"""Reading a suite file within fixed limits: size, YAML nodes and characters, aliases counted.

YAML aliases share one object per anchor, so a small file can stand for billions of values
("billion laughs"). :func:`read_yaml` reads at most :data:`MAX_SUITE_BYTES`, stops composing
past :data:`MAX_YAML_NODES` nodes and sizes the composed document, every alias use counted as a
copy, before constructing it, so no alias is ever expanded past the limits. Within the limits
it returns what ``yaml.safe_load`` does. The shipped suites are far below every limit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hilobench.core.errors import ConfigError, SuiteLimitError

#: Largest suite file read (bytes).
MAX_SUITE_BYTES = 1_000_000
#: Most YAML nodes a suite may hold, counting every alias use as a copy of what it names.
MAX_YAML_NODES = 100_000
#: Most scalar characters a suite may hold, again counting every alias use as a copy.
MAX_YAML_CHARS = 2_000_000


class _TooBig(Exception):
    """Raised while composing a YAML document that exceeds the node or character limits."""


def amount(n: int) -> str:
    """``n`` with thousands separators, or its order of magnitude once it gets absurd."""
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes, scalar characters) of the document with every alias use counted as a copy.

    Each node is visited once (memoised by identity), so a billion-laughs file costs as many
    steps as it has distinct nodes; an alias that refers to itself raises _TooBig.
    """
    memo: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        nid = id(node)
        if closing:
            kids = [memo[id(k)] for k in _children(node)]
            nodes = 1 + sum(k[0] for k in kids)
            chars = sum(k[1] for k in kids)
            if isinstance(node, yaml.ScalarNode):
                chars += len(node.value)
            memo[nid] = (nodes, chars)
            open_.discard(nid)
        elif nid not in memo:
            if nid in open_:
                raise _TooBig(None, None)
            open_.add(nid)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node))
    return memo[id(root)]


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that stops composing after MAX_YAML_NODES nodes and sizes the composed
    document before constructing it."""

    composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.composed += 1
        if self.composed > MAX_YAML_NODES:
            raise _TooBig(self.composed, None)
        return super().compose_node(parent, index)

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        nodes, chars = _expanded_size(node)
        if nodes > MAX_YAML_NODES or chars > MAX_YAML_CHARS:
            raise _TooBig(nodes, chars)
        return self.construct_document(node)


# YAML 1.1 reads 0x5, 0o17, 010 and 1:30 as integers (hex, octal, base 60): in a suite they are
# typos (``tokens: 0x5`` meant a 0-by-5 map), so only decimal integers are integers here and the
# rest stay strings, which the field checks then refuse with a message.
_INT_TAG = "tag:yaml.org,2002:int"
_DECIMAL_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT_TAG]
    + ([(_INT_TAG, _DECIMAL_INT)] if first in "-+0123456789" else [])
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(p: Path) -> Any:
    """Parse a suite file within the limits (see the module docstring); ConfigError if not.

    The same data as ``yaml.safe_load`` for any file within the limits, except that only
    decimal integers are integers (see ``_DECIMAL_INT``)."""
    with open(p, "rb") as f:
        raw = f.read(MAX_SUITE_BYTES + 1)
    if len(raw) > MAX_SUITE_BYTES:
        raise SuiteLimitError(
            f"{p}: the file is larger than {MAX_SUITE_BYTES:,} bytes, the limit for a suite"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except _TooBig as e:
        raise SuiteLimitError(f"{p}: {_too_big(*e.args)}") from None
    except RecursionError:
        raise SuiteLimitError(f"{p}: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{p}: invalid YAML{at}: {problem}") from None


def _too_big(nodes: int | None, chars: int | None) -> str:
    """What _TooBig(nodes, chars) found wrong, for the error message."""
    if nodes is None:
        return "an alias refers to itself, so the suite has no finite size"
    if chars is None:
        return f"holds more than {MAX_YAML_NODES:,} YAML nodes; the limit is {MAX_YAML_NODES:,}"
    if nodes > MAX_YAML_NODES:
        return (
            f"expands to {amount(nodes)} YAML nodes (aliases counted as copies); "
            f"the limit is {MAX_YAML_NODES:,}"
        )
    return (
        f"expands to {amount(chars)} characters of values (aliases counted as copies); "
        f"the limit is {MAX_YAML_CHARS:,}"
    )
