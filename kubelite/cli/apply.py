"""``kubelite apply|create|replace -f``: send manifests to the apiserver as kubectl does.

``apply`` is kubectl's client-side apply: the manifest is stored in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, and an existing object is patched with
the three-way merge of (last applied, manifest, live) as a strategic merge patch — so fields other
writers set survive, and fields dropped from the manifest are removed. ``--server-side`` sends an
apply patch instead. Output: ``pod/x created|configured|unchanged``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from kubelite.api import codec
from kubelite.api.errors import ApiError, Conflict, NotFound
from kubelite.cli import common
from kubelite.cli.common import LAST_APPLIED, Manifest


SSA_CONFLICT_HELP = """Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts"""


def _parser(command: str, description: str) -> common.ArgParser:
    p = common.parser(command, description)
    p.add_argument("-f", "--filename", action="append", default=[], help="file, directory or - (stdin)")
    p.add_argument("-R", "--recursive", action="store_true", help="process directories recursively")
    p.add_argument("-o", "--output", default="", help="yaml|json|name")
    p.add_argument("--dry-run", default="none", choices=("none", "client", "server"), help="only print")
    p.add_argument("--validate", default="strict", help="fieldValidation: strict|warn|ignore|true|false")
    p.add_argument("--field-manager", default=None, help="name of the manager (kubectl's defaults otherwise)")
    return p


def _validation(value: str) -> str:
    return {"strict": "Strict", "true": "Strict", "warn": "Warn", "ignore": "Ignore", "false": "Ignore"}.get(
        value.lower(), "Strict")


def _report(args: Any, m: Manifest, obj: dict[str, Any] | None, verb: str) -> None:
    if args.output in ("yaml", "json") and obj is not None:
        from kubelite.cli import printers
        out = printers.to_yaml(obj) if args.output == "yaml" else printers.to_json(obj) + "\n"
        sys.stdout.write(out)
        return
    name = (obj or m.obj).get("metadata", {}).get("name", "")
    dry = {"client": " (dry run)", "server": " (server dry run)"}.get(args.dry_run, "")
    if args.output == "name":
        print(common.obj_ref(m.info, name))
    else:
        print(f"{common.obj_ref(m.info, name)} {verb}{dry}")


def _each(args: Any, action: str, fn: Any) -> int:
    """Run ``fn(client, manifest)`` for every manifest; print API errors like kubectl and keep going."""
    manifests = common.read_manifests(args.filename, args.recursive)
    c = common.client(args)
    failed = False
    for m in manifests:
        ns = common.namespace_of(c, args, m.info, m.obj)
        if ns is not None:
            m.obj.setdefault("metadata", {})["namespace"] = ns
        try:
            fn(c, m)
        except ApiError as exc:
            if isinstance(exc, Conflict) and any(cause.get("reason") == "FieldManagerConflict" for cause in exc.causes):
                print(f"error: {exc.message}\n{SSA_CONFLICT_HELP}", file=sys.stderr)
            else:
                print(common.api_error_text(exc, action, m.source), file=sys.stderr)
            failed = True
    return 1 if failed else 0


# -- create ---------------------------------------------------------------------------------
def create(argv: list[str]) -> int:
    return common.run(_create, argv)


def _create(argv: list[str]) -> int:
    args = _parser("create", "Create resources from files or stdin.").parse_args(argv)

    def one(c: Any, m: Manifest) -> None:
        if args.dry_run == "client":
            _report(args, m, m.obj, "created")
            return
        obj = c.create(m.info, m.obj, field_manager=args.field_manager or "kubectl-create",
                       field_validation=_validation(args.validate), dry_run=args.dry_run == "server")
        _report(args, m, obj, "created")

    return _each(args, "creating", one)


# -- replace --------------------------------------------------------------------------------
def replace(argv: list[str]) -> int:
    return common.run(_replace, argv)


def _replace(argv: list[str]) -> int:
    p = _parser("replace", "Replace resources by file name or stdin.")
    p.add_argument("--force", action="store_true", help="delete and re-create the object")
    args = p.parse_args(argv)

    def one(c: Any, m: Manifest) -> None:
        name = m.obj["metadata"]["name"]
        ns = m.obj["metadata"].get("namespace")
        if args.force:
            try:
                c.delete(m.info, name, ns, grace_period_seconds=None, propagation_policy="Background")
                print(f'{m.info.singular}{"." + m.info.group if m.info.group else ""} "{name}" deleted')
            except NotFound:
                pass
            from kubelite.cli.delete import wait_deleted
            wait_deleted(c, m.info, name, ns, None, timeout=60.0)
            obj = c.create(m.info, m.obj, field_manager=args.field_manager or "kubectl-replace")
        else:
            obj = c.update(m.info, m.obj, field_manager=args.field_manager or "kubectl-replace",
                           field_validation=_validation(args.validate), dry_run=args.dry_run == "server")
        _report(args, m, obj, "replaced")

    return _each(args, "replacing", one)


# -- apply ----------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    return common.run(_apply, argv)


def last_applied(obj: dict[str, Any]) -> str:
    """The annotation value kubectl writes: the manifest as compact JSON with sorted keys, plus a newline.

    The same bytes as kubectl's, so either tool sees the other's apply as unchanged."""
    clean = copy.deepcopy(obj)
    # kubectl sets the annotations map (possibly empty) before serialising: "annotations":{} stays
    meta = clean.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    import json
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _modified(obj: dict[str, Any]) -> dict[str, Any]:
    modified = copy.deepcopy(obj)
    modified.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = last_applied(obj)
    return modified


def merge_three_way(original: Any, modified: Any, current: Any) -> Any:
    """A JSON merge patch turning ``current`` into ``modified``, deleting what ``original`` had and
    ``modified`` dropped (lists are replaced whole) — the fallback when strategic merge is unavailable."""
    if not isinstance(modified, dict):
        return modified
    patch: dict[str, Any] = {}
    cur = current if isinstance(current, dict) else {}
    orig = original if isinstance(original, dict) else {}
    for key, value in modified.items():
        if key not in cur:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(cur[key], dict):
            sub = merge_three_way(orig.get(key), value, cur[key])
            if sub:
                patch[key] = sub
        elif cur[key] != value:
            patch[key] = value
    for key in orig:
        if key not in modified and key in cur:
            patch[key] = None
    return patch


def _three_way(original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any]) -> tuple[Any, str]:
    try:
        from kubelite.api.patch import three_way_merge_patch  # type: ignore[attr-defined]
    except ImportError:
        return merge_three_way(original or {}, modified, current), "merge"
    return three_way_merge_patch(original, modified, current, modified.get("apiVersion"), modified.get("kind")), \
        "strategic"


def _apply(argv: list[str]) -> int:
    p = _parser("apply", "Apply a configuration to resources by file name or stdin.")
    p.add_argument("--server-side", action="store_true", help="apply on the server (apply patch)")
    p.add_argument("--force-conflicts", action="store_true", help="server-side: take over conflicting fields")
    args = p.parse_args(argv)

    def one(c: Any, m: Manifest) -> None:
        name = m.obj["metadata"]["name"]
        ns = m.obj["metadata"].get("namespace")
        if args.server_side:
            obj = c.patch(m.info, name, m.obj, ns, patch_type="apply", field_manager=args.field_manager or "kubectl",
                          force=args.force_conflicts, field_validation=_validation(args.validate),
                          dry_run=args.dry_run == "server")
            _report(args, m, obj, "serverside-applied")
            return
        modified = _modified(m.obj)
        for _attempt in range(5):
            try:
                current = c.get(m.info, name, ns)
            except NotFound:
                if args.dry_run == "client":
                    _report(args, m, modified, "created")
                    return
                obj = c.create(m.info, modified, field_manager=args.field_manager or "kubectl-client-side-apply",
                               field_validation=_validation(args.validate), dry_run=args.dry_run == "server")
                _report(args, m, obj, "created")
                return
            annotations = (current.get("metadata") or {}).get("annotations") or {}
            original: dict[str, Any] | None = None
            if LAST_APPLIED in annotations:
                try:
                    original = codec.loads(annotations[LAST_APPLIED])
                except ValueError:
                    original = None
            else:
                print(f"Warning: resource {m.info.resource}/{name} is missing the {LAST_APPLIED} annotation which "
                      f"is required by kubelite apply. kubelite apply should only be used on resources created "
                      f"declaratively by either kubelite create --save-config or kubelite apply. The missing "
                      f"annotation will be patched automatically.", file=sys.stderr)
            if (current.get("metadata") or {}).get("deletionTimestamp"):
                print(f"Warning: Detected changes to resource {name} which is currently being deleted.",
                      file=sys.stderr)
            patch, kind = _three_way(original, modified, current)
            if not patch:
                _report(args, m, current, "unchanged")
                return
            if args.dry_run == "client":
                _report(args, m, current, "configured")
                return
            try:
                obj = c.patch(m.info, name, patch, ns, patch_type=kind,  # type: ignore[arg-type]
                              field_manager=args.field_manager or "kubectl-client-side-apply",
                              field_validation=_validation(args.validate), dry_run=args.dry_run == "server")
            except Conflict:
                continue
            _report(args, m, obj, "configured")
            return
        raise Conflict(f'Operation cannot be fulfilled on {m.info.qualified} "{name}": gave up after 5 conflicts')

    return _each(args, "applying" if not args.server_side else "patching", one)
