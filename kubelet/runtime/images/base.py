"""The offline base image: ``busybox:1.35`` (and ``busybox:latest``) built from Debian's static busybox.

One layer: ``/bin/busybox``, a symlink per applet where busybox installs it (``--list-full``), the
usual top-level directories, ``/etc/passwd`` and ``/etc/group`` with root and nobody. Every mtime is
fixed and the gzip stream has no timestamp, so the same busybox binary always gives the same digests.
``ensure_base_images(store)`` is what ``kubelite up`` and the kubelet call.
"""

from __future__ import annotations

import logging
import subprocess
import tarfile
from pathlib import Path

from kubelet.runtime.images import oci
from kubelet.runtime.images.errors import ImageError
from kubelet.runtime.images.layers import add_bytes, add_dir_entry, add_symlink, write_layer
from kubelet.runtime.images.store import ImageStore, StoredImage

logger = logging.getLogger(__name__)

BUSYBOX = Path("/bin/busybox")
BASE_TAG = "docker.io/library/busybox:1.35"
BASE_LATEST = "docker.io/library/busybox:latest"
CREATED = "2022-01-01T00:00:00Z"
MTIME = 1640995200   # CREATED as a Unix time
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/home:/bin/false\n")
GROUP = b"root:x:0:\nnobody:x:65534:\n"
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
        "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
        "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755}


def _applets(busybox: Path) -> list[str]:
    try:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ImageError(f"cannot list the applets of {busybox}: {exc} (is busybox-static installed?)") from None
    return sorted({line.strip() for line in out.splitlines() if line.strip()} - {"bin/busybox"})


def build_busybox(store: ImageStore, busybox: Path = BUSYBOX,
                  names: tuple[str, ...] = (BASE_TAG, BASE_LATEST)) -> StoredImage:
    """Build the busybox image into ``store`` and name it; returns it."""
    if not busybox.is_file():
        raise ImageError(f"{busybox} not found: install Debian's busybox-static to get the base image")
    applets = _applets(busybox)

    def fill(tf: tarfile.TarFile) -> None:
        for d, mode in sorted(DIRS.items()):
            add_dir_entry(tf, d, mode, MTIME)
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = busybox.stat().st_size, 0o755, MTIME
        with open(busybox, "rb") as f:
            tf.addfile(ti, f)
        for path in applets:
            add_symlink(tf, path, "/bin/busybox", MTIME)
        add_bytes(tf, "etc/group", GROUP, 0o644, MTIME)
        add_bytes(tf, "etc/passwd", PASSWD, 0o644, MTIME)

    with store.ingesting():
        layer = write_layer(store.blobs, fill)
        os_, arch = oci.host_platform()
        config = {
            "created": CREATED,
            "architecture": arch,
            "os": os_,
            "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [
                {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{layer.diff_id[7:]} in / "},
                {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
            ],
        }
        config_bytes = oci.dumps(config)
        store.blobs.put_bytes(config_bytes)
        manifest = oci.dumps({
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": oci.descriptor(oci.OCI_CONFIG, config_bytes),
            "layers": [layer.descriptor()],
        })
        return store.commit_image(manifest, names)


def ensure_base_images(store: ImageStore, busybox: Path = BUSYBOX) -> StoredImage:
    """Make sure ``busybox:1.35`` exists (built offline when missing) and ``busybox:latest`` too.

    An existing ``busybox:latest`` (e.g. pulled from a registry) is left alone.
    """
    img = store.get(BASE_TAG)
    if img is None:
        names = (BASE_TAG,) if store.get(BASE_LATEST) is not None else (BASE_TAG, BASE_LATEST)
        logger.info("building the base image %s from %s", BASE_TAG, busybox)
        img = build_busybox(store, busybox, names)
    elif store.get(BASE_LATEST) is None:
        img = store.tag(BASE_TAG, BASE_LATEST)
    return img
