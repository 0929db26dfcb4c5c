"""Registry credentials: ``~/.docker/config.json``, pods' imagePullSecrets, and the auth challenges.

- :func:`load_docker_config` reads ``auths`` (``auth`` = base64 ``user:password``, or ``username`` /
  ``password``, ``identitytoken``, ``registrytoken``) from ``$DOCKER_CONFIG/config.json`` or
  ``~/.docker/config.json``.
- :func:`from_pull_secret` takes a ``kubernetes.io/dockerconfigjson`` (or legacy ``dockercfg``)
  Secret's ``data`` (base64 values, as in the API object) and returns the same map.
- :func:`parse_challenge` reads ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` / ``Basic``.
Hosts are normalised as Docker does (``https://index.docker.io/v1/`` → ``docker.io``). No network here.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kubelet.cri import AuthConfig
from kubelet.runtime.images.errors import RegistryError

_DOCKER_HUB_KEYS = {"index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""     # an OAuth2 refresh token (sent to the token realm)
    registry_token: str = ""     # a bearer token used as is

    def basic_header(self) -> str | None:
        if not self.username and not self.password:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://127.0.0.1:5000/x`` → ``127.0.0.1:5000``."""
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB_KEYS else host


def _entry(value: Mapping[str, Any]) -> Credentials:
    user, pw = str(value.get("username", "")), str(value.get("password", ""))
    if value.get("auth"):
        try:
            decoded = base64.b64decode(str(value["auth"])).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryError("docker config: an 'auth' value is not base64 of user:password") from None
        user, _, pw = decoded.partition(":")
    return Credentials(user, pw, str(value.get("identitytoken", "")), str(value.get("registrytoken", "")))


def parse_auths(config: Mapping[str, Any]) -> dict[str, Credentials]:
    """A docker config (``{"auths": {...}}``) or a legacy dockercfg (the auths map itself)."""
    auths = config.get("auths", config) if isinstance(config, Mapping) else {}
    out: dict[str, Credentials] = {}
    for key, value in (auths or {}).items():
        if isinstance(value, Mapping):
            out[normalize_host(key)] = _entry(value)
    return out


def load_docker_config(path: Path | None = None) -> dict[str, Credentials]:
    if path is None:
        base = os.environ.get("DOCKER_CONFIG")
        path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    try:
        return parse_auths(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RegistryError(f"{path}: not valid JSON: {exc}") from None


def from_pull_secret(data: Mapping[str, str]) -> dict[str, Credentials]:
    """Credentials from a pull Secret's ``data`` (base64 values, ``.dockerconfigjson`` or ``.dockercfg``)."""
    for key in (".dockerconfigjson", ".dockercfg"):
        if key in data:
            raw = data[key]
            try:
                text = base64.b64decode(raw, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                text = raw  # stringData-style: already decoded
            try:
                return parse_auths(json.loads(text))
            except ValueError as exc:
                raise RegistryError(f"image pull secret: {key} is not valid JSON: {exc}") from None
    return {}


def from_auth_config(auth: AuthConfig) -> Credentials:
    """The CRI AuthConfig the kubelet passes, as credentials."""
    user, pw = auth.username, auth.password
    if auth.auth and not user:
        user, _, pw = base64.b64decode(auth.auth).decode().partition(":")
    return Credentials(user, pw, auth.identity_token, auth.registry_token)


def lookup(creds: Mapping[str, Credentials], domain: str) -> Credentials | None:
    return creds.get(normalize_host(domain))


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ("bearer", {"realm": …, "service": …})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    return scheme.lower(), params
