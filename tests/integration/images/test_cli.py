"""``kubelite image ...`` end to end as a user runs it (subprocesses), against the loopback registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.images.conftest import Registry

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def kl(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "kubelite", "image", "--root", str(root), "--offline", *args],
                       capture_output=True, text=True, env=env, timeout=120)
    if ok and p.returncode != 0:
        raise AssertionError(f"kubelite image {' '.join(args)} failed: {p.stderr}")
    return p


def test_cli_round_trip(tmp_path: Path, registry: Registry) -> None:
    root = tmp_path / "store"
    kl(root, "base")
    ls = kl(root, "ls").stdout.splitlines()
    assert ls[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert {tuple(line.split()[:2]) for line in ls[1:]} == {("busybox", "1.35"), ("busybox", "latest")}
    assert [line.split()[:2] for line in kl(root, "ls", "busybox:1.35").stdout.splitlines()[1:]] == [["busybox", "1.35"]]

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "data.txt").write_text("data")
    (ctx / "Dockerfile").write_text("FROM busybox:1.35\nCOPY data.txt /data.txt\nENV MODE=test\n")
    out = kl(root, "build", "-t", "demo:1", str(ctx)).stdout
    assert "Step 2/3 : COPY data.txt /data.txt" in out and "Successfully tagged docker.io/library/demo:1" in out
    assert kl(root, "build", "-t", "demo:1", str(ctx)).stdout.count("Using cache") == 2

    hist = kl(root, "history", "--files", "demo:1").stdout
    assert "    A /data.txt" in hist and "ENV MODE=test" in hist
    [doc] = json.loads(kl(root, "inspect", "demo:1").stdout)
    assert doc["RepoTags"] == ["demo:1"] and "MODE=test" in doc["Config"]["Env"] and len(doc["RootFS"]["Layers"]) == 2

    kl(root, "tag", "demo:1", f"{registry.host}/cli/demo:1")
    push = kl(root, "push", f"{registry.host}/cli/demo:1").stdout
    assert f"digest: {doc['Manifest']['Digest']}" in push

    other = tmp_path / "other"
    pull = kl(other, "pull", f"{registry.host}/cli/demo:1").stdout
    assert f"Digest: {doc['Manifest']['Digest']}" in pull and "Downloaded newer image" in pull
    assert "Image is up to date" in kl(other, "pull", f"{registry.host}/cli/demo:1").stdout

    archive = tmp_path / "demo.tar"
    kl(root, "export", "--format", "docker-archive", "-o", str(archive), "demo:1")
    third = tmp_path / "third"
    assert "Loaded image: demo:1" in kl(third, "import", str(archive)).stdout
    [again] = json.loads(kl(third, "inspect", "demo:1").stdout)
    assert again["Id"] == doc["Id"]

    rm = kl(root, "rm", "demo:1").stdout
    assert "Untagged: demo:1" in rm and "Deleted" not in rm       # still named by the registry tag
    kl(root, "rm", f"{registry.host}/cli/demo:1")
    assert "Total reclaimed space" in kl(root, "prune").stdout
    assert "demo" not in kl(root, "ls").stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for args, words in ((("inspect", "nope"), "not found"), (("pull", "busybox"), "offline mode"),
                        (("tag", "nope", "x"), "not found"), (("import", str(tmp_path / "none.tar")), "none.tar"),
                        (("pull", "Busybox"), "must be lowercase")):
        p = kl(root, *args, ok=False)
        assert p.returncode == 1 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_cli_export_to_stdout_import_from_stdin(tmp_path: Path) -> None:
    kl(tmp_path / "a", "base")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    k = f"{sys.executable} -m kubelite image --offline --root"
    p = subprocess.run(f"{k} {tmp_path / 'a'} export -o - busybox:1.35 | {k} {tmp_path / 'b'} import -",
                       shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "Loaded image: busybox:1.35" in p.stdout, p.stderr
    assert "busybox" in kl(tmp_path / "b", "ls").stdout
