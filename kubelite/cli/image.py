"""``kubelite image ls|inspect|history|rm|tag|import|export|pull|push|build|prune|base``: the node's images.

Docker-like output over the node's image store (``--root``, default ``/var/lib/kubelite/images`` or
``$KUBELITE_IMAGE_ROOT``). Registry commands honour ``--offline``, ``--insecure-registry`` and the
credentials in ``~/.docker/config.json``. Errors are one line on stderr, exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelet.runtime.images.archive import DOCKER_ARCHIVE, OCI_ARCHIVE, export_archive, import_archive
from kubelet.runtime.images.base import ensure_base_images
from kubelet.runtime.images.errors import ImageError
from kubelet.runtime.images.layers import changes
from kubelet.runtime.images.reference import parse
from kubelet.runtime.images.store import DEFAULT_ROOT, ImageStore, StoredImage, repo_of
from kubelite.api.errors import KubeliteError

if TYPE_CHECKING:
    from kubelet.runtime.images.registry import RegistryConfig


def human_size(n: float) -> str:
    """Docker's units.HumanSize: SI, 3 significant digits (``1.23MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def human_ago(created: str) -> str:
    try:
        t = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "N/A"
    s = (datetime.now(timezone.utc) - t).total_seconds()
    for limit, div, unit in ((60, 1, "second"), (3600, 60, "minute"), (86400, 3600, "hour"),
                             (86400 * 14, 86400, "day"), (86400 * 60, 86400 * 7, "week"),
                             (86400 * 730, 86400 * 30, "month")):
        if s < limit:
            n = max(1, int(s // div))
            return f"{n} {unit}{'s' if n != 1 else ''} ago" if s >= 1 else "Less than a second ago"
    return f"{int(s // (86400 * 365))} years ago"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _layer_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            total += st.st_size if not os.path.islink(os.path.join(dirpath, f)) else 0
    return total


class Progress:
    """Docker-style per-layer lines, redrawn in place on a terminal; plain lines otherwise."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.last = 0.0

    def __call__(self, id_: str, status: str, done: int, total: int) -> None:
        short = id_.removeprefix("sha256:")[:12]
        if id_ not in self.lines:
            self.order.append(id_)
        bar = ""
        if status in ("Downloading", "Pushing") and total > 0:
            filled = int(40 * done / total)
            bar = f" [{'=' * filled}{'>' if filled < 40 else ''}{' ' * max(0, 39 - filled)}] " \
                  f"{human_size(done)}/{human_size(total)}"
        self.lines[id_] = f"{short}: {status}{bar}"
        if not self.tty:
            if status not in ("Downloading", "Pushing", "Extracting"):
                print(self.lines[id_], file=self.stream)
            return
        now = time.monotonic()
        if status in ("Downloading", "Pushing") and now - self.last < 0.1:
            return
        self.last = now
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}A")
        for i in self.order:
            self.stream.write(f"\x1b[2K{self.lines[i]}\n")
        self.drawn = len(self.order)
        self.stream.flush()


def _store(a: argparse.Namespace) -> ImageStore:
    return ImageStore(a.root)


def _registry_config(a: argparse.Namespace) -> "RegistryConfig":
    from kubelet.runtime.images.auth import load_docker_config
    from kubelet.runtime.images.registry import RegistryConfig
    creds = load_docker_config(Path(a.docker_config) if a.docker_config else None)
    return RegistryConfig.load(Path(a.root), offline=a.offline, insecure_registries=tuple(a.insecure_registry or ()),
                               credentials=creds)


# ------------------------------------------------------------------------------------------ commands
def cmd_ls(a: argparse.Namespace) -> int:
    images = sorted(_store(a).list(), key=lambda i: i.created, reverse=True)
    tagged = a.repository and ":" in a.repository.rsplit("/", 1)[-1]
    want = parse(a.repository) if a.repository else None

    def shown(name: str) -> bool:
        return want is None or (repo_of(name) == want.name and (not tagged or name == str(want)))
    if want is not None:
        images = [i for i in images if any(shown(n) for n in i.names)]
    if a.quiet:
        for img in images:
            print(img.id[7:19] if not a.no_trunc else img.id)
        return 0
    head = ["REPOSITORY", "TAG", *(["DIGEST"] if a.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    rows = [head]
    for img in images:
        names = img.names or ("",)
        for name in names:
            if name and not shown(name):
                continue
            r = parse(name) if name else None
            repo = r.familiar_repo if r else "<none>"
            tag = (r.tag or "<none>") if r else "<none>"
            digest = next((d.split("@", 1)[1] for d in img.repo_digests if r and d.startswith(r.name + "@")), "<none>")
            rows.append([repo, tag, *([digest] if a.digests else []), img.id[7:19] if not a.no_trunc else img.id,
                         human_ago(img.created), human_size(img.size)])
    print(_table(rows))
    return 0


def _inspect_doc(img: StoredImage) -> dict[str, Any]:
    return {
        "Id": img.id,
        "RepoTags": [parse(n).familiar for n in img.tags],
        "RepoDigests": [parse(d).familiar for d in img.repo_digests],
        "Created": img.created,
        "Author": img.config.get("author", ""),
        "Config": img.config.get("config", {}),
        "Architecture": img.config.get("architecture", ""),
        "Os": img.config.get("os", ""),
        "Size": img.size,
        "Manifest": {"Digest": img.manifest_digest, "MediaType": img.media_type},
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(str(layer.path) for layer in reversed(img.layers))}},
        "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in img.layers]},
        "Layers": [{"Digest": layer.digest, "DiffID": layer.diff_id, "Size": layer.size,
                    "MediaType": layer.media_type, "Path": str(layer.path)} for layer in img.layers],
    }


def cmd_inspect(a: argparse.Namespace) -> int:
    store = _store(a)
    docs = [_inspect_doc(store.resolve(ref)) for ref in a.refs]
    print(json.dumps(docs, indent=4))
    return 0


def cmd_history(a: argparse.Namespace) -> int:
    img = _store(a).resolve(a.ref)
    history = img.config.get("history") or [{"created_by": ""} for _ in img.layers]
    per_layer = list(changes([layer.path for layer in img.layers])) if a.files else []
    rows: list[tuple[list[str], list[tuple[str, str]]]] = []
    li = 0
    for h in history:
        if h.get("empty_layer"):
            layer_col, size, files = "<empty>", 0, []
        else:
            if li >= len(img.layers):
                break
            layer = img.layers[li]
            layer_col = layer.diff_id if a.no_trunc else layer.diff_id[7:19]
            size = _layer_bytes(layer.path)
            files = per_layer[li] if a.files else []
            li += 1
        by = h.get("created_by", "")
        if not a.no_trunc and len(by) > 60:
            by = by[:57] + "..."
        rows.append(([layer_col, human_ago(h.get("created", "")), by, human_size(size), h.get("comment", "")], files))
    rows.reverse()
    table = _table([["LAYER", "CREATED", "CREATED BY", "SIZE", "COMMENT"], *(r for r, _ in rows)]).splitlines()
    print(table[0])
    for line, (_, files) in zip(table[1:], rows):
        print(line)
        for kind, path in files:
            print(f"    {kind} {path}")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    store = _store(a)
    rc = 0
    for ref in a.refs:
        try:
            for line in store.remove(ref, force=a.force):
                kind, _, what = line.partition(": ")
                print(f"{kind}: {parse(what).familiar if kind == 'Untagged' else what}")
        except ImageError as exc:
            print(f"kubelite image rm: {exc}", file=sys.stderr)
            rc = 1
    return rc


def cmd_tag(a: argparse.Namespace) -> int:
    _store(a).tag(a.source, a.target)
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    store = _store(a)
    if a.file == "-":                       # `kubelite image export … -o - | kubelite image import -`
        import shutil
        import tempfile
        store.blobs.tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=store.blobs.tmp, suffix=".tar") as tmp:
            shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
            tmp.flush()
            return _import_file(store, tmp.name, a)
    return _import_file(store, a.file, a)


def _import_file(store: ImageStore, path: str, a: argparse.Namespace) -> int:
    for img in import_archive(store, path, a.tag or None):
        for n in img.tags or (img.id,):
            print(f"Loaded image: {parse(n).familiar if '/' in n else n}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    store = _store(a)
    if a.output == "-":
        export_archive(store, a.refs, sys.stdout.buffer, a.format)
    else:
        export_archive(store, a.refs, a.output, a.format)
    return 0


def cmd_pull(a: argparse.Namespace) -> int:
    store = _store(a)
    ref = parse(a.ref)
    print(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
    before = store.get(str(ref))

    from kubelet.runtime.images.registry import RegistryClient

    async def go() -> StoredImage:
        async with RegistryClient(_registry_config(a), progress=Progress()) as c:
            return await c.pull(store, a.ref)
    img = asyncio.run(go())
    digest = next((d.split("@", 1)[1] for d in img.repo_digests if d.startswith(ref.name + "@")), img.manifest_digest)
    print(f"Digest: {digest}")
    same = before is not None and before.manifest_digest == img.manifest_digest
    print(f"Status: {'Image is up to date' if same else 'Downloaded newer image'} for {ref.familiar}")
    print(str(ref))
    return 0


def cmd_push(a: argparse.Namespace) -> int:
    store = _store(a)
    target = a.dest or a.ref
    img = store.resolve(a.ref)

    from kubelet.runtime.images.registry import RegistryClient

    async def go() -> str:
        async with RegistryClient(_registry_config(a), progress=Progress()) as c:
            return await c.push(store, a.ref, target)
    digest = asyncio.run(go())
    r = parse(target)
    print(f"{r.tag or 'latest'}: digest: {digest} size: {store.blobs.size(img.manifest_digest)}")
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from kubelet.runtime.images.build import build
    store = _store(a)
    args = dict(kv.split("=", 1) if "=" in kv else (kv, os.environ.get(kv, "")) for kv in a.build_arg or [])
    dockerfile = Path(a.file) if a.file else None
    runner = None if a.runtime == "none" else _LazyRunner(a.runtime)
    result = build(store, a.context, a.tag or [], dockerfile=dockerfile, build_args=args, no_cache=a.no_cache,
                   runner=runner, log=lambda line: print(line, flush=True))
    if a.quiet:
        print(result.image.id)
    return 0


class _LazyRunner:
    """Finds the OCI runtime only when a RUN step needs one."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    def run(self, *args: Any, **kwargs: Any) -> int:
        from kubelet.runtime.images.runner import OciRunStep
        return OciRunStep(self.runtime).run(*args, **kwargs)


def cmd_prune(a: argparse.Namespace) -> int:
    report = _store(a).prune()
    if report.images:
        print("Deleted Images:")
        for i in report.images:
            print(f"deleted: {i}")
    print(f"Deleted {report.blobs} blobs and {report.layers} layer directories")
    print(f"Total reclaimed space: {human_size(report.bytes_freed)}")
    return 0


def cmd_base(a: argparse.Namespace) -> int:
    img = ensure_base_images(_store(a))
    print(f"{', '.join(parse(n).familiar for n in img.tags)}: {img.id}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelite image", description="Manage the node's images.")
    p.add_argument("--root", default=str(DEFAULT_ROOT), help="image store directory (default %(default)s)")
    p.add_argument("--offline", action="store_true", default=os.environ.get("KUBELITE_OFFLINE") == "1",
                   help="never contact a non-loopback registry")
    p.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]",
                   help="reach this registry over plain HTTP (loopback ones always are)")
    p.add_argument("--docker-config", default="", help="docker config.json with registry credentials")
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("ls", aliases=["list", "images"], help="list images")
    ls.add_argument("repository", nargs="?", help="only this repository (and tag)")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.add_argument("--digests", action="store_true")
    ls.add_argument("--no-trunc", action="store_true")
    ls.set_defaults(fn=cmd_ls)
    i = sub.add_parser("inspect", help="show an image's details as JSON")
    i.add_argument("refs", nargs="+")
    i.set_defaults(fn=cmd_inspect)
    h = sub.add_parser("history", help="show an image's layers")
    h.add_argument("ref")
    h.add_argument("--files", action="store_true", help="list what each layer adds (A), changes (C), deletes (D)")
    h.add_argument("--no-trunc", action="store_true")
    h.set_defaults(fn=cmd_history)
    r = sub.add_parser("rm", aliases=["rmi"], help="remove images")
    r.add_argument("refs", nargs="+")
    r.add_argument("-f", "--force", action="store_true")
    r.set_defaults(fn=cmd_rm)
    t = sub.add_parser("tag", help="add a name to an image")
    t.add_argument("source")
    t.add_argument("target")
    t.set_defaults(fn=cmd_tag)
    im = sub.add_parser("import", aliases=["load"], help="import a docker-archive or OCI archive")
    im.add_argument("file", help="the archive, or - for stdin")
    im.add_argument("-t", "--tag", action="append", help="name the imported image (instead of the archive's names)")
    im.set_defaults(fn=cmd_import)
    ex = sub.add_parser("export", aliases=["save"], help="write images to an archive")
    ex.add_argument("refs", nargs="+")
    ex.add_argument("-o", "--output", required=True, help="file, or - for stdout")
    ex.add_argument("--format", choices=[DOCKER_ARCHIVE, OCI_ARCHIVE], default=OCI_ARCHIVE)
    ex.set_defaults(fn=cmd_export)
    pl = sub.add_parser("pull", help="pull an image from a registry")
    pl.add_argument("ref")
    pl.set_defaults(fn=cmd_pull)
    ps = sub.add_parser("push", help="push an image to a registry")
    ps.add_argument("ref")
    ps.add_argument("dest", nargs="?", help="push under this name instead")
    ps.set_defaults(fn=cmd_push)
    b = sub.add_parser("build", help="build an image from a Dockerfile")
    b.add_argument("context")
    b.add_argument("-t", "--tag", action="append")
    b.add_argument("-f", "--file")
    b.add_argument("--build-arg", action="append", metavar="KEY=VALUE")
    b.add_argument("--no-cache", action="store_true")
    b.add_argument("-q", "--quiet", action="store_true", help="print the image id at the end")
    b.add_argument("--runtime", default="auto", choices=["auto", "kubelite", "runc", "crun", "none"],
                   help="OCI runtime for RUN steps")
    b.set_defaults(fn=cmd_build)
    pr = sub.add_parser("prune", help="remove unnamed images and unreferenced blobs and layers")
    pr.set_defaults(fn=cmd_prune)
    bs = sub.add_parser("base", help="build the offline busybox:1.35 base image if missing")
    bs.set_defaults(fn=cmd_base)
    return p


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    try:
        return int(a.fn(a))
    except (KubeliteError, OSError) as exc:
        print(f"kubelite image {a.cmd}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

