#!/usr/bin/env python3
"""Runs the DuckDB baseline (rules.sql) over a transactions and an accounts CSV and writes
its alerts as JSON Lines: {rule, currency, subject, from_ms, until_ms, score}.

Everything from reading the CSV to the final alert table is one timed run (the harness
wraps this process in /usr/bin/time -v); writing the alert file is not part of the SQL."""
import argparse
import json
import pathlib
import sys
import time

import duckdb

# Currencies whose minor unit is 1/100: the SQL converts amounts with DECIMAL(18,2).
EXPONENT_2 = {"CNY", "USD", "EUR", "GBP", "HKD", "SGD", "AUD", "CAD", "CHF"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tx", required=True)
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    sql = (pathlib.Path(__file__).with_name("rules.sql")).read_text()
    statements = [s.strip() for s in sql.split("\n;\n") if s.strip()]
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    t0 = time.perf_counter()
    for stmt in statements:
        body = "\n".join(l for l in stmt.splitlines() if not l.lstrip().startswith("--"))
        if not body.strip():
            continue
        con.execute(body.format(tx=args.tx, accounts=args.accounts))
    rows = con.execute(
        "SELECT rule, currency, subject, from_ms, until_ms, score FROM alerts"
    ).fetchall()
    elapsed = time.perf_counter() - t0
    currencies = {r[0] for r in con.execute("SELECT DISTINCT currency FROM tx").fetchall()}
    if not currencies <= EXPONENT_2:
        print(f"duckdb baseline: unsupported currencies {sorted(currencies - EXPONENT_2)}", file=sys.stderr)
        return 2
    with open(args.out, "w") as f:
        for r in rows:
            f.write(json.dumps(dict(zip(("rule", "currency", "subject", "from_ms", "until_ms", "score"), r))) + "\n")
    print(f"duckdb {duckdb.__version__}: {len(rows)} alerts in {elapsed:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
