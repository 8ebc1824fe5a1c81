"""The SQL endpoint's logins file and SCRAM verifiers (no server, no engine)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from pathlib import Path

import pytest
from scramp import ScramClient

from lakehouse.apps.sql.auth import (
    Authenticator,
    AuthFailedError,
    ScramVerifier,
    SqlLogins,
)
from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError


@pytest.fixture()
def project(demo_project_dir: Path) -> Project:
    return load_project(demo_project_dir, var_overrides={"data_root": str(demo_project_dir / "d")})


def _logins_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "logins.yml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_verifier_is_postgresql_format_and_round_trips() -> None:
    salt = b"0123456789abcdef"
    verifier = ScramVerifier.from_secret("pencil", salt=salt)
    # RFC 7677 / PostgreSQL: SaltedPassword = PBKDF2-HMAC-SHA-256(secret, salt, 4096)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    expected = (
        f"SCRAM-SHA-256$4096:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"
    )
    assert str(verifier) == expected
    assert ScramVerifier.parse(expected) == verifier
    assert verifier.matches("pencil") is True
    assert verifier.matches("pencil ") is False
    assert "pencil" not in repr(verifier) and stored.hex() not in repr(verifier)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("md5abc", "expected SCRAM-SHA-256$<iterations>"),
        ("SCRAM-SHA-256$1000:MDEyMzQ1Njc4OWFiY2RlZg==$AAAA:AAAA", "needs >= 4096 iterations"),
        ("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$AAAA:AAAA", "must be 32 bytes"),
    ],
)
def test_bad_verifiers_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        ScramVerifier.parse(text)


def test_logins_file_with_every_kind_of_login(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAROL_SECRET", "carol-pw")
    token = tmp_path / "alice.token"
    token.write_text("alice-pw\n")
    token.chmod(0o600)
    verifier = ScramVerifier.from_secret("bob-pw")
    path = _logins_file(
        tmp_path,
        "logins:\n"
        "  bi-reader: {secret: bi-pw}\n"
        "  carol: {env: CAROL_SECRET}\n"
        f"  alice: {{token_file: {token.name}}}\n"
        f'  bob: {{scram: "{verifier}"}}\n',
    )
    logins = SqlLogins.load(project, path)
    assert logins.principals == ["alice", "bi-reader", "bob", "carol"]
    secrets = {"alice": "alice-pw", "bi-reader": "bi-pw", "bob": "bob-pw", "carol": "carol-pw"}
    for principal, secret in secrets.items():
        assert logins.verifiers[principal].matches(secret) is True
        assert logins.verifiers[principal].matches(secret + "x") is False
    assert logins.verifiers["bob"] == verifier


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("logins:\n  mallory: {secret: x}\n", "logins.mallory", "is not a user or service"),
        ("logins:\n  carol: {env: NO_SUCH_VARIABLE_I22}\n", "logins.carol.env", "is not set"),
        (
            "logins:\n  carol: {token_file: missing.token}\n",
            "logins.carol.token_file",
            "unreadable",
        ),
        ("logins:\n  carol: {secret: a, env: B}\n", "logins.carol", "exactly one of"),
        ("logins:\n  carol: {password: a}\n", "logins.carol.password", ""),
        ('logins:\n  carol: {scram: "md5x"}\n', "logins.carol.scram", "expected SCRAM-SHA-256"),
    ],
)
def test_logins_file_errors_name_file_and_key(
    project: Project, tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = _logins_file(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        SqlLogins.load(project, path)
    assert raised.value.file == str(path)
    assert raised.value.key == key
    assert message in raised.value.message


def test_logins_file_and_token_file_must_be_private(project: Project, tmp_path: Path) -> None:
    path = _logins_file(tmp_path, "logins:\n  carol: {secret: x}\n", mode=0o644)
    with pytest.raises(ConfigError, match=r"is mode 0644: group and other may not read it"):
        SqlLogins.load(project, path)
    token = tmp_path / "carol.token"
    token.write_text("x")
    token.chmod(0o640)
    path = _logins_file(tmp_path, f"logins:\n  carol: {{token_file: {token}}}\n")
    with pytest.raises(ConfigError) as raised:
        SqlLogins.load(project, path)
    assert (raised.value.key, "mode 0640" in raised.value.message) == (
        "logins.carol.token_file",
        True,
    )


class _Client:
    """A SCRAM client over the authenticator's send/receive callables, in-process."""

    def __init__(self, user: str, password: str) -> None:
        self.scram = ScramClient(["SCRAM-SHA-256"], user, password)
        self.sent: list[tuple[bytes, bytes]] = []
        self.step = 0

    def send(self, kind: bytes, payload: bytes) -> None:
        self.sent.append((kind, payload))

    def receive(self) -> tuple[bytes, bytes]:
        self.step += 1
        if self.step == 1:
            first = self.scram.get_client_first().encode()
            return b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first
        self.scram.set_server_first(self.sent[-1][1][4:].decode())
        return b"p", self.scram.get_client_final().encode()


def test_scram_exchange_and_mock_for_unknown_users() -> None:
    auth = Authenticator(SqlLogins.of_secrets({"carol": "pw"}))
    client = _Client("carol", "pw")
    auth.authenticate("carol", client.send, client.receive)
    codes = [struct.unpack("!i", payload[:4])[0] for _, payload in client.sent]
    assert codes == [10, 11, 12]
    assert client.sent[0][1][4:] == b"SCRAM-SHA-256\x00\x00"
    client.scram.set_server_final(client.sent[-1][1][4:].decode())  # the server proved itself
    for user, password in (("carol", "wrong"), ("nobody", "pw")):
        client = _Client(user, password)
        with pytest.raises(AuthFailedError):
            auth.authenticate(user, client.send, client.receive)
        # the unknown user got as far as the known one: a salt and nonce, then the failure
        assert [struct.unpack("!i", p[:4])[0] for _, p in client.sent] == [10, 11]
    salts = set()
    for _ in range(2):  # the mock is stable per user, as a real verifier would be
        client = _Client("nobody", "pw")
        with pytest.raises(AuthFailedError):
            auth.authenticate("nobody", client.send, client.receive)
        salts.add(client.sent[1][1][4:].decode().split(",")[1])
    assert len(salts) == 1


def test_cleartext_password_method() -> None:
    auth = Authenticator(SqlLogins.of_secrets({"carol": "pw"}), "password")
    sent: list[tuple[bytes, bytes]] = []
    auth.authenticate("carol", lambda k, p: sent.append((k, p)), lambda: (b"p", b"pw\x00"))
    assert sent == [(b"R", struct.pack("!i", 3))]
    for user, given in (("carol", b"nope\x00"), ("nobody", b"pw\x00")):
        with pytest.raises(AuthFailedError):
            auth.authenticate(user, lambda k, p: None, lambda g=given: (b"p", g))
