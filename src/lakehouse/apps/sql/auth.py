"""Who may log in to the SQL endpoint, and the password exchanges that prove it.

A logins file names the principals that may connect and how each proves who it is::

    logins:
      bi-reader: {env: BI_READER_SECRET}        # the secret from an environment variable
      carol: {token_file: /run/secrets/carol}   # ... from a file (mode 0600)
      alice: {scram: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"}  # a verifier
      ci-bot: {secret: "s3cret"}                # inline (the file is 0600)

``scram`` is PostgreSQL's ``pg_authid.rolpassword`` format (``lakehouse sql verifier``
prints one), so an administrator can keep verifiers rather than secrets. Every secret
becomes such a verifier at load; the endpoint keeps no plaintext.

The exchange is SCRAM-SHA-256 (RFC 7677, PostgreSQL's ``AuthenticationSASL``) done with
``scramp``; cleartext ``AuthenticationCleartextPassword`` is for TLS connections of clients
that cannot do SCRAM. A user without a login gets the SCRAM exchange with a mock verifier
(PostgreSQL does the same), so "unknown user" and "wrong password" fail alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, model_validator
from scramp import ScramException, ScramMechanism

from lakehouse.config.base import StrictModel
from lakehouse.config.loader import validate
from lakehouse.core.errors import ConfigError

if TYPE_CHECKING:
    from lakehouse.config.project import Project

SCRAM_SHA_256 = "SCRAM-SHA-256"
ITERATIONS = 4096  # PostgreSQL's scram_iterations default (and scramp's minimum)
AuthMethod = Literal["scram-sha-256", "password"]
AUTH_OK, AUTH_CLEARTEXT, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 3, 10, 11, 12


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, repr=False)
class ScramVerifier:
    """A SCRAM-SHA-256 verifier: what the server keeps instead of the secret."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_secret(
        cls, secret: str, iterations: int = ITERATIONS, salt: bytes | None = None
    ) -> ScramVerifier:
        """The verifier of ``secret`` (a new random salt unless one is given)."""
        mech = ScramMechanism(SCRAM_SHA_256)
        salt_, stored, server, i = mech.make_auth_info(
            secret, iteration_count=iterations, salt=salt
        )
        return cls(i, salt_, stored, server)

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64 parts)."""
        try:
            mechanism, params, keys = text.strip().split("$")
            iterations, salt = params.split(":")
            stored, server = keys.split(":")
            if mechanism != SCRAM_SHA_256:
                raise ValueError(mechanism)
            out = cls(
                int(iterations),
                base64.b64decode(salt, validate=True),
                base64.b64decode(stored, validate=True),
                base64.b64decode(server, validate=True),
            )
        except ValueError:
            raise ValueError(
                "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> "
                "(base64 parts; `lakehouse sql verifier` prints one)"
            ) from None
        if out.iterations < ITERATIONS or len(out.salt) < 12:
            raise ValueError(f"needs >= {ITERATIONS} iterations and a salt of >= 12 bytes")
        if len(out.stored_key) != 32 or len(out.server_key) != 32:
            raise ValueError("StoredKey and ServerKey must be 32 bytes (SHA-256)")
        return out

    def __str__(self) -> str:
        return (
            f"{SCRAM_SHA_256}${self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    def __repr__(self) -> str:
        return f"ScramVerifier(iterations={self.iterations}, ...)"

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is the one this verifier was made from (constant-time compare)."""
        try:
            given = ScramVerifier.from_secret(secret, self.iterations, self.salt)
        except ScramException:  # not SASLprep-able: cannot be the secret
            return False
        return hmac.compare_digest(given.stored_key, self.stored_key)

    def auth_info(self) -> tuple[bytes, bytes, bytes, int]:
        """What scramp's ``auth_fn`` returns."""
        return self.salt, self.stored_key, self.server_key, self.iterations


