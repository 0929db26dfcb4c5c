"""Builds without containers (RUN through a fake runner): layers, config, history, cache, .dockerignore."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Callable, Sequence

import pytest

from kubelet.runtime.images.build import build
from kubelet.runtime.images.errors import BuildError
from kubelet.runtime.images.layers import changes, find_in_layers
from kubelet.runtime.images.store import ImageStore
from tests.unit.images.conftest import base_store


@pytest.fixture
def store(tmp_path: Path, base_template: Path) -> ImageStore:
    return base_store(base_template, tmp_path / "store")


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str]) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, content in files.items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(content)
    return ctx


def test_copy_env_workdir_config_and_history(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, """FROM busybox:1.35
ARG GREETING=hello
ENV APP=/srv/app GREETING=$GREETING
WORKDIR $APP
COPY app/ ./
COPY one.txt two.txt sub/
LABEL version="1.0" greeting=$GREETING
EXPOSE 8080 53/udp
USER nobody
ENTRYPOINT ["/bin/app"]
""", {"app/main.sh": "echo main", "app/lib/x": "x", "one.txt": "1", "two.txt": "2", "app/debug.log": "noise"})
    (ctx / ".dockerignore").write_text("**/*.log\n")
    result = build(store, ctx, ["app:1"], build_args={"GREETING": "hi"})
    img = result.image
    cfg = img.config["config"]
    assert "GREETING=hi" in cfg["Env"] and "APP=/srv/app" in cfg["Env"]
    assert cfg["WorkingDir"] == "/srv/app" and cfg["User"] == "nobody" and cfg["Entrypoint"] == ["/bin/app"]
    assert cfg["Cmd"] is None          # ENTRYPOINT resets the CMD inherited from busybox, as Docker does
    assert cfg["Labels"] == {"version": "1.0", "greeting": "hi"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    layers = [layer.path for layer in img.layers]
    assert (find_in_layers(layers, "srv/app/main.sh") or Path()).read_text() == "echo main"
    assert find_in_layers(layers, "srv/app/lib/x") is not None
    assert find_in_layers(layers, "srv/app/debug.log") is None
    assert (find_in_layers(layers, "srv/app/sub/two.txt") or Path()).read_text() == "2"
    st = os.stat(find_in_layers(layers, "srv/app/main.sh") or "")
    assert (st.st_uid, st.st_gid) == (0, 0)
    by = [h["created_by"] for h in img.config["history"]]
    assert "/bin/sh -c #(nop)  ENV APP=/srv/app GREETING=hi" in by
    assert any(b.startswith("/bin/sh -c #(nop) COPY dir:") and b.endswith(" in /srv/app/ ") for b in by)
    assert "/bin/sh -c #(nop) WORKDIR /srv/app" in by
    assert len(img.layers) == 4   # busybox + WORKDIR (created) + 2 COPY
    assert sum(1 for h in img.config["history"] if not h.get("empty_layer")) == len(img.layers)


def test_rebuild_is_all_cache_hits_and_same_id(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, "FROM busybox:1.35\nENV A=1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n", {"f": "v1"})
    first = build(store, ctx, ["c:1"])
    again = build(store, ctx, ["c:1"])
    assert first.cached == 0 and again.cached == again.cacheable == 3
    assert again.image.id == first.image.id
    (ctx / "f").write_text("v2")
    changed = build(store, ctx, ["c:1"])
    assert changed.cached == 1 and changed.image.id != first.image.id   # ENV still cached, COPY not
    assert build(store, ctx, ["c:1"], no_cache=True).cached == 0


def test_add_extracts_local_tars_and_chown(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, "FROM busybox:1.35\nADD files.tgz /opt/\nCOPY --chown=nobody plain /plain\n",
               {"plain": "p"})
    with tarfile.open(ctx / "files.tgz", "w:gz") as tf:
        ti = tarfile.TarInfo("dir/inner.txt")
        ti.size, ti.uid = 5, 1234
        tf.addfile(ti, io.BytesIO(b"inner"))
    img = build(store, ctx, ["add:1"]).image
    layers = [layer.path for layer in img.layers]
    inner = find_in_layers(layers, "opt/dir/inner.txt")
    assert inner is not None and inner.read_text() == "inner" and os.stat(inner).st_uid == 1234
    plain = find_in_layers(layers, "plain")
    assert plain is not None and (os.stat(plain).st_uid, os.stat(plain).st_gid) == (65534, 65534)


class FakeRun:
    """Writes into the upper dir what a container would have: a new file and a whiteout."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Path], list[str], list[str], str, str]] = []

    def run(self, lowerdirs: Sequence[Path], upper: Path, work: Path, argv: Sequence[str], env: Sequence[str],
            cwd: str, user: str, output: Callable[[bytes], None]) -> int:
        self.calls.append((list(lowerdirs), list(argv), list(env), cwd, user))
        (upper / "etc").mkdir()
        (upper / "etc/created").write_text("by run")
        os.mknod(upper / "etc/first", stat.S_IFCHR, os.makedev(0, 0))
        output(b"ran\n")
        return 0


