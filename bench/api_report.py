"""The printed report of ``bench/api.py``: rows of rates and latencies, CPU per op, ratios against issue 2's
goals and the CPU arithmetic that bounds the concurrent ratio on this machine (the measuring is in api.py)."""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

CONC = 64


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(v: float) -> str:
    return f"{v * 1000:7.2f}"


def row(label: str, rate: float | None, lat: list[float]) -> None:
    r = f"{rate:9.0f}/s" if rate is not None else " " * 11
    print(f"  {label:<48} {r}   p50 {ms(pct(lat, 50))} ms   p99 {ms(pct(lat, 99))} ms")


def cpu_line(label: str, cpu: dict[str, float]) -> str:
    parts = " + ".join(f"{k} {v * 1e3:.3f}" for k, v in cpu.items())
    return f"  {label:<30} {parts} = {sum(cpu.values()) * 1e3:.3f} ms CPU/op"


def report(a: argparse.Namespace, w: dict[str, Any], api: dict[str, Any], api_rss: float, load0: float,
           cores: int) -> None:
    """Print the figures of one run: rates and latencies, CPU per op, the ratios against the goals and
    the 2-core arithmetic that bounds the concurrent ratio."""
    print(f"\nraw etcd (same etcd; aetcd 1.0.0 = grpc.aio, h2grpc = the apiserver's own etcd client; rates: median of "
          f"{a.rounds} rounds):")
    row("put sequential (aetcd)", *w["put_seq"])
    row("put sequential (h2grpc)", *w["h2put_seq"])
    row(f"put {CONC} concurrent (aetcd)", *w["put_conc"])
    row(f"put {CONC} concurrent (h2grpc)", *w["h2put_conc"])
    row(f"create-if-absent txn {CONC} concurrent (aetcd)", *w["txn_conc"])
    row("get one key (aetcd)", *w["raw_get"])
    row(f"range {a.conc} keys (aetcd)", *w["range"])
    print(f"\napiserver (HTTP/JSON; --workers {a.api_workers}{''.join(' ' + x for x in a.api_arg)}; "
          f"{'a spec per pod' if a.distinct_specs else 'one spec for all pods'}), run interleaved with the raw puts above "
          f"(rates: median of {a.rounds} rounds):")
    row("pod create sequential (lean client)", *w["lean_seq"])
    row("pod create sequential (aiohttp client)", *w["aio_seq"])
    row(f"pod create {CONC} concurrent (lean client)", *w["lean_conc"])
    row(f"pod create {CONC} concurrent (aiohttp client)", *w["aio_conc"])
    row(f"pod get ({a.pods} pods stored; lean client)", *api["get_lean"])
    row(f"pod get ({a.pods} pods stored; aiohttp client)", *api["get"])
    row(f"pod list all ({api['list_items']} pods, JSON)", *api["list"])
    print(f"  {'(client-side orjson decode of that list)':<48} {' ' * 11}   {ms(api['list_decode'])} ms")
    row("pod list limit=500 as Table", *api["list_table500"])
    row(f"watch delivery to {a.watchers} watchers ({api['watch_n']} ev)", None, api["watch"][1])
    print(f"  apiserver resident memory with {api['list_items']} pods stored: {api_rss:.0f} MiB"
          + ("" if a.api_workers == 1 else " (the supervisor process)"))
    print(f"\n  machine load average (1 min): {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"(other work on these {cores} cores skews every figure)")
    print("\nCPU per op (load-independent; client = this process):")
    print(cpu_line(f"raw put {CONC} conc, aetcd", w["cpu_put_conc"]))
    print(cpu_line(f"raw put {CONC} conc, h2grpc", w["cpu_h2put_conc"]))
    print(cpu_line(f"raw txn create {CONC} conc, aetcd", w["cpu_txn_conc"]))
    print(cpu_line(f"create {CONC} conc, lean client", w["cpu_lean_conc"]))
    print(cpu_line(f"create {CONC} conc, aiohttp", w["cpu_aio_conc"]))
    print(cpu_line("raw put sequential, aetcd", w["cpu_put_seq"]))
    print(cpu_line("raw put sequential, h2grpc", w["cpu_h2put_seq"]))
    print(cpu_line("create sequential, lean", w["cpu_lean_seq"]))
    print("\nratios and goals (lean client; aiohttp client in brackets):")
    def ratio(client: str, base: str, mode: str) -> str:
        per_round = [a / b for a, b in zip(w[f"rounds_{client}_{mode}"], w[f"rounds_{base}_{mode}"])]
        return f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"
    print(f"  (median of {a.rounds} interleaved rounds, range in brackets)")
    for base, label in (("put", "aetcd (the issue's baseline)"), ("h2put", "h2grpc (the apiserver's own client)")):
        print(f"  create/put with {label:<36}: sequential {ratio('lean', base, 'seq')} "
              f"[{ratio('aio', base, 'seq')}], concurrent {ratio('lean', base, 'conc')} "
              f"[{ratio('aio', base, 'conc')}]   (goal >= 0.5x)")
    per_round = [a / b for a, b in zip(w["rounds_lean_conc"], w["rounds_txn_conc"])]
    print(f"  create/raw create-if-absent txn (aetcd): concurrent {statistics.median(per_round):.2f}x "
          f"({min(per_round):.2f}-{max(per_round):.2f})   (no goal: what the HTTP/JSON/validation layer keeps)")
    print(f"  p99 create ({CONC} concurrent) {ms(pct(w['lean_conc'][1], 99))} ms "
          f"[{ms(pct(w['aio_conc'][1], 99)).strip()}] (goal <= 50), "
          f"p99 get {ms(pct(api['get_lean'][1], 99))} ms [{ms(pct(api['get'][1], 99)).strip()}] (goal <= 10), "
          f"p99 watch delivery {ms(pct(api['watch'][1], 99))} ms (goal <= 50)")
    print(f"  p99 create ({CONC} concurrent, lean) per round: "
          + ", ".join(f"{v * 1e3:.1f}" for v in w["p99s_lean_conc"]) + " ms (a stall of the apiserver, e.g. "
          "descheduled while other work holds both cores, shows in one round)")
    if a.api_workers == 1:
        per_create = sum(w["cpu_lean_conc"].values())
        api_cpu = w["cpu_lean_conc"]["apiserver"]
        create_cap = min(cores / per_create, 1 / api_cpu)     # one apiserver process runs on one core at a time
        print(f"\n  {cores}-core arithmetic (CPU per op, which load does not change much; 64 in flight is CPU-bound):")
        print(f"    a create costs {per_create * 1e3:.3f} ms of CPU (apiserver {api_cpu * 1e3:.3f}): with the {cores} cores "
              f"to ourselves at most min({cores}/{per_create * 1e3:.3f} ms, 1/{api_cpu * 1e3:.3f} ms) = {create_cap:.0f}/s")
        for key, label in (("put", "aetcd"), ("h2put", "h2grpc")):
            put_cpu = sum(w[f"cpu_{key}_conc"].values())
            put_cap = cores / put_cpu
            others = per_create - api_cpu
            print(f"    raw put ({label}) costs {put_cpu * 1e3:.3f} ms: at most {put_cap:.0f}/s; so the concurrent ratio "
                  f"is capped at {create_cap / put_cap:.2f}x; 0.5x needs a create <= {2 * put_cpu * 1e3:.3f} ms of CPU "
                  f"in all: with etcd + client at {others * 1e3:.3f} ms, <= {(2 * put_cpu - others) * 1e3:.3f} ms "
                  f"in the apiserver (and <= {2 * put_cpu / cores * 1e3:.3f} ms for one apiserver process)")
        txn = w["cpu_txn_conc"]
        print(f"    etcd's share: a create-if-absent txn costs etcd {txn['etcd'] * 1e3:.3f} ms, a put "
              f"{w['cpu_put_conc']['etcd'] * 1e3:.3f} ms; through the apiserver (with its watch) "
              f"{w['cpu_lean_conc']['etcd'] * 1e3:.3f} ms")
