"""Contents of a pod's /etc/hosts and /etc/resolv.conf, as the kubelet and CRI runtimes write them.

/etc/hosts: Kubernetes' kubelet-managed file (``managedHostsFileContent``): a header, localhost and
the IPv6 names, the pod's IP with its hostname (and FQDN with a subdomain), then HostAliases.
hostNetwork pods get the host's file under the host-network header.

resolv.conf: ``search``, ``nameserver`` and ``options`` lines in containerd's order. With no
cluster DNS, ClusterFirst falls back to the host's resolver (kubelet's "Default" policy): the
nameservers, search domains and options of the host's resolv.conf (systemd-resolved's real
upstream file instead of the 127.0.0.53 stub when present), capped as the kubelet caps them
(3 nameservers, 32 search domains).
No I/O except reading the host's files in :func:`host_dns_config` / :func:`host_network_hosts`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
HOST_RESOLV = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"


@dataclass(frozen=True, slots=True)
class DnsConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def hosts_file(pod_ips: Sequence[str], hostname: str, *, subdomain: str = "", namespace: str = "",
               cluster_domain: str = "cluster.local",
               host_aliases: Iterable[tuple[str, Sequence[str]]] = ()) -> str:
    """The kubelet-managed /etc/hosts for a pod on the pod network.

    Args:
        pod_ips: the pod's addresses (one line each).
        hostname: ``spec.hostname`` or the pod name.
        subdomain: ``spec.subdomain``; with it each line also carries
            ``<hostname>.<subdomain>.<namespace>.svc.<cluster_domain>``.
        host_aliases: ``spec.hostAliases`` as (ip, hostnames).
    """
    out = [MANAGED_HEADER,
           "127.0.0.1\tlocalhost\n",
           "::1\tlocalhost ip6-localhost ip6-loopback\n",
           "fe00::0\tip6-localnet\n",
           "fe00::0\tip6-mcastprefix\n",
           "fe00::1\tip6-allnodes\n",
           "fe00::2\tip6-allrouters\n"]
    domain = f"{subdomain}.{namespace}.svc.{cluster_domain}" if subdomain else ""
    for ip in pod_ips:
        out.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n")
    out.append(_aliases(host_aliases))
    return "".join(out)


def host_network_hosts(host_file: str = "/etc/hosts",
                       host_aliases: Iterable[tuple[str, Sequence[str]]] = ()) -> str:
    """/etc/hosts of a hostNetwork pod: the host's file under the host-network header."""
    try:
        content = Path(host_file).read_text()
    except FileNotFoundError:
        content = ""
    if content and not content.endswith("\n"):
        content += "\n"
    return MANAGED_HEADER_HOST_NETWORK + content + _aliases(host_aliases)


def _aliases(host_aliases: Iterable[tuple[str, Sequence[str]]]) -> str:
    lines = [f"{ip}\t{chr(9).join(names)}\n" for ip, names in host_aliases if names]
    return "\n# Entries added by HostAliases.\n" + "".join(lines) if lines else ""


def parse_resolv_conf(text: str) -> DnsConfig:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        key, *vals = line.split()
        if key == "nameserver" and vals:
            servers.append(vals[0])
        elif key in ("search", "domain"):
            searches = list(vals)          # the last search/domain line wins, as in resolv.conf(5)
        elif key == "options":
            options.extend(vals)
    return DnsConfig(tuple(servers), tuple(searches), tuple(options))


def host_dns_config(path: str = HOST_RESOLV) -> DnsConfig:
    """The host's resolver, as ClusterFirst-without-cluster-DNS (kubelet "Default") uses it.

    A systemd-resolved stub (only loopback nameservers) is replaced by its upstream file, since a
    pod cannot reach the host's loopback.
    """
    try:
        cfg = parse_resolv_conf(Path(path).read_text())
    except FileNotFoundError:
        return DnsConfig()
    if cfg.servers and all(_is_loopback(s) for s in cfg.servers) and Path(RESOLVED_UPSTREAM).exists():
        cfg = parse_resolv_conf(Path(RESOLVED_UPSTREAM).read_text())
    return cfg


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def resolv_conf(dns: DnsConfig | None = None, *, host_path: str = HOST_RESOLV) -> str:
    """resolv.conf text: ``dns`` when given (cluster DNS or ``dnsPolicy: None``), else the host's."""
    cfg = dns if dns is not None else host_dns_config(host_path)
    servers = list(dict.fromkeys(cfg.servers))[:MAX_NAMESERVERS]
    searches: list[str] = []
    total = 0
    for s in dict.fromkeys(cfg.searches):
        if len(searches) >= MAX_SEARCHES or total + len(s) + (1 if searches else 0) > MAX_SEARCH_CHARS:
            break
        total += len(s) + (1 if searches else 0)
        searches.append(s)
    out = []
    if searches:
        out.append(f"search {' '.join(searches)}\n")
    out += [f"nameserver {s}\n" for s in servers]
    if cfg.options:
        out.append(f"options {' '.join(dict.fromkeys(cfg.options))}\n")
    return "".join(out)
