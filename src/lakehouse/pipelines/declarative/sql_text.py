"""The text layer of pipeline SQL files: statements, ``${key}`` substitution and a token cursor.

Statements are split on ``;`` outside strings, backticked names and comments (``--`` to the
end of the line, ``/* … */`` nested as in Spark). Comments are removed from the statement
text except optimizer hints (``/*+ … */``), which stay in queries. Tokens come from
sqlglot's Databricks tokenizer (strings arrive unescaped, with their offsets in the text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import Token, TokenType
from sqlglot.dialects.databricks import Databricks
from sqlglot.errors import TokenError

from lakehouse.core.errors import ConfigError

_DIALECT = Databricks()
_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD = re.compile(r"\w+\Z")
_VARIABLE = re.compile(r"\$\{([^{}]*)\}")
_CONF_PREFIXES = ("spark:", "sparkconf:", "hiveconf:", "hivevar:")
_QUOTED = (TokenType.STRING, TokenType.IDENTIFIER, TokenType.RAW_STRING)


@dataclass(frozen=True)
class Statement:
    """One statement: its text (comments removed, no ``;``) and the line it starts on."""

    text: str
    line: int


def split_statements(text: str) -> list[Statement]:
    """The statements of a SQL file, in order; empty statements are skipped."""
    statements: list[Statement] = []
    out: list[str] = []
    start_line: int | None = None
    line, i, n = 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "/" and text.startswith("/*", i) and not text.startswith("/*+", i):
            end = _block_comment_end(text, i)
            line += text.count("\n", i, end)
            out.append("\n" * text.count("\n", i, end) or " ")
            i = end
            continue
        if ch == ";":
            _emit(statements, out, start_line)
            out, start_line = [], None
            i += 1
            continue
        quoted = ch in "'\"`" or text.startswith("/*+", i)
        end = _quoted_end(text, i) if quoted else i + 1
        if start_line is None and not ch.isspace():
            start_line = line
        line += text.count("\n", i, end)
        out.append(text[i:end])
        i = end
    _emit(statements, out, start_line)
    return statements


def _emit(statements: list[Statement], out: list[str], start_line: int | None) -> None:
    body = "".join(out).strip()
    if body and start_line is not None:
        statements.append(Statement(body, start_line))


def _block_comment_end(text: str, i: int) -> int:
    """The index after the ``*/`` closing the (possibly nested) comment opened at ``i``."""
    depth, j = 0, i
    while j < len(text):
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(text)  # unterminated: runs to the end of the file, as in Spark


def _quoted_end(text: str, i: int) -> int:
    """The index after the string, backticked name or hint starting at ``i``."""
    if text.startswith("/*+", i):
        end = text.find("*/", i + 3)
        return len(text) if end < 0 else end + 2
    quote, j = text[i], i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and quote != "`":
            j += 2
            continue
        if ch == quote:
            if quote == "`" and text.startswith("``", j):
                j += 2
                continue
            return j + 1
        j += 1
    return len(text)


def substitute(statement: Statement, conf: Mapping[str, str], file: str) -> str:
    """The statement's text with every ``${key}`` replaced by its value in ``conf``.

    ``${spark:key}``, ``${sparkconf:key}``, ``${hiveconf:key}`` and ``${hivevar:key}`` read
    ``key``; an undefined key is an error naming the file and line (as on Databricks).
    """

    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key in conf:
            return conf[key]
        for prefix in _CONF_PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :] in conf:
                return conf[key[len(prefix) :]]
        raise ConfigError(
            file,
            f"line {statement.line}",
            f"${{{key}}} is not defined (set it in the pipeline's configuration or with SET)",
        )

    return _VARIABLE.sub(value, statement.text)


def tokenize(text: str, file: str, line: int) -> list[Token]:
    """sqlglot's Databricks tokens of ``text``; a tokenizer error names the file and line."""
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError:
        message = "cannot read the statement (an unterminated quote or backtick?)"
        raise ConfigError(file, f"line {line}", f"{message} in '{head(text)}'") from None
    return [part for token in tokens for part in _words(text, token)]


def _words(text: str, token: Token) -> list[Token]:
    """A multi-word keyword token (``PARTITIONED BY``) as one token per word."""
    if token.token_type in _QUOTED or not any(ch.isspace() for ch in token.text):
        return [token]
    source = text[token.start : token.end + 1]
    return [
        Token(
            TokenType.VAR,
            m.group(),
            token.line,
            token.col,
            token.start + m.start(),
            token.start + m.end() - 1,
        )
        for m in re.finditer(r"\S+", source)
    ]


