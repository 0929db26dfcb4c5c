"""``kubelite scale``, ``rollout status|history|undo|restart|pause|resume`` and ``set image|env``:
workload commands with kubectl's behaviour and wording (undo is client-side, as in modern kubectl:
it patches the Deployment's template with the chosen revision's)."""

from __future__ import annotations

import copy
import sys
import time
from datetime import UTC, datetime
from typing import Any

from kubelite.api.errors import Conflict
from kubelite.api.resources import DEPLOYMENTS, REPLICASETS, ResourceInfo
from kubelite.cli import common

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def _one_target(words: list[str], what: str) -> tuple[ResourceInfo, str]:
    pairs = common.split_type_names(words)
    if len(pairs) != 1 or pairs[0][1] is None:
        raise common.CliError(f"{what} requires exactly one resource as TYPE NAME or TYPE/NAME")
    return pairs[0][0], pairs[0][1]  # type: ignore[return-value]


# -- scale -------------------------------------------------------------------------------------------------
def scale(argv: list[str]) -> int:
    return common.run(_scale, argv)


def _scale(argv: list[str]) -> int:
    p = common.parser("scale", "Set a new size for a deployment or replica set.")
    p.add_argument("words", nargs="+", metavar="TYPE NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--current-replicas", type=int, default=-1)
    args = p.parse_args(argv)
    if args.replicas < 0:
        raise common.CliError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    c = common.client(args)
    for info, name in common.split_type_names(args.words):
        if name is None:
            raise common.CliError("resource(s) were provided, but no name was specified")
        if info.subresource("scale") is None:
            raise common.CliError(f'cannot scale {info.qualified}: no "scale" subresource')
        ns = args.namespace or c.namespace
        if args.current_replicas >= 0:
            current = c.get(info, name, ns, subresource="scale")
            if (current.get("spec") or {}).get("replicas", 0) != args.current_replicas:
                raise common.CliError(f"Expected replicas to be {args.current_replicas}, was "
                                      f"{(current.get('spec') or {}).get('replicas', 0)}")
        c.patch(info, name, {"spec": {"replicas": args.replicas}}, ns, patch_type="merge", subresource="scale")
        print(f"{common.obj_ref(info, name)} scaled")
    return 0


