"""``kubelite label|annotate|patch``: change objects in place with a patch, like kubectl."""

from __future__ import annotations

import sys
from typing import Any

from kubelite.api import codec
from kubelite.api.errors import ApiError
from kubelite.api.resources import ResourceInfo
from kubelite.cli import common


def label(argv: list[str]) -> int:
    return common.run(lambda a: _meta("label", "labels", "labeled", a), argv)


def annotate(argv: list[str]) -> int:
    return common.run(lambda a: _meta("annotate", "annotations", "annotated", a), argv)


def patch(argv: list[str]) -> int:
    return common.run(_patch, argv)


def _targets(c: Any, args: Any, words: list[str]) -> list[tuple[ResourceInfo, str, str | None]]:
    namespace = None if getattr(args, "all_namespaces", False) else (args.namespace or c.namespace)
    if getattr(args, "filename", None):
        return [(m.info, m.obj["metadata"]["name"], common.namespace_of(c, args, m.info, m.obj))
                for m in common.read_manifests(args.filename)]
    out = []
    for info, name in common.split_type_names(words):
        ns = namespace if info.namespaced else None
        if name is not None:
            out.append((info, name, ns))
            continue
        if not (getattr(args, "all", False) or getattr(args, "selector", None)):
            raise common.CliError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
        for item in c.list(info, ns, label_selector=getattr(args, "selector", None)).get("items") or []:
            meta = item["metadata"]
            out.append((info, meta["name"], meta.get("namespace")))
    return out


def _meta(command: str, field: str, verb: str, argv: list[str]) -> int:
    p = common.parser(command, f"Update the {field} on resources.")
    p.add_argument("words", nargs="*", metavar="TYPE NAME KEY=VAL ... KEY-")
    p.add_argument("--overwrite", action="store_true", help="allow changing existing values")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--all", action="store_true")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("--list", action="store_true", help=f"list the {field} of the objects")
    p.add_argument("-o", "--output", default="")
    args = p.parse_args(argv)
    words = [w for w in args.words]
    changes: dict[str, Any] = {}
    rest: list[str] = []
    for w in words:
        if "=" in w and not w.startswith("="):
            k, _, v = w.partition("=")
            changes[k] = v
        elif w.endswith("-") and len(w) > 1 and "/" not in w[:-1].split(".")[-1]:
            changes[w[:-1]] = None
        else:
            rest.append(w)
    if not changes and not args.list:
        raise common.CliError(f"at least one {field[:-1]} update is required")
    c = common.client(args)
    failed = False
    for info, name, ns in _targets(c, args, rest):
        try:
            obj = c.get(info, name, ns)
            current = (obj.get("metadata") or {}).get(field) or {}
            if args.list:
                for k, v in sorted(current.items()):
                    print(f"{k}={v}")
                continue
            for k, v in changes.items():
                if v is not None and k in current and current[k] != v and not args.overwrite:
                    raise common.CliError(f"'{k}' already has a value ({current[k]}), and --overwrite is false")
            delta = {k: v for k, v in changes.items() if (current.get(k) != v if v is not None else k in current)}
            if not delta:
                print(f"{common.obj_ref(info, name)} not {verb}" if args.output != "name" else common.obj_ref(info, name))
                continue
            body = {"metadata": {field: delta}}
            c.patch(info, name, body, ns, patch_type="merge")
            after = {**current, **{k: v for k, v in delta.items() if v is not None}}
            for k in [k for k, v in delta.items() if v is None]:
                after.pop(k, None)
            shown = "unlabeled" if verb == "labeled" and len(after) < len(current) else verb
            print(f"{common.obj_ref(info, name)} {shown}" if args.output != "name" else common.obj_ref(info, name))
        except ApiError as exc:
            print(common.api_error_text(exc), file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _patch(argv: list[str]) -> int:
    p = common.parser("patch", "Update fields of a resource using strategic merge, JSON merge or JSON patch.")
    p.add_argument("words", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-p", "--patch", default=None, help="the patch (JSON or YAML)")
    p.add_argument("--patch-file", default=None, help="a file holding the patch")
    p.add_argument("--type", default="strategic", choices=("json", "merge", "strategic"))
    p.add_argument("--subresource", default=None, help="status|scale")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-o", "--output", default="")
    p.add_argument("--dry-run", default="none", choices=("none", "client", "server"))
    args = p.parse_args(argv)
    if (args.patch is None) == (args.patch_file is None):
        raise common.CliError("must specify --patch or --patch-file containing the contents of the patch")
    text = args.patch if args.patch is not None else open(args.patch_file).read()
    try:
        body = codec.loads(text)
    except ValueError:
        import yaml
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise common.CliError(f"unable to parse \"{text}\": yaml: {where}{getattr(exc, 'problem', None) or exc}") \
                from None
    if args.type == "json" and not isinstance(body, list):
        raise common.CliError("json patch must be a list of operations")
    if args.type != "json" and not isinstance(body, dict):
        raise common.CliError(f"unable to parse \"{text}\": a {args.type} patch must be an object")
    c = common.client(args)
    failed = False
    for info, name, ns in _targets(c, args, args.words):
        try:
            before = c.get(info, name, ns, subresource=args.subresource)
            after = c.patch(info, name, body, ns, patch_type=args.type, subresource=args.subresource,
                            field_manager="kubectl-patch", dry_run=args.dry_run == "server")
        except ApiError as exc:
            print(common.api_error_text(exc), file=sys.stderr)
            failed = True
            continue
        if args.output in ("yaml", "json"):
            from kubelite.cli import printers
            sys.stdout.write(printers.to_yaml(after) if args.output == "yaml" else printers.to_json(after) + "\n")
            continue
        unchanged = (before.get("metadata") or {}).get("resourceVersion") == (after.get("metadata") or {}).get(
            "resourceVersion")
        print(common.obj_ref(info, name) if args.output == "name" else
              f"{common.obj_ref(info, name)} patched{' (no change)' if unchanged else ''}")
    return 1 if failed else 0
