"""RUN steps of a build: the command runs in a container through an OCI runtime CLI.

The container's rootfs is overlay(lowerdirs = the image's layers so far, upper = the step's empty
upper dir). The overlay is mounted by a child process in its own private mount namespace
(``unshare -m``), which then execs the OCI runtime's ``run`` on a bundle pointing at that mount, so
nothing is ever mounted in the host's namespace and the mount dies with the step. Afterwards the
upper dir holds the step's changes, deletions as overlay whiteouts: the builder tars it as the layer.

The runtime CLI is kubelite's own OCI runtime (``python -m kubelet.runtime.ociruntime``) when it is
importable, else ``runc`` (``crun`` selectable): all speak runc's command line.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Sequence

from kubelet.runtime.images.errors import BuildError
from kubelet.runtime.images.layers import find_in_layers

logger = logging.getLogger(__name__)

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def runtime_command(name: str = "auto") -> list[str]:
    """The OCI runtime CLI to use: ``auto`` (kubelite's if present, else runc), ``kubelite``, ``runc``, ``crun``."""
    if name in ("auto", "kubelite") and importlib.util.find_spec("kubelet.runtime.ociruntime") is not None \
            and os.environ.get("KUBELITE_BUILD_RUNTIME", "") != "runc":
        return [sys.executable, "-m", "kubelet.runtime.ociruntime"]
    if name == "kubelite":
        raise BuildError("kubelite's OCI runtime is not installed")
    exe = shutil.which("runc" if name == "auto" else name)
    if exe is None:
        raise BuildError(f"no OCI runtime {name!r} found to run RUN steps")
    return [exe]


def _user(spec: str, layers: Sequence[Path]) -> tuple[int, int]:
    if not spec:
        return 0, 0
    user, _, group = spec.partition(":")

    def find(name: str, file: str) -> tuple[int, int]:
        path = find_in_layers(list(layers), file)
        for line in (path.read_text().splitlines() if path is not None and path.is_file() else []):
            parts = line.split(":")
            if parts[0] == name and len(parts) > 3:
                return int(parts[2]), int(parts[3] or 0) if file.endswith("passwd") else 0
        raise BuildError(f"USER {spec}: no {name!r} in /{file} of the image")
    if user.isdigit():
        uid, gid = int(user), 0
        path = find_in_layers(list(layers), "etc/passwd")
        for line in (path.read_text().splitlines() if path is not None and path.is_file() else []):
            parts = line.split(":")
            if len(parts) > 3 and parts[2] == user:
                gid = int(parts[3] or 0)
    else:
        uid, gid = find(user, "etc/passwd")
    if group:
        gid = int(group) if group.isdigit() else find(group, "etc/group")[0]
    return uid, gid


def spec(argv: Sequence[str], env: Sequence[str], cwd: str, uid: int, gid: int, hostname: str) -> dict[str, object]:
    """A minimal OCI runtime spec for a build step: own namespaces (network: loopback only), default caps."""
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": uid, "gid": gid}, "args": list(argv), "env": list(env),
                    "cwd": cwd or "/", "noNewPrivileges": True,
                    "capabilities": {k: caps for k in ("bounding", "effective", "permitted")}},
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                  "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"]},
    }


_MOUNT_AND_RUN = 'mount -t overlay overlay -o "$1" "$2" && shift 2 && exec "$@"'


class OciRunStep:
    """:class:`kubelet.runtime.images.build.RunStep` through an OCI runtime CLI."""

    def __init__(self, runtime: str = "auto", state_root: Path | None = None, timeout: float = 3600) -> None:
        self.command = runtime_command(runtime)
        self.state_root = state_root or Path(tempfile.gettempdir()) / "kubelite-build-oci"
        self.timeout = timeout

    def run(self, lowerdirs: Sequence[Path], upper: Path, work: Path, argv: Sequence[str], env: Sequence[str],
            cwd: str, user: str, output: Callable[[bytes], None]) -> int:
        if not lowerdirs:
            raise BuildError("RUN needs an image with at least one layer (FROM scratch has no shell)")
        uid, gid = _user(user, lowerdirs)
        cid = f"kubelite-build-{uuid.uuid4().hex[:12]}"
        bundle = upper.parent / "bundle"
        (bundle / "rootfs").mkdir(parents=True)
        (bundle / "config.json").write_text(json.dumps(spec(argv, env, cwd, uid, gid, cid[:63])))
        lower = ":".join(str(p) for p in reversed(lowerdirs))
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        self.state_root.mkdir(parents=True, exist_ok=True)
        own = "kubelet.runtime.ociruntime" in self.command
        log_path = bundle / "run.log"   # kubelite's runtime writes the container's output as a CRI log
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", _MOUNT_AND_RUN, "kubelite-build",
               opts, str(bundle / "rootfs"), *self.command, "--root", str(self.state_root), "run",
               "--bundle", str(bundle), *(["--log-path", str(log_path)] if own else []), cid]
        env_ = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env_)
        except OSError as exc:
            raise BuildError(f"cannot start the RUN container: {exc}") from None
        assert proc.stdout is not None
        try:
            for line in iter(proc.stdout.readline, b""):
                output(line)
            code = proc.wait(self.timeout)
            if own and log_path.exists():
                for entry in log_path.read_bytes().splitlines():
                    parts = entry.split(b" ", 3)     # <time> <stream> <P|F> <text>
                    output(parts[3] if len(parts) == 4 else entry)
            return code
        except subprocess.TimeoutExpired:
            proc.kill()
            raise BuildError(f"RUN {' '.join(argv)} timed out after {self.timeout:.0f}s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            subprocess.run([*self.command, "--root", str(self.state_root), "delete", "--force", cid],
                           capture_output=True)
