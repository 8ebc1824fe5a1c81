"""TLS for the SQL endpoint: a given certificate and key, or a self-signed one made at start.

The self-signed certificate (ECDSA P-256, valid one year, for ``localhost``, the loopback
addresses and the bind host) is written to ``<data_root>/_sql_endpoint/tls/`` (key mode
0600) so a client can verify the server against it: ``sslmode=verify-full
sslrootcert=<that file>``.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from lakehouse.core.errors import LakehouseError

TLS_HANDSHAKE_TIMEOUT_S = 30.0


class TlsError(LakehouseError):
    """The certificate or key cannot be used."""


@dataclass(frozen=True)
class SqlTls:
    """The server's certificate chain and key (PEM files); both None: self-signed at start."""

    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def self_signed(self) -> bool:
        return self.cert_file is None

    def server_context(self, directory: Path, host: str) -> tuple[ssl.SSLContext, Path]:
        """A server-side context (TLS 1.2+) and the certificate file clients may trust."""
        cert, key = self.cert_file, self.key_file
        if cert is None or key is None:
            if cert is not None or key is not None:
                raise TlsError("give both a TLS certificate and its key, or neither")
            cert, key = write_self_signed(directory, host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load TLS certificate {cert} with key {key}: {exc}") from None
        return context, Path(cert)


def _names(host: str) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses the certificate is for."""
    dns, ips = ["localhost"], ["127.0.0.1", "::1"]
    for name in {host, socket.gethostname()} - {"", "0.0.0.0", "::"}:
        try:
            ipaddress.ip_address(name)
            ips.append(name)
        except ValueError:
            dns.append(name)
    return sorted(set(dns)), sorted(set(ips))


def write_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A new self-signed certificate and key under ``directory``: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = _names(host)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lakehouse sql endpoint")])
    now = dt.datetime.now(dt.UTC)
    alt = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def start_tls(
    sock: socket.socket, rfile: io.BufferedReader, wfile: io.BufferedIOBase, context: ssl.SSLContext
) -> ssl.SSLSocket:
    """Answer an SSLRequest with 'S' and do the server side of the TLS handshake.

    Bytes that came with the SSLRequest would pass as sent over TLS (CVE-2021-23214): the
    connection is dropped instead. Failures raise :class:`ConnectionError`.
    """
    sock.setblocking(False)
    try:
        pending = rfile.peek(1)
    except BlockingIOError:
        pending = b""
    finally:
        sock.setblocking(True)
    if pending:
        raise ConnectionError("data after SSLRequest before the TLS handshake")
    wfile.write(b"S")
    wfile.flush()
    sock.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
    try:
        wrapped = context.wrap_socket(sock, server_side=True)
    except (ssl.SSLError, OSError) as exc:  # not a TLS client, a bad certificate...
        raise ConnectionError(f"TLS handshake failed: {exc}") from exc
    wrapped.settimeout(None)
    return wrapped
