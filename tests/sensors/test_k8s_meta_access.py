"""How the k8s-meta publisher finds the API server and its credentials, and its settings."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import trustme

from falconet.config import Config
from falconet.errors import ConfigError
from falconet.sensors.k8s_meta.access import (
    TokenSource,
    from_kubeconfig,
    in_cluster,
    resolve,
)
from falconet.sensors.k8s_meta.settings import K8sMetaSettings


def service_account(tmp: Path) -> Path:
    sa = tmp / "serviceaccount"
    sa.mkdir()
    trustme.CA().cert_pem.write_to_path(sa / "ca.crt")
    (sa / "token").write_text("eyJhbGciOiJSUzI1NiJ9.first\n")
    (sa / "namespace").write_text("falconet")
    return sa


def test_in_cluster_uses_the_service_host_ca_and_token_file(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    access = in_cluster(env, str(sa))
    assert access.server == "https://10.96.0.1:443" and access.origin == "in-cluster"
    assert isinstance(access.ssl_context(), ssl.SSLContext)
    assert access.token_source().get() == "eyJhbGciOiJSUzI1NiJ9.first"
    v6 = in_cluster(
        {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"}, str(sa)
    )
    assert v6.server == "https://[fd00:10:96::1]:443"


def test_in_cluster_without_a_mounted_token_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="automountServiceAccountToken"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, str(tmp_path))
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        in_cluster({}, str(tmp_path))


def test_token_file_is_read_again_when_old_or_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one\n")
    tokens = TokenSource(path=str(path), reread_s=3600)
    path.write_text("two\n")
    assert tokens.get() == "one"  # within the re-read interval
    tokens.refresh()  # after a 401
    assert tokens.get() == "two"
    eager = TokenSource(path=str(path), reread_s=0)
    path.write_text("three\n")
    assert eager.get() == "three"


def _kubeconfig(tmp: Path, cluster: str, user: str, extra: str = "") -> Path:
    path = tmp / "config"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
{cluster}
contexts:
- name: prod-admin
  context: {{cluster: prod, user: admin}}
- name: other
  context: {{cluster: prod, user: nobody}}
current-context: prod-admin
users:
- name: admin
  user:
{user}
- name: nobody
  user: {{}}
{extra}""")
    return path


def test_kubeconfig_with_inline_ca_and_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("falconet-k8s-meta")
    b64 = lambda blob: base64.b64encode(blob.bytes()).decode()  # noqa: E731
    path = _kubeconfig(
        tmp_path,
        f"    server: https://api.prod.example.com:6443/\n    certificate-authority-data: {b64(ca.cert_pem)}\n"
        "    tls-server-name: kubernetes.default",
        f"    client-certificate-data: {b64(leaf.cert_chain_pems[0])}\n"
        f"    client-key-data: {b64(leaf.private_key_pem)}",
    )
    access = from_kubeconfig(str(path))
    assert access.server == "https://api.prod.example.com:6443"
    assert access.tls_server_name == "kubernetes.default" and not access.token
    assert isinstance(access.ssl_context(), ssl.SSLContext)  # CA and key pair load
    assert "prod-admin" in access.origin


def test_kubeconfig_paths_are_relative_to_the_file_and_context_can_be_chosen(
    tmp_path: Path,
) -> None:
    path = _kubeconfig(tmp_path, "    server: https://10.0.0.1\n    certificate-authority: pki/ca.crt",
                       "    tokenFile: secrets/token")  # fmt: skip
    access = from_kubeconfig(str(path))
    assert access.ca_file == str(tmp_path / "pki" / "ca.crt")
    assert access.token_file == str(tmp_path / "secrets" / "token")
    with pytest.raises(ConfigError, match="no token, tokenFile or client certificate"):
        from_kubeconfig(str(path), "other")
    with pytest.raises(ConfigError, match="no context named 'missing'"):
        from_kubeconfig(str(path), "missing")


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        ("    server: https://x\n    insecure-skip-tls-verify: true", "    token: t", "insecure-skip-tls-verify is refused"),
        ("    server: http://x:8080", "    token: t", "must be an https:// URL"),
        ("    server: https://x", "    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}",
         "credential plugins"),
        ("    server: https://x\n    certificate-authority-data: '%%%'", "    token: t", "not valid base64"),
    ],
)  # fmt: skip
def test_kubeconfig_that_cannot_be_used_safely_is_refused(
    tmp_path: Path, cluster: str, user: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        from_kubeconfig(str(_kubeconfig(tmp_path, cluster, user)))


def test_resolve_prefers_the_setting_then_the_pod_then_kubeconfig(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path, "    server: https://10.0.0.1", "    token: t")
    assert (
        resolve(str(path), env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"}).server
        == "https://10.0.0.1"
    )
    assert resolve(env={"KUBECONFIG": str(path)}).server == "https://10.0.0.1"
    with pytest.raises(ConfigError, match="no Kubernetes API access"):
        resolve(env={"KUBECONFIG": str(tmp_path / "absent"), "HOME": str(tmp_path)})


def test_settings_from_environment_and_command_line_with_checks() -> None:
    cfg = Config.load(env={})
    env = {"FALCONET_K8S_META_CLUSTER": "eu-1", "FALCONET_K8S_META_PUBLISH_CONTAINERS": "false",
           "FALCONET_K8S_META_ANNOTATION_EXCLUDES": "a, b/c"}  # fmt: skip
    s = K8sMetaSettings.load(cfg, env, {"k8s_meta.page_size": 50})
    assert (s.cluster, s.publish_containers, s.page_size) == ("eu-1", False, 50)
    assert s.annotation_excludes == ("a", "b/c") and s.filters.cluster == "eu-1"
    assert K8sMetaSettings.load(cfg, env, {"k8s_meta.cluster": "cli"}).cluster == "cli"
    defaults = K8sMetaSettings.load(cfg, {})
    assert defaults.publish_containers and defaults.annotation_excludes == (
        "kubectl.kubernetes.io/last-applied-configuration",
    )
    with pytest.raises(ConfigError, match="k8s_meta.page_size must be between"):
        K8sMetaSettings.load(cfg, {"FALCONET_K8S_META_PAGE_SIZE": "0"})
    with pytest.raises(ConfigError, match="k8s_meta.publish_containers must be true or false"):
        K8sMetaSettings.load(cfg, {"FALCONET_K8S_META_PUBLISH_CONTAINERS": "maybe"})


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    from falconet.config import env_name
    from falconet.sensors.k8s_meta.settings import SETTINGS
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "sensors" / "k8s-meta.md").read_text()
    for key, _, _ in SETTINGS:
        assert f"| `{key}` | `{env_name(key)}` |" in page, key


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    from falconet.sensors.k8s_meta.reflector import Backoff

    b = Backoff(0.5, 4.0)
    delays = [b.next() for _ in range(8)]
    for delay, cap in zip(delays, (0.5, 1, 2, 4, 4, 4, 4, 4), strict=True):
        assert cap / 2 <= delay <= cap
    assert b.raised
    b.reset()
    assert not b.raised and b.next() <= 0.5
