"""The cgroup v2 device allowlist: a tiny BPF_PROG_TYPE_CGROUP_DEVICE program, built and loaded
with the bpf(2) syscall through ctypes and attached to the container's cgroup (what runc's
``devicefilter`` and crun do; v2 has no devices.allow file).

The program reads ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}``
(access_type = access << 16 | type) and walks the rules last-to-first, so the last matching rule
wins, as with v1's allow/deny lists; nothing matching → deny.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from pathlib import Path

from .model import CgroupError, DeviceRule

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# opcodes
_LDXW = 0x61      # dst = *(u32 *)(src + off)
_AND32K = 0x54
_RSH32K = 0x74
_MOV32X = 0xBC
_MOV32K = 0xB4
_JNEK = 0x55
_JNEX = 0x5D
_EXIT = 0x95

_libc = ctypes.CDLL(None, use_errno=True)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str) -> int:
    return ((ACC_MKNOD if "m" in access else 0) | (ACC_READ if "r" in access else 0)
            | (ACC_WRITE if "w" in access else 0))


def build_program(rules: tuple[DeviceRule, ...]) -> bytes:
    """The program's instructions for ``rules`` (v1 semantics: the last matching rule decides)."""
    prologue = [
        _insn(_LDXW, 2, 1, 0), _insn(_AND32K, 2, imm=0xFFFF),    # r2 = type
        _insn(_LDXW, 3, 1, 0), _insn(_RSH32K, 3, imm=16),        # r3 = access
        _insn(_LDXW, 4, 1, 4),                                    # r4 = major
        _insn(_LDXW, 5, 1, 8),                                    # r5 = minor
    ]
    blocks: list[list[bytes]] = []
    unconditional = False
    for rule in reversed(rules):
        checks: list[tuple[int, int, int, int]] = []   # (code, dst, src, imm), jump to next block
        if rule.type in ("b", "c"):
            checks.append((_JNEK, 2, 0, DEV_BLOCK if rule.type == "b" else DEV_CHAR))
        acc = _access_bits(rule.access) if rule.type != "a" else 7
        extra: list[bytes] = []
        if acc != 7:   # requested access must be a subset of the rule's
            extra = [_insn(_MOV32X, 1, 3), _insn(_AND32K, 1, imm=acc)]
            checks.append((_JNEX, 1, 3, 0))
        if rule.type != "a" and rule.major >= 0:
            checks.append((_JNEK, 4, 0, rule.major))
        if rule.type != "a" and rule.minor >= 0:
            checks.append((_JNEK, 5, 0, rule.minor))
        n_checks = len(checks)
        block: list[bytes] = list(extra)
        for i, (code, dst, src, imm) in enumerate(checks):
            # jump over the remaining checks and the 2-insn verdict
            block.append(_insn(code, dst, src, off=(n_checks - i - 1) + 2, imm=imm))
        block += [_insn(_MOV32K, 0, imm=1 if rule.allow else 0), _insn(_EXIT)]
        blocks.append(block)
        if rule.type == "a" and not checks:
            unconditional = True
            break          # matches everything: earlier-listed rules and the default are unreachable
    # the verifier rejects unreachable code, so the default verdict only follows conditional rules
    epilogue = [] if unconditional else [_insn(_MOV32K, 0, imm=0), _insn(_EXIT)]
    return b"".join(prologue + [i for b in blocks for i in b] + epilogue)


def describe(rules: tuple[DeviceRule, ...]) -> str:
    """Human-readable rule list (what a fake tree records instead of a program)."""
    return "".join(f"{'allow' if r.allow else 'deny'} {r.v1_line()}\n" for r in rules)


def _bpf(cmd: int, attr: bytes) -> int:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise CgroupError(f"bpf(2): unknown syscall number on {platform.machine()}")
    buf = ctypes.create_string_buffer(attr, 128)
    ret = _libc.syscall(nr, cmd, buf, 128)
    if ret < 0:
        err = ctypes.get_errno()
        raise CgroupError(f"bpf(cmd {cmd}): {os.strerror(err)}")
    return int(ret)


def load_program(rules: tuple[DeviceRule, ...]) -> int:
    """Load the device program; returns its fd (close it when attached)."""
    code = build_program(rules)
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"Apache\0")   # no GPL-only helpers are used
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                       ctypes.addressof(insns), ctypes.addressof(lic), 1, len(log), ctypes.addressof(log),
                       0, 0, b"kubelite_dev", 0, BPF_CGROUP_DEVICE)
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except CgroupError as e:
        raise CgroupError(f"{e}; verifier: {log.value.decode(errors='replace').strip()[-400:]}") from e


def attach_device_filter(cgroup_dir: Path, rules: tuple[DeviceRule, ...]) -> None:
    """Load the program for ``rules`` and attach it to ``cgroup_dir`` (replacing a previous one:
    attach flags 0 = one program per cgroup). The attachment lives as long as the cgroup."""
    prog = load_program(rules)
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(BPF_PROG_ATTACH, struct.pack("<IIIII", cg, prog, BPF_CGROUP_DEVICE, 0, 0))
        finally:
            os.close(cg)
    finally:
        os.close(prog)
