"""
TLS for the web server from a ``tls_server_config``: a pyOpenSSL context, and
the connection creator that Twisted's TLS wrapper asks for each connection.

:class:`ServerTLS` asks for the context at every handshake, so a context
rebuilt after the files changed (:mod:`slurm_sd.web.webfiles`) is used from
the next connection on, as exporter-toolkit does.
"""
from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from slurm_sd.errors import ConfigError
from slurm_sd.web.webconfig import REQUIRING, VERIFYING

#: ``min_version`` / ``max_version`` names -> OpenSSL's protocol versions.
PROTOCOLS = {"TLS10": SSL.TLS1_VERSION, "TLS11": SSL.TLS1_1_VERSION,
             "TLS12": SSL.TLS1_2_VERSION, "TLS13": SSL.TLS1_3_VERSION}


def _reason(error):
    """An OpenSSL error as a few words (its reasons), on one line."""
    reasons = [entry[2] for entry in error.args[0] if isinstance(entry, tuple)
               and len(entry) == 3] if error.args and isinstance(error.args[0], list) else []
    return "; ".join(reasons) or " ".join(str(error).split()) or type(error).__name__


def _read(source, key, path):
    """The bytes of ``path``; a :class:`ConfigError` naming ``key`` when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError(source, key, f"cannot read {path}: {error.strerror}")


def _client_cas(source, path):
    """The CA certificates in ``path`` (PEM), as pyOpenSSL certificates."""
    key = "tls_server_config.client_ca_file"
    data = _read(source, key, path)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(source, key, f"{path} holds no PEM certificate")
    return [crypto.X509.from_cryptography(certificate) for certificate in certificates]


def _names(certificate):
    """The subject alternative names of a client certificate, as strings."""
    try:
        extension = certificate.to_cryptography().extensions.get_extension_for_class(
            x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {str(name.value) for name in extension.value}


def make_context(tls, source):
    """
    A server context for ``tls`` (a :class:`~slurm_sd.web.webconfig.TLSServerConfig`).

    :param source: the web configuration file, named in errors.
    :raises ConfigError: one line naming the key, when a file cannot be used.
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(PROTOCOLS[tls.min_version])
    context.set_max_proto_version(PROTOCOLS[tls.max_version])
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    # Resumed sessions with client certificates need a session id context.
    context.set_session_id(b"slurm-sd")
    for key, path, use in (("cert_file", tls.cert_file, context.use_certificate_chain_file),
                           ("key_file", tls.key_file, context.use_privatekey_file)):
        _read(source, f"tls_server_config.{key}", path)
        try:
            use(path)
        except SSL.Error as error:
            reason = _reason(error)
            if key == "key_file" and "mismatch" in reason:
                reason = f"it is not the key of {tls.cert_file}"
            raise ConfigError(source, f"tls_server_config.{key}", f"cannot use {path}: "
                                                                 f"{reason}")
    if tls.client_auth_type == "NoClientCert":
        return context
    mode = SSL.VERIFY_PEER
    if tls.client_auth_type in REQUIRING:
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    verifying = tls.client_auth_type in VERIFYING
    allowed = set(tls.client_allowed_sans)
    if verifying:
        cas = _client_cas(source, tls.client_ca_file)
        store = context.get_cert_store()
        for ca in cas:
            store.add_cert(ca)
        # Tell clients which CAs count, as Go's server does.
        context.set_client_ca_list([ca.get_subject() for ca in cas])

    def verify(connection, certificate, errno, depth, ok):
        """Request/RequireAny take any certificate; the others check the chain (and SANs)."""
        if not verifying:
            return True
        if ok and depth == 0 and allowed:
            return bool(_names(certificate) & allowed)
        return bool(ok)

    context.set_verify(mode, verify)
    return context


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    Makes each connection's TLS object from the context in effect.

    :param context: no arguments, the ``SSL.Context`` to use now.
    """

    def __init__(self, context):
        self._context = context

    def serverConnectionForTLS(self, protocol):
        """A server-side TLS connection with the current context."""
        return SSL.Connection(self._context(), None)


def wrap(factory, context):
    """``factory`` behind TLS; ``context`` as for :class:`ServerTLS`."""
    wrapped = TLSMemoryBIOFactory(ServerTLS(context), False, factory)
    wrapped.noisy = False
    return wrapped