def head(text: str, words: int = 6) -> str:
    """The first words of a statement, for error messages."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def render_part(token: Token) -> str:
    """One part of a name as Spark SQL reads it: bare if simple, else backticked."""
    text = token.text
    if token.token_type != TokenType.IDENTIFIER or _SIMPLE_NAME.match(text):
        return text
    return "`" + text.replace("`", "``") + "`"


class Cursor:
    """A position in the tokens of one statement, with the helpers the DDL parser needs."""

    def __init__(self, text: str, tokens: list[Token], file: str, line: int) -> None:
        self.text = text
        self.tokens = tokens
        self.file = file
        self.line = line
        self.i = 0

    def fail(self, message: str) -> ConfigError:
        """An error naming the file, the statement's line and its first words."""
        return ConfigError(self.file, f"line {self.line}", f"{message} in '{head(self.text)}'")

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, k: int = 0) -> str:
        """The upper-cased keyword at ``k`` tokens ahead ('' for strings, quoted names, end)."""
        token = self.peek(k)
        if token is None or token.token_type in _QUOTED:
            return ""
        return token.text.upper()

    def at(self, *words: str) -> bool:
        return all(self.word(k) == w for k, w in enumerate(words))

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            found = self.describe()
            raise self.fail(f"expected {' '.join(words)} but found {found}")

    def describe(self) -> str:
        token = self.peek()
        return "the end of the statement" if token is None else f"'{token.text}'"

    def is_name_part(self, k: int = 0) -> bool:
        token = self.peek(k)
        if token is None or token.token_type in (TokenType.STRING, TokenType.RAW_STRING):
            return False
        return token.token_type == TokenType.IDENTIFIER or bool(_WORD.match(token.text))

    def name_tokens(self, what: str) -> list[Token]:
        """The parts of a (possibly qualified) name, advancing past it."""
        if not self.is_name_part():
            raise self.fail(f"expected {what} but found {self.describe()}")
        parts = [self.tokens[self.i]]
        self.i += 1
        while self.word() == "." and self.is_name_part(1):
            parts.append(self.tokens[self.i + 1])
            self.i += 2
        return parts

    def name(self, what: str = "a name") -> str:
        """A qualified name as Spark SQL text; a leading legacy ``LIVE.`` is removed."""
        parts = self.name_tokens(what)
        first = parts[0]
        if (
            len(parts) > 1
            and first.token_type != TokenType.IDENTIFIER
            and first.text.upper() == "LIVE"
        ):
            parts = parts[1:]
        return ".".join(render_part(p) for p in parts)

    def ident(self, what: str = "a name") -> str:
        """One unqualified identifier, unquoted."""
        parts = self.name_tokens(what)
        if len(parts) != 1:
            raise self.fail(f"expected {what} without a qualifier")
        return parts[0].text

    def string(self, what: str = "a string") -> str:
        """A string literal (adjacent literals concatenated, as in Spark)."""
        token = self.peek()
        if token is None or token.token_type not in (TokenType.STRING, TokenType.RAW_STRING):
            raise self.fail(f"expected {what} but found {self.describe()}")
        parts = []
        while (tok := self.peek()) is not None and tok.token_type in (
            TokenType.STRING,
            TokenType.RAW_STRING,
        ):
            parts.append(tok.text)
            self.i += 1
        return "".join(parts)

    def group(self) -> tuple[int, int]:
        """At ``(``: the token range inside the parentheses, advancing past ``)``."""
        if self.word() != "(":
            raise self.fail(f"expected '(' but found {self.describe()}")
        depth, start = 0, self.i + 1
        while not self.done():
            w = self.word()
            depth += 1 if w == "(" else -1 if w == ")" else 0
            self.i += 1
            if depth == 0:
                return start, self.i - 1
        raise self.fail("unbalanced parentheses")

    def items(self, start: int, end: int) -> list[tuple[int, int]]:
        """The comma-separated token ranges of ``tokens[start:end]`` (top level only)."""
        ranges, depth, first = [], 0, start
        for j in range(start, end):
            w = "" if self.tokens[j].token_type in _QUOTED else self.tokens[j].text
            depth += 1 if w in ("(", "[") else -1 if w in (")", "]") else 0
            if w == "," and depth == 0:
                ranges.append((first, j))
                first = j + 1
        if first < end:
            ranges.append((first, end))
        return ranges

    def source(self, start: int, end: int) -> str:
        """The text of ``tokens[start:end]`` as written."""
        if start >= end:
            return ""
        return self.text[self.tokens[start].start : self.tokens[end - 1].end + 1].strip()

    def rest(self) -> str:
        """The text from the current token to the end of the statement."""
        token = self.peek()
        return "" if token is None else self.text[token.start :].strip()
