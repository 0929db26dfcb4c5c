"""References normalise as Docker/Kubernetes do; bad ones are refused with a reason."""

import pytest

from kubelet.runtime.images.errors import InvalidReference
from kubelet.runtime.images.reference import is_loopback_host, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("ref,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.35", "docker.io/library/busybox:1.35", "busybox:1.35"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("bitnami/nginx:1.2", "docker.io/bitnami/nginx:1.2", "bitnami/nginx:1.2"),
    ("127.0.0.1:5000/mini/busybox:1.35", "127.0.0.1:5000/mini/busybox:1.35", "127.0.0.1:5000/mini/busybox:1.35"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
    (f"busybox:1.35@{D}", f"docker.io/library/busybox:1.35@{D}", f"busybox:1.35@{D}"),
    ("[::1]:5000/x/y:z", "[::1]:5000/x/y:z", "[::1]:5000/x/y:z"),
])
def test_normalises(ref: str, full: str, familiar: str) -> None:
    r = parse(ref)
    assert str(r) == full
    assert r.familiar == familiar


def test_parts() -> None:
    r = parse(f"127.0.0.1:5000/mini/busybox:1.35@{D}")
    assert (r.domain, r.path, r.tag, r.digest) == ("127.0.0.1:5000", "mini/busybox", "1.35", D)
    assert r.object == D and r.registry_host == "127.0.0.1:5000"
    assert parse("busybox").registry_host == "registry-1.docker.io"
    assert parse("busybox").object == "latest"


@pytest.mark.parametrize("ref,why", [
    ("", "invalid"),
    ("Busybox", "lowercase"),
    ("busybox:", "tag"),
    ("busybox@sha256:abc", "digest"),
    ("busy box", "invalid"),
    ("-busybox", "invalid"),
    ("busybox:" + "x" * 200, "tag"),
])
def test_refused(ref: str, why: str) -> None:
    with pytest.raises(InvalidReference, match=why):
        parse(ref)


@pytest.mark.parametrize("host,loop", [
    ("127.0.0.1:5000", True), ("127.3.2.1", True), ("localhost:80", True), ("[::1]:5000", True),
    ("docker.io", False), ("10.0.0.1:5000", False), ("registry-1.docker.io", False), ("localhost.example.com", False),
])
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback_host(host) is loop