# -- rollout -----------------------------------------------------------------------------------------------
def rollout(argv: list[str]) -> int:
    subs = {"status": _status, "history": _history, "undo": _undo, "restart": _restart,
            "pause": lambda a: _pause(a, True), "resume": lambda a: _pause(a, False)}
    if not argv or argv[0] not in subs:
        print("usage: kubelite rollout status|history|undo|restart|pause|resume TYPE/NAME [flags]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    return common.run(subs[argv[0]], argv[1:])


def _deployment(c: Any, args: Any, words: list[str], what: str) -> tuple[str, str, dict]:
    info, name = _one_target(words, what)
    if info is not DEPLOYMENTS:
        raise common.CliError(f"no {what} support for {info.qualified}: only deployments.apps")
    ns = args.namespace or c.namespace
    return name, ns, c.get(DEPLOYMENTS, name, ns)


def status_message(d: dict) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: (message, done). Raises CliError past the progress deadline."""
    name = d["metadata"]["name"]
    spec, st = d.get("spec") or {}, d.get("status") or {}
    if d["metadata"].get("generation", 0) > st.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in st.get("conditions") or ():
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise common.CliError(f'deployment "{name}" exceeded its progress deadline')
    want = spec.get("replicas", 1)
    updated, replicas, available = st.get("updatedReplicas", 0), st.get("replicas", 0), st.get("availableReplicas", 0)
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas have been '
                f"updated..."), False
    if replicas > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old replicas are pending '
                f"termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are '
                f"available..."), False
    return f'deployment "{name}" successfully rolled out', True


def _status(argv: list[str]) -> int:
    p = common.parser("rollout status", "Show the status of the rollout.")
    p.add_argument("words", nargs="+")
    p.add_argument("-w", "--watch", default="true", choices=["true", "false"])
    p.add_argument("--timeout", default="0", help="give up after this long (e.g. 60s, 5m); 0 = never")
    args = p.parse_args(argv)
    c = common.client(args)
    name, ns, d = _deployment(c, args, args.words, "rollout status")
    timeout = _duration(args.timeout)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    last = ""
    while True:
        msg, done = status_message(d)
        if msg != last:
            print(msg, flush=True)
            last = msg
        if done or args.watch == "false":
            return 0
        if deadline is not None and time.monotonic() > deadline:
            raise common.CliError("timed out waiting for the condition")
        time.sleep(0.5)
        d = c.get(DEPLOYMENTS, name, ns)


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if text.endswith(u):
            try:
                return float(text[:-len(u)]) * units[u]
            except ValueError:
                break
    try:
        return float(text)
    except ValueError:
        raise common.CliError(f'invalid duration "{text}"') from None


def _owned_sets(c: Any, d: dict, ns: str) -> list[dict]:
    uid = d["metadata"]["uid"]
    return [rs for rs in c.list(REPLICASETS, ns).get("items") or []
            if any(r.get("uid") == uid and r.get("controller") for r in rs["metadata"].get("ownerReferences") or ())]


def _rev(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _history(argv: list[str]) -> int:
    p = common.parser("rollout history", "View previous rollout revisions and configurations.")
    p.add_argument("words", nargs="+")
    p.add_argument("--revision", type=int, default=0)
    args = p.parse_args(argv)
    c = common.client(args)
    name, ns, d = _deployment(c, args, args.words, "rollout history")
    sets = sorted(_owned_sets(c, d, ns), key=_rev)
    if args.revision:
        rs = next((r for r in sets if _rev(r) == args.revision), None)
        if rs is None:
            raise common.CliError("unable to find the specified revision")
        import yaml
        template = copy.deepcopy(rs["spec"]["template"])
        print(f"deployment.apps/{name} with revision #{args.revision}")
        print("Pod Template:")
        print("  " + yaml.safe_dump(template, sort_keys=False).replace("\n", "\n  ").rstrip())
        return 0
    print(f"deployment.apps/{name} ")
    print(f"{'REVISION':<10}{'CHANGE-CAUSE'}")
    for rs in sets:
        cause = (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>")
        print(f"{_rev(rs):<10}{cause}")
    print()
    return 0


def _undo(argv: list[str]) -> int:
    p = common.parser("rollout undo", "Roll back to a previous rollout.")
    p.add_argument("words", nargs="+")
    p.add_argument("--to-revision", type=int, default=0)
    args = p.parse_args(argv)
    c = common.client(args)
    name, ns, d = _deployment(c, args, args.words, "rollout undo")
    if (d.get("spec") or {}).get("paused"):
        raise common.CliError(f"you cannot rollback a paused deployment; resume it first with 'kubelite rollout "
                              f"resume deployment/{name}' and try again")
    sets = sorted(_owned_sets(c, d, ns), key=_rev)
    if args.to_revision:
        target = next((r for r in sets if _rev(r) == args.to_revision), None)
        if target is None:
            raise common.CliError(f"unable to find specified revision {args.to_revision} in history")
    else:
        if len(sets) < 2:
            raise common.CliError("no rollout history found for deployment " + f'"{name}"')
        target = sets[-2]
    template = copy.deepcopy(target["spec"]["template"])
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    if _same(template, d["spec"]["template"]):
        print(f"deployment.apps/{name} skipped rollback (current template already matches revision {_rev(target)})")
        return 0
    patch = [{"op": "replace", "path": "/spec/template", "value": template},
             {"op": "test", "path": "/metadata/resourceVersion", "value": d["metadata"]["resourceVersion"]}]
    c.patch(DEPLOYMENTS, name, patch, ns, patch_type="json")
    print(f"deployment.apps/{name} rolled back")
    return 0


def _same(a: dict, b: dict) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items() if v not in (None, {}, [])}
        if isinstance(x, list):
            return [norm(v) for v in x]
        return x
    return norm(a) == norm(b)


def _restart(argv: list[str]) -> int:
    p = common.parser("rollout restart", "Restart a resource.")
    p.add_argument("words", nargs="+")
    args = p.parse_args(argv)
    c = common.client(args)
    name, ns, d = _deployment(c, args, args.words, "rollout restart")
    if (d.get("spec") or {}).get("paused"):
        raise common.CliError("can't restart paused deployment (run rollout resume first)")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    c.patch(DEPLOYMENTS, name, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}, ns, patch_type="strategic")
    print(f"deployment.apps/{name} restarted")
    return 0


def _pause(argv: list[str], paused: bool) -> int:
    verb = "pause" if paused else "resume"
    p = common.parser(f"rollout {verb}", f"Mark the provided resource as {verb}d.")
    p.add_argument("words", nargs="+")
    args = p.parse_args(argv)
    c = common.client(args)
    name, ns, d = _deployment(c, args, args.words, f"rollout {verb}")
    if bool((d.get("spec") or {}).get("paused")) == paused:
        raise common.CliError(f"deployments.apps \"{name}\" is {'already' if paused else 'not'} paused")
    c.patch(DEPLOYMENTS, name, {"spec": {"paused": paused or None}}, ns, patch_type="merge")
    print(f"deployment.apps/{name} {verb}d")
    return 0


# -- set image / env ---------------------------------------------------------------------------------------------
def set_(argv: list[str]) -> int:
    if not argv or argv[0] not in ("image", "env"):
        print("usage: kubelite set image|env TYPE/NAME ...", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    return common.run(_set_image if argv[0] == "image" else _set_env, argv[1:])


def _pod_spec_path(info: ResourceInfo) -> list[str]:
    if info.kind == "Pod":
        return ["spec"]
    if info.kind in ("Deployment", "ReplicaSet"):
        return ["spec", "template", "spec"]
    raise common.CliError(f"{info.qualified} has no pod template")


def _get_spec(obj: dict, path: list[str]) -> dict:
    for k in path:
        obj = obj.setdefault(k, {})
    return obj


def _set_image(argv: list[str]) -> int:
    p = common.parser("set image", "Update the image of a pod template.")
    p.add_argument("words", nargs="+", metavar="TYPE/NAME CONTAINER=IMAGE")
    args = p.parse_args(argv)
    targets = [w for w in args.words if "=" not in w]
    changes = dict(w.split("=", 1) for w in args.words if "=" in w)
    if not changes:
        raise common.CliError("at least one image update is required")
    c = common.client(args)
    for info, name in common.split_type_names(targets):
        if name is None:
            raise common.CliError("resource(s) were provided, but no name was specified")
        ns = args.namespace or c.namespace
        _update_with_retry(c, info, name, ns, lambda obj: _apply_images(obj, info, changes))
        print(f"{common.obj_ref(info, name)} image updated")
    return 0


def _update_with_retry(c: Any, info: ResourceInfo, name: str, ns: str, mutate: Any) -> None:
    """GET, change, PUT with the read resourceVersion; on a conflict (a controller wrote meanwhile) again."""
    for attempt in range(5):
        obj = c.get(info, name, ns)
        mutate(obj)
        try:
            c.update(info, obj, namespace=ns)
            return
        except Conflict:
            if attempt == 4:
                raise


def _apply_images(obj: dict, info: ResourceInfo, changes: dict[str, str]) -> None:
    spec = _get_spec(obj, _pod_spec_path(info))
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    names = {x["name"] for x in containers}
    missing = [k for k in changes if k != "*" and k not in names]
    if missing:
        raise common.CliError(f'unable to find container named "{missing[0]}"')
    for cont in containers:
        if cont["name"] in changes or "*" in changes:
            cont["image"] = changes.get(cont["name"], changes.get("*"))


def _set_env(argv: list[str]) -> int:
    p = common.parser("set env", "Update environment variables on a pod template.")
    p.add_argument("words", nargs="+", metavar="TYPE/NAME KEY=VAL ... KEY-")
    p.add_argument("-c", "--containers", default="*")
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    sets = {}
    removes = []
    targets = []
    for w in args.words:
        if "=" in w:
            k, v = w.split("=", 1)
            sets[k] = v
        elif w.endswith("-") and "/" not in w:
            removes.append(w[:-1])
        else:
            targets.append(w)
    c = common.client(args)
    for info, name in common.split_type_names(targets):
        if name is None:
            raise common.CliError("resource(s) were provided, but no name was specified")
        ns = args.namespace or c.namespace
        if args.list:
            obj = c.get(info, name, ns)
            for cont in _get_spec(obj, _pod_spec_path(info)).get("containers") or []:
                if args.containers in ("*", cont["name"]):
                    print(f"# {info.resource}/{name}, container {cont['name']}")
                    for e in cont.get("env") or []:
                        print(f"{e['name']}={e.get('value', '')}")
            continue

        def mutate(obj: dict) -> None:
            for cont in _get_spec(obj, _pod_spec_path(info)).get("containers") or []:
                if args.containers not in ("*", cont["name"]):
                    continue
                env = [e for e in cont.get("env") or [] if e["name"] not in removes and e["name"] not in sets]
                env.extend({"name": k, "value": v} for k, v in sets.items())
                cont["env"] = env
        _update_with_retry(c, info, name, ns, mutate)
        print(f"{common.obj_ref(info, name)} env updated")
    return 0
