"""``kubelite get``: list or get objects, print them like kubectl (server Table columns), optionally watch."""

from __future__ import annotations

import sys
from typing import Any

from kubelite.api.errors import ApiError, NotFound
from kubelite.api.resources import ResourceInfo
from kubelite.cli import common, printers
from kubelite.client._rest import JSON, TABLE_ACCEPT

OUTPUTS = ("wide", "yaml", "json", "name")


def main(argv: list[str]) -> int:
    return common.run(_get, argv)


def _parser() -> common.ArgParser:
    p = common.parser("get", "Display one or many resources.")
    p.add_argument("words", nargs="*", metavar="TYPE[.GROUP] [NAME ...] | TYPE/NAME ...")
    p.add_argument("-o", "--output", default="",
                   help="output format: " + "|".join(OUTPUTS) + "|jsonpath=TEMPLATE|custom-columns=SPEC")
    p.add_argument("-l", "--selector", default=None, help="label selector (e.g. -l app=web,tier!=db)")
    p.add_argument("--field-selector", default=None, help="field selector (e.g. status.phase=Running)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--watch-only", action="store_true", help="watch without listing first")
    p.add_argument("--show-labels", action="store_true", help="show all labels as the last column")
    p.add_argument("--no-headers", action="store_true", help="don't print headers")
    p.add_argument("--ignore-not-found", action="store_true", help="no error when the named object is missing")
    p.add_argument("--show-managed-fields", action="store_true", help="keep metadata.managedFields in yaml/json")
    p.add_argument("--watch-timeout", type=int, default=None, help="end a watch after this many seconds")
    return p


def _get(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.output and args.output not in OUTPUTS and not args.output.startswith(("jsonpath=", "custom-columns=")):
        raise common.CliError(f'unable to match a printer suitable for the output format "{args.output}", '
                              f"allowed formats are: {','.join(OUTPUTS)}")
    targets = common.split_type_names(args.words)
    c = common.client(args)
    namespace = None if args.all_namespaces else (args.namespace or c.namespace)
    structured = args.output in ("yaml", "json", "name") or args.output.startswith(("jsonpath=", "custom-columns="))
    multi_type = len({t.qualified for t, _ in targets}) > 1
    exit_code = 0
    collected: list[dict[str, Any]] = []
    printed_any = False
    # group by type, preserving order
    groups: dict[str, tuple[ResourceInfo, list[str | None]]] = {}
    for info, name in targets:
        groups.setdefault(info.qualified, (info, []))[1].append(name)
    for info, names in groups.values():
        ns = namespace if info.namespaced else None
        prefix = common.resource_name(info) if multi_type else ""
        printer = printers.TablePrinter(wide=args.output == "wide", all_namespaces=args.all_namespaces and info.namespaced,
                                        show_labels=args.show_labels, no_headers=args.no_headers, kind_prefix=prefix)
        if names == [None]:
            if args.watch_only:
                data = c.list(info, ns, label_selector=args.selector, field_selector=args.field_selector,
                              accept=JSON, limit=1)
                rv = (data.get("metadata") or {}).get("resourceVersion")
                _watch(c, info, ns, args, printer, rv, structured, header=True)
                continue
            data = c.list(info, ns, label_selector=args.selector, field_selector=args.field_selector,
                          accept=JSON if structured else TABLE_ACCEPT, limit=500 if not args.watch else None)
            if structured:
                items = [_clean(args, printers.with_kind(info, o)) for o in data.get("items") or []]
                collected.extend(items)
            else:
                if printed_any and (data.get("rows") or data.get("items")):
                    sys.stdout.write("\n")
                    printer.no_headers = args.no_headers
                n = printer.print_table(printers.as_table(data))
                printed_any = printed_any or n > 0
            if args.watch:
                rv = (data.get("metadata") or {}).get("resourceVersion")
                _watch(c, info, ns, args, printer, rv, structured, header=not printer.widths)
            continue
        table_rows: list[dict[str, Any]] = []
        table: dict[str, Any] | None = None
        for name in names:
            assert name is not None
            try:
                obj = c.get(info, name, ns, accept=JSON if structured else TABLE_ACCEPT)
            except NotFound as exc:
                if not args.ignore_not_found:
                    print(common.api_error_text(exc), file=sys.stderr)
                    exit_code = 1
                continue
            if structured:
                collected.append(_clean(args, printers.with_kind(info, obj)))
            else:
                t = printers.as_table(obj)
                table = table or t
                table_rows.extend(t.get("rows") or [])
        if table is not None:
            printer.print_table({**table, "rows": table_rows})
            printed_any = True
        if args.watch and len(names) == 1 and names[0] is not None:
            args.field_selector = f"metadata.name={names[0]}"
            _watch(c, info, ns, args, printer, "0" if table is None else None, structured, header=table is None,
                   skip_initial=table is not None)
    if structured:
        _print_structured(args.output, collected, single=len(targets) == 1 and targets[0][1] is not None,
                          no_headers=args.no_headers)
    elif not printed_any and exit_code == 0 and not args.watch and not args.watch_only and \
            all(n is None for _, n in targets):
        ns_text = f" in {namespace} namespace" if namespace and any(t.namespaced for t, _ in targets) else ""
        print(f"No resources found{ns_text}.", file=sys.stderr)
    return exit_code


def _clean(args: Any, obj: dict[str, Any]) -> dict[str, Any]:
    return obj if args.show_managed_fields else printers.strip_managed_fields(obj)


def _print_structured(output: str, items: list[dict[str, Any]], single: bool, no_headers: bool = False) -> None:
    if output.startswith("custom-columns="):
        from kubelite.cli.jsonpath import custom_columns
        sys.stdout.write(custom_columns(output.split("=", 1)[1], items, no_headers))
        return
    if output.startswith("jsonpath="):
        from kubelite.cli.jsonpath import render
        doc = items[0] if single and len(items) == 1 else printers.as_list(items)
        sys.stdout.write(render(output.split("=", 1)[1], doc))
        return
    if output == "name":
        from kubelite.api.resources import for_kind
        for obj in items:
            info = for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            print(common.obj_ref(info, obj["metadata"]["name"]))
        return
    doc: Any = items[0] if single and len(items) == 1 else printers.as_list(items)
    if output == "yaml":
        sys.stdout.write(printers.to_yaml(doc))
    else:
        sys.stdout.write(printers.to_json(doc) + "\n")


def _watch(c: Any, info: ResourceInfo, ns: str | None, args: Any, printer: printers.TablePrinter,
           rv: str | None, structured: bool, *, header: bool, skip_initial: bool = False) -> None:
    """Print watch events until the server ends the stream (exit 0) or the user interrupts."""
    first = True
    try:
        for event in c.watch(info, ns, resource_version=rv or "0", label_selector=args.selector,
                             field_selector=args.field_selector, timeout_seconds=args.watch_timeout,
                             allow_bookmarks=False, accept=JSON if structured else TABLE_ACCEPT):
            if event.type == "BOOKMARK":
                continue
            if skip_initial and first and event.type == "ADDED":
                first = False
                continue
            first = False
            obj = event.object
            if structured:
                _print_structured(args.output, [_clean(args, printers.with_kind(info, obj))], single=True)
                if args.output == "yaml":
                    sys.stdout.write("---\n")
            else:
                printer.print_table(printers.as_table(obj), header=header)
                header = False
            sys.stdout.flush()
    except ApiError:
        raise
