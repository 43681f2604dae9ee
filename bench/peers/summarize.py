#!/usr/bin/env python3
"""Summarize a bench/peers results directory as one markdown table, the floor ratio and
every check.

usage: summarize.py RESULTS_DIR

Reads RESULTS_DIR/runs.csv (one row per run: tag,tool,run,rc,changes,errors,wall_s,user_s,
sys_s,maxrss_kb; tags are TOOL-N<N>-first|noop|drift), hires.csv (Satchel's and the floor's
wall time at sub-10 ms resolution) and checks.csv, all written by bench.sh.

Table cells: median wall seconds (min–max) over the runs, from GNU time (10 ms resolution,
the same instrument for every tool), and peak RSS in MiB (the largest ru_maxrss of any run;
Satchel's rounded up, the peers' down). Ratios are Satchel's median divided by the peer's,
so below 1 means Satchel is faster (or smaller); they are shown with 2 significant digits,
rounded up, so they never flatter Satchel.
"""
import csv
import os
import statistics
import sys
from collections import OrderedDict
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

NAMES = {"satchel": "Satchel", "cfengine": "CFEngine", "puppet": "Puppet", "ansible": "Ansible"}
SCENARIOS = [("first", "first run (empty ROOT)"), ("noop", "no-op (converged)"),
             ("drift", "drift repair (50 changes)")]


def ceil_sig(x, sig=2):
    """x rounded up to sig significant digits, as text."""
    if x <= 0:
        return "0"
    d = Decimal(repr(x))
    exp = d.adjusted() - sig + 1
    q = Decimal(1).scaleb(exp)
    r = (d / q).to_integral_value(rounding=ROUND_CEILING) * q
    if r.adjusted() > d.adjusted():  # 0.0995 -> 0.10, not 0.100
        exp += 1
    return f"{r:.{max(0, -exp)}f}"


def mib(kb, up):
    v = Decimal(kb) / 1024
    return f"{v.quantize(Decimal('0.1'), rounding=ROUND_CEILING if up else ROUND_FLOOR)}"


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def main(d):
    runs = OrderedDict()
    for r in load(os.path.join(d, "runs.csv")):
        runs.setdefault(r["tag"], []).append(r)
    hires = {}
    for r in load(os.path.join(d, "hires.csv")):
        hires.setdefault(r["tag"], []).append(float(r["wall_s"]))
    checks = load(os.path.join(d, "checks.csv"))

    tools, sizes = [], []
    for tag in runs:
        tool, n, _ = tag.rsplit("-", 2)
        if tool != "floor" and tool not in tools:
            tools.append(tool)
        if n not in sizes:
            sizes.append(n)
    if "satchel" in tools:  # Satchel first, then the peers in the order they ran
        tools.remove("satchel")
        tools.insert(0, "satchel")
    peers = [t for t in tools if t != "satchel"]

    env = {}
    p = os.path.join(d, "env.txt")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.partition(":")
            env.setdefault(k.strip(), v.strip())

    def stats(tag):
        rs = runs.get(tag)
        if not rs:
            return None
        wall = [float(r["wall_s"]) for r in rs]
        rss = max(int(r["maxrss_kb"]) for r in rs)
        return statistics.median(wall), min(wall), max(wall), rss, len(rs)

    for n in sizes:
        counts = sorted({s[4] for t in tools for sc, _ in SCENARIOS if (s := stats(f"{t}-{n}-{sc}"))})
        print(f"### {n[1:]} small files, {'/'.join(map(str, counts))} runs per cell"
              f"{' — ' + env['date'] if 'date' in env else ''}\n")
        head = ["scenario"]
        for t in tools:
            head += [f"{NAMES.get(t, t)} wall s", f"{NAMES.get(t, t)} RSS MiB"]
        if "satchel" in tools:
            head += [f"Satchel / {NAMES.get(p, p)}" for p in peers]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for sc, label in SCENARIOS:
            cells = [label]
            for t in tools:
                s = stats(f"{t}-{n}-{sc}")
                if s is None:
                    cells += ["–", "–"]
                    continue
                wall = f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})" if s[4] > 1 else f"{s[0]:.2f} (1 run)"
                cells += [wall, mib(s[3], up=(t == "satchel"))]
            sat = stats(f"satchel-{n}-{sc}")
            if sat:
                for p in peers:
                    ps = stats(f"{p}-{n}-{sc}")
                    if ps is None or ps[0] <= 0:
                        cells.append("–")
                        continue
                    cells.append(f"wall {ceil_sig(sat[0] / ps[0])} · RSS {ceil_sig(sat[3] / ps[3])}")
            print("| " + " | ".join(cells) + " |")

        cpu = []
        for t in tools:
            vals = []
            for sc, _ in SCENARIOS:
                rs = runs.get(f"{t}-{n}-{sc}")
                vals.append(f"{statistics.median(float(r['user_s']) + float(r['sys_s']) for r in rs):.2f}" if rs else "–")
            cpu.append(f"{NAMES.get(t, t)} {' / '.join(vals)}")
        print(f"\nMedian CPU s (user+sys; first / no-op / drift), less sensitive to other jobs than wall: {'; '.join(cpu)}")

        sat, flo = f"satchel-{n}-noop", f"floor-{n}-noop"
        if sat in runs and flo in runs:
            if sat in hires and flo in hires:
                a, b, how = statistics.median(hires[sat]), statistics.median(hires[flo]), "date +%s%N around the same command"
            else:
                a, b, how = stats(sat)[0], stats(flo)[0], "GNU time, 10 ms resolution"
            fs = stats(flo)
            print(f"\nSatchel no-op = {ceil_sig(a / b) if b > 0 else '∞'} × floor "
                  f"(median wall {a:.3f} s vs {b:.3f} s, {how}; floor peak RSS {mib(fs[3], up=False)} MiB: "
                  f"lstat + read + SHA-256 of every managed path, bench/peers/floor)")

    errs = [(t, r) for t, rs in runs.items() for r in rs if r["errors"] not in ("0", "")]
    print(f"\n### Checks: {len(checks)} run, {sum(c['result'] != 'PASS' for c in checks)} failed; "
          f"{sum(len(v) for v in runs.values())} runs, {len(errs)} with errors\n")
    for c in checks:
        print(f"- {c['result']} {c['tag']}: {c['check']} — {c['detail'].strip(chr(34))}")
    for t, r in errs:
        print(f"- ERROR {t} run {r['run']}: rc={r['rc']} errors={r['errors']} (logs/{t}-{r['run']}.log)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
