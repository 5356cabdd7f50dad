#!/usr/bin/env python3
"""Compares our CPU benchmarks with the Python peers: one Markdown table.

Inputs: a Google Benchmark JSON file (proxytask_stats_bench --benchmark_format=json, or
--benchmark_out=FILE) and the JSON of benchmarks/peers/cpu_peers.py --json. Pure Python.

  benchmarks/peers/compare_cpu.py build/peers/ours.json build/peers/peers.json

Each peer is set against our benchmark of the same size with 1 thread; the ratio is
peer time / our time (how many times faster we are), checked against the target:

  scipy_spearman_loop       vs BM_OverSteps_Spearman_Plain_Cpu      target >= 20
  scipy_kendall_loop        vs BM_OverSteps_Kendall_Plain_Cpu       no target
  numpy_bootstrap_spearman  vs BM_OverSteps_Spearman_Bootstrap_Cpu  target >= 10

Our 2-thread times are shown beside, and our benchmarks of the sizes with no peer
(BM_OverSteps_Kendall_Bootstrap_Cpu) get rows of their own. Times are the best (smallest)
real_time of repeated entries; aggregate entries (mean, median, ...) are ignored.
"""

import argparse
import json
import sys

#: peer -> (our benchmark, target ratio or None)
PAIRS = {
    "scipy_spearman_loop": ("BM_OverSteps_Spearman_Plain_Cpu", 20.0),
    "scipy_kendall_loop": ("BM_OverSteps_Kendall_Plain_Cpu", None),
    "numpy_bootstrap_spearman": ("BM_OverSteps_Spearman_Bootstrap_Cpu", 10.0),
}
#: Our benchmarks, in the order of the rows without a peer.
OURS = ["BM_OverSteps_Spearman_Plain_Cpu", "BM_OverSteps_Kendall_Plain_Cpu",
        "BM_OverSteps_Spearman_Bootstrap_Cpu", "BM_OverSteps_Kendall_Bootstrap_Cpu"]
_SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_benchmark_name(name):
    """'BM_X/steps:200/models:1000/resamples:0/threads:2[/real_time]' -> ('BM_X', {...}).

    Arguments without a name (a bare number) and suffixes such as real_time are ignored;
    'threads' defaults to 1.
    """
    base, *parts = name.split("/")
    arguments = {"threads": 1}
    for part in parts:
        key, sep, value = part.partition(":")
        if sep and value.isdigit():
            arguments[key] = int(value)
    return base, arguments


def load_ours(path):
    """Our times: {(benchmark, steps, models, resamples, threads): seconds}, and the context."""
    with open(path) as f:
        document = json.load(f)
    times = {}
    for entry in document.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration" or entry.get("error_occurred"):
            continue
        base, arguments = parse_benchmark_name(entry["name"])
        if not {"steps", "models"} <= arguments.keys():
            continue
        unit = entry.get("time_unit", "ns")
        if unit not in _SECONDS_PER_UNIT:
            raise ValueError(f"{path}: unknown time_unit {unit!r} in {entry['name']}")
        seconds = float(entry["real_time"]) * _SECONDS_PER_UNIT[unit]
        key = (base, arguments["steps"], arguments["models"], arguments.get("resamples", 0),
               arguments["threads"])
        times[key] = min(seconds, times.get(key, float("inf")))
    return times, document.get("context", {})


def load_peers(path):
    """The peers' results: a list of {"peer", "steps", "models", "resamples", "seconds"}."""
    with open(path) as f:
        results = json.load(f)
    for r in results:
        missing = {"peer", "steps", "models", "resamples", "seconds"} - r.keys()
        if missing:
            raise ValueError(f"{path}: entry {r} lacks {sorted(missing)}")
    return results


def format_seconds(seconds):
    """A duration with a readable unit; 'n/a' for None."""
    if seconds is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}" if seconds / scale < 100 else \
                f"{seconds / scale:.0f} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(ratio):
    """'35.2x', or 'n/a'."""
    return "n/a" if ratio is None else (f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x")


def build_rows(ours, peers):
    """The table rows: each peer against our 1- and 2-thread benchmark, then ours without a peer.

    Returns (rows, verdicts): rows as lists of cells; verdicts the 'met'/'missed'/'no data'
    of the rows that have a target.
    """
    rows, verdicts, shown = [], [], set()
    for r in peers:
        steps, models, resamples = r["steps"], r["models"], r["resamples"]
        size = f"({steps}, {models}, {resamples})"
        if r["peer"] not in PAIRS:
            rows.append([size, r["peer"], format_seconds(r["seconds"]), "", "", "", "", "", ""])
            continue
        benchmark, target = PAIRS[r["peer"]]
        one = ours.get((benchmark, steps, models, resamples, 1))
        two = ours.get((benchmark, steps, models, resamples, 2))
        shown.update({(benchmark, steps, models, resamples)})
        ratio_one = r["seconds"] / one if one else None
        ratio_two = r["seconds"] / two if two else None
        if target is None:
            verdict = ""
        else:
            verdict = "no data" if ratio_one is None else ("met" if ratio_one >= target else "missed")
            verdicts.append(verdict)
        rows.append([size, f"{r['peer']} vs {benchmark.removeprefix('BM_OverSteps_')}",
                     format_seconds(r["seconds"]), format_seconds(one), format_ratio(ratio_one),
                     "" if target is None else f">= {target:g}x", verdict,
                     format_seconds(two), format_ratio(ratio_two)])
    sizes = sorted({key[:4] for key in ours} - shown,
                   key=lambda k: (OURS.index(k[0]) if k[0] in OURS else len(OURS), k[1:]))
    for benchmark, steps, models, resamples in sizes:
        rows.append([f"({steps}, {models}, {resamples})",
                     f"(no peer) {benchmark.removeprefix('BM_OverSteps_')}", "",
                     format_seconds(ours.get((benchmark, steps, models, resamples, 1))), "", "", "",
                     format_seconds(ours.get((benchmark, steps, models, resamples, 2))), ""])
    return rows, verdicts


def markdown_table(header, rows):
    """A Markdown table with padded columns; columns after the first two are right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":"
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def main(argv=None):
    """Prints the comparison table; the exit status is 1 with --fail-on-miss and a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ours", help="Google Benchmark JSON of proxytask_stats_bench")
    parser.add_argument("peers", help="JSON written by cpu_peers.py --json")
    parser.add_argument("--fail-on-miss", action="store_true",
                        help="exit with status 1 when a target is missed or has no data")
    args = parser.parse_args(argv)

    try:
        ours, context = load_ours(args.ours)
        peers = load_peers(args.peers)
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"compare_cpu: error: reading {args.ours} and {args.peers}: {error}")
    rows, verdicts = build_rows(ours, peers)
    header = ["size (steps, models, resamples)", "peer vs ours", "peer", "ours, 1 thread",
              "ratio", "target", "met?", "ours, 2 threads", "ratio, 2 threads"]
    if context:
        print(f"Ours: {context.get('date', '?')}, {context.get('host_name', '?')}, "
              f"{context.get('num_cpus', '?')} CPUs; ratio = peer time / our time.\n")
    print(markdown_table(header, rows))
    print(f"\nTargets: {verdicts.count('met')} met, {verdicts.count('missed')} missed, "
          f"{verdicts.count('no data')} without our benchmark.")
    if args.fail_on_miss and any(v != "met" for v in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
