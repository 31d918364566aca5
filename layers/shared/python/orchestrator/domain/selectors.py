"""Label selectors (SPEC §7): parse ``env=prod,tier in (a,b),!draining`` and match node labels.

Grammar (comma means AND; whitespace around tokens is ignored)::

    selector    := requirement ("," requirement)*
    requirement := "!" key
                 | key [ ("=" | "==" | "!=") value | ("in" | "notin") "(" value ("," value)* ")" ]
    key, value  := [A-Za-z0-9._/-]{1,63}

Every syntax error raises :class:`~orchestrator.errors.MalformedSelector` carrying the
0-based position of the offending character (``len(text)`` for an unexpected end).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto

from orchestrator.errors import MalformedSelector

MAX_SELECTOR_LENGTH = 256
MAX_REQUIREMENTS = 64
MAX_TOKEN_LENGTH = 63

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "._/-")
_WHITESPACE = frozenset(" \t\r\n")
_SET_KEYWORDS = {"in", "notin"}


class Operator(Enum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"


# Operators that need the key present with one of the values; their negations also match an absent key.
_POSITIVE = {Operator.EQUALS, Operator.IN}
_NEGATIVE = {Operator.NOT_EQUALS, Operator.NOT_IN}


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a selector."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        single = self.operator in {Operator.EQUALS, Operator.NOT_EQUALS}
        needs_values = self.operator in _POSITIVE | _NEGATIVE
        if (single and len(self.values) != 1) or (needs_values != bool(self.values)):
            raise ValueError(f"{self.operator.name} takes {'one value' if single else 'values'}: {self.values!r}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this term (Kubernetes semantics for absent keys)."""
        present = self.key in labels
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.NOT_EXISTS:
            return not present
        hit = present and labels[self.key] in self.values
        return hit if self.operator in _POSITIVE else not hit

    def __str__(self) -> str:
        values = ",".join(sorted(self.values))
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.NOT_EXISTS:
            return f"!{self.key}"
        if self.operator in {Operator.IN, Operator.NOT_IN}:
            return f"{self.key} {self.operator.value} ({values})"
        return f"{self.key}{self.operator.value}{values}"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements, in the order they were written."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        """Canonical form: requirements as written, ``=`` for ``==``, sets sorted; parses back to an equal selector."""
        return ",".join(str(requirement) for requirement in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse a selector string; raise :class:`MalformedSelector` (with the position) on any error.

    An empty or blank string is malformed: a selector must select on something.
    """
    if len(text) > MAX_SELECTOR_LENGTH:
        raise MalformedSelector(
            f"expected at most {MAX_SELECTOR_LENGTH} characters at position {MAX_SELECTOR_LENGTH}",
            position=MAX_SELECTOR_LENGTH,
        )
    return _Parser(text).selector()


# Lexer -------------------------------------------------------------------------------------------
class _Kind(Enum):
    WORD = auto()
    EQUALS = auto()
    NOT_EQUALS = auto()
    BANG = auto()
    OPEN = auto()
    CLOSE = auto()
    COMMA = auto()
    END = auto()
    INVALID = auto()


_PUNCTUATION = {"!": _Kind.BANG, "(": _Kind.OPEN, ")": _Kind.CLOSE, ",": _Kind.COMMA}


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    position: int

    def describe(self) -> str:
        return "end of input" if self.kind is _Kind.END else repr(self.text)


class _Lexer:
    """Turns the text into tokens on demand, so the first error in reading order is the one reported."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0
        self._peeked: _Token | None = None

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> _Token:
        token = self.peek()
        self._peeked = None
        return token

    def _scan(self) -> _Token:
        text = self._text
        while self._position < len(text) and text[self._position] in _WHITESPACE:
            self._position += 1
        start = self._position
        if start == len(text):
            return _Token(_Kind.END, "", start)
        char = text[start]
        if char in _TOKEN_CHARS:
            end = start + 1
            while end < len(text) and text[end] in _TOKEN_CHARS:
                end += 1
            return self._emit(_Kind.WORD, end)
        if char == "=":  # "=" and "==" are the same operator
            return self._emit(_Kind.EQUALS, start + (2 if text.startswith("==", start) else 1))
        if text.startswith("!=", start):
            return self._emit(_Kind.NOT_EQUALS, start + 2)
        return self._emit(_PUNCTUATION.get(char, _Kind.INVALID), start + 1)

    def _emit(self, kind: _Kind, end: int) -> _Token:
        token = _Token(kind, self._text[self._position : end], self._position)
        self._position = end
        return token


# Parser ------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str) -> None:
        self._lexer = _Lexer(text)

    def selector(self) -> Selector:
        requirements = [self._requirement()]
        while self._accept(_Kind.COMMA):
            if len(requirements) == MAX_REQUIREMENTS:
                position = self._lexer.peek().position
                raise MalformedSelector(
                    f"expected at most {MAX_REQUIREMENTS} requirements at position {position}", position=position
                )
            requirements.append(self._requirement())
        self._expect(_Kind.END, "',' or end of input")
        return Selector(tuple(requirements))

    def _requirement(self) -> Requirement:
        if self._accept(_Kind.BANG):
            return Requirement(self._word("a label key"), Operator.NOT_EXISTS)
        key = self._word("a label key", "a label key or '!'")
        token = self._lexer.peek()
        if token.kind in {_Kind.EQUALS, _Kind.NOT_EQUALS}:
            self._lexer.next()
            operator = Operator.EQUALS if token.kind is _Kind.EQUALS else Operator.NOT_EQUALS
            return Requirement(key, operator, frozenset({self._word("a label value")}))
        if token.kind is _Kind.WORD and token.text in _SET_KEYWORDS:
            self._lexer.next()
            return Requirement(key, Operator(token.text), self._value_set())
        if token.kind in {_Kind.COMMA, _Kind.END}:
            return Requirement(key, Operator.EXISTS)
        raise _unexpected("an operator ('=', '==', '!=', 'in', 'notin'), ',' or end of input", token)

    def _value_set(self) -> frozenset[str]:
        self._expect(_Kind.OPEN, "'('")
        values = {self._word("a label value")}
        while self._accept(_Kind.COMMA):
            values.add(self._word("a label value"))
        self._expect(_Kind.CLOSE, "',' or ')'")
        return frozenset(values)

    def _word(self, noun: str, expected: str | None = None) -> str:
        token = self._lexer.next()
        if token.kind is not _Kind.WORD:
            raise _unexpected(expected or noun, token)
        if len(token.text) > MAX_TOKEN_LENGTH:
            position = token.position + MAX_TOKEN_LENGTH
            raise MalformedSelector(
                f"expected {noun} of at most {MAX_TOKEN_LENGTH} characters at position {position}",
                position=position,
            )
        return token.text

    def _accept(self, kind: _Kind) -> bool:
        if self._lexer.peek().kind is kind:
            self._lexer.next()
            return True
        return False

    def _expect(self, kind: _Kind, expected: str) -> None:
        token = self._lexer.next()
        if token.kind is not kind:
            raise _unexpected(expected, token)


def _unexpected(expected: str, token: _Token) -> MalformedSelector:
    return MalformedSelector(
        f"expected {expected} at position {token.position}, found {token.describe()}", position=token.position
    )
