"""An IMDSv2 client: the instance identity document and the instance tags.

IMDSv2 is session based: ``PUT /latest/api/token`` with the header
``X-aws-ec2-metadata-token-ttl-seconds`` returns a token, sent back in
``X-aws-ec2-metadata-token`` with every ``GET``. The token is kept until shortly before it
expires and fetched again when IMDS answers 401. Requests never go through an HTTP proxy
(IMDS refuses tokens asked through one). In a container the response to the token ``PUT``
needs two network hops: the instance's hop limit must be 2 or more, or the ``PUT`` times
out (docs/sensors/cloud-meta.md).
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from falconet.errors import SensorError

log = logging.getLogger("falconet.sensors.cloud_meta")

TOKEN_PATH = "/latest/api/token"
DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"
TAGS_PATH = "/latest/meta-data/tags/instance"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"

_HOP_HINT = (
    "on EC2, check that the metadata endpoint is enabled and, when running in a container, "
    "that the instance's hop limit is at least 2 (aws ec2 modify-instance-metadata-options "
    "--http-put-response-hop-limit 2)"
)


class ImdsError(SensorError):
    """IMDS could not be reached or answered something unusable."""


class ImdsClient:
    """A small synchronous IMDSv2 client (one per node)."""

    def __init__(self, endpoint: str, timeout: float = 2.0, token_ttl: int = 21600) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.token_ttl = token_ttl
        self._token = ""
        self._token_until = 0.0
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(self.endpoint + path, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ImdsError(
                f"cannot reach IMDS at {self.endpoint} ({reason}); {_HOP_HINT}"
            ) from None

    def token(self) -> str:
        """A session token, fetched when there is none or it is about to expire."""
        if self._token and time.monotonic() < self._token_until:
            return self._token
        status, body = self._call("PUT", TOKEN_PATH, {TTL_HEADER: str(self.token_ttl)})
        if status == 403:
            raise ImdsError(
                f"IMDS at {self.endpoint} refused a session token (403): the metadata "
                "service is disabled for this instance, or the request went through a proxy"
            )
        if status != 200 or not body:
            raise ImdsError(
                f"IMDS at {self.endpoint} answered the token request with {status}; {_HOP_HINT}"
            )
        self._token = body.decode("ascii", "replace").strip()
        self._token_until = time.monotonic() + max(1.0, self.token_ttl - 60)
        return self._token

    def get(self, path: str) -> bytes | None:
        """The body at ``path``; None when IMDS answers 404 (not available)."""
        for attempt in (1, 2):
            status, body = self._call("GET", path, {TOKEN_HEADER: self.token()})
            if status == 200:
                return body
            if status == 404:
                return None
            if status == 401 and attempt == 1:  # expired or revoked: fetch a new token
                self._token = ""
                continue
            raise ImdsError(f"IMDS answered GET {path} with {status}")
        raise AssertionError("unreachable")

    def identity_document(self) -> dict[str, Any]:
        body = self.get(DOCUMENT_PATH)
        if body is None:
            raise ImdsError(f"IMDS at {self.endpoint} has no instance identity document (404)")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ImdsError("the instance identity document is not JSON") from None
        if not isinstance(doc, dict):
            raise ImdsError("the instance identity document is not a JSON object")
        return doc

    def tags(self) -> dict[str, str] | None:
        """The instance tags; None when they are not exposed in the metadata (404: the
        instance's ``InstanceMetadataTags`` option is disabled)."""
        listing = self.get(TAGS_PATH)
        if listing is None:
            return None
        out: dict[str, str] = {}
        for key in listing.decode("utf-8", "replace").splitlines():
            key = key.strip()
            if not key:
                continue
            value = self.get(f"{TAGS_PATH}/{urllib.parse.quote(key, safe='')}")
            if value is not None:  # a tag removed between the two requests is skipped
                out[key] = value.decode("utf-8", "replace")
        return out
