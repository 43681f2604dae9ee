#!/usr/bin/env python3
"""Summarize a bench/packages results directory as one markdown table and its checks.

usage: summarize.py RESULTS_DIR

Reads RESULTS_DIR/runs.csv (one row per timed run: round,tool,scenario,rc,changes,wall_s,
user_s,sys_s,maxrss_kb,apt_transactions,dpkg_runs,load_before,load_after), checks.csv
(round,tool,check,result,detail) and env.txt, all written by bench.sh.

Cells: median wall seconds (min–max) over the rounds, read from the realtime clock inside the
container just around GNU time (1 ms; GNU time's own wall clock has 10 ms resolution, too
coarse for Satchel's no-op; it is kept in logs/*.time); peak RSS in MiB, the largest
ru_maxrss of any run, which is that of the largest process of the run's tree (apt-get or
dpkg included), Satchel's rounded up and Puppet's down. Ratios are Satchel's median divided
by Puppet's (below 1: Satchel is faster or smaller), 2 significant digits rounded up, so they
never flatter Satchel. The target column compares the rounded-up ratio with issue 3's
targets (first run at most 0.5, no-op at most 0.1).
"""
import csv
import os
import statistics
import sys
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

NAMES = {"satchel": "Satchel", "puppet": "Puppet"}
SCENARIOS = [("first", "first run: {n} packages"), ("noop", "no-op (same config, right after)")]
TARGETS = {"first": Decimal("0.5"), "noop": Decimal("0.1")}


def ceil_sig(x, sig=2):
    """x rounded up to sig significant digits, as a Decimal."""
    if x <= 0:
        return Decimal(0)
    d = Decimal(repr(x))
    exp = d.adjusted() - sig + 1
    q = Decimal(1).scaleb(exp)
    r = (d / q).to_integral_value(rounding=ROUND_CEILING) * q
    if r.adjusted() > d.adjusted():  # 0.0995 -> 0.10, not 0.100
        exp += 1
    return r.quantize(Decimal(1).scaleb(min(0, exp)))


def mib(kb, up):
    v = Decimal(kb) / 1024
    return f"{v.quantize(Decimal('0.1'), rounding=ROUND_CEILING if up else ROUND_FLOOR)}"


def secs(x):
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def spread(vals):
    """'3' when every run agrees, else 'median (min–max)'."""
    lo, hi = min(vals), max(vals)
    if lo == hi:
        return f"{lo:g}"
    return f"{statistics.median(vals):g} ({lo:g}–{hi:g})"


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def main(d):
    runs = load(os.path.join(d, "runs.csv"))
    checks = load(os.path.join(d, "checks.csv"))
    env = {}
    p = os.path.join(d, "env.txt")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.partition(":")
            env.setdefault(k.strip(), v.strip())
    npkg = None
    for k in env:
        if k.startswith("RUNS="):
            npkg = len(k.split("PKGS=", 1)[1].split())
    tools = [t for t in ("satchel", "puppet") if any(r["tool"] == t for r in runs)]

    def rows(tool, sc):
        return [r for r in runs if r["tool"] == tool and r["scenario"] == sc]

    rounds = sorted({int(r["round"]) for r in runs})
    print(f"### {npkg or '?'} small packages, {len(rounds)} rounds (a fresh container per tool and round)"
          f"{' — ' + env['date'] if 'date' in env else ''}\n")
    head = ["scenario"]
    for t in tools:
        head += [f"{NAMES[t]} wall s", f"{NAMES[t]} RSS MiB"]
    head += ["Satchel / Puppet", "target", "apt transactions (Satchel / Puppet)",
             "dpkg runs (Satchel / Puppet)", "checks"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for sc, label in SCENARIOS:
        cells = [label.format(n=npkg or "?")]
        med = {}
        rss = {}
        for t in tools:
            rs = [r for r in rows(t, sc) if r["wall_s"]]
            if not rs:
                cells += ["–", "–"]
                continue
            wall = [float(r["wall_s"]) for r in rs]
            med[t] = statistics.median(wall)
            rss[t] = max(int(r["maxrss_kb"]) for r in rs)
            cells += [f"{secs(med[t])} ({secs(min(wall))}–{secs(max(wall))})", mib(rss[t], up=(t == "satchel"))]
        if "satchel" in med and "puppet" in med and med["puppet"] > 0:
            ratio = ceil_sig(med["satchel"] / med["puppet"])
            rr = ceil_sig(rss["satchel"] / rss["puppet"])
            cells.append(f"wall **{ratio}** · RSS {rr}")
            cells.append(f"≤ {TARGETS[sc]}: {'met' if ratio <= TARGETS[sc] else 'NOT met'}")
        else:
            cells += ["–", "–"]
        apt = [spread([int(r["apt_transactions"]) for r in rows(t, sc)]) if rows(t, sc) else "–" for t in ("satchel", "puppet")]
        dpkg = [spread([int(r["dpkg_runs"]) for r in rows(t, sc)]) if rows(t, sc) else "–" for t in ("satchel", "puppet")]
        cells += [" / ".join(apt), " / ".join(dpkg)]
        cs = [c for c in checks if any(r["round"] == c["round"] and r["tool"] == c["tool"] for r in rows("satchel", sc) + rows("puppet", sc))
              and (("no-op" in c["check"]) == (sc == "noop"))]
        bad = [c for c in cs if c["result"] != "PASS"]
        cells.append(f"{len(cs) - len(bad)}/{len(cs)} pass" if not bad else f"**{len(bad)}/{len(cs)} FAIL**")
        print("| " + " | ".join(cells) + " |")

    def cpu(t, sc):
        v = [float(r["user_s"]) + float(r["sys_s"]) for r in rows(t, sc) if r["user_s"]]
        return f"{statistics.median(v):.2f}" if v else "–"

    print()
    print("Median CPU s (user+sys, the whole process tree; first / no-op): "
          + "; ".join(f"{NAMES[t]} {cpu(t, 'first')} / {cpu(t, 'noop')}" for t in tools) + ".")
    loads = [float(r["load_before"]) for r in runs if r["load_before"]]
    if loads:
        print(f"1-minute load before the timed runs: {min(loads):.2f}–{max(loads):.2f}.")
    print()
    print("Checks (every round, both tools): " + "; ".join(
        sorted({c["check"] for c in checks})) + ".")
    bad = [c for c in checks if c["result"] != "PASS"]
    if bad:
        print()
        print("**Failed checks:**")
        for c in bad:
            print(f"- round {c['round']}, {NAMES.get(c['tool'], c['tool'])}: {c['check']}: {c['detail']}")
    else:
        print(f"All {len(checks)} checks passed.")
    if "command" in env:
        print(f"\nCommand: `{env['command']}`")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
