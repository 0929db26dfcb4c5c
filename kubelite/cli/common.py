"""What every kubectl-like command shares: global flags, the client, manifests, names, error output.

Errors are printed the way kubectl prints them (``Error from server (NotFound): pods "x" not found``,
``error: ...``) and become exit code 1; nothing here ever lets a traceback reach the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from kubelite.api.errors import ApiError, Invalid, KubeliteError
from kubelite.api.resources import RESOURCES, ResourceInfo, UnknownResource, for_kind, lookup
from kubelite.client._sync import SyncClient

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class CliError(KubeliteError):
    """A user-facing error; printed as ``error: <message>``."""


class ArgParser(argparse.ArgumentParser):
    """argparse that reports bad flags like kubectl (``error: ...``, exit 1)."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """Flags and names in any order, as kubectl takes them (``get pod -o yaml NAME``)."""
        return self.parse_intermixed_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        print(f"{error_prefix()} {message}\nSee 'kubelite {self.prog.split()[-1]} --help' for usage.", file=sys.stderr)
        raise SystemExit(1)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without its ``shutil`` import (≈10 ms of start-up) for the terminal width."""

    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size().columns - 2
        except OSError:
            width = int(os.environ.get("COLUMNS", "80")) - 2
        super().__init__(prog, width=max(40, width))


def parser(command: str, description: str = "") -> ArgParser:
    p = ArgParser(prog=f"kubelite {command}", description=description, formatter_class=_Formatter)
    g = p.add_argument_group("global")
    g.add_argument("--kubeconfig", default=None, help="path to the kubeconfig file")
    g.add_argument("--context", default=None, help="the kubeconfig context to use")
    g.add_argument("-s", "--server", default=None, help="the address of the API server")
    g.add_argument("--token", default=None, help="bearer token for authentication")
    g.add_argument("-n", "--namespace", default=None, help="the namespace scope for this request")
    g.add_argument("--request-timeout", default="60", help="seconds to wait for one server request")
    return p


def client(args: argparse.Namespace) -> SyncClient:
    from kubelite import kubeconfig

    cfg = kubeconfig.load(args.kubeconfig, context=args.context, server=args.server, namespace=args.namespace,
                          token=args.token)
    timeout = str(args.request_timeout).rstrip("s")
    c = SyncClient(cfg, timeout=float(timeout) if timeout not in ("", "0") else None)
    c.on_warning = lambda text: print(f"Warning: {text}", file=sys.stderr)
    _open_clients.append(c)
    return c


_open_clients: list[SyncClient] = []


def use_colour(stream: Any) -> bool:
    """Colour only on a terminal and only when ``NO_COLOR`` is unset (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def paint(text: str, sgr: str, stream: Any) -> str:
    """``text`` in an SGR style (``"31"`` red, ``"1"`` bold) when ``stream`` is a colour terminal, else as is."""
    return f"\x1b[{sgr}m{text}\x1b[0m" if use_colour(stream) else text


def error_prefix(stream: Any = None) -> str:
    """kubectl's ``error:``, red on a terminal."""
    return paint("error:", "31", sys.stderr if stream is None else stream)


def resource_name(info: ResourceInfo) -> str:
    """``pod`` or ``deployment.apps``: how kubectl names a type in ``pod/x created``."""
    return f"{info.singular}.{info.group}" if info.group else info.singular


def obj_ref(info: ResourceInfo, name: str) -> str:
    return f"{resource_name(info)}/{name}"


def resolve_type(name: str) -> ResourceInfo:
    try:
        return lookup(name)
    except UnknownResource as exc:
        raise CliError(str(exc) + did_you_mean(name)) from None


def did_you_mean(name: str) -> str:
    """``"\n\nDid you mean this?\n\tpods"`` for a near-miss type name (difflib, imported only here), else ""."""
    import difflib

    by_word: dict[str, str] = {}
    for r in RESOURCES:
        for word in (r.resource, r.singular, *r.short_names):
            by_word.setdefault(word, r.resource)
    close: list[str] = []
    for word in difflib.get_close_matches(name.lower(), by_word, n=6, cutoff=0.6):
        if by_word[word] not in close:
            close.append(by_word[word])
    return "\n\nDid you mean this?\n" + "\n".join(f"\t{c}" for c in close[:3]) if close else ""


def category(name: str) -> list[ResourceInfo] | None:
    found = [r for r in RESOURCES if name in r.categories]
    return found or None


class Manifest:
    """One object read from a file (``source`` is the name the user gave, "STDIN" for -)."""

    __slots__ = ("obj", "source", "info")

    def __init__(self, obj: dict[str, Any], source: str, info: ResourceInfo) -> None:
        self.obj, self.source, self.info = obj, source, info


def _yaml_error(source: str, exc: Exception) -> CliError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return CliError(f"error parsing {source}: error converting YAML to JSON: yaml: {where}{problem}")


def _documents(text: str, source: str) -> Iterator[dict[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        import json
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"error parsing {source}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg}") from None
        docs: list[Any] = doc if isinstance(doc, list) else [doc]
    else:
        import yaml
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            docs = list(yaml.load_all(text, Loader=loader))
        except yaml.YAMLError as exc:
            raise _yaml_error(source, exc) from None
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CliError(f"error parsing {source}: a manifest must be a mapping, got {type(doc).__name__}")
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                if isinstance(item, dict):
                    yield item
            continue
        yield doc


def _files(path: str, recursive: bool) -> list[Any]:
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in (".yaml", ".yml", ".json"))
    if not p.exists():
        raise CliError(f'the path "{path}" does not exist')
    return [p]