class Login(StrictModel):
    """How one principal proves who it is: exactly one of the four keys."""

    secret: str | None = Field(default=None, min_length=1)
    env: str | None = Field(default=None, min_length=1, description="environment variable")
    token_file: str | None = Field(default=None, min_length=1, description="file, mode 0600")
    scram: str | None = Field(default=None, description="SCRAM-SHA-256$... verifier")

    @model_validator(mode="after")
    def _exactly_one(self) -> Login:
        given = [k for k in ("secret", "env", "token_file", "scram") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of secret, env, token_file, scram")
        return self


class LoginsFile(StrictModel):
    logins: dict[str, Login] = Field(min_length=1)


def _check_private(path: Path, file: str, key: str) -> None:
    """Group and other may not read ``path`` (like ssh keys and libpq's ~/.pgpass)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            file,
            key,
            f"{path} is mode {stat.S_IMODE(mode):04o}: group and other may not read it "
            f"(chmod 600 {path})",
        )


def _verifier(login: Login, file: str, key: str, base: Path) -> ScramVerifier:
    if login.scram is not None:
        try:
            return ScramVerifier.parse(login.scram)
        except ValueError as exc:
            raise ConfigError(file, f"{key}.scram", str(exc)) from None
    if login.env is not None:
        secret = os.environ.get(login.env)
        if not secret:
            raise ConfigError(file, f"{key}.env", f"environment variable {login.env} is not set")
    elif login.token_file is not None:
        token = Path(login.token_file).expanduser()
        token = token if token.is_absolute() else base / token
        try:
            _check_private(token, file, f"{key}.token_file")
            secret = token.read_text().strip()
        except OSError as exc:
            raise ConfigError(file, f"{key}.token_file", f"unreadable: {exc}") from None
        if not secret:
            raise ConfigError(file, f"{key}.token_file", f"{token} is empty")
    else:
        secret = login.secret or ""
    try:
        return ScramVerifier.from_secret(secret)
    except ScramException as exc:
        raise ConfigError(file, key, f"unusable secret ({exc})") from None


@dataclass(frozen=True)
class SqlLogins:
    """The principals that may log in to the endpoint, each with its SCRAM verifier."""

    verifiers: dict[str, ScramVerifier]
    source: str = ""

    @property
    def principals(self) -> list[str]:
        return sorted(self.verifiers)

    @classmethod
    def load(cls, project: Project, path: str | Path) -> SqlLogins:
        """Read a logins file (mode 0600); principals must be catalog users or services."""
        path = Path(path)
        file = str(path)
        try:
            _check_private(path, file, "")
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(file, "", f"unreadable: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(file, "", f"not valid YAML: {exc}") from None
        spec: LoginsFile = validate(LoginsFile, data, file)
        known = project.catalog.principals
        principals = {*known.users, *known.service_principals}
        verifiers: dict[str, ScramVerifier] = {}
        for name, login in spec.logins.items():
            key = f"logins.{name}"
            if name not in principals:
                raise ConfigError(
                    file,
                    key,
                    f"{name} is not a user or service principal of catalog "
                    f"{project.catalog.name} (known: {', '.join(sorted(principals))})",
                )
            verifiers[name] = _verifier(login, file, key, path.parent)
        return cls(verifiers, file)

    @classmethod
    def of_secrets(cls, secrets_by_principal: dict[str, str]) -> SqlLogins:
        """Logins from secrets in memory (tests, embedding); no catalog check."""
        return cls({p: ScramVerifier.from_secret(s) for p, s in secrets_by_principal.items()})


# ---------------------------------------------------------------- the exchanges

Send = Callable[[bytes, bytes], None]  # (message type, payload): written and flushed
Receive = Callable[[], tuple[bytes, bytes]]  # the next message: (type, body)


class AuthFailedError(Exception):
    """The client did not prove it is the user (answered with 28P01)."""


class Authenticator:
    """Checks a connecting user against the logins: SCRAM-SHA-256 or cleartext password."""

    def __init__(self, logins: SqlLogins, method: AuthMethod = "scram-sha-256") -> None:
        self.logins = logins
        self.method = method
        self._mechanism = ScramMechanism(SCRAM_SHA_256)
        self._mock_nonce = secrets.token_bytes(32)  # per server, like PostgreSQL's mock nonce

    def _verifier(self, user: str) -> ScramVerifier | None:
        return self.logins.verifiers.get(user)

    def _mock(self, user: str) -> ScramVerifier:
        """A stable verifier no secret matches, so unknown users look like known ones."""
        digest = hmac.new(self._mock_nonce, user.encode(), hashlib.sha256).digest()
        return ScramVerifier(ITERATIONS, digest[:16], secrets.token_bytes(32), digest)

    def refusal(self, tls: bool) -> str | None:
        """Why a connection cannot log in at all (cleartext without TLS), or None."""
        if self.method == "password" and not tls:
            return (
                "this endpoint takes passwords over TLS only: connect with sslmode=require "
                "(or verify-full)"
            )
        return None

    def authenticate(self, user: str, send: Send, receive: Receive) -> None:
        """Run the exchange for ``user``; raise :class:`AuthFailedError` when it does not prove it."""
        if self.method == "password":
            self._cleartext(user, send, receive)
        else:
            self._scram(user, send, receive)

    def _cleartext(self, user: str, send: Send, receive: Receive) -> None:
        send(b"R", struct.pack("!i", AUTH_CLEARTEXT))
        kind, body = receive()
        verifier = self._verifier(user)
        given = body.rstrip(b"\x00").decode(errors="replace")
        ok = (verifier or self._mock(user)).matches(given)
        if kind != b"p" or verifier is None or not ok:
            raise AuthFailedError(user)

    def _scram(self, user: str, send: Send, receive: Receive) -> None:
        verifier = self._verifier(user) or self._mock(user)
        # the SCRAM user name is ignored (libpq sends none): the startup user is the one
        server = self._mechanism.make_server(lambda _name: verifier.auth_info())
        send(b"R", struct.pack("!i", AUTH_SASL) + SCRAM_SHA_256.encode() + b"\x00\x00")
        kind, body = receive()
        if kind != b"p":
            raise AuthFailedError(user)
        mechanism, _, rest = body.partition(b"\x00")
        if mechanism.decode(errors="replace") != SCRAM_SHA_256 or len(rest) < 4:
            raise AuthFailedError(user)
        size = struct.unpack("!i", rest[:4])[0]
        try:
            _client_first(server, rest[4 : 4 + size].decode())
            send(b"R", struct.pack("!i", AUTH_SASL_CONTINUE) + server.get_server_first().encode())
            kind, body = receive()
            if kind != b"p":
                raise AuthFailedError(user)
            server.set_client_final(body.decode())
        except (ScramException, UnicodeDecodeError):
            raise AuthFailedError(user) from None
        if self._verifier(user) is None:  # a mock cannot be proven, but be explicit
            raise AuthFailedError(user)
        send(b"R", struct.pack("!i", AUTH_SASL_FINAL) + server.get_server_final().encode())


def _client_first(server: Any, message: str) -> None:
    """Feed client-first to scramp, which refuses the empty user name libpq sends (``n=``).

    PostgreSQL ignores that name (the startup packet's is the one), so the message is parsed
    with ``n=*`` and the proofs are checked against the bare message the client really sent.
    """
    header, sep, bare = message.partition("n=,")
    if sep and header.count(",") == 2 and header.endswith(","):  # gs2 header, then "n=,"
        server.set_client_first(f"{header}n=*,{bare}")
        server.client_first_bare = f"n=,{bare}"  # scramp 1.5.0 keeps it under this name
    else:
        server.set_client_first(message)
