"""Find and read a kubeconfig the way kubectl does, and write the one ``kubelite up`` hands out.

Search order: an explicit path (``--kubeconfig``), then ``$KUBECONFIG`` (a ``:``-separated list whose
files are merged, the first file to set a key winning), then ``~/.kube/config``. The result is a
:class:`ClusterConfig`: server URL, credentials (token, basic auth, client certificate), trust (CA,
``insecure-skip-tls-verify``) and the context's namespace.

Start-up speed matters here (every CLI command reads a kubeconfig): a file that is JSON (as the one
``up`` writes) is parsed with the stdlib's C json, only YAML needs PyYAML, no pathlib/urllib, and
:mod:`ssl` is imported only when an HTTPS server is actually contacted (:func:`ssl_context`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kubelite.api.errors import KubeliteError

if TYPE_CHECKING:
    import ssl

DEFAULT_PATH = "~/.kube/config"
UP_DEFAULT_PATH = "/var/lib/kubelite/kubeconfig"   # `kubelite up --data-dir` default


class KubeconfigError(KubeliteError):
    """The kubeconfig is missing, malformed, or names a context/cluster/user it does not define."""


_FIELDS = ("server", "namespace", "token", "username", "password", "client_cert", "client_key", "client_cert_data",
           "client_key_data", "ca_file", "ca_data", "insecure_skip_tls_verify", "context", "source")


class ClusterConfig:
    """Everything a client needs to reach one cluster as one user (read-only after construction).

    A plain slotted class rather than a dataclass: this sits on every CLI command's start-up path.
    """

    __slots__ = _FIELDS
    server: str
    namespace: str
    token: str | None
    username: str | None
    password: str | None
    client_cert: str | None          # path to a PEM file
    client_key: str | None
    client_cert_data: bytes | None   # PEM bytes (from *-data fields)
    client_key_data: bytes | None
    ca_file: str | None
    ca_data: bytes | None
    insecure_skip_tls_verify: bool
    context: str
    source: str                      # the file(s) it came from, for messages

    def __init__(self, server: str, namespace: str = "default", token: str | None = None,
                 username: str | None = None, password: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, client_cert_data: bytes | None = None,
                 client_key_data: bytes | None = None, ca_file: str | None = None, ca_data: bytes | None = None,
                 insecure_skip_tls_verify: bool = False, context: str = "", source: str = "") -> None:
        values = locals()
        for name in _FIELDS:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ClusterConfig is read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterConfig) and all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __repr__(self) -> str:
        return f"ClusterConfig(server={self.server!r}, namespace={self.namespace!r}, context={self.context!r})"

    @property
    def is_https(self) -> bool:
        return self.server.startswith("https://")


def search_paths(explicit: str | None = None) -> list[str]:
    """The kubeconfig files to read, in precedence order (they need not exist)."""
    if explicit:
        return [os.path.expanduser(explicit)]
    env = os.environ.get("KUBECONFIG", "")
    paths = [os.path.expanduser(p) for p in env.split(os.pathsep) if p]
    if paths:
        return paths
    home = os.path.expanduser(DEFAULT_PATH)
    # beyond kubectl: with no kubeconfig of the user's own, the one `kubelite up` writes by default
    return [home] if os.path.exists(home) or not os.path.exists(UP_DEFAULT_PATH) else [UP_DEFAULT_PATH]


def _parse(path: str, text: str) -> dict[str, Any]:
    if text.lstrip().startswith("{"):
        import json
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise KubeconfigError(f"error loading config file \"{path}\": {exc}") from None
    else:
        import yaml
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise KubeconfigError(f"error loading config file \"{path}\":{where} {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"error loading config file \"{path}\": not a kubeconfig mapping")
    return data


def _merge(files: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge kubeconfig documents as kubectl does: first file wins for each named entry and scalar."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for _path, data in files:
        for section in ("clusters", "users", "contexts"):
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    merged[section].setdefault(str(entry["name"]), entry)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = str(data["current-context"])
    return merged


def _b64(value: Any, what: str) -> bytes:
    import base64
    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError:
        raise KubeconfigError(f"{what}: not valid base64") from None


def load(path: str | None = None, *, context: str | None = None, server: str | None = None,
         namespace: str | None = None, token: str | None = None) -> ClusterConfig:
    """Read the kubeconfig like kubectl and resolve one context (flags override the file).

    Args:
        path: ``--kubeconfig``; None means ``$KUBECONFIG`` or ``~/.kube/config``.
        context: ``--context``; None means ``current-context``.
        server, namespace, token: ``--server``, ``--namespace``, ``--token`` overrides.
    Raises:
        KubeconfigError: no usable configuration (kubectl's wording where it has one).
    """
    files: list[tuple[str, dict[str, Any]]] = []
    for p in search_paths(path):
        try:
            with open(p, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            if path:
                raise KubeconfigError(f'stat {p}: no such file or directory') from None
            continue
        except OSError as exc:
            raise KubeconfigError(f"error loading config file \"{p}\": {exc.strerror}") from None
        files.append((p, _parse(p, text)))
    merged = _merge(files)
    source = ":".join(str(p) for p, _ in files)
    ctx_name = context or merged["current-context"]
    ctx: dict[str, Any] = {}
    if ctx_name:
        entry = merged["contexts"].get(ctx_name)
        if entry is None:
            if context:
                raise KubeconfigError(f'context was not found for specified context: {ctx_name}')
            raise KubeconfigError(f'context "{ctx_name}" does not exist')
        ctx = entry.get("context") or {}
    cluster: dict[str, Any] = {}
    if ctx.get("cluster"):
        entry = merged["clusters"].get(str(ctx["cluster"]))
        if entry is None:
            raise KubeconfigError(f'cluster "{ctx["cluster"]}" does not exist in {source or "the kubeconfig"}')
        cluster = entry.get("cluster") or {}
    user: dict[str, Any] = {}
    if ctx.get("user"):
        entry = merged["users"].get(str(ctx["user"]))
        user = (entry or {}).get("user") or {}
    url = server or cluster.get("server")
    if not url:
        raise KubeconfigError("The connection to the server localhost:8080 was refused - did you specify "
                              "the right host or port?" if not files else
                              f"no server found for cluster \"{ctx.get('cluster', '')}\" in {source}")
    base = os.path.dirname(os.path.abspath(files[0][0])) if files else os.getcwd()

    def rel(p: Any) -> str | None:
        return os.path.realpath(os.path.join(base, os.path.expanduser(str(p)))) if p else None

    tok = token or user.get("token")
    if not tok and user.get("tokenFile"):
        try:
            with open(rel(user["tokenFile"]) or "", encoding="utf-8") as f:
                tok = f.read().strip()
        except OSError as exc:
            raise KubeconfigError(f"reading tokenFile: {exc.strerror}") from None
    return ClusterConfig(
        server=str(url).rstrip("/"),
        namespace=namespace or str(ctx.get("namespace") or "default"),
        token=tok or None,
        username=user.get("username"),
        password=user.get("password"),
        client_cert=rel(user.get("client-certificate")),
        client_key=rel(user.get("client-key")),
        client_cert_data=_b64(user["client-certificate-data"], "client-certificate-data")
        if user.get("client-certificate-data") else None,
        client_key_data=_b64(user["client-key-data"], "client-key-data") if user.get("client-key-data") else None,
        ca_file=rel(cluster.get("certificate-authority")),
        ca_data=_b64(cluster["certificate-authority-data"], "certificate-authority-data")
        if cluster.get("certificate-authority-data") else None,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        context=ctx_name,
        source=source,
    )


def for_url(server: str, *, namespace: str = "default", token: str | None = None) -> ClusterConfig:
    """A config for a bare base URL (tests, components given ``--server``)."""
    return ClusterConfig(server=server.rstrip("/"), namespace=namespace, token=token)


def ssl_context(cfg: ClusterConfig) -> "ssl.SSLContext":
    """The TLS context for an HTTPS server (imports :mod:`ssl` only now)."""
    import ssl
    import tempfile
    from pathlib import Path

    ctx = ssl.create_default_context()
    if cfg.insecure_skip_tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.ca_file or cfg.ca_data:
        ctx = ssl.create_default_context(cafile=cfg.ca_file,
                                         cadata=cfg.ca_data.decode() if cfg.ca_data else None)
    if cfg.client_cert or cfg.client_cert_data:
        if cfg.client_cert_data or cfg.client_key_data:
            # ssl can only load a key pair from files: write them privately, load, remove.
            with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as tmp:
                cert = Path(tmp, "cert.pem")
                key = Path(tmp, "key.pem")
                cert.write_bytes(cfg.client_cert_data or Path(cfg.client_cert or "").read_bytes())
                key.write_bytes(cfg.client_key_data or Path(cfg.client_key or "").read_bytes())
                ctx.load_cert_chain(str(cert), str(key))
        else:
            ctx.load_cert_chain(cfg.client_cert or "", cfg.client_key)
    return ctx


def render(server: str, *, name: str = "kubelite", namespace: str | None = None, token: str | None = None,
           ca_data: bytes | None = None, insecure_skip_tls_verify: bool = False) -> dict[str, Any]:
    """A one-cluster, one-user, one-context kubeconfig document (as ``kubelite up`` writes it)."""
    import base64

    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    if insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token} if token else {}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write a kubeconfig atomically with mode 0600 (as JSON: valid YAML, and fast to read back)."""
    import json

    target = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    tmp = os.path.join(os.path.dirname(os.path.abspath(target)), f".{os.path.basename(target)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, target)
