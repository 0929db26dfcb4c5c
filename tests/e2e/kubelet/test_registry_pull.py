"""An image that exists only in a registry runs as a pod: the kubelet pulls it (from a real Debian
``docker-registry`` on loopback, pushed there by skopeo as a Docker v2s2 manifest), the containers get the
image's layers with the last layer's deletion applied, and the status names the image by its digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.kubelet.conftest import Env, by_name, pod_manifest
from tests.integration.images.conftest import make_umoci_image
from tests.support.registry import Registry, registry  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.e2e


async def test_kubelet_pulls_a_registry_image_and_runs_it(kenv: Env, registry: Registry,  # noqa: F811
                                                          tmp_path: Path) -> None:
    layout = make_umoci_image(tmp_path)
    ref = f"{registry.host}/course/three-layers:1.0"
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{layout}:1.0",
                    f"docker://{ref}")
    node = kenv.node()
    await kenv.ready(node)
    # succeeds only with all three layers stacked: /etc/two from the top one, /etc/one whited out by it
    c = {"name": "c", "image": ref, "command": ["sh", "-c", "grep -qx two /etc/two && test ! -e /etc/one"]}
    await kenv.client.create("pods", pod_manifest("pulled", node.name, c, restartPolicy="Never"), "default")
    s = await kenv.wait_status("pulled", lambda s: s.get("phase") in ("Succeeded", "Failed"), 60, "pod done")
    st = by_name(s["containerStatuses"], "c")
    assert s["phase"] == "Succeeded", st
    assert st["image"] == ref
    assert st["imageID"].startswith(f"{registry.host}/course/three-layers@sha256:"), st["imageID"]
