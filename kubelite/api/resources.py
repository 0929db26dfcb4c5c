"""The table of API resources kubelite serves: group/version, plural, kind, scope, short names.

The apiserver builds discovery and routes from it, clients and the CLI resolve ``kind``/``apiVersion``
and names like ``deploy`` or ``pods`` through it. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None      # None: the parent's group/version
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str                    # "" for core
    version: str
    resource: str                 # plural, e.g. "pods"
    kind: str                     # e.g. "Pod"
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how Kubernetes names the resource in messages."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def prefix(self) -> str:
        """URL prefix of the group/version: ``/api/v1`` or ``/apis/apps/v1``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path for a collection, an object or a subresource."""
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.resource)
        if name is not None:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None



RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "pods", "Pod", True, "pod", ("po",), ("all",), subresources=(
        Subresource("status", "Pod", ("get", "patch", "update")),
        Subresource("binding", "Binding", ("create",)),
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
    )),
    ResourceInfo("", "v1", "nodes", "Node", False, "node", ("no",), subresources=(
        Subresource("status", "Node", ("get", "patch", "update")),
        Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),
    )),
    ResourceInfo("", "v1", "namespaces", "Namespace", False, "namespace", ("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"), subresources=(
        Subresource("status", "Namespace", ("get", "patch", "update")),
        Subresource("finalize", "Namespace", ("update",)),
    )),
    ResourceInfo("", "v1", "events", "Event", True, "event", ("ev",)),
    ResourceInfo("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    ResourceInfo("", "v1", "secrets", "Secret", True, "secret"),
    ResourceInfo("apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",), ("all",), subresources=(
        Subresource("status", "Deployment", ("get", "patch", "update")),
        Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"),
    )),
    ResourceInfo("apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",), ("all",), subresources=(
        Subresource("status", "ReplicaSet", ("get", "patch", "update")),
        Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"),
    )),
    ResourceInfo("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceInfo("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False, "runtimeclass"),
)

_BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_NAME: dict[str, ResourceInfo] = {}
for _r in RESOURCES:
    for _n in (_r.resource, _r.singular, _r.kind.lower(), *_r.short_names, _r.qualified,
               f"{_r.resource}.{_r.version}.{_r.group}" if _r.group else f"{_r.resource}.{_r.version}"):
        _BY_NAME.setdefault(_n, _r)


class UnknownResource(LookupError):
    """No served resource matches; the message is kubectl's wording."""


def for_kind(api_version: str, kind: str) -> ResourceInfo:
    """The resource for an object's ``apiVersion``/``kind``; raises :class:`UnknownResource`."""
    try:
        return _BY_KIND[(api_version, kind)]
    except KeyError:
        raise UnknownResource(f'no matches for kind "{kind}" in version "{api_version}"') from None


def for_object(obj: dict) -> ResourceInfo:
    return for_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def lookup(name: str) -> ResourceInfo:
    """Resolve a name as kubectl does: plural, singular, kind, short name, or ``plural.group``."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise UnknownResource(f'the server doesn\'t have a resource type "{name}"') from None


def for_path(group: str, version: str, resource: str) -> ResourceInfo | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.resource == resource:
            return r
    return None


def group_versions(resources: Iterable[ResourceInfo] = RESOURCES) -> list[tuple[str, str]]:
    """Distinct (group, version) pairs in table order, core first."""
    seen: list[tuple[str, str]] = []
    for r in resources:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


PODS = lookup("pods")
NODES = lookup("nodes")
NAMESPACES = lookup("namespaces")
EVENTS = lookup("events")
CONFIGMAPS = lookup("configmaps")
SECRETS = lookup("secrets")
DEPLOYMENTS = lookup("deployments")
REPLICASETS = lookup("replicasets")
LEASES = lookup("leases")
RUNTIMECLASSES = lookup("runtimeclasses")
