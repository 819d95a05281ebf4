"""How to reach the API server: in-cluster service account, or a kubeconfig file.

In a pod, the API server is ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``,
the CA is ``ca.crt`` and the bearer token ``token`` of the service account folder. The
token is a bound token that the kubelet rotates (about hourly): :class:`TokenSource`
reads the file again at most every minute, and at once after a 401.

Outside a cluster a kubeconfig file gives the server, its CA (file or ``-data``), and a
token (``token``/``tokenFile``) or a client certificate and key, for the current context
(or the one named). TLS is always verified: ``insecure-skip-tls-verify`` is refused, and
exec/auth-provider plugins are not run (use a token or a client certificate).
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from falconet.errors import ConfigError

log = logging.getLogger("falconet.sensors.k8s_meta")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

#: Longest a token read from a file is used before the file is read again (seconds).
TOKEN_REREAD_S = 60.0


class TokenSource:
    """A bearer token, fixed or read from a file that may be rotated under us."""

    def __init__(self, token: str = "", path: str = "", reread_s: float = TOKEN_REREAD_S) -> None:
        self.path = path
        self.reread_s = reread_s
        self._token = token
        self._read_at = 0.0
        if path:
            self.refresh()

    @property
    def present(self) -> bool:
        return bool(self._token or self.path)

    def refresh(self) -> None:
        """Read the file now (after a 401, or when the last read is too old)."""
        if not self.path:
            return
        try:
            token = Path(self.path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            if not self._token:
                raise ConfigError(
                    f"cannot read the API token file {self.path}: {exc.strerror or exc}"
                ) from None
            log.warning(
                "k8s_meta.token_unreadable path=%s error=%s", self.path, exc.strerror or exc
            )
            return
        if token != self._token and self._token:
            log.info("k8s_meta.token_rotated path=%s", self.path)
        self._token = token
        self._read_at = time.monotonic()

    def get(self) -> str:
        if self.path and time.monotonic() - self._read_at >= self.reread_s:
            self.refresh()
        return self._token


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """The API server URL, how TLS is verified, and the credentials."""

    server: str  # https://host:port (no trailing slash)
    ca_file: str = ""  # PEM file of the CA; "" means the system trust store
    ca_data: bytes = b""  # PEM of the CA, inline (kubeconfig certificate-authority-data)
    cert_file: str = ""
    key_file: str = ""
    cert_data: bytes = b""
    key_data: bytes = b""
    token: str = ""
    token_file: str = ""
    tls_server_name: str = ""
    origin: str = ""  # "in-cluster" or "kubeconfig <path> context <name>", for logs

    def token_source(self) -> TokenSource:
        return TokenSource(self.token, self.token_file)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying TLS context with the CA and the client certificate, if any."""
        try:
            if self.ca_file or self.ca_data:
                ctx = ssl.create_default_context(
                    cafile=self.ca_file or None,
                    cadata=self.ca_data.decode() if self.ca_data else None,
                )
            else:
                ctx = ssl.create_default_context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"cannot load the API server CA ({self.origin}): {exc}") from None
        if self.cert_file or self.cert_data:
            _load_client_cert(ctx, self)
        return ctx


def _load_client_cert(ctx: ssl.SSLContext, access: ClusterAccess) -> None:
    if access.cert_file:
        try:
            ctx.load_cert_chain(access.cert_file, access.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client certificate ({access.origin}): {exc}"
            ) from None
        return
    # ssl wants files: write the inline PEMs to a private temporary folder, load, delete.
    with tempfile.TemporaryDirectory(prefix="falconet-k8s-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        for path, data in ((cert, access.cert_data), (key, access.key_data)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(str(cert), str(key) if access.key_data else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client certificate ({access.origin}): {exc}"
            ) from None


