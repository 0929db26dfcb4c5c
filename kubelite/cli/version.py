"""``kubelite version``: the client's version and, unless ``--client``, the server's ``/version``."""

from __future__ import annotations

import sys

from kubelite import __version__
from kubelite.cli import common


def main(argv: list[str]) -> int:
    return common.run(_version, argv)


def _version(argv: list[str]) -> int:
    p = common.parser("version", "Print the client and server version information.")
    p.add_argument("--client", action="store_true", help="only the client version")
    p.add_argument("-o", "--output", default="", help="yaml|json")
    args = p.parse_args(argv)
    info: dict = {"clientVersion": {"gitVersion": f"v{__version__}", "platform": sys.platform,
                                    "pythonVersion": sys.version.split()[0], "program": "kubelite"}}
    error = None
    if not args.client:
        try:
            info["serverVersion"] = common.client(args).request("GET", "/version")
        except Exception as exc:  # noqa: BLE001 - printed after the client version, as kubectl does
            error = exc
    if args.output in ("json", "yaml"):
        from kubelite.cli import printers
        sys.stdout.write(printers.to_json(info) + "\n" if args.output == "json" else printers.to_yaml(info))
    else:
        print(f"Client Version: {info['clientVersion']['gitVersion']} (kubelite)")
        if "serverVersion" in info:
            print(f"Server Version: {info['serverVersion'].get('gitVersion', '')}")
    if error is not None:
        raise error
    return 0
