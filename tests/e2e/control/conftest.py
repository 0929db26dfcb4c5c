"""The kubelet e2e fixtures (real kubelet processes, image store, leak checks) plus the control plane's
processes (scheduler, controller-manager)."""

from __future__ import annotations

from tests.component.control.conftest import processes, pytest_runtest_makereport  # noqa: F401
from tests.e2e.kubelet.conftest import image_root, kenv  # noqa: F401
