#!/usr/bin/env python3
"""Compares clearwatch's alerts (scan --format jsonl) with the DuckDB baseline's by
(rule, currency, subject, window); for alerts in both, the scores must agree too. Prints
every difference; exit 1 when there is one."""
import collections
import datetime
import json
import sys


def ms(iso: str) -> int:
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


def main() -> int:
    cw_path, duck_path = sys.argv[1], sys.argv[2]
    rules = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else None
    cw = {}
    for line in open(cw_path):
        a = json.loads(line)
        if rules and a["rule_id"] not in rules:
            continue
        key = (a["rule_id"], a.get("currency") or "", a["subject"]["id"],
               ms(a["window"]["from"]), ms(a["window"]["until"]))
        cw[key] = a["score"]
    duck = {}
    for line in open(duck_path):
        a = json.loads(line)
        duck[(a["rule"], a["currency"], a["subject"], a["from_ms"], a["until_ms"])] = a["score"]
    fmt = lambda k: f"{k[0]} {k[2]} [{datetime.datetime.fromtimestamp(k[3] / 1000, datetime.UTC):%Y-%m-%d}, {datetime.datetime.fromtimestamp(k[4] / 1000, datetime.UTC):%Y-%m-%d}) {k[1]}"
    diffs = 0
    for k in sorted(cw.keys() - duck.keys()):
        print(f"only clearwatch: {fmt(k)} score {cw[k]}")
        diffs += 1
    for k in sorted(duck.keys() - cw.keys()):
        print(f"only duckdb:     {fmt(k)} score {duck[k]}")
        diffs += 1
    for k in sorted(cw.keys() & duck.keys()):
        if cw[k] != duck[k]:
            print(f"score differs:   {fmt(k)} clearwatch {cw[k]} duckdb {duck[k]}")
            diffs += 1
    per_rule = collections.Counter(k[0] for k in cw)
    summary = ", ".join(f"{r} {n}" for r, n in sorted(per_rule.items()))
    if diffs:
        print(f"alerts DIFFER: {diffs} difference(s) (clearwatch {len(cw)}, duckdb {len(duck)})")
        return 1
    print(f"alerts agree: {len(cw)} alerts ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
