"""``kubelite delete``: delete by file, by name, by label selector or ``--all``, then wait until gone.

Like kubectl, each object is deleted with a ``propagationPolicy`` (``--cascade``) and optional grace
period, ``pod "x" deleted`` is printed, and (unless ``--wait=false``) the command returns only when the
object has really disappeared — graceful pod deletion and foreground cascading finish server-side.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from kubelite.api.errors import ApiError, NotFound, ServiceUnavailable
from kubelite.api.resources import ResourceInfo
from kubelite.cli import common

CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground", "orphan": "Orphan",
           "false": "Orphan"}


def main(argv: list[str]) -> int:
    return common.run(_delete, argv)


def _parser() -> common.ArgParser:
    p = common.parser("delete", "Delete resources by file names, stdin, resources and names, or by label selector.")
    p.add_argument("words", nargs="*", metavar="TYPE [NAME ...] | TYPE/NAME ...")
    p.add_argument("-f", "--filename", action="append", default=[], help="file, directory or - (stdin)")
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("-l", "--selector", default=None, help="label selector")
    p.add_argument("--field-selector", default=None, help="field selector")
    p.add_argument("--all", action="store_true", help="delete all objects of the type in the namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--cascade", default="background", help="background|foreground|orphan")
    p.add_argument("--grace-period", type=int, default=-1, help="seconds given to the object to terminate")
    p.add_argument("--now", action="store_true", help="grace period 1 (immediate shutdown)")
    p.add_argument("--force", action="store_true", help="with --grace-period=0: remove at once")
    p.add_argument("--wait", default="true", help="wait for the objects to be gone (true|false)")
    p.add_argument("--timeout", default="0", help="give up waiting after this long (e.g. 30s); 0: no limit")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("-o", "--output", default="", help="name")
    return p


def _seconds(text: str) -> float | None:
    text = text.strip()
    mult = 1.0
    for suffix, m in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], m
            break
    try:
        value = float(text) * mult
    except ValueError:
        raise common.CliError(f'invalid argument "{text}" for "--timeout" flag') from None
    return value or None


def wait_deleted(c: Any, info: ResourceInfo, name: str, ns: str | None, uid: str | None, timeout: float | None) -> bool:
    """Wait until ``name`` is gone (or replaced by an object with another uid); False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            obj = c.get(info, name, ns)
        except NotFound:
            return True
        if uid and (obj.get("metadata") or {}).get("uid") != uid:
            return True
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        watch_for = int(min(remaining if remaining is not None else 300, 300)) or 1
        try:
            for event in c.watch(info, ns, resource_version=rv, field_selector=f"metadata.name={name}",
                                 timeout_seconds=watch_for):
                if event.type == "DELETED":
                    return True
                if uid and (event.object.get("metadata") or {}).get("uid") not in (None, uid):
                    return True
        except ServiceUnavailable:
            time.sleep(0.5)
        except ApiError:
            pass    # 410 and the like: re-GET and watch again


def _delete(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    policy = CASCADE.get(args.cascade.lower())
    if policy is None:
        raise common.CliError(f'invalid cascade value ({args.cascade}). Must be "background", "foreground", or "orphan".')
    grace: int | None = None if args.grace_period < 0 else args.grace_period
    if args.now:
        grace = 1
    if args.force and grace is None:
        grace = 0
    if grace == 0 and not args.force:
        grace = 1       # kubectl: --grace-period=0 without --force means "immediately", i.e. 1
    if args.force and grace == 0:
        print("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
              "terminated. The resource may continue to run on the cluster indefinitely.", file=sys.stderr)
    timeout = _seconds(args.timeout)
    wait = args.wait.lower() not in ("false", "0", "no")
    c = common.client(args)
    namespace = None if args.all_namespaces else (args.namespace or c.namespace)

    targets: list[tuple[ResourceInfo, str, str | None, str]] = []   # (info, name, ns, source for errors)
    if args.filename:
        if args.words:
            raise common.CliError("resource names and -f cannot both be given")
        for m in common.read_manifests(args.filename, args.recursive):
            ns = common.namespace_of(c, args, m.info, m.obj)
            targets.append((m.info, m.obj["metadata"]["name"], ns, m.source))
    else:
        pairs = common.split_type_names(args.words)
        by_selector = [(info, name) for info, name in pairs if name is None]
        if by_selector and not (args.all or args.selector or args.field_selector):
            raise common.CliError("resource(s) were provided, but no name was specified")
        for info, name in pairs:
            ns = namespace if info.namespaced else None
            if name is not None:
                targets.append((info, name, ns, ""))
                continue
            listed = c.list(info, ns, label_selector=args.selector, field_selector=args.field_selector)
            for item in listed.get("items") or []:
                meta = item.get("metadata") or {}
                targets.append((info, meta.get("name", ""), meta.get("namespace") if info.namespaced else None, ""))
        if not targets:
            where = f" in {namespace} namespace" if namespace else ""
            print(f"No resources found{where}", file=sys.stderr)
            return 0

    failed = False
    pending: list[tuple[ResourceInfo, str, str | None, str | None]] = []
    for info, name, ns, source in targets:
        try:
            result = c.delete(info, name, ns, grace_period_seconds=grace, propagation_policy=policy)
        except NotFound as exc:
            if not args.ignore_not_found:
                print(common.api_error_text(exc, "deleting" if source else "", source), file=sys.stderr)
                failed = True
            continue
        except ApiError as exc:
            print(common.api_error_text(exc, "deleting" if source else "", source), file=sys.stderr)
            failed = True
            continue
        if args.output == "name":
            print(common.obj_ref(info, name))
        else:
            verb = "force deleted" if args.force and grace == 0 else "deleted"
            print(f'{common.resource_name(info)} "{name}" {verb}')
        sys.stdout.flush()
        uid = ((result or {}).get("metadata") or {}).get("uid") if isinstance(result, dict) else None
        if (result or {}).get("kind") == "Status":
            uid = ((result.get("details") or {}).get("uid")) or None
        pending.append((info, name, ns, uid))
    if wait:
        for info, name, ns, uid in pending:
            if not wait_deleted(c, info, name, ns, uid, timeout):
                print(f'error: timed out waiting for the condition on {info.resource}/{name}', file=sys.stderr)
                failed = True
    return 1 if failed else 0
