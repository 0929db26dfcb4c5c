"""An OCI ``process`` made real: worked out once (``prepare_process``: env, capability masks, rlimits, the
capabilities we hold) and then applied with syscalls only (``apply_plan``: rlimits, bounding set, groups,
uid/gid, capabilities, no_new_privs, cwd). The container's init prepares before it reports ready and applies
after *start*; an exec helper does both at once (``apply_process``).
"""

from __future__ import annotations

import os
import resource
from typing import Any, NamedTuple

from kubelet.runtime import linux

RLIMITS = {name: getattr(resource, name.replace("RLIMIT_", "RLIMIT_")) for name in dir(resource)
           if name.startswith("RLIMIT_")}


def _permitted_now() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return 0


class Plan(NamedTuple):
    """An OCI ``process`` worked out before *start*, so that after it only syscalls remain."""

    rlimits: tuple[tuple[int, int, int], ...]
    bounding: int | None            # capabilities kept in the bounding set (None: leave it)
    groups: tuple[int, ...]
    uid: int
    gid: int
    keepcaps: bool
    caps: tuple[int, int, int] | None  # effective, permitted, inheritable
    no_new_privs: bool
    cwd: str
    args: tuple[str, ...]
    env: dict[str, str]
    last_cap: int


def prepare_process(proc: dict[str, Any]) -> Plan:
    """Parse ``proc`` (masks, env, the capabilities we hold) once; ``apply_plan`` then only makes syscalls."""
    caps = proc.get("capabilities")
    user = proc.get("user", {})
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    masks = None
    keepcaps = uid != 0 and bool(caps and caps.get("ambient"))
    if caps is not None:
        # a privileged container gets all the caps we have, not more (some VMs hold back a few); what we
        # will still have once setresuid to a non-root uid without KEEPCAPS has cleared them
        have = _permitted_now() if uid == 0 or keepcaps else 0
        root = uid == 0 or bool(caps.get("ambient"))
        masks = (linux.cap_mask(caps.get("effective", [])) & have if root else 0,
                 linux.cap_mask(caps.get("permitted", [])) & have if root else 0,
                 linux.cap_mask(caps.get("inheritable", [])) & have)
    env = dict(e.split("=", 1) for e in proc.get("env", []) if "=" in e)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return Plan(rlimits=tuple((RLIMITS[rl["type"]], rl["soft"], rl["hard"]) for rl in proc.get("rlimits", [])),
                bounding=linux.cap_mask(caps.get("bounding", [])) if caps is not None else None,
                groups=tuple(int(g) for g in user.get("additionalGids", [])), uid=uid, gid=gid,
                keepcaps=keepcaps, caps=masks,
                no_new_privs=bool(proc.get("noNewPrivileges")), cwd=proc.get("cwd") or "/",
                args=tuple(proc["args"]), env=env, last_cap=linux.last_cap() if caps is not None else 0)


def apply_plan(plan: Plan) -> None:
    """rlimits, bounding set, groups, uid/gid, capabilities, no_new_privs and cwd, in that order."""
    for kind, soft, hard in plan.rlimits:
        resource.setrlimit(kind, (soft, hard))
    if plan.bounding is not None:
        for cap in range(plan.last_cap + 1):
            if not plan.bounding & (1 << cap):
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
    os.setgroups(plan.groups)
    if plan.keepcaps:
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setresgid(plan.gid, plan.gid, plan.gid)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    if plan.caps is not None:
        linux.capset(*plan.caps)
    if plan.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(plan.cwd)


def apply_process(proc: dict[str, Any]) -> None:
    """rlimits, no_new_privs, capabilities, user and cwd of an OCI ``process`` (for init and exec alike)."""
    apply_plan(prepare_process(proc))
