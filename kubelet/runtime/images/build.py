"""Build an image from a Dockerfile (the subset in :mod:`dockerfile`) into the store.

Each step either changes only the config (an ``empty_layer`` history entry, ``#(nop)`` as Docker
writes it) or adds one layer: COPY/ADD write their files as a tar; RUN runs the command in a
container on the current layers (through a :class:`RunStep`) and its overlay upper dir, deletions
as whiteouts, becomes the layer. Steps are cached like Docker's classic builder: the key is the
previous step's key + the instruction (with build args) + a digest of the copied content, so a
rebuild with nothing changed is all cache hits and gives the same image id (:mod:`buildcache`).
Blocking: run in a thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from kubelet.runtime.images import oci
from kubelet.runtime.images.buildcache import StepCache, step_key
from kubelet.runtime.images.buildfs import add_parents, chown_ids
from kubelet.runtime.images.context import BuildContext, add_archive, is_archive
from kubelet.runtime.images.dockerfile import Instruction, expand, healthcheck, key_values, parse, words
from kubelet.runtime.images.errors import BuildError, ImageError
from kubelet.runtime.images.layers import add_path, find_in_layers, merged_tree, write_layer
from kubelet.runtime.images.store import ImageStore, StoredImage

logger = logging.getLogger(__name__)

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Log = Callable[[str], None]


class RunStep(Protocol):
    """Runs a RUN instruction: a container whose rootfs is overlay(lowerdirs, upper); returns the exit code.

    ``upper`` and ``work`` are empty directories the runner must use as overlay upperdir/workdir, so
    that afterwards ``upper`` holds exactly the step's changes (deletions as whiteouts).
    """

    def run(self, lowerdirs: Sequence[Path], upper: Path, work: Path, argv: Sequence[str], env: Sequence[str],
            cwd: str, user: str, output: Callable[[bytes], None]) -> int: ...


@dataclass
class BuildResult:
    image: StoredImage
    steps: int = 0        # every instruction, FROM and global ARGs included (as Docker numbers them)
    cacheable: int = 0    # the steps after FROM, each a cache hit or a miss
    cached: int = 0       # of those, cache hits


@dataclass
class _State:
    config: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    key: str = "scratch"
    created: str = ""
    cmd_from_base: bool = False
    args: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def copy(self) -> "_State":
        return _State(json.loads(json.dumps(self.config)), [dict(x) for x in self.layers], list(self.diff_ids),
                      [dict(h) for h in self.history], self.key, self.created, self.cmd_from_base, {})


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _env_map(env: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


class Builder:
    def __init__(self, store: ImageStore, context: Path, dockerfile: Path | None = None, *,
                 build_args: dict[str, str] | None = None, no_cache: bool = False, runner: RunStep | None = None,
                 log: Log | None = None, pull: Callable[[str], StoredImage] | None = None) -> None:
        self.store = store
        self.context = context.resolve()
        self.dockerfile = dockerfile or self.context / "Dockerfile"
        self.build_args = dict(build_args or {})
        self.no_cache = no_cache
        self.runner = runner
        self.log = log or (lambda line: logger.info("%s", line))
        self.pull = pull
        self.cache = StepCache(store, no_cache)
        self.ctx = BuildContext(self.context)

    # ------------------------------------------------------------------------------------- main
    def build(self, tags: Sequence[str] = ()) -> BuildResult:
        if not self.dockerfile.is_file():
            raise BuildError(f"no Dockerfile at {self.dockerfile}")
        instructions = parse(self.dockerfile.read_text())
        global_args: dict[str, str] = {}
        st: _State | None = None
        self.stages: dict[str, _State] = {}
        result = BuildResult(image=None)  # type: ignore[arg-type]
        total = len(instructions)
        with self.store.ingesting():
            for i, ins in enumerate(instructions, 1):
                self.log(f"Step {i}/{total} : {ins}")
                result.steps += 1
                if ins.cmd == "ARG" and st is None:
                    for k, v in key_values(ins.raw, ins.line, "ARG"):
                        global_args[k] = self.build_args.get(k, v)
                    continue
                if ins.cmd == "FROM":
                    if st is not None:       # multi-stage: keep the finished stage for COPY --from / FROM
                        self.stages[str(len(self.stages))] = st
                        if st.name:
                            self.stages[st.name] = st
                    st = self._from(ins, global_args)
                    self.log(f" ---> {st.key[7:19] if st.key.startswith('sha256:') else st.key}")
                    continue
                if st is None:
                    raise BuildError(f"Dockerfile line {ins.line}: {ins.cmd} before FROM")
                cached = self._step(st, ins)
                result.cacheable += 1
                result.cached += cached
                self.log(" ---> Using cache" if cached else f" ---> {st.key[7:19]}")
            assert st is not None
            image = self._commit(st, tags)
        result.image = image
        self.log(f"Successfully built {image.id[7:19]}")
        for t in image.tags:
            self.log(f"Successfully tagged {t}")
        return result

    def _from(self, ins: Instruction, global_args: dict[str, str]) -> _State:
        parts = words(ins.raw)
        ref = expand(parts[0], global_args)
        if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1].upper() != "AS"):
            raise BuildError(f"Dockerfile line {ins.line}: FROM takes an image [AS name]")
        name = parts[2].lower() if len(parts) == 3 else ""
        if ref.lower() in self.stages and ref.lower() not in [str(i) for i in range(len(self.stages))]:
            st = self.stages[ref.lower()].copy()
            st.name = name
            return st
        st = _State(args={}, name=name)
        if ref == "scratch":
            st.config = {"Env": [DEFAULT_PATH]}
            st.created = "1970-01-01T00:00:00Z"
            return st
        img = self.store.get(ref)
        if img is None and self.pull is not None:
            img = self.pull(ref)
        if img is None:
            raise BuildError(f"FROM {ref}: image not found in the store (kubelite image pull {ref})")
        st.config = json.loads(json.dumps(img.config.get("config") or {}))
        st.layers = [dict(img.manifest["layers"][i]) for i in range(len(img.layers))]
        st.diff_ids = [layer.diff_id for layer in img.layers]
        st.history = list(img.config.get("history") or [])
        st.key = img.id
        st.created = img.created
        st.cmd_from_base = bool(st.config.get("Cmd"))
        return st

    def _layer_paths(self, st: _State) -> list[Path]:
        return [self.store.layer_path(d) for d in st.diff_ids]

    def _env(self, st: _State) -> dict[str, str]:
        return {**st.args, **_env_map(st.config.get("Env") or [])}

    def _step(self, st: _State, ins: Instruction) -> bool:
        """Apply one instruction to ``st``; returns True on a cache hit."""
        env = self._env(st)
        raw = expand(ins.raw, env) if ins.cmd in ("ENV", "LABEL", "EXPOSE", "WORKDIR", "USER", "STOPSIGNAL",
                                                   "VOLUME", "ARG") else ins.raw
        cfg = st.config
        if ins.cmd in ("COPY", "ADD"):
            return self._copy(st, ins, env)
        if ins.cmd == "RUN":
            return self._run(st, ins)
        nop = f"/bin/sh -c #(nop)  {ins.cmd} {raw}"
        if ins.cmd == "ENV":
            envs = _env_map(cfg.get("Env") or [])
            pairs = key_values(ins.raw, ins.line, "ENV")
            for k, v in pairs:
                envs[k] = expand(v, {**env, **envs})
            cfg["Env"] = [f"{k}={v}" for k, v in envs.items()]
            nop = "/bin/sh -c #(nop)  ENV " + " ".join(f"{k}={envs[k]}" for k, _ in pairs)
        elif ins.cmd == "ARG":
            for k, v in key_values(raw, ins.line, "ARG"):
                st.args[k] = self.build_args.get(k, v)
        elif ins.cmd == "LABEL":
            labels = cfg.setdefault("Labels", {}) or {}
            for k, v in key_values(raw, ins.line, "LABEL"):
                labels[k] = v
            cfg["Labels"] = labels
        elif ins.cmd == "MAINTAINER":
            pass
        elif ins.cmd == "EXPOSE":
            ports = cfg.setdefault("ExposedPorts", {}) or {}
            for p in raw.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif ins.cmd == "USER":
            cfg["User"] = raw
        elif ins.cmd == "WORKDIR":
            wd = os.path.normpath(os.path.join(cfg.get("WorkingDir") or "/", raw))
            cfg["WorkingDir"] = wd
            nop = f"/bin/sh -c #(nop) WORKDIR {wd}"
            if find_in_layers(self._layer_paths(st), wd) is None:
                layers = self._layer_paths(st)
                return self._layer_step(st, nop, "", lambda tf: add_parents(tf, layers, wd, include_self=True))
        elif ins.cmd in ("CMD", "ENTRYPOINT"):
            value = list(ins.json_args) if ins.json_args is not None else (
                [*(cfg.get("Shell") or ["/bin/sh", "-c"]), ins.raw] if ins.raw else None)
            cfg["Cmd" if ins.cmd == "CMD" else "Entrypoint"] = value
            if ins.cmd == "ENTRYPOINT" and st.cmd_from_base:
                cfg["Cmd"] = None
            if ins.cmd == "CMD":
                st.cmd_from_base = False
            nop = f"/bin/sh -c #(nop)  {ins.cmd} {json.dumps(value)}"
        elif ins.cmd == "STOPSIGNAL":
            cfg["StopSignal"] = raw
        elif ins.cmd == "VOLUME":
            vols = cfg.setdefault("Volumes", {}) or {}
            for v in (ins.json_args or raw.split()):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif ins.cmd == "SHELL":
            if ins.json_args is None or not ins.json_args:
                raise BuildError(f"Dockerfile line {ins.line}: SHELL requires the JSON form: SHELL [\"executable\", ...]")
            cfg["Shell"] = list(ins.json_args)
            nop = f"/bin/sh -c #(nop)  SHELL {json.dumps(cfg['Shell'])}"
        elif ins.cmd == "HEALTHCHECK":
            cfg["Healthcheck"] = healthcheck(ins)
        elif ins.cmd == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), ins.raw]
        else:
            raise BuildError(f"Dockerfile line {ins.line}: {ins.cmd} is not supported by kubelite build")
        return self._layer_step(st, nop, json.dumps(st.args, sort_keys=True), make=lambda: None)

    def _layer_step(self, st: _State, created_by: str, content: str,
                    fill: Callable[[tarfile.TarFile], None] | None = None,
                    make: Callable[[], tuple[dict[str, Any], str] | None] | None = None) -> bool:
        key = step_key(st.key, created_by, content)
        hit = self.cache.get(key)
        if hit is not None:
            layer, diff_id, created = hit["layer"], hit["diff_id"], hit["created"]
        else:
            created = _now()
            if make is not None:
                made = make()
                layer, diff_id = made if made is not None else (None, "")
            else:
                assert fill is not None
                blob = write_layer(self.store.blobs, fill)
                layer, diff_id = blob.descriptor(), blob.diff_id
            if layer is not None:
                self.store.ensure_layer(layer, diff_id)
            self.cache.put(key, {"layer": layer, "diff_id": diff_id, "created": created})
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if layer is None:
            entry["empty_layer"] = True
        else:
            st.layers.append(layer)
            st.diff_ids.append(diff_id)
        st.history.append(entry)
        st.key = key
        st.created = created
        return hit is not None

    # ----------------------------------------------------------------------------------- COPY/ADD
    def _copy(self, st: _State, ins: Instruction, env: dict[str, str]) -> bool:
        args = list(ins.json_args) if ins.json_args is not None else words(ins.raw)
        args = [expand(a, env) for a in args]
        if len(args) < 2:
            raise BuildError(f"Dockerfile line {ins.line}: {ins.cmd} needs a source and a destination")
        *srcs, dest = args
        if "from" in ins.flags:
            return self._copy_from(st, ins, srcs, dest)
        workdir = st.config.get("WorkingDir") or "/"
        dest_abs = os.path.normpath(os.path.join(workdir, dest))
        dest_is_dir = dest.endswith("/") or len(srcs) > 1
        sources = self.ctx.sources(srcs, ins.line)
        if len(sources) > 1:
            dest_is_dir = True
        chown = chown_ids(self._layer_paths(st), ins.flags.get("chown"))
        digest = self.ctx.content_digest(sources)
        kind = "dir" if len(sources) == 1 and sources[0].is_dir() else ("multi" if len(sources) > 1 else "file")
        created_by = f"/bin/sh -c #(nop) {ins.cmd} {kind}:{digest} in {dest_abs}{'/' if dest_is_dir else ''} "
        lower_dest = find_in_layers(self._layer_paths(st), dest_abs)
        if lower_dest is not None and lower_dest.is_dir():
            dest_is_dir = True

        def fill(tf: tarfile.TarFile) -> None:
            add_parents(tf, self._layer_paths(st), dest_abs, include_self=dest_is_dir)
            for src in sources:
                if src.is_dir() and not src.is_symlink():
                    for child in sorted(os.listdir(src)):
                        c = src / child
                        if not self.ctx.ignored(c):
                            add_path(tf, c, f"{dest_abs}/{child}", chown=chown, exclude=self.ctx.ignored)
                elif ins.cmd == "ADD" and is_archive(src):
                    add_archive(tf, src, dest_abs if dest_is_dir or dest.endswith("/") else dest_abs, chown)
                else:
                    target = f"{dest_abs}/{src.name}" if dest_is_dir else dest_abs
                    add_path(tf, src, target, chown=chown)
        return self._layer_step(st, created_by, ins.flags.get("chown", ""), fill)

    def _copy_from(self, st: _State, ins: Instruction, srcs: list[str], dest: str) -> bool:
        """COPY --from=<stage|image>: sources are paths in that stage's (or image's) file system."""
        where = ins.flags["from"]
        if where.lower() in self.stages:
            src_st = self.stages[where.lower()]
            layers, src_key = self._layer_paths(src_st), src_st.key
        else:
            img = self.store.get(where) or (self.pull(where) if self.pull is not None else None)
            if img is None:
                raise BuildError(f"Dockerfile line {ins.line}: COPY --from={where}: no such stage or image")
            layers, src_key = [layer.path for layer in img.layers], img.id
        found: list[tuple[str, Path]] = []
        for src in srcs:
            path = os.path.normpath("/" + src)
            real = find_in_layers(layers, path) if path != "/" else (layers[-1] if layers else None)
            if real is None:
                raise BuildError(f"Dockerfile line {ins.line}: COPY --from={where}: {src} not found")
            found.append((path, real))
        dest_abs = os.path.normpath(os.path.join(st.config.get("WorkingDir") or "/", dest))
        lower_dest = find_in_layers(self._layer_paths(st), dest_abs)
        dest_is_dir = dest.endswith("/") or len(srcs) > 1 or (lower_dest is not None and lower_dest.is_dir())
        chown = chown_ids(self._layer_paths(st), ins.flags.get("chown"))
        digest = hashlib.sha256(json.dumps([src_key, srcs]).encode()).hexdigest()
        created_by = f"/bin/sh -c #(nop) COPY --from={where} {'multi' if len(srcs) > 1 else 'file'}:{digest} in {dest_abs} "

        def fill(tf: tarfile.TarFile) -> None:
            add_parents(tf, self._layer_paths(st), dest_abs,
                        include_self=dest_is_dir or any(r.is_dir() for _, r in found))
            for path, real in found:
                if real.is_dir() and not real.is_symlink():
                    for rel, item in merged_tree(layers, path):
                        add_path(tf, item, f"{dest_abs}/{rel}", chown=chown, recursive=False)
                else:
                    target = f"{dest_abs}/{os.path.basename(path)}" if dest_is_dir else dest_abs
                    add_path(tf, real, target, chown=chown)
        return self._layer_step(st, created_by, ins.flags.get("chown", ""), fill)

    # ------------------------------------------------------------------------------------------ RUN
    def _run(self, st: _State, ins: Instruction) -> bool:
        shell = list(st.config.get("Shell") or ["/bin/sh", "-c"])
        argv = list(ins.json_args) if ins.json_args is not None else [*shell, ins.raw]
        used_args = {k: v for k, v in st.args.items() if k not in _env_map(st.config.get("Env") or [])}
        prefix = f"|{len(used_args)} " + " ".join(f"{k}={v}" for k, v in sorted(used_args.items())) + " " \
            if used_args else ""
        created_by = prefix + " ".join(argv)

        def make() -> tuple[dict[str, Any], str] | None:
            if self.runner is None:
                raise BuildError(f"Dockerfile line {ins.line}: RUN needs a container runtime, none is available")
            env = [f"{k}={v}" for k, v in {**used_args, **_env_map(st.config.get("Env") or [])}.items()]
            with tempfile.TemporaryDirectory(dir=self.store.root / "tmp", prefix="build-") as tmp:
                upper, work = Path(tmp) / "upper", Path(tmp) / "work"
                upper.mkdir()
                work.mkdir()
                code = self.runner.run(self._layer_paths(st), upper, work, argv, env,
                                       st.config.get("WorkingDir") or "/", st.config.get("User") or "",
                                       lambda b: self.log(b.decode(errors="replace").rstrip("\n")))
                if code != 0:
                    raise BuildError(f"The command '{' '.join(argv)}' returned a non-zero code: {code}")

                def fill(tf: tarfile.TarFile) -> None:
                    for child in sorted(os.listdir(upper)):
                        add_path(tf, upper / child, child, overlay=True)
                blob = write_layer(self.store.blobs, fill)
            return blob.descriptor(), blob.diff_id
        (self.store.root / "tmp").mkdir(exist_ok=True)
        return self._layer_step(st, created_by, json.dumps(st.config.get("Env")), make=make)

    # --------------------------------------------------------------------------------------- commit
    def _commit(self, st: _State, tags: Sequence[str]) -> StoredImage:
        os_, arch = oci.host_platform()
        config = {"created": st.created or _now(), "architecture": arch, "os": os_, "config": st.config,
                  "rootfs": {"type": "layers", "diff_ids": st.diff_ids}, "history": st.history}
        cbytes = oci.dumps(config)
        self.store.blobs.put_bytes(cbytes)
        layers = [{"mediaType": d.get("mediaType", oci.OCI_LAYER_GZIP), "digest": d["digest"], "size": d["size"]}
                  for d in st.layers]
        manifest = oci.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                              "config": oci.descriptor(oci.OCI_CONFIG, cbytes), "layers": layers})
        return self.store.commit_image(manifest, list(tags))


def build(store: ImageStore, context: Path | str, tags: Sequence[str] = (), *, dockerfile: Path | None = None,
          build_args: dict[str, str] | None = None, no_cache: bool = False, runner: RunStep | None = None,
          log: Log | None = None, pull: Callable[[str], StoredImage] | None = None) -> BuildResult:
    """Build ``context`` (its ``Dockerfile`` unless given) into ``store``, tagged ``tags``."""
    try:
        return Builder(store, Path(context), dockerfile, build_args=build_args, no_cache=no_cache, runner=runner,
                       log=log, pull=pull).build(tags)
    except ImageError:
        raise
    except OSError as exc:
        raise BuildError(f"build failed: {exc}") from None


