"""The real AWS APIs on loopback: moto in server mode, shared by the tests that need it.

tests/conftest.py loads this module as a plugin, so any test can ask for ``moto_url`` (one
server per test module) or ``aws`` (that server emptied, test credentials set).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator

import pytest

#: test credentials and region in the environment of the code under test
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's URL, emptied, with test credentials in the environment."""
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(
        urllib.request.Request(moto_url + "/moto-api/reset", method="POST"), timeout=10
    )
    return moto_url
