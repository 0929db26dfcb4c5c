"""kubeconfig discovery and parsing like kubectl: flag, $KUBECONFIG (merged), ~/.kube/config."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kubelite import kubeconfig
from kubelite.kubeconfig import KubeconfigError

pytestmark = pytest.mark.unit

DOC = """
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: {ca}
- name: c2
  cluster: {{server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}}
users:
- name: u1
  user: {{token: abc}}
- name: u2
  user: {{client-certificate: certs/me.crt, client-key: certs/me.key}}
contexts:
- name: dev
  context: {{cluster: c1, user: u1, namespace: team}}
- name: other
  context: {{cluster: c2, user: u2}}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_explicit_path_and_current_context(tmp_path: Path) -> None:
    ca = base64.b64encode(b"PEM").decode()
    p = write(tmp_path / "cfg", DOC.format(ca=ca))
    cfg = kubeconfig.load(str(p))
    assert cfg.server == "https://10.0.0.1:6443"
    assert cfg.token == "abc" and cfg.namespace == "team" and cfg.ca_data == b"PEM"
    assert cfg.is_https and cfg.context == "dev"


def test_context_override_and_relative_cert_paths(tmp_path: Path) -> None:
    p = write(tmp_path / "cfg", DOC.format(ca=""))
    cfg = kubeconfig.load(str(p), context="other", namespace="ns2")
    assert cfg.server == "http://127.0.0.1:8080" and cfg.insecure_skip_tls_verify
    assert cfg.client_cert == str(tmp_path / "certs/me.crt") and cfg.namespace == "ns2"


def test_env_list_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a", "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n")
    b = write(tmp_path / "b", "current-context: y\nclusters: [{name: k, cluster: {server: 'http://b:1'}}]\n")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}:{b}")
    cfg = kubeconfig.load()
    assert cfg.server == "http://b:1" and cfg.context == "x"


def test_home_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    kubeconfig.write(tmp_path / ".kube" / "config", kubeconfig.render("http://127.0.0.1:7443", token="t"))
    assert kubeconfig.search_paths() == [str(tmp_path / ".kube" / "config")]
    cfg = kubeconfig.load()
    assert cfg.server == "http://127.0.0.1:7443" and cfg.token == "t" and cfg.namespace == "default"
    assert (tmp_path / ".kube" / "config").stat().st_mode & 0o777 == 0o600


def test_falls_back_to_the_kubeconfig_up_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    up = tmp_path / "var-lib-kubelite" / "kubeconfig"
    monkeypatch.setattr(kubeconfig, "UP_DEFAULT_PATH", str(up))
    assert kubeconfig.search_paths() == [str(tmp_path / "home" / ".kube" / "config")]   # nothing of up's yet
    up.parent.mkdir()
    kubeconfig.write(up, kubeconfig.render("http://127.0.0.1:6443"))
    assert kubeconfig.load().server == "http://127.0.0.1:6443"
    (tmp_path / "home" / ".kube").mkdir(parents=True)                                  # the user's own wins
    kubeconfig.write(tmp_path / "home" / ".kube" / "config", kubeconfig.render("http://127.0.0.1:7443"))
    assert kubeconfig.load().server == "http://127.0.0.1:7443"


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", "clusters:\n  - name: [x\n")
    with pytest.raises(KubeconfigError, match=r'"%s": line \d' % bad):
        kubeconfig.load(str(bad))
    with pytest.raises(KubeconfigError, match="no such file"):
        kubeconfig.load(str(tmp_path / "nope"))
    p = write(tmp_path / "cfg", DOC.format(ca=""))
    with pytest.raises(KubeconfigError, match="context was not found"):
        kubeconfig.load(str(p), context="zzz")


def test_server_override_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    assert kubeconfig.load(server="http://h:1").server == "http://h:1"
    with pytest.raises(KubeconfigError, match="localhost:8080"):
        kubeconfig.load()
