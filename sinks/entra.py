"""Access tokens from Microsoft Entra ID by the OAuth 2.0 client-credentials grant.

Follows "Microsoft identity platform and the OAuth 2.0 client credentials flow" (the
shared-secret case): ``POST {authority}/{tenant}/oauth2/v2.0/token`` with the form fields
``grant_type=client_credentials``, ``client_id``, ``client_secret`` and ``scope`` (the
resource's application ID URI plus ``/.default``); the answer carries ``access_token``,
``token_type`` (``Bearer``) and ``expires_in`` (seconds). An error answer carries
``error`` (``invalid_client``, ``unauthorized_client``, ``invalid_scope``...),
``error_description`` (starting with an ``AADSTSnnnn`` code) and ``error_codes``.

:class:`EntraTokenClient` keeps one token, hands it out until shortly before it expires,
then fetches a new one; :meth:`EntraTokenClient.invalidate` drops a token the resource
refused (a 401), so the next call fetches a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from falconet.errors import SinkError

from .http import HttpClient, HttpResponse, is_retryable_status, retry_after

__all__ = ["AccessToken", "EntraTokenClient"]

#: refresh a token this long before it expires (capped at half its lifetime)
REFRESH_MARGIN_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # on the client's clock (monotonic seconds)


class EntraTokenClient:
    """One application's token for one scope, cached and refreshed before it expires."""

    def __init__(
        self,
        http: HttpClient,
        *,
        authority: str,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self._http = http
        self.token_url = f"{authority.rstrip('/')}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"
        self._tenant = tenant_id
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._clock = clock
        self._log = log or logging.getLogger("falconet.sinks.entra")
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # tokens fetched so far (for metrics and tests)

    async def token(self) -> str:
        """A valid access token, fetched only when none is cached or it is about to expire."""
        current = self._token
        if current is not None and self._clock() < current.expires_at:
            return current.value
        async with self._lock:  # one fetch even when several requests need a token at once
            current = self._token
            if current is not None and self._clock() < current.expires_at:
                return current.value
            self._token = await self._fetch()
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the resource refused it); a newer token is kept."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch(self) -> AccessToken:
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret,
                "scope": self._scope,
            }
        ).encode()
        resp = await self._http.request(
            "POST",
            self.token_url,
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            compress=False,
        )
        if resp.status != 200:
            raise self._error(resp)
        try:
            data = resp.json()
            value = data["access_token"]
            expires_in = float(data.get("expires_in", 0))
            kind = str(data.get("token_type", "Bearer"))
        except (SinkError, KeyError, TypeError, ValueError, AttributeError):
            raise SinkError(
                f"Entra ID token request ({self._where()}): HTTP 200 without an access_token",
                retryable=True,
                status=resp.status,
            ) from None
        if not isinstance(value, str) or not value or kind.lower() != "bearer":
            raise SinkError(
                f"Entra ID token request ({self._where()}): no bearer token in the answer "
                f"(token_type {kind!r})",
                retryable=True,
                status=resp.status,
            )
        self.fetches += 1
        margin = min(REFRESH_MARGIN_SECONDS, expires_in / 2)
        self._log.info(
            "entra token fetched for client %s (expires in %.0fs, refresh after %.0fs)",
            self._client_id,
            expires_in,
            expires_in - margin,
        )
        return AccessToken(value, self._clock() + expires_in - margin)

    def _where(self) -> str:
        return f"tenant {self._tenant}, client {self._client_id}"

    def _error(self, resp: HttpResponse) -> SinkError:
        """An Entra error answer as a SinkError: its error code and first description line."""
        code = description = ""
        try:
            import orjson

            data = orjson.loads(resp.body)
            if isinstance(data, dict):
                code = str(data.get("error") or "")
                description = str(data.get("error_description") or "").strip()
        except ValueError:
            pass
        # the description goes on with Trace ID / Correlation ID / Timestamp lines
        description = description.splitlines()[0].strip() if description else resp.text(200)
        detail = ": ".join(p for p in (code, description) if p)
        message = f"Entra ID token request ({self._where()}): HTTP {resp.status}" + (
            f": {detail}" if detail else ""
        )
        if self._secret:
            message = message.replace(self._secret, "***")
        retryable = is_retryable_status(resp.status) or code == "temporarily_unavailable"
        return SinkError(
            message, retryable=retryable, retry_after=retry_after(resp.headers), status=resp.status
        )
