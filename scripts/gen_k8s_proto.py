"""Regenerate ``kubelite/api/k8s_proto.json``: the protobuf field tables of the API groups kubelite serves.

kubectl's typed commands (``create namespace|configmap|secret|deployment``) send their objects as
Kubernetes protobuf. The field numbers come from Kubernetes' own ``generated.proto`` files, whose
descriptors every kubectl binary embeds (gzipped ``FileDescriptorProto``s). This reads them out of a
kubectl binary and writes, per message, ``{field number: [json name, kind, type]}`` where kind is
``s`` (single), ``r`` (repeated) or ``m`` (map; type is the value's type) and type is a scalar name
(``string``, ``bytes``, ``int``, ``bool``, ``double``) or a message name. Dev-time only:

    /work/venv/bin/python scripts/gen_k8s_proto.py /usr/lib/google-cloud-sdk/bin/kubectl.1.33
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from pathlib import Path

from google.protobuf import descriptor_pb2

FILES = ("k8s.io/api/core/v1/", "k8s.io/api/apps/v1/", "k8s.io/api/coordination/v1/", "k8s.io/api/node/v1/",
         "k8s.io/api/policy/v1/", "k8s.io/apimachinery/pkg/apis/meta/v1/", "k8s.io/apimachinery/pkg/api/resource/",
         "k8s.io/apimachinery/pkg/runtime/", "k8s.io/apimachinery/pkg/util/intstr/")
FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {FDP.TYPE_STRING: "string", FDP.TYPE_BYTES: "bytes", FDP.TYPE_BOOL: "bool", FDP.TYPE_DOUBLE: "double",
           FDP.TYPE_FLOAT: "double", **{t: "int" for t in (FDP.TYPE_INT32, FDP.TYPE_INT64, FDP.TYPE_UINT32,
                                                          FDP.TYPE_UINT64, FDP.TYPE_ENUM)}}


def descriptors(binary: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    data = binary.read_bytes()
    out: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 4_000_000])
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:                     # noqa: BLE001 - not a descriptor, keep scanning
            continue
        if fd.name.startswith(FILES) and fd.name.endswith("/generated.proto"):
            out[fd.name] = fd
    return [out[k] for k in sorted(out)]


def table(files: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, dict[str, list[str]]]:
    messages: dict[str, dict[str, list[str]]] = {}

    def walk(prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{msg.name}"
        entries = {f"{name}.{n.name}": n for n in msg.nested_type if n.options.map_entry}
        fields: dict[str, list[str]] = {}
        for f in msg.field:
            if f.type == FDP.TYPE_MESSAGE and f.type_name.lstrip(".") in entries:
                value = entries[f.type_name.lstrip(".")].field[1]
                fields[str(f.number)] = [f.name, "m", _type(value)]
            else:
                kind = "r" if f.label == FDP.LABEL_REPEATED else "s"
                fields[str(f.number)] = [f.name, kind, _type(f)]
        messages[name] = fields
        for n in msg.nested_type:
            if not n.options.map_entry:
                walk(name, n)

    for fd in files:
        for msg in fd.message_type:
            walk(fd.package, msg)
    return messages


def _type(f: descriptor_pb2.FieldDescriptorProto) -> str:
    return f.type_name.lstrip(".") if f.type == FDP.TYPE_MESSAGE else SCALARS[f.type]


def main() -> None:
    files = descriptors(Path(sys.argv[1]))
    out = Path(__file__).resolve().parents[1] / "kubelite" / "api" / "k8s_proto.json"
    out.write_text(json.dumps({"source": Path(sys.argv[1]).name, "messages": table(files)},
                              separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{out}: {len(files)} files, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
