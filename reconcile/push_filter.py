"""SCIM `filter` query parameters (RFC 7644 §3.4.2.2), the part Okta and Entra use: `eq`
comparisons joined by `and` / `or`, with parentheses. Pure.

`parse_filter(text, resource)` returns the filter in disjunctive normal form: a tuple of
alternatives, each a tuple of `(attribute, value)` equalities that must all hold. The
attributes are dirsync's own names for what it can look up by index: `email` (for
`userName`, `email`, `emails.value` and `emails[type eq "work"].value`), `external_id`,
`id`, `display_name`. Anything else is `Problem(400, invalidFilter)`.
"""

from __future__ import annotations

import re

from reconcile.push import Problem

Term = tuple[str, str]
Filter = tuple[tuple[Term, ...], ...]

_CORE = {"User": "urn:ietf:params:scim:schemas:core:2.0:user:", "Group": "urn:ietf:params:scim:schemas:core:2.0:group:"}
_ATTRIBUTES = {
    "User": {"username": "email", "email": "email", "emails": "email", "emails.value": "email",
             "email.value": "email", "externalid": "external_id", "id": "id", "displayname": "display_name"},
    "Group": {"displayname": "display_name", "externalid": "external_id", "id": "id"},
}
_TOKEN = re.compile(
    r'\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<string>"(?:[^"\\]|\\.)*")'
    r'|(?P<word>[A-Za-z0-9_:.$-]+(?:\[[^\]]*\])?(?:\.[A-Za-z0-9_$]+)?))'
)
_MAX_TERMS = 64


def invalid(detail: str) -> Problem:
    return Problem(400, detail, "invalidFilter")


def parse_filter(text: str, resource: str) -> Filter:
    tokens = _tokens(text)
    parser = _Parser(tokens, resource)
    result = parser.expression()
    if parser.position != len(tokens):
        raise invalid(f"unexpected {tokens[parser.position][1]!r} in filter")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"cannot read the filter at {text[position:position + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match[kind]))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    if not out:
        raise invalid("the filter is empty")
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], resource: str) -> None:
        self.tokens = tokens
        self.position = 0
        self.resource = resource

    def peek_word(self) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].lower()
        return None

    def take(self, kind: str) -> str:
        if self.position >= len(self.tokens) or self.tokens[self.position][0] != kind:
            found = self.tokens[self.position][1] if self.position < len(self.tokens) else "the end"
            raise invalid(f"expected {kind} in filter, found {found!r}")
        self.position += 1
        return self.tokens[self.position - 1][1]

    def expression(self) -> Filter:
        result = self.conjunction()
        while self.peek_word() == "or":
            self.position += 1
            result = result + self.conjunction()
            if len(result) > _MAX_TERMS:
                raise invalid("the filter is too complex")
        return result

    def conjunction(self) -> Filter:
        result = self.factor()
        while self.peek_word() == "and":
            self.position += 1
            right = self.factor()
            result = tuple(a + b for a in result for b in right)
            if len(result) > _MAX_TERMS:
                raise invalid("the filter is too complex")
        return result

    def factor(self) -> Filter:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "lparen":
            self.position += 1
            inner = self.expression()
            self.take("rparen")
            return inner
        if self.peek_word() == "not":
            raise invalid("not(...) is not supported")
        attribute = self.attribute(self.take("word"))
        operator = self.take("word").lower()
        if operator != "eq":
            raise invalid(f"operator {operator!r} is not supported (only eq)")
        value = self.value()
        return (((attribute, value),),)

    def attribute(self, raw: str) -> str:
        name = raw.lower()
        prefix = _CORE[self.resource]
        if name.startswith(prefix):
            name = name[len(prefix):]
        bracket = re.fullmatch(r'emails\[\s*type\s+eq\s+"(?:work|primary|home|other)"\s*\](\.value)?', name)
        if self.resource == "User" and bracket:
            return "email"
        if name == "emails[primary eq true].value" and self.resource == "User":
            return "email"
        found = _ATTRIBUTES[self.resource].get(name)
        if found is None:
            raise invalid(f"filtering on {raw!r} is not supported")
        return found

    def value(self) -> str:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "string":
            raw = self.take("string")[1:-1]
            return re.sub(r'\\(.)', r'\1', raw)
        raise invalid("the value of a comparison must be a quoted string")