def read_manifests(filenames: list[str], recursive: bool = False) -> list[Manifest]:
    """Every object in the given files, directories and ``-`` (stdin), validated for apiVersion/kind."""
    if not filenames:
        raise CliError("must specify one of -f and -k")
    out: list[Manifest] = []
    for name in filenames:
        sources: list[tuple[str, str]] = []
        if name == "-":
            sources.append(("STDIN", sys.stdin.read()))
        else:
            for f in _files(name, recursive):
                try:
                    sources.append((str(f) if os.path.isdir(name) else name, f.read_text()))
                except (OSError, UnicodeDecodeError) as exc:
                    raise CliError(f"error reading {f}: {getattr(exc, 'strerror', None) or exc}") from None
        for source, text in sources:
            for doc in _documents(text, source):
                missing = [f for f in ("apiVersion", "kind") if not doc.get(f)]
                if missing:
                    raise CliError(f'error validating "{source}": error validating data: '
                                   f'[{", ".join(m + " not set" for m in missing)}]')
                if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                    if not (doc.get("metadata") or {}).get("generateName"):
                        raise CliError(f'error validating "{source}": error validating data: metadata.name not set')
                try:
                    info = for_kind(str(doc["apiVersion"]), str(doc["kind"]))
                except UnknownResource as exc:
                    name_ = (doc.get("metadata") or {}).get("name", "")
                    ns = (doc.get("metadata") or {}).get("namespace", "")
                    raise CliError(f'resource mapping not found for name: "{name_}" namespace: "{ns}" from '
                                   f'"{source}": {exc}\nensure CRDs are installed first') from None
                out.append(Manifest(doc, source, info))
    if not out:
        raise CliError("no objects passed to apply" if filenames else "no objects")
    return out


def api_error_text(exc: ApiError, action: str = "", source: str = "") -> str:
    """kubectl's rendering of a server error."""
    if isinstance(exc, Invalid):
        details = exc.details or {}
        kind = details.get("kind") or ""
        name = details.get("name") or ""
        if kind and name and " is invalid: " in exc.message:
            return f'The {kind} "{name}" is invalid: {exc.message.split(" is invalid: ", 1)[1]}'
        return exc.message
    where = f'error when {action} "{source}": ' if action and source else ""
    reason = exc.status_reason or "Unknown"
    if exc.status_code == 503 and exc.message.startswith(("The connection to the server", "Unable to connect")):
        return exc.message
    return f"Error from server ({reason}): {where}{exc.message}"


def run(func: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a command body, turning every expected failure into kubectl's one-line output."""
    from kubelite.kubeconfig import KubeconfigError

    try:
        return _run(func, argv, KubeconfigError)
    finally:
        while _open_clients:
            _open_clients.pop().close()


def _run(func: Callable[[list[str]], int], argv: list[str], kubeconfig_error: type[Exception]) -> int:
    try:
        return func(argv)
    except ApiError as exc:
        print(api_error_text(exc), file=sys.stderr)
    except (CliError, kubeconfig_error) as exc:
        text = str(exc)
        print(text if text.startswith("The connection to the server") else f"{error_prefix()} {text}",
              file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:      # argparse: usage errors (1) and --help (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 1
    return 1


def namespace_of(c: SyncClient, args: argparse.Namespace, info: ResourceInfo,
                 obj: dict[str, Any] | None = None) -> str | None:
    """The namespace a namespaced object goes to; refuses a manifest namespace that contradicts ``-n``."""
    if not info.namespaced:
        return None
    meta_ns = ((obj or {}).get("metadata") or {}).get("namespace")
    if args.namespace and meta_ns and meta_ns != args.namespace:
        raise CliError(f"the namespace from the provided object \"{meta_ns}\" does not match the namespace "
                       f"\"{args.namespace}\". You must pass '--namespace={meta_ns}' to perform this operation.")
    return meta_ns or c.namespace


def split_type_names(words: list[str]) -> list[tuple[ResourceInfo, str | None]]:
    """``pods``, ``pod x y``, ``pod/x deploy/y``, ``pod,deploy`` → (type, name or None) pairs."""
    if not words:
        raise CliError("you must specify the type of resource to get. Use \"kubelite api-resources\" for a "
                       "complete list of supported resources.")
    out: list[tuple[ResourceInfo, str | None]] = []
    if "/" in words[0]:
        for w in words:
            if "/" not in w:
                raise CliError("there is no need to specify a resource type as a separate argument when passing "
                               "arguments in resource/name form (e.g. 'kubelite get resource/<resource_name>' "
                               "instead of 'kubelite get resource resource/<resource_name>'")
            t, _, n = w.partition("/")
            out.append((resolve_type(t), n))
        return out
    types: list[ResourceInfo] = []
    for t in words[0].split(","):
        cat = category(t)
        types.extend(cat if cat and t == "all" else [resolve_type(t)])
    names = words[1:]
    if names and len(types) > 1:
        raise CliError("arguments in resource/name form must have a single resource and name")
    if not names:
        return [(t, None) for t in types]
    return [(types[0], n) for n in names]
