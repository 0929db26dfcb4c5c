"""IP address management on disk, in the manner of CNI's host-local plugin.

One directory per pod CIDR under the IPAM root (``10.244.1.0_24/``) holds a file per allocated
address (name = the IP, content = the owner, e.g. the sandbox id), ``last_reserved_ip`` for
round-robin allocation, and ``lock``, taken with ``flock`` around every change. So two kubelets on
one host never hand out one address twice, a restarted kubelet finds its allocations where it left
them, and an address is reused only after it was released (and after the others were tried).
The network address, the gateway (first host address) and the broadcast address are never given out.

A released address' file is emptied, not deleted, and the next allocation of an address without a file
renames an empty one to it: on a journal-less ext4 every new inode makes the allocator step over the
block group's recently deleted inodes (~0.5-1 ms per file once pods have come and gone), so a node that
starts and stops pods makes and deletes no IPAM inode after its first pods. An empty file is a free address.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kubelite.api.errors import KubeliteError

LAST_FILE = "last_reserved_ip"
LOCK_FILE = "lock"


class IpamError(KubeliteError):
    """No free address left, or a bad CIDR."""


def gateway_of(cidr: str) -> str:
    """The first host address of ``cidr`` (the bridge's address for that node)."""
    net = ipaddress.ip_network(cidr, strict=True)
    return str(net.network_address + 1)


def node_subnet(cluster_cidr: str, index: int, prefixlen: int = 24) -> str:
    """The ``index``-th /``prefixlen`` of ``cluster_cidr`` (as Kubernetes' node IPAM hands out
    ``spec.podCIDR``: 10.244.0.0/16 → 10.244.0.0/24, 10.244.1.0/24, ...)."""
    net = ipaddress.ip_network(cluster_cidr, strict=True)
    subnets = net.subnets(new_prefix=prefixlen)
    count = 1 << (prefixlen - net.prefixlen)
    if not 0 <= index < count:
        raise IpamError(f"{cluster_cidr} has {count} /{prefixlen} subnets; no index {index}")
    for i, sub in enumerate(subnets):
        if i == index:
            return str(sub)
    raise AssertionError("unreachable")


class Ipam:
    """Allocations within one pod CIDR, stored under ``root``."""

    def __init__(self, root: str | Path, cidr: str) -> None:
        try:
            self.net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as e:
            raise IpamError(f"invalid pod CIDR {cidr!r}: {e}") from e
        if self.net.version != 4 or self.net.prefixlen > 30:
            raise IpamError(f"pod CIDR {cidr} must be IPv4 with room for pods (prefix ≤ /30)")
        self.cidr = str(self.net)
        self.gateway = gateway_of(self.cidr)
        self.dir = Path(root) / self.cidr.replace("/", "_")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # releases the lock

    def _read(self, name: str) -> str:
        """The owner recorded in file ``name`` ("" when it is empty or missing: the address is free)."""
        try:
            fd = os.open(os.path.join(self.dir, name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return ""
        try:
            return os.read(fd, 4096).decode(errors="replace").strip()
        finally:
            os.close(fd)

    def _scan(self) -> tuple[dict[str, str], list[str]]:
        """(ip → owner of every current allocation, the empty files of released addresses)."""
        owners: dict[str, str] = {}
        empty: list[str] = []
        for entry in os.scandir(self.dir):
            if entry.name in (LAST_FILE, LOCK_FILE) or entry.name.startswith("."):
                continue
            owner = self._read(entry.name)
            if owner:
                owners[entry.name] = owner
            else:
                empty.append(entry.name)
        return owners, empty

    def allocations(self) -> dict[str, str]:
        """ip → owner of every current allocation."""
        return self._scan()[0]

    def lookup(self, owner: str) -> str | None:
        """The address held by ``owner``, if any."""
        for ip, o in self.allocations().items():
            if o == owner:
                return ip
        return None

    def allocate(self, owner: str) -> str:
        """An address for ``owner``; the same one again if ``owner`` already holds one.

        Raises:
            IpamError: the CIDR is full.
        """
        if not owner or "\n" in owner:
            raise IpamError(f"invalid IPAM owner {owner!r}")
        with self._locked():
            owners, empty = self._scan()
            for ip, o in owners.items():
                if o == owner:
                    return ip
            hosts = int(self.net.num_addresses)
            first = int(self.net.network_address) + 2            # .0 network, .1 gateway
            last = int(self.net.broadcast_address) - 1
            try:
                with open(os.path.join(self.dir, LAST_FILE)) as f:
                    prev = int(ipaddress.ip_address(f.read().strip()))
            except (FileNotFoundError, ValueError):
                prev = first - 1
            start = prev + 1 if first <= prev + 1 <= last else first
            count = last - first + 1
            spare = self._addresses(empty)
            for i in range(max(0, count)):
                ip = str(ipaddress.ip_address(first + (start - first + i) % count))
                if ip in owners:
                    continue
                path = os.path.join(self.dir, ip)
                if ip in spare:
                    spare.remove(ip)
                elif spare:                          # no file yet: a released address' inode becomes it
                    os.rename(os.path.join(self.dir, spare.pop()), path)
                # (every change is made under the lock: the scan above saw every owner)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:                                 # no fsync: a host crash ends every pod it could account for
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, (owner + "\n").encode(), 0)
                finally:
                    os.close(fd)
                self._write_last(ip)
                return ip
            raise IpamError(f"no free address left in {self.cidr} ({hosts} addresses, {count} usable)")

    def _addresses(self, names: list[str]) -> list[str]:
        """Those of ``names`` that are addresses of this CIDR (an empty file is only reused if it is one)."""
        out = []
        for n in names:
            try:
                if ipaddress.ip_address(n) in self.net:
                    out.append(n)
            except ValueError:
                pass
        return out

    def _write_last(self, ip: str) -> None:
        """Record the round-robin position, in place (a hint only: a torn write just restarts the round,
        and no new inode is made per pod, which costs ~1 ms on a busy journal-less ext4)."""
        fd = os.open(self.dir / LAST_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, ip.encode(), 0)
        finally:
            os.close(fd)

    def release(self, owner: str) -> str | None:
        """Free what ``owner`` holds; returns the address (None if it held none). Idempotent."""
        with self._locked():
            ip = self.lookup(owner)
            if ip is not None:
                self._empty(ip)
            return ip

    def release_ip(self, ip: str) -> None:
        with self._locked():
            self._empty(str(ipaddress.ip_address(ip)))

    def _empty(self, ip: str) -> None:
        """Mark ``ip`` free, keeping its file's inode for a later allocation (see the module doc)."""
        try:
            fd = os.open(os.path.join(self.dir, ip), os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def remove_all(self) -> None:
        """Delete this CIDR's whole store (node removed / tests' teardown)."""
        with self._locked():
            for entry in os.scandir(self.dir):
                if entry.name != LOCK_FILE:
                    os.unlink(entry.path)
        try:
            os.unlink(self.dir / LOCK_FILE)
            os.rmdir(self.dir)
        except OSError:
            pass
