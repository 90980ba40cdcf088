"""Certificates made at test time (Python's `cryptography`): a CA, and server or client certificates it signs,
valid now, expired, or from another CA. Nothing is committed."""
import datetime
import ipaddress
import pathlib
import socket
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, cert, key):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    crt = path.with_suffix(".crt")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return crt, key_path


class Authority:
    """A CA whose certificate is at `<path>.crt`."""

    def __init__(self, path, cn="test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.crt, _ = _write(path, self.cert, self.key)

    def issue(self, path, cn, server=True, expired=False):
        """A leaf certificate for `cn` (a server one names 127.0.0.1, localhost, and the headless Service that
        deploy/k8s's Envoy config verifies); returns (crt, key) paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)) if expired else \
            (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.DNSName("inference-server-headless"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return _write(path, builder.sign(self.key, hashes.SHA256()), key)


def common_name(der):
    """The subject CN of a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def peer_certificate_cn(port, alpn):
    """The common name of the certificate a new TLS connection to 127.0.0.1:`port`, offering ALPN `alpn`, is given
    (not verified: this asks what the server presents)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        return common_name(tls.getpeercert(binary_form=True))


def make_pki(d):
    """A CA and the certificates the TLS tests use: a server one, client ones (valid, expired, from another CA)."""
    ca, other = Authority(d / "ca"), Authority(d / "other-ca", cn="another CA")
    return {
        "dir": d, "ca": ca.crt, "other_ca": other.crt, "authority": ca,
        "server": ca.issue(d / "server", "server-1"),
        "client": ca.issue(d / "client", "client-1", server=False),
        "expired_client": ca.issue(d / "expired-client", "old-client", server=False, expired=True),
        "stranger": other.issue(d / "stranger", "stranger", server=False),
    }


class SecretVolume:
    """A directory laid out as Kubernetes mounts a Secret: each key a symlink `name -> ..data/name`, `..data` a
    symlink to a timestamped directory. publish() writes a new directory and swaps `..data` atomically, which is
    how an updated Secret reaches a running pod."""

    def __init__(self, path, names):
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True)
        self.names = names
        self.version = 0

    def publish(self, contents):
        """`contents`: {name: bytes or a path whose bytes to copy}."""
        self.version += 1
        d = self.path / f"..{self.version}"
        d.mkdir()
        for name, value in contents.items():
            (d / name).write_bytes(value if isinstance(value, bytes) else pathlib.Path(value).read_bytes())
        tmp = self.path / "..data_tmp"
        tmp.symlink_to(d.name)
        tmp.replace(self.path / "..data")
        for name in self.names:
            if not (self.path / name).is_symlink():
                (self.path / name).symlink_to(f"..data/{name}")

    def __truediv__(self, name):
        return self.path / name


def rotation_under_load(pki, tmp_path, start, request, port_of, alpn):
    """Serves a certificate from a Kubernetes-style Secret volume, then, while two clients send requests (one on a
    connection it keeps, one on a new connection each time), publishes a new certificate and waits until a new
    connection is given it. `start(cert, key)` starts the server; `request(server, fresh)` sends one request
    (`fresh`: on a new connection); `port_of(server)` is the TLS port. Returns (failures, answers)."""
    from conftest import wait_for

    secret = SecretVolume(tmp_path / "secret", ["tls.crt", "tls.key"])

    def publish(cn):
        crt, key = pki["authority"].issue(tmp_path / cn, cn)
        secret.publish({"tls.crt": crt, "tls.key": key})

    publish("server-1")
    server = start(secret / "tls.crt", secret / "tls.key")
    assert peer_certificate_cn(port_of(server), alpn) == "server-1"
    failures, answers, stop = [], [0], threading.Event()

    def load(fresh):
        while not stop.is_set():
            try:
                request(server, fresh)
                answers[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))

    threads = [threading.Thread(target=load, args=(fresh,)) for fresh in (False, True)]
    for t in threads:
        t.start()
    time.sleep(1)
    publish("server-2")
    try:
        wait_for(lambda: peer_certificate_cn(port_of(server), alpn) == "server-2", timeout=15,
                 what="the new certificate")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return server, failures, answers[0]
