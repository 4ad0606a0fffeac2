"""Subscription filters in the real service's filter language, compiled to predicates on attributes.

Grammar (https://cloud.google.com/pubsub/docs/subscription-message-filter)::

    expr    := term {AND term} | term {OR term}      (AND and OR never mix without parentheses)
    term    := [NOT | -] primary
    primary := "(" expr ")"
             | attributes ":" KEY                    (the attribute exists)
             | attributes "." KEY ("=" | "!=") STRING
             | hasPrefix "(" attributes "." KEY "," STRING ")"

KEY is an identifier or a quoted string. A filter is at most 256 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from services.pubsub.errors import invalid

Predicate = Callable[[Mapping[str, str]], bool]
MAX_FILTER_BYTES = 256

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|[=:().,\-])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid(f"Invalid filter: unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            want = value or kind
            got = "end of filter" if tok is None else repr(tok[1])
            raise invalid(f"Invalid filter: expected {want}, got {got} in {self.text!r}")
        self.i += 1
        return tok[1]

    def at(self, kind: str, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok == (kind, value)

    def expr(self) -> Predicate:
        terms = [self.term()]
        joiner: str | None = None
        while self.at("word", "AND") or self.at("word", "OR"):
            word = self.take("word")
            if joiner is not None and word != joiner:
                raise invalid(f"Invalid filter: AND and OR need parentheses to be mixed in {self.text!r}")
            joiner = word
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        ts = tuple(terms)
        if joiner == "AND":
            return lambda a: all(t(a) for t in ts)
        return lambda a: any(t(a) for t in ts)

    def term(self) -> Predicate:
        if self.at("word", "NOT") or self.at("op", "-"):
            self.i += 1
            inner = self.primary()
            return lambda a: not inner(a)
        return self.primary()

    def key(self) -> str:
        tok = self.peek()
        if tok is not None and tok[0] in {"word", "str"}:
            self.i += 1
            return tok[1]
        raise invalid(f"Invalid filter: expected an attribute key in {self.text!r}")

    def primary(self) -> Predicate:
        if self.at("op", "("):
            self.i += 1
            inner = self.expr()
            self.take("op", ")")
            return inner
        if self.at("word", "hasPrefix"):
            self.i += 1
            self.take("op", "(")
            self.take("word", "attributes")
            self.take("op", ".")
            key = self.key()
            self.take("op", ",")
            prefix = self.take("str")
            self.take("op", ")")
            return lambda a: key in a and a[key].startswith(prefix)
        self.take("word", "attributes")
        if self.at("op", ":"):
            self.i += 1
            key = self.key()
            return lambda a: key in a
        self.take("op", ".")
        key = self.key()
        tok = self.peek()
        if tok is None or tok not in {("op", "="), ("op", "!=")}:
            raise invalid(f"Invalid filter: expected = or != after attributes.{key} in {self.text!r}")
        self.i += 1
        value = self.take("str")
        if tok[1] == "=":
            return lambda a: a.get(key) == value
        return lambda a: a.get(key) != value


def compile_filter(text: str) -> Predicate | None:
    """The predicate for a filter, None for the empty filter; INVALID_ARGUMENT naming the problem."""
    if not text or not text.strip():
        return None
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise invalid(f"Invalid filter: longer than {MAX_FILTER_BYTES} bytes")
    parser = _Parser(text)
    predicate = parser.expr()
    if parser.peek() is not None:
        raise invalid(f"Invalid filter: unexpected {parser.peek()[1]!r} in {text!r}")  # type: ignore[index]
    return predicate