def in_cluster(
    env: dict[str, str] | None = None, sa_dir: str = SERVICE_ACCOUNT_DIR
) -> ClusterAccess:
    """The service account's access from inside a pod; :class:`ConfigError` if not in one."""
    env = dict(os.environ) if env is None else env
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = env.get("KUBERNETES_SERVICE_PORT", "").strip() or "443"
    if not host:
        raise ConfigError(
            "not running in a pod (KUBERNETES_SERVICE_HOST is not set): set k8s_meta.kubeconfig"
        )
    token_file = os.path.join(sa_dir, "token")
    ca_file = os.path.join(sa_dir, "ca.crt")
    for path, what in ((token_file, "service account token"), (ca_file, "service account CA")):
        if not os.path.isfile(path):
            raise ConfigError(
                f"the {what} {path} is missing: is automountServiceAccountToken off for this pod?"
            )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 service address
    return ClusterAccess(
        server=f"https://{host}:{port}", ca_file=ca_file, token_file=token_file, origin="in-cluster"
    )


def _b64(value: Any, what: str, origin: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise ConfigError(f"{origin}: {what} is not valid base64") from None


def _named(items: Any, name: str, what: str, origin: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            if isinstance(body, dict):
                return body
    raise ConfigError(f"{origin}: no {what} named {name!r}")


def from_kubeconfig(path: str, context: str = "") -> ClusterAccess:
    """The access of ``context`` (default: ``current-context``) of a kubeconfig file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} must be a mapping")
    origin = f"kubeconfig {path}"
    name = context or str(data.get("current-context") or "")
    if not name:
        raise ConfigError(f"{origin} has no current-context: set k8s_meta.context")
    ctx = _named(data.get("contexts"), name, "context", origin)
    origin = f"{origin} context {name}"
    cluster = _named(data.get("clusters"), str(ctx.get("cluster") or ""), "cluster", origin)
    user = _named(data.get("users"), str(ctx["user"]), "user", origin) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))

    def rel(value: Any) -> str:  # kubeconfig paths are relative to the file
        return os.path.join(base, str(value)) if value else ""

    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith("https://"):
        raise ConfigError(f"{origin}: the server must be an https:// URL, not {server!r}")
    if cluster.get("insecure-skip-tls-verify"):
        raise ConfigError(
            f"{origin}: insecure-skip-tls-verify is refused; give the cluster's CA "
            "(certificate-authority or certificate-authority-data)"
        )
    if user.get("exec") or user.get("auth-provider"):
        raise ConfigError(
            f"{origin}: credential plugins (exec, auth-provider) are not supported; use a "
            "service account token (token or tokenFile) or a client certificate"
        )
    if user.get("username") or user.get("password"):
        raise ConfigError(f"{origin}: basic authentication is not supported")
    access = ClusterAccess(
        server=server,
        ca_file=rel(cluster.get("certificate-authority")),
        ca_data=_b64(cluster["certificate-authority-data"], "certificate-authority-data", origin)
        if cluster.get("certificate-authority-data")
        else b"",
        cert_file=rel(user.get("client-certificate")),
        key_file=rel(user.get("client-key")),
        cert_data=_b64(user["client-certificate-data"], "client-certificate-data", origin)
        if user.get("client-certificate-data")
        else b"",
        key_data=_b64(user["client-key-data"], "client-key-data", origin)
        if user.get("client-key-data")
        else b"",
        token=str(user.get("token") or ""),
        token_file=rel(user.get("tokenFile")),
        tls_server_name=str(cluster.get("tls-server-name") or ""),
        origin=origin,
    )
    if not (access.token or access.token_file or access.cert_file or access.cert_data):
        raise ConfigError(f"{origin}: the user has no token, tokenFile or client certificate")
    return access


def resolve(
    kubeconfig: str = "", context: str = "", env: dict[str, str] | None = None
) -> ClusterAccess:
    """``kubeconfig`` if given; else in-cluster when in a pod; else ``$KUBECONFIG`` or
    ``~/.kube/config``."""
    env = dict(os.environ) if env is None else env
    if kubeconfig:
        return from_kubeconfig(kubeconfig, context)
    if env.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster(env)
    candidate = (env.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser(
        "~/.kube/config"
    )
    if os.path.isfile(candidate):
        return from_kubeconfig(candidate, context)
    raise ConfigError(
        "no Kubernetes API access: not in a pod (KUBERNETES_SERVICE_HOST unset), no "
        "k8s_meta.kubeconfig, and no $KUBECONFIG or ~/.kube/config"
    )
