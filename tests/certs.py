"""Test certificates made on the spot with ``cryptography``: a CA, a server, clients."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The names the server certificate is good for (loopback only).
SERVER_NAMES = ("localhost", "127.0.0.1")


def _name(common_name):
    """An X.509 name with just a common name."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key):
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sans(names):
    """DNS names and IP addresses as a SubjectAlternativeName extension."""
    general = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


class Authority:
    """A certificate authority that signs server and client certificates."""

    def __init__(self, name="slurm-sd test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True,
                                         False, False), critical=True)
            .sign(self.key, hashes.SHA256()))

    @property
    def pem(self):
        """The CA certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name, names, usage):
        """``(certificate PEM, key PEM)`` for ``names``; ``usage`` is server or client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        purpose = (ExtendedKeyUsageOID.SERVER_AUTH if usage == "server"
                   else ExtendedKeyUsageOID.CLIENT_AUTH)
        certificate = (
            x509.CertificateBuilder().subject_name(_name(common_name))
            .issuer_name(self.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(_sans(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .sign(self.key, hashes.SHA256()))
        return certificate.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write(directory, name, data, mode=0o600):
    """
    Write ``data`` (bytes) to ``directory/name`` with ``mode``; return the path.

    By rename, as certificate tools do: the new inode is seen as a change even
    when two writes fall within one tick of the file system's clock.
    """
    path = os.path.join(directory, name)
    with open(path + ".new", "wb") as handle:
        handle.write(data)
    os.chmod(path + ".new", mode)
    os.replace(path + ".new", path)
    return path


def make_set(directory):
    """
    Write a CA, a server certificate for the loopback names, a client certificate
    from that CA (SAN ``prometheus``) and one from another CA, into ``directory``.

    :return: ``{"ca", "server_cert", "server_key", "client_cert", "client_key",
        "stranger_cert", "stranger_key"}`` -> path.
    """
    ca, other = Authority(), Authority("someone else's CA")
    paths = {"ca": write(directory, "ca.pem", ca.pem, 0o644)}
    for prefix, authority, common_name, names, usage in (
            ("server", ca, "slurm-sd", SERVER_NAMES, "server"),
            ("client", ca, "prometheus", ("prometheus",), "client"),
            ("stranger", other, "stranger", ("stranger",), "client")):
        certificate, key = authority.issue(common_name, names, usage)
        paths[f"{prefix}_cert"] = write(directory, f"{prefix}.pem", certificate, 0o644)
        paths[f"{prefix}_key"] = write(directory, f"{prefix}-key.pem", key)
    return paths
