"""The control-plane fixtures of the component tests, plus a kubeconfig for the real kubectl."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.component.control.conftest import control_plane, processes, pytest_runtest_makereport  # noqa: F401


@pytest.fixture
def kubeconfig(apiserver_url: str, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{apiserver_url}"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: c
users: [{{name: u, user: {{}}}}]
""")
    yield str(path)
