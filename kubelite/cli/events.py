"""``kubelite events [--for KIND/NAME] [--types Warning,Normal] [-A] [-w]``: kubectl events' table.

``LAST SEEN  TYPE  REASON  OBJECT  MESSAGE``, oldest first, from core/v1 Events (``lastTimestamp``,
else ``eventTime``, else the creation time). ``-w`` keeps printing new and updated events.
"""

from __future__ import annotations

import sys
from typing import Any

from kubelite.api.resources import EVENTS
from kubelite.cli import common, printers


def main(argv: list[str]) -> int:
    return common.run(_events, argv)


def when(e: dict[str, Any]) -> str:
    return e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or ""


def row(e: dict[str, Any], all_ns: bool) -> list[str]:
    obj = e.get("involvedObject") or {}
    count = int(e.get("count") or 1)
    seen = printers.age(when(e)) + (f" (x{count} over {printers.age(e.get('firstTimestamp'))})"
                                    if count > 1 and e.get("firstTimestamp") else "")
    cells = [seen, e.get("type", ""), e.get("reason", ""), f"{(obj.get('kind') or '').lower()}/{obj.get('name', '')}",
             (e.get("message") or "").strip()]
    return ([(e.get("metadata") or {}).get("namespace", "")] if all_ns else []) + cells


def _format(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("   ".join([c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]) for r in rows)


def _events(argv: list[str]) -> int:
    p = common.parser("events", "List events.")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--for", dest="for_", default=None, help="KIND/NAME: only events about this object")
    p.add_argument("--types", default="", help="comma-separated: Normal, Warning")
    p.add_argument("-w", "--watch", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    args = p.parse_args(argv)
    c = common.client(args)
    ns = None if args.all_namespaces else (args.namespace or c.namespace or "default")
    selector = None
    if args.for_:
        kind, _, name = args.for_.partition("/")
        if not name:
            raise common.CliError("--for must be in resource/name form")
        info = common.resolve_type(kind)
        selector = f"involvedObject.kind={info.kind},involvedObject.name={name}"
    types = {t.strip().lower() for t in args.types.split(",") if t.strip()}
    try:
        listing = c.list(EVENTS, ns, field_selector=selector)
        items = [e for e in listing.get("items") or [] if not types or (e.get("type") or "").lower() in types]
        items.sort(key=when)
        head = (["NAMESPACE"] if ns is None else []) + ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        rows = [row(e, ns is None) for e in items]
        if not rows and not args.watch:
            print(f"No events found in {ns} namespace." if ns else "No events found.", file=sys.stderr)
            return 0
        if rows or not args.no_headers:
            sys.stdout.write(_format(rows if args.no_headers else [head] + rows) + "\n")
            sys.stdout.flush()
        if args.watch:
            rv = (listing.get("metadata") or {}).get("resourceVersion")
            for ev in c.watch(EVENTS, ns, resource_version=rv, field_selector=selector):
                e = ev.object
                if ev.type in ("ADDED", "MODIFIED") and (not types or (e.get("type") or "").lower() in types):
                    sys.stdout.write("   ".join(row(e, ns is None)) + "\n")
                    sys.stdout.flush()
    finally:
        c.close()
    return 0
