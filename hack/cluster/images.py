"""Builds the real node's images on this machine, since no registry is reachable.

  images.py OUT_DIR      writes OUT_DIR/<name>.tar (OCI archives) and prints their paths

- `registry.k8s.io/pause:3.10.1`: Kubernetes' own pause.c (from the pinned
  k8s.io/kubernetes module), compiled statically with gcc;
- `docker.io/library/busybox:1.35`: Debian's busybox-static, with a link per applet.

Archives are reproducible (fixed timestamps, owners and order), so the same
inputs give the same digests, and importing an unchanged image again is a no-op.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAUSE_VERSION = "3.10.1"  # kubeadm's constants.PauseVersion in Kubernetes v1.34
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static


@dataclass
class Image:
    name: str  # the full reference containerd and the kubelet see
    files: dict[str, bytes]  # path in the image -> content (mode 0755)
    links: dict[str, str]  # path -> symlink target
    dirs: list[str]
    config: dict[str, object]


def _layer(image: Image) -> bytes:
    """A tar of the image's files with fixed metadata, so its digest depends on content only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
        for d in image.dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            entries.append((d, info, None))
        for path, content in image.files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), 0o755
            entries.append((path, info, content))
        for path, target in image.links.items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            entries.append((path, info, None))
        for _, info, content in sorted(entries, key=lambda e: e[0]):
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def write_archive(image: Image, out: Path) -> str:
    """Writes an OCI image archive (the layout `ctr images import` takes); returns its digest."""
    layer_tar = _layer(image)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer_digest, layer = _blob(gzip.compress(layer_tar, mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": image.config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_json = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_json),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_json = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_json),
                "annotations": {
                    "io.containerd.image.name": image.name,
                    "org.opencontainers.image.ref.name": image.name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for digest, data in (
        (layer_digest, layer),
        (config_digest, config_json),
        (manifest_digest, manifest_json),
    ):
        files["blobs/sha256/" + digest.split(":")[1]] = data
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return manifest_digest


def pause_image() -> Image:
    module = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        cwd=HERE / "k8s",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        subprocess.run(
            [
                "gcc",
                "-Os",
                "-static",
                "-s",
                f"-DVERSION=v{PAUSE_VERSION}",
                "-o",
                str(binary),
                f"{module}/build/pause/linux/pause.c",
            ],
            check=True,
        )
        content = binary.read_bytes()
    return Image(
        name=f"registry.k8s.io/pause:{PAUSE_VERSION}",
        files={"pause": content},
        links={},
        dirs=[],
        config={"Entrypoint": ["/pause"], "User": "65535:65535"},
    )


def busybox_image() -> Image:
    if not BUSYBOX.exists():
        sys.exit(f"{BUSYBOX} is missing: install Debian's busybox-static")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    version = subprocess.run([str(BUSYBOX)], capture_output=True, text=True).stdout.split()[1]
    tag = ".".join(version.lstrip("v").split(".")[:2])  # v1.35.0 -> 1.35
    return Image(
        name=f"docker.io/library/busybox:{tag}",
        files={"bin/busybox": BUSYBOX.read_bytes()},
        links={f"bin/{a}": "busybox" for a in applets if a != "busybox"},
        dirs=["bin", "tmp"],
        config={
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
    )


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for build in (pause_image, busybox_image):
        image = build()
        path = out / (image.name.rsplit("/", 1)[1].replace(":", "-") + ".tar")
        digest = write_archive(image, path)
        print(f"{path} {image.name} {digest}")


if __name__ == "__main__":
    main()
