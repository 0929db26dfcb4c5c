"""``kubelite prometheus``: run a real Prometheus (Debian's ``prometheus``) that scrapes this cluster.

The scrape configuration is written for the user, the way Prometheus runs on real clusters: the
kubelets are found with Kubernetes service discovery (``kubernetes_sd_configs``, role ``node``) and
scraped through the apiserver's ``nodes/<name>/proxy/metrics`` and ``.../metrics/cadvisor``. A build
without Kubernetes discovery (Debian's) gets ``http_sd_configs`` on the apiserver's
``/metrics/sd/nodes`` instead, which lists the same targets with the same ``__meta_kubernetes_node_*``
labels, so the relabelling is identical; the
apiserver's ``/metrics`` and its kube-state-metrics-style ``/metrics/objects`` are scraped directly,
and the scheduler and controller-manager when their ports are given. Data lives in ``--data-dir``;
the web UI and query API listen on loopback (``--port``, default 9090). ``kubelite up --prometheus``
uses :func:`prepare` to run the same thing as one of its components.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kubelite.cli import common

PROMETHEUS = os.environ.get("KUBELITE_PROMETHEUS", shutil.which("prometheus") or "/usr/bin/prometheus")


def has_kubernetes_sd(prometheus: str = PROMETHEUS) -> bool:
    """Whether this Prometheus build knows ``kubernetes_sd_configs`` (Debian's package is built without it)."""
    promtool = os.path.join(os.path.dirname(prometheus), "promtool")
    if not os.access(promtool, os.X_OK):
        return True
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as fh:
        fh.write("scrape_configs:\n- job_name: probe\n  kubernetes_sd_configs:\n  - role: node\n"
                 "    api_server: http://127.0.0.1:1\n")
        fh.flush()
        p = subprocess.run([promtool, "check", "config", fh.name], capture_output=True, text=True, timeout=30)
    return "kubernetes_sd_configs not found" not in p.stdout + p.stderr


def scrape_config(api_url: str, *, interval: str = "5s", token_file: str | None = None,
                  scheduler_port: int | None = None, controller_manager_port: int | None = None,
                  kubernetes_sd: bool = True) -> dict[str, Any]:
    """The ``prometheus.yml`` document for the cluster at ``api_url``.

    ``kubernetes_sd``: discover the nodes with ``kubernetes_sd_configs`` (role node); False uses the
    apiserver's HTTP SD endpoint ``/metrics/sd/nodes``, which yields the same targets and labels.
    """
    u = urlsplit(api_url)
    address = u.netloc
    auth = {"authorization": {"credentials_file": token_file}} if token_file else {}
    tls = {"tls_config": {"insecure_skip_verify": True}} if u.scheme == "https" else {}

    def via_node_proxy(job: str, path: str) -> dict[str, Any]:
        sd: dict[str, Any] = {"kubernetes_sd_configs": [{"role": "node", "api_server": api_url, **auth, **tls}]}
        if not kubernetes_sd:
            sd = {"http_sd_configs": [{"url": f"{api_url}/metrics/sd/nodes", "refresh_interval": interval,
                                       **auth, **tls}]}
        return {"job_name": job, "scheme": u.scheme, **auth, **tls, "honor_labels": job == "kubernetes-cadvisor",
                **sd,
                "relabel_configs": [
                    {"action": "labelmap", "regex": "__meta_kubernetes_node_label_(.+)"},
                    {"target_label": "__address__", "replacement": address},
                    {"source_labels": ["__meta_kubernetes_node_name"], "regex": "(.+)",
                     "target_label": "__metrics_path__", "replacement": f"/api/v1/nodes/${{1}}/proxy{path}"},
                    {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}]}

    jobs: list[dict[str, Any]] = [
        {"job_name": "kubernetes-apiservers", "scheme": u.scheme, **auth, **tls,
         "static_configs": [{"targets": [address]}]},
        {"job_name": "kube-state-metrics", "scheme": u.scheme, **auth, **tls, "honor_labels": True,
         "metrics_path": "/metrics/objects", "static_configs": [{"targets": [address]}]},
        via_node_proxy("kubernetes-nodes", "/metrics"),
        via_node_proxy("kubernetes-cadvisor", "/metrics/cadvisor"),
    ]
    if scheduler_port:
        jobs.append({"job_name": "kube-scheduler", "static_configs": [{"targets": [f"127.0.0.1:{scheduler_port}"]}]})
    if controller_manager_port:
        jobs.append({"job_name": "kube-controller-manager",
                     "static_configs": [{"targets": [f"127.0.0.1:{controller_manager_port}"]}]})
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval}, "scrape_configs": jobs}


def prepare(data_dir: Path, api_url: str, *, port: int = 9090, interval: str = "5s", token: str | None = None,
            scheduler_port: int | None = None, controller_manager_port: int | None = None) -> list[str]:
    """Write ``<data_dir>/prometheus.yml`` (and the token file) and return the command line that runs it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = None
    if token:
        token_file = str(data_dir / "token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
    config = scrape_config(api_url, interval=interval, token_file=token_file, scheduler_port=scheduler_port,
                           controller_manager_port=controller_manager_port, kubernetes_sd=has_kubernetes_sd())
    (data_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return [PROMETHEUS, f"--config.file={data_dir / 'prometheus.yml'}", f"--storage.tsdb.path={data_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"]


def main(argv: list[str]) -> int:
    return common.run(_prometheus, argv)


def _prometheus(argv: list[str]) -> int:
    p = common.parser("prometheus", "Run Prometheus scraping this cluster (service discovery through the apiserver).")
    p.add_argument("--data-dir", default=None, help="config and TSDB (default: <kubeconfig dir>/prometheus)")
    p.add_argument("--port", type=int, default=9090, help="web UI / API port on 127.0.0.1 (default 9090)")
    p.add_argument("--scrape-interval", default="5s")
    p.add_argument("--scheduler-port", type=int, default=None)
    p.add_argument("--controller-manager-port", type=int, default=None)
    p.add_argument("--print-config", action="store_true", help="print prometheus.yml and exit")
    args = p.parse_args(argv)
    from kubelite import kubeconfig
    cfg = kubeconfig.load(args.kubeconfig, context=args.context, server=args.server, token=args.token)
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(scrape_config(cfg.server, interval=args.scrape_interval,
                                                      scheduler_port=args.scheduler_port,
                                                      controller_manager_port=args.controller_manager_port,
                                                      kubernetes_sd=has_kubernetes_sd()),
                                        sort_keys=False))
        return 0
    if not os.access(PROMETHEUS, os.X_OK):
        raise common.CliError(f"no prometheus binary at {PROMETHEUS} (apt-get install prometheus)")
    base = Path(args.data_dir) if args.data_dir else Path(
        os.path.dirname(os.path.abspath(args.kubeconfig or os.environ.get("KUBECONFIG", "") or "."))) / "prometheus"
    argv_ = prepare(base, cfg.server, port=args.port, interval=args.scrape_interval, token=cfg.token,
                    scheduler_port=args.scheduler_port, controller_manager_port=args.controller_manager_port)
    print(f"prometheus: config {base / 'prometheus.yml'}; UI http://127.0.0.1:{args.port}/", file=sys.stderr)
    os.execv(argv_[0], argv_)
    return 0  # not reached
