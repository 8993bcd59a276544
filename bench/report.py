#!/usr/bin/env python3
"""Turns bench/run's measurements (TSV) into the printed table and the results JSON:
medians over the repetitions of wall time, CPU time (user + system) and peak RSS."""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    tsv, out, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sizes: dict[str, dict] = {}
    for line in open(tsv):
        size, name, rep, wall, user, system, rss, rc = line.rstrip("\n").split("\t")
        s = sizes.setdefault(size, {"measurements": {}})
        if name in ("rows", "agree", "stable_alerts"):
            s[name] = int(float(wall))
            continue
        if name.startswith("step:"):
            s.setdefault("steps", {}).setdefault(name[5:], []).append(float(wall))
            continue
        m = s["measurements"].setdefault(name, {"wall_s": [], "cpu_s": [], "rss_kib": [], "timed_out": False})
        if rc == "124":
            m["timed_out"] = True
        m["wall_s"].append(float(wall))
        m["cpu_s"].append(float(user) + float(system))
        m["rss_kib"].append(int(rss))
    rows_out = []
    for size, s in sizes.items():
        s["steps"] = {k: round(statistics.median(v), 3) for k, v in s.get("steps", {}).items()}
        n = s.get("rows", 0)
        for name, m in s["measurements"].items():
            med = {k: statistics.median(v) for k, v in m.items() if isinstance(v, list)}
            m["median"] = {
                "wall_s": round(med["wall_s"], 3),
                "cpu_s": round(med["cpu_s"], 3),
                "peak_rss_mib": round(med["rss_kib"] / 1024, 1),
                "tx_per_s": round(n / med["wall_s"]) if med["wall_s"] > 0 else None,
                "rss_bytes_per_tx": round(med["rss_kib"] * 1024 / n, 1) if n else None,
            }
            if m["timed_out"]:
                m["median"]["tx_per_s"] = None
            rows_out.append((size, name + (" TIMED OUT" if m["timed_out"] else ""), m["median"]))
        scan_input = s["measurements"].get("scan --input (stable pack)", {}).get("median")
        for key, name in (("db_ratio_sqlite", "scan --db (stable pack)"),
                          ("db_ratio_postgres", "scan --db PostgreSQL (stable pack)")):
            db = s["measurements"].get(name, {}).get("median")
            if scan_input and db and scan_input["wall_s"] > 0:
                s[key] = round(db["wall_s"] / scan_input["wall_s"], 2)
        cw = s["measurements"].get("clearwatch: 4 rules", {}).get("median")
        dk = s["measurements"].get("DuckDB: 4 rules", {}).get("median")
        if cw and dk:
            s["duckdb_ratio"] = round(dk["wall_s"] / cw["wall_s"], 2)
            s["duckdb_ratio_cpu"] = round(dk["cpu_s"] / cw["cpu_s"], 2) if cw["cpu_s"] else None
    machine = {
        "nproc": sh("nproc"),
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p'"),
        "memory": sh("free -g | awk '/Mem:/{print $2 \" GiB\"}'"),
        "kernel": platform.release(),
        "shared": "yes: other engineers used the machine during the run",
    }
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": sh("git rev-parse --short HEAD"),
        "repetitions": reps,
        "statistic": "median",
        "machine": machine,
        "sizes": sizes,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print()
    print(f"{'size':>5}  {'measurement':<36} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>12} {'tx/s':>12} {'RSS B/tx':>9}")
    for size, name, m in rows_out:
        tps = f"{m['tx_per_s']:,}" if m["tx_per_s"] else "-"
        print(f"{size:>5}  {name:<36} {m['wall_s']:>8.2f} {m['cpu_s']:>8.2f} {m['peak_rss_mib']:>12.1f} {tps:>12} {m['rss_bytes_per_tx'] or '-':>9}")
    # Steps and rules of the stable pack's scan (seconds from `scan --timings`, the rule
    # times CPU seconds of their worker), medians, and how each grows from the smallest
    # size to the largest: a ratio well above the ratio of the sizes is a superlinear step.
    names = list(sizes)
    steps = sorted({k for s in sizes.values() for k in s["steps"]},
                   key=lambda k: (k != "read input and build graph", -sizes[names[-1]]["steps"].get(k, 0), k))
    if steps:
        print()
        ratio = len(names) > 1
        head = "".join(f"{n:>10}" for n in names) + (f"{names[-1] + ' / ' + names[0]:>14}" if ratio else "")
        print(f"{'step (s)':<34}{head}")
        rows_ratio = sizes[names[-1]].get("rows", 0) / max(sizes[names[0]].get("rows", 0), 1)
        for k in steps:
            vals = [sizes[n]["steps"].get(k) for n in names]
            line = "".join(f"{v:>10.3f}" if v is not None else f"{'-':>10}" for v in vals)
            if ratio and vals[0] and vals[-1] is not None:
                line += f"{vals[-1] / vals[0]:>14.1f}"
            print(f"{k:<34}{line}")
        if ratio:
            print(f"{'(transactions)':<34}{'':>{10 * len(names)}}{rows_ratio:>14.1f}")
    for size, s in sizes.items():
        agree = {1: "agree", 0: "DIFFER"}.get(s.get("agree"), "not compared")
        print(f"{size:>5}  {s.get('rows', 0):,} transactions; stable pack alerts {s.get('stable_alerts', '-')}; "
              f"DuckDB / clearwatch wall time (same 4 rules): {s.get('duckdb_ratio', '-')}x "
              f"(CPU {s.get('duckdb_ratio_cpu', '-')}x); alerts {agree}; scan --db / scan --input wall: "
              f"SQLite {s.get('db_ratio_sqlite', '-')}x, PostgreSQL {s.get('db_ratio_postgres', '-')}x")
    # Each measurement's growth from the smallest size to the largest, beside the sizes'.
    if len(names) > 1:
        first, last = sizes[names[0]], sizes[names[-1]]
        print(f"\n{'measurement':<36}{'wall ' + names[-1] + ' / ' + names[0]:>16}{'CPU':>8}{'RSS':>8}")
        for name, m in last["measurements"].items():
            a = first["measurements"].get(name, {}).get("median")
            b = m.get("median")
            if a and b and a["wall_s"] > 0 and a["cpu_s"] > 0 and a["peak_rss_mib"] > 0:
                print(f"{name:<36}{b['wall_s'] / a['wall_s']:>16.1f}{b['cpu_s'] / a['cpu_s']:>8.1f}"
                      f"{b['peak_rss_mib'] / a['peak_rss_mib']:>8.1f}")


if __name__ == "__main__":
    main()
