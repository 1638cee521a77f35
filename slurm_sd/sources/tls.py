"""
TLS to slurmrestd (``https://`` URLs, ``slurmrestd.tls``): the client connection
creator built from the configured files, and one line for a handshake that failed.

Every file problem is a :class:`~slurm_sd.errors.ConfigError` naming the key, so
that start-up (and a reload) stops with one line.
"""
import re
from urllib.parse import urlsplit

from OpenSSL import SSL, crypto
from twisted.internet import ssl

from slurm_sd.errors import ConfigError
from slurm_sd.secretfiles import ModeWarner

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


def client_tls_options(slurm, source, prefix=""):
    """
    The ``IOpenSSLClientConnectionCreator`` for ``slurm.url``: slurmrestd's
    certificate checked against ``tls.ca_file`` (else the system trust store) for
    ``tls.server_name`` (else the URL's host), and the client certificate if set.

    :param slurm: the :class:`~slurm_sd.config.model.SlurmrestdConfig`.
    :param source: the configuration file, named in errors.
    :param prefix: put before the key paths named (``clusters[1].``).
    :raises ConfigError: a file is missing, unreadable or not what its key says.
    """
    tls = slurm.tls
    host = urlsplit(slurm.url).hostname
    if tls is None:
        return ssl.optionsForClientTLS(host)
    trust = None
    if tls.ca_file is not None:
        trust = ssl.trustRootFromCertificates(
            _certificates(tls.ca_file, source, prefix + "slurmrestd.tls.ca_file"))
    client, chain = None, []
    if tls.cert_file is not None:
        client, chain = _client_certificate(tls, source, prefix + "slurmrestd.tls.")
    extra = {"extraCertChain": [c.original for c in chain]} if chain else None
    return ssl.optionsForClientTLS(tls.server_name or host, trustRoot=trust,
                                   clientCertificate=client,
                                   extraCertificateOptions=extra)


def _read(path, source, key):
    """The bytes of ``path``; a ConfigError naming ``key`` when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16 * 1024 * 1024)
    except OSError as error:
        raise ConfigError(source, key, f"cannot read {path}: {error.strerror}")


def _certificates(path, source, key):
    """Every PEM certificate in ``path``, at least one."""
    blocks = _PEM_CERTIFICATE.findall(_read(path, source, key))
    if not blocks:
        raise ConfigError(source, key, f"{path} holds no PEM certificate "
                                       f"(-----BEGIN CERTIFICATE-----)")
    try:
        return [ssl.Certificate.loadPEM(block) for block in blocks]
    except (crypto.Error, ValueError) as error:
        raise ConfigError(source, key, f"{path} holds a certificate that cannot be "
                                       f"read: {_openssl_text(error)}")


_key_modes = ModeWarner()


def _client_certificate(tls, source, keys):
    """
    The client certificate with its key, and any intermediates after it in cert_file.

    :param keys: the key path of the ``tls`` section, ending in a dot.
    """
    leaf, *chain = _certificates(tls.cert_file, source, keys + "cert_file")
    key_data = _read(tls.key_file, source, keys + "key_file")
    _key_modes.check(tls.key_file, keys + "key_file")
    try:
        key = ssl.KeyPair.load(key_data, crypto.FILETYPE_PEM)
    except (crypto.Error, ValueError, TypeError) as error:
        raise ConfigError(source, keys + "key_file",
                          f"{tls.key_file} holds no usable PEM private key (an encrypted "
                          f"key is not supported): {_openssl_text(error)}")
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    try:
        context.use_certificate(leaf.original)
        context.use_privatekey(key.original)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError(source, keys + "key_file",
                          f"{tls.key_file} is not the key of the certificate in "
                          f"{tls.cert_file}")
    return ssl.PrivateCertificate.fromCertificateAndKeyPair(leaf, key), chain


def _openssl_text(error):
    """An OpenSSL error list as a short phrase."""
    listed = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [str(part[-1]) for part in listed if isinstance(part, tuple) and part[-1:]]
    return "; ".join(r for r in reasons if r) or str(error) or type(error).__name__


def handshake_text(failure, where, slurm):
    """
    One line for a connection that failed in the TLS handshake, or None when
    ``failure`` is not that.

    :param where: slurmrestd's address for the line.
    """
    reasons = getattr(failure.value, "reasons", None) or [failure]
    for reason in reasons:
        text = _openssl_text(reason.value) if reason.check(SSL.Error) else ""
        if "certificate verify failed" in text:
            signer = ("slurmrestd.tls.ca_file " + slurm.tls.ca_file
                      if slurm.tls is not None and slurm.tls.ca_file
                      else "a CA of the system trust store (set slurmrestd.tls.ca_file "
                           "to slurmrestd's CA)")
            return (f"slurmrestd at {where}: its TLS certificate is not signed by "
                    f"{signer} ({text})")
        if reason.type.__name__ == "VerificationError":   # service_identity's
            name = (slurm.tls.server_name if slurm.tls is not None and slurm.tls.server_name
                    else urlsplit(slurm.url).hostname)
            return (f"slurmrestd at {where}: its TLS certificate is not for {name} (set "
                    f"slurmrestd.tls.server_name to a name it is for)")
        if "certificate required" in text:
            return (f"TLS handshake with slurmrestd at {where} failed: {text} (slurmrestd "
                    f"wants a client certificate: set slurmrestd.tls.cert_file and key_file)")
        if text:
            return f"TLS handshake with slurmrestd at {where} failed: {text}"
    return None