def test_run_layer_from_upper_dir_with_deletions(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, "FROM busybox:1.35\nCOPY first /etc/first\nARG V=7\nRUN rm /etc/first\n",
               {"first": "1"})
    fake = FakeRun()
    lines: list[str] = []
    img = build(store, ctx, ["run:1"], runner=fake, log=lines.append).image
    [(lowers, argv, env, cwd, user)] = fake.calls
    assert argv == ["/bin/sh", "-c", "rm /etc/first"] and "V=7" in env and cwd == "/" and user == ""
    assert lowers == [layer.path for layer in img.layers[:-1]]
    assert "ran" in lines
    per_layer = list(changes([layer.path for layer in img.layers]))
    assert ("A", "/etc/first") in per_layer[1]
    assert ("D", "/etc/first") in per_layer[2] and ("A", "/etc/created") in per_layer[2]
    assert img.config["history"][-1]["created_by"] == "|1 V=7 /bin/sh -c rm /etc/first"
    assert find_in_layers([layer.path for layer in img.layers], "etc/first") is None
    again = build(store, ctx, ["run:1"], runner=fake)
    assert len(fake.calls) == 1 and again.image.id == img.id


def test_from_scratch(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY hello /hello\nCMD [\"/hello\"]\n", {"hello": "#!"})
    img = build(store, ctx, ["scratch:1"]).image
    assert len(img.layers) == 1 and img.config["config"]["Cmd"] == ["/hello"]


@pytest.mark.parametrize("dockerfile,files,msg", [
    ("FROM busybox:1.35\nCOPY missing /x\n", {}, "not found in the build context"),
    ("FROM busybox:1.35\nADD http://example.com/x /x\n", {}, "remote URLs"),
    ("FROM busybox:1.35\nCOPY ../outside /x\n", {}, "outside the build context|not found"),
    ("FROM nothere:1\n", {}, "image not found"),
    ("FROM busybox:1.35\nRUN true\n", {}, "needs a container runtime"),
    ("FROM busybox:1.35\nCOPY --chown=ghost f /f\n", {"f": "x"}, "unknown user"),
])
def test_build_errors(tmp_path: Path, store: ImageStore, dockerfile: str, files: dict[str, str], msg: str) -> None:
    (tmp_path / "outside").write_text("o")
    ctx = _ctx(tmp_path, dockerfile, files)
    with pytest.raises(BuildError, match=msg):
        build(store, ctx, ["bad:1"])
    assert store.get("bad:1") is None


def test_symlinks_in_the_context_never_reach_outside(tmp_path: Path, store: ImageStore) -> None:
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "passwd").write_text("host data")
    ctx = _ctx(tmp_path, "FROM busybox:1.35\nCOPY link/passwd /got\n", {})
    (ctx / "link").symlink_to(secret)
    with pytest.raises(BuildError, match="not found"):
        build(store, ctx, ["sym:1"])
    (ctx / "inside").mkdir()
    (ctx / "inside/passwd").write_text("context data")
    (ctx / "link").unlink()
    (ctx / "link").symlink_to("/inside")        # absolute: taken relative to the context root
    img = build(store, ctx, ["sym:1"]).image
    assert (find_in_layers([la.path for la in img.layers], "got") or Path()).read_text() == "context data"


def test_multi_stage_copy_from(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, """FROM busybox:1.35 AS builder
COPY src/ /work/
COPY extra /work/sub/extra
FROM scratch
COPY --from=builder /work /app
COPY --from=0 /work/a.txt /single.txt
COPY --from=busybox:1.35 /bin/busybox /bin/busybox
CMD ["/bin/busybox", "true"]
""", {"src/a.txt": "A", "src/sub/b.txt": "B", "extra": "E"})
    img = build(store, ctx, ["multi:1"]).image
    layers = [la.path for la in img.layers]
    assert len(layers) == 3                       # only the final stage's own layers
    assert (find_in_layers(layers, "app/a.txt") or Path()).read_text() == "A"
    assert (find_in_layers(layers, "app/sub/b.txt") or Path()).read_text() == "B"
    assert (find_in_layers(layers, "app/sub/extra") or Path()).read_text() == "E"
    assert (find_in_layers(layers, "single.txt") or Path()).read_text() == "A"
    assert os.access(find_in_layers(layers, "bin/busybox") or "", os.X_OK)
    assert build(store, ctx, ["multi:1"]).image.id == img.id


def test_shell_healthcheck_onbuild(tmp_path: Path, store: ImageStore) -> None:
    ctx = _ctx(tmp_path, """FROM busybox:1.35
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
HEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
ONBUILD COPY . /app
CMD echo shell form
""", {})
    cfg = build(store, ctx, ["hc:1"]).image.config["config"]
    assert cfg["Shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]
    assert cfg["Cmd"] == ["/bin/ash", "-eo", "pipefail", "-c", "echo shell form"]
    assert cfg["Healthcheck"] == {"Interval": 5_000_000_000, "Timeout": 90_000_000_000, "Retries": 3,
                                  "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]}
    assert cfg["OnBuild"] == ["COPY . /app"]
    with pytest.raises(BuildError, match="bad duration"):
        (ctx / "Dockerfile").write_text("FROM busybox:1.35\nHEALTHCHECK --interval=5x CMD true\n")
        build(store, ctx, ["hc:2"])
