"""Who may post audit events: a bearer token, a client certificate, or both.

Each configured mechanism is required: with a token and a client CA, a request needs the
token *and* a certificate the CA signed (and, with ``k8s_audit.allowed_cns``, one of those
subject common names). Tokens are compared in constant time (on their SHA-256 digests, so
not even the length leaks) and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from falconet.errors import ConfigError

log = logging.getLogger("falconet.sensor.k8s_audit")

REALM = "falconet-k8s-audit"


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request was refused: the status (401/403), a metric label and a message."""

    status: int
    reason: str
    message: str
    challenge: str = ""  # the WWW-Authenticate value of a 401


class Authenticator:
    """Checks the credentials of one request (see the module docstring)."""

    def __init__(
        self,
        token: str = "",
        token_file: str = "",
        client_certs: bool = False,
        allowed_cns: frozenset[str] = frozenset(),
    ) -> None:
        self.token_file = token_file
        self.client_certs = client_certs
        self.allowed_cns = allowed_cns
        self._digest: bytes | None = _digest(token) if token else None
        self._stamp = 0.0
        if not token and token_file:
            self._digest = _digest(self._read_token_file())

    @property
    def token_required(self) -> bool:
        return self._digest is not None

    @property
    def anonymous(self) -> bool:
        """No credential at all is checked (only allowed with --insecure-http)."""
        return not self.token_required and not self.client_certs

    def _read_token_file(self) -> str:
        try:
            self._stamp = os.stat(self.token_file).st_mtime
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read k8s_audit.token_file {self.token_file}: {exc.strerror or exc}"
            ) from None
        if not token:
            raise ConfigError(f"k8s_audit.token_file {self.token_file} is empty")
        return token

    def reload_if_changed(self) -> bool:
        """Read the token file again if it changed (a rotated Secret); keep the old token
        if the new file cannot be read or is empty."""
        if not self.token_file or self._digest is None:
            return False
        try:
            if os.stat(self.token_file).st_mtime == self._stamp:
                return False
            digest = _digest(self._read_token_file())
        except (OSError, ConfigError) as exc:
            log.warning("k8s_audit.token_reload_failed error=%s", exc)
            return False
        changed = not hmac.compare_digest(digest, self._digest)
        self._digest = digest
        if changed:
            log.info("k8s_audit.token_reloaded file=%s", self.token_file)
        return changed

    def _challenge(self, error: str = "") -> str:
        if not self.token_required:
            return f'ClientCertificate realm="{REALM}"'
        return f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")

    def check(self, authorization: str | None, has_cert: bool, cns: list[str]) -> Denial | None:
        """``None`` when the request may go on, else why not."""
        if self.client_certs and not has_cert:
            return Denial(
                401,
                "no_client_certificate",
                "a client certificate signed by the webhook's client CA is required",
                self._challenge(),
            )
        if self._digest is not None:
            scheme, _, presented = (authorization or "").strip().partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                return Denial(401, "missing_token", "a bearer token is required", self._challenge())
            if not hmac.compare_digest(_digest(presented.strip()), self._digest):
                return Denial(
                    401,
                    "invalid_token",
                    "the bearer token is not valid",
                    self._challenge("invalid_token"),
                )
        if self.allowed_cns and not self.allowed_cns.intersection(cns):
            return Denial(
                403,
                "common_name_not_allowed",
                "the client certificate's common name is not in k8s_audit.allowed_cns",
            )
        return None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
