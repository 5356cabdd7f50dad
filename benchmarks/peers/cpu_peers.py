#!/usr/bin/python3
"""CPU peer benchmarks: what a numpy/scipy user writes, timed on the C++ benchmark inputs.

The C++ benchmarks (benchmarks/stats/over_steps_bench.cpp) time correlate_over_steps on a
models x steps matrix of proxy accuracies (NaN = missing) and one reference accuracy per model.
This script times the Python equivalents on bit-identical inputs (benchmarks/support/
bench_data.hpp, reproduced below), on the same machine, so that compare_cpu.py can put the two
side by side:

  scipy_spearman_loop       a Python loop over steps: scipy.stats.spearmanr on the valid pairs
  scipy_kendall_loop        the same with scipy.stats.kendalltau (tau-b)
  numpy_bootstrap_spearman  per step, B resamples of the valid pairs drawn at once, ranked
                            row-wise (vectorised), Pearson of the rank rows in numpy, and the
                            2.5/97.5 percentile interval (np.nanpercentile)

Usage (Debian's /usr/bin/python3; numpy and scipy from benchmarks/peers/setup_cpu_peers.sh):

  benchmarks/peers/setup_cpu_peers.sh
  /usr/bin/python3 benchmarks/peers/cpu_peers.py --json build/peers/peers.json
  /usr/bin/python3 benchmarks/peers/cpu_peers.py --quick          # smoke run, small sizes
  /usr/bin/python3 benchmarks/peers/cpu_peers.py --digest         # input hashes, for C++ checks

If numpy/scipy are not importable, the script re-executes itself once with PYTHONPATH and
LD_LIBRARY_PATH pointing at the private prefix of setup_cpu_peers.sh (--prefix).
"""

import argparse
import json
import math
import os
import sys
import time

#: (steps, models, resamples) of the C++ benchmarks.
DEFAULT_SIZES = [(100, 10, 10000), (200, 1000, 1000), (200, 15625, 100)]
#: Small sizes for --quick.
QUICK_SIZES = [(20, 10, 200), (20, 200, 50)]
#: The seed of make_problem (bench_data.hpp) and of the bootstrap generator.
SEED = 42

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_PREFIX = os.path.join(REPO_ROOT, "build", "peers", "python")
DEBIAN_PYTHON = "/usr/bin/python3"
_REEXEC_MARK = "PROXYTASK_CPU_PEERS_REEXEC"


# --------------------------------------------------------------------------------------------
# numpy and scipy
# --------------------------------------------------------------------------------------------

def import_numpy_scipy(prefix):
    """Imports numpy and scipy.stats; re-executes the script with the private prefix if needed.

    Returns (numpy, scipy, scipy.stats). Exits with a message pointing at setup_cpu_peers.sh
    when they are not importable at all.
    """
    try:
        import numpy
        import scipy
        import scipy.stats
        return numpy, scipy, scipy.stats
    except ImportError as error:
        site = os.path.join(prefix, "usr", "lib", "python3", "dist-packages")
        libs = os.path.join(prefix, "usr", "lib", "x86_64-linux-gnu")
        if os.path.isdir(site) and not os.environ.get(_REEXEC_MARK):
            env = dict(os.environ)
            env[_REEXEC_MARK] = "1"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(None, [libs, env.get("LD_LIBRARY_PATH")]))
            # Debian's packages are built for Debian's interpreter, not for e.g. a pyenv one.
            python = DEBIAN_PYTHON if os.path.exists(DEBIAN_PYTHON) else sys.executable
            os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)
        sys.exit(
            f"cpu_peers: error: cannot import numpy and scipy.stats ({error}).\n"
            f"  Run benchmarks/peers/setup_cpu_peers.sh (unpacks Debian's python3-numpy and\n"
            f"  python3-scipy into {DEFAULT_PREFIX}), then run this script with {DEBIAN_PYTHON}\n"
            f"  (--prefix: where they were unpacked; now {prefix}).")


# --------------------------------------------------------------------------------------------
# The inputs: benchmarks/support/bench_data.hpp, bit for bit
# --------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


class SplitMix64:
    """SplitMix64 with Python integers (the reference; make_problem uses a vectorised copy)."""

    def __init__(self, seed):
        self.state = seed & _MASK64

    def next(self):
        """The next 64-bit output."""
        self.state = (self.state + _GAMMA) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
        return z ^ (z >> 31)

    def unit(self):
        """Uniform in [0, 1) with 53 random bits."""
        return (self.next() >> 11) * 2.0**-53


def three_decimals(v):
    """Rounds to 3 decimals, halves up, as bench_data.hpp does."""
    return math.floor(1000.0 * v + 0.5) / 1000.0


def make_problem_reference(steps, models, seed=SEED):
    """bench_data.hpp's make_problem, line by line in plain Python (slow; for checks).

    Returns (scores, reference): scores a row-major list of models * steps floats (NaN =
    missing), reference a list of one float per model.
    """
    gen = SplitMix64(seed)
    scores = [0.0] * (models * steps)
    reference = [0.0] * models
    for m in range(models):
        quality = gen.unit()
        reference[m] = three_decimals(0.5 + 0.4 * quality + 0.02 * (gen.unit() - 0.5))
        for s in range(steps):
            progress = float(s + 1) / float(steps)
            noise = (gen.unit() - 0.5) * 0.2 * (1.2 - progress)
            accuracy = three_decimals(progress * (0.3 + 0.6 * quality) + noise)
            scores[m * steps + s] = math.nan if gen.unit() < 0.05 else accuracy
    return scores, reference


def splitmix64_units(np, seed, count):
    """The first `count` values of SplitMix64(seed).unit(), vectorised.

    The k-th output (k = 1, 2, ...) only depends on the state seed + k * gamma (mod 2**64), so
    the whole stream is a few uint64 array operations (numpy's uint64 arithmetic wraps).
    """
    u64 = np.uint64
    z = np.arange(1, count + 1, dtype=np.uint64) * u64(_GAMMA) + u64(seed & _MASK64)
    z = (z ^ (z >> u64(30))) * u64(_MIX1)
    z = (z ^ (z >> u64(27))) * u64(_MIX2)
    z ^= z >> u64(31)
    return (z >> u64(11)).astype(np.float64) * 2.0**-53


def make_problem(np, steps, models, seed=SEED):
    """bench_data.hpp's make_problem, vectorised, with the same double operations in the same order.

    Per model the generator yields quality, the reference noise, then per step the noise and
    the missing draw: 2 + 2 * steps values. Returns (scores, reference): a C-ordered
    models x steps float64 array (NaN = missing) and a float64 array of one value per model.
    """
    units = splitmix64_units(np, seed, models * (2 + 2 * steps)).reshape(models, 2 + 2 * steps)
    quality = units[:, 0]
    reference = np.floor(1000.0 * (0.5 + 0.4 * quality + 0.02 * (units[:, 1] - 0.5)) + 0.5) / 1000.0
    progress = np.arange(1, steps + 1, dtype=np.float64) / float(steps)
    noise = (units[:, 2::2] - 0.5) * 0.2 * (1.2 - progress)
    accuracy = np.floor(1000.0 * (progress * (0.3 + 0.6 * quality[:, None]) + noise) + 0.5) / 1000.0
    scores = np.where(units[:, 3::2] < 0.05, np.nan, accuracy)
    return np.ascontiguousarray(scores), reference


def fnv1a64_words(values):
    """FNV-1a (64-bit) over the IEEE-754 bit patterns of float64 values, one 64-bit word at a time.

    The throwaway C++ check computes the same: h = (h ^ bits) * 0x100000001b3, from
    0xcbf29ce484222325.
    """
    import struct
    h = 0xCBF29CE484222325
    for (bits,) in struct.iter_unpack("<Q", memoryview(values).cast("B")):
        h = ((h ^ bits) * 0x100000001B3) & _MASK64
    return h


def print_digests(np, sizes, check_reference):
    """Prints, per (steps, models), hashes and a few values of the inputs (for the C++ check)."""
    for steps, models in sizes:
        scores, reference = make_problem(np, steps, models)
        flat = scores.ravel()
        if check_reference:
            ref_scores, ref_reference = make_problem_reference(steps, models)
            same = (np.array_equal(flat, np.array(ref_scores), equal_nan=True)
                    and np.array_equal(reference, np.array(ref_reference)))
            status = "vectorised == reference" if same else "MISMATCH vectorised vs reference"
        else:
            status = "reference not checked"
        print(f"steps={steps} models={models} "
              f"scores_fnv1a64=0x{fnv1a64_words(scores.tobytes()):016x} "
              f"reference_fnv1a64=0x{fnv1a64_words(reference.tobytes()):016x} "
              f"missing={int(np.isnan(flat).sum())} "
              f"first={'%.17g' % flat[0]} last={'%.17g' % flat[-1]} "
              f"ref_first={'%.17g' % reference[0]} ref_last={'%.17g' % reference[-1]} ({status})")


# --------------------------------------------------------------------------------------------
# The peers
# --------------------------------------------------------------------------------------------

def scipy_loop(np, correlate, scores, reference):
    """`correlate` (scipy.stats.spearmanr or kendalltau) on each step's valid pairs."""
    present = ~np.isnan(reference)
    out = []
    for s in range(scores.shape[1]):
        x = scores[:, s]
        mask = present & ~np.isnan(x)
        out.append(correlate(x[mask], reference[mask]))
    return out


def scipy_spearman_loop(np, stats, scores, reference, resamples):
    """Spearman's rho and its p-value per step: scipy.stats.spearmanr on each step's valid pairs."""
    del resamples
    return scipy_loop(np, stats.spearmanr, scores, reference)


def scipy_kendall_loop(np, stats, scores, reference, resamples):
    """Kendall's tau-b and its p-value per step: scipy.stats.kendalltau on each step's valid pairs."""
    del resamples
    return scipy_loop(np, stats.kendalltau, scores, reference)


def rank_rows(np, stats, a):
    """Average ranks (1-based, ties averaged) along axis 1: scipy.stats.rankdata(a, axis=1).

    scipy >= 1.12 vectorises rankdata along an axis, and then it is called directly. Older scipy
    (Debian 12 has 1.10) runs np.apply_along_axis, a Python loop over the rows, i.e. over the
    resamples; there the computation of scipy >= 1.12 is done here, with whole-array numpy
    operations: sort each row, find the runs of equal values, give each run the mean of its
    ordinal ranks, and scatter the ranks back to the original positions.
    """
    if _SCIPY_RANKDATA_VECTORISED:
        return stats.rankdata(a, axis=1)
    rows, n = a.shape
    order = np.argsort(a, axis=1)
    ordered = np.take_along_axis(a, order, axis=1)
    run_start = np.empty((rows, n), dtype=bool)
    run_start[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=run_start[:, 1:])
    starts = np.flatnonzero(run_start)                      # flat index of each run's start
    lengths = np.diff(starts, append=rows * n)
    mean_rank = starts % n + 1 + (lengths - 1) / 2.0        # runs never cross rows
    ranks = np.empty((rows, n), dtype=np.float64)
    np.put_along_axis(ranks, order, np.repeat(mean_rank, lengths).reshape(rows, n), axis=1)
    return ranks


def pearson_rows(np, x, y):
    """Pearson's r of each row pair of x and y (NaN for a constant row), vectorised."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    numerator = np.einsum("ij,ij->i", x, y)
    denominator = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def numpy_bootstrap_spearman(np, stats, scores, reference, resamples):
    """Spearman's rho per step with a percentile bootstrap interval, vectorised over resamples.

    Per step: the valid pairs (n), B = resamples index rows drawn at once
    (rng.integers(0, n, size=(B, n))), both sides ranked row-wise, Pearson of the rank rows,
    and the 2.5/97.5 percentiles of the B replicates (NaN replicates, from constant resamples,
    ignored). Returns (rho, low, high) per step.
    """
    rng = np.random.default_rng(SEED)
    present = ~np.isnan(reference)
    out = []
    for s in range(scores.shape[1]):
        column = scores[:, s]
        mask = present & ~np.isnan(column)
        x, y = column[mask], reference[mask]
        n = x.size
        if n < 2:
            out.append((math.nan, math.nan, math.nan))
            continue
        rho = pearson_rows(np, rank_rows(np, stats, x[None, :]), rank_rows(np, stats, y[None, :]))[0]
        index = rng.integers(0, n, size=(resamples, n))
        replicates = pearson_rows(np, rank_rows(np, stats, x[index]), rank_rows(np, stats, y[index]))
        if np.isnan(replicates).all():
            out.append((rho, math.nan, math.nan))
            continue
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        out.append((rho, low, high))
    return out


PEERS = {
    "scipy_spearman_loop": scipy_spearman_loop,
    "scipy_kendall_loop": scipy_kendall_loop,
    "numpy_bootstrap_spearman": numpy_bootstrap_spearman,
}
#: Peers that use the resamples; the others are timed once per (steps, models).
BOOTSTRAP_PEERS = {"numpy_bootstrap_spearman"}

_SCIPY_RANKDATA_VECTORISED = False


def check_rank_rows(np, stats):
    """Checks rank_rows against scipy.stats.rankdata on tie-heavy rows; exits on a mismatch."""
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 100):
        a = rng.integers(0, 5, size=(30, n)).astype(np.float64) / 4.0
        expected = np.array([stats.rankdata(row) for row in a])
        if not np.array_equal(rank_rows(np, stats, a), expected):
            sys.exit(f"cpu_peers: error: rank_rows differs from scipy.stats.rankdata (n = {n})")


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def time_best_of(function, min_total_seconds, max_runs):
    """Best wall time of function() over k runs, k adaptive.

    Runs at least once; keeps running while the runs so far took less than min_total_seconds
    together and fewer than max_runs were made. Returns (best_seconds, runs).
    """
    times = []
    while True:
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
        if sum(times) >= min_total_seconds or len(times) >= max_runs:
            return min(times), len(times)


def parse_size(text):
    """'STEPSxMODELSxRESAMPLES' -> (steps, models, resamples)."""
    try:
        steps, models, resamples = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEPSxMODELSxRESAMPLES, got {text!r}")
    if steps < 1 or models < 1 or resamples < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return steps, models, resamples


def parse_arguments(argv):
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Progress goes to stderr; the results table to stdout.")
    parser.add_argument("--sizes", nargs="+", type=parse_size, metavar="SxMxB",
                        help="(steps x models x resamples) to run; default: "
                             + " ".join("x".join(map(str, size)) for size in DEFAULT_SIZES))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run with small sizes (" +
                             " ".join("x".join(map(str, size)) for size in QUICK_SIZES) + ")")
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=list(PEERS),
                        help="peers to run (default: all)")
    parser.add_argument("--json", metavar="OUT",
                        help='write [{"peer", "steps", "models", "resamples", "seconds"}] to OUT')
    parser.add_argument("--min-time", type=float, default=2.0, metavar="SECONDS",
                        help="repeat a measurement until its runs total this long (default 2)")
    parser.add_argument("--max-runs", type=int, default=10,
                        help="at most this many runs per measurement (default 10)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help="the folder setup_cpu_peers.sh unpacked numpy and scipy into")
    parser.add_argument("--digest", action="store_true",
                        help="print hashes of the inputs of each size (and check the vectorised "
                             "generator against the plain-Python one), then exit")
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the selected peers on the selected sizes; prints a table and optionally writes JSON."""
    global _SCIPY_RANKDATA_VECTORISED
    args = parse_arguments(argv)
    np, scipy, stats = import_numpy_scipy(args.prefix)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)

    if args.digest:
        pairs = list(dict.fromkeys((steps, models) for steps, models, _ in sizes))
        print_digests(np, pairs, check_reference=True)
        return 0

    version = tuple(int(part) for part in scipy.__version__.split(".")[:2])
    _SCIPY_RANKDATA_VECTORISED = version >= (1, 12)
    check_rank_rows(np, stats)
    print(f"cpu_peers: python {sys.version.split()[0]} ({sys.executable}), numpy {np.__version__},"
          f" scipy {scipy.__version__}; row ranks: "
          + ("scipy.stats.rankdata(axis=1)" if _SCIPY_RANKDATA_VECTORISED else
             "vectorised numpy (scipy < 1.12 loops over rows)"), file=sys.stderr)

    results = []
    measured = set()
    started = time.perf_counter()
    for steps, models, resamples in sizes:
        scores, reference = make_problem(np, steps, models)
        for name in args.peers:
            used_resamples = resamples if name in BOOTSTRAP_PEERS else 0
            key = (name, steps, models, used_resamples)
            if key in measured:
                continue
            measured.add(key)
            print(f"cpu_peers: {name} steps={steps} models={models} resamples={used_resamples} ...",
                  end="", file=sys.stderr, flush=True)
            seconds, runs = time_best_of(
                lambda: PEERS[name](np, stats, scores, reference, resamples),
                args.min_time, args.max_runs)
            print(f" {seconds * 1e3:.1f} ms (best of {runs})", file=sys.stderr, flush=True)
            results.append({"peer": name, "steps": steps, "models": models,
                            "resamples": used_resamples, "seconds": seconds})
    print(f"cpu_peers: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    print(f"| {'peer':<26} | steps | models | resamples | {'time':>11} |")
    print(f"|{'-' * 28}|------:|-------:|----------:|{'-' * 12}:|")
    for r in results:
        print(f"| {r['peer']:<26} | {r['steps']:>5} | {r['models']:>6} | {r['resamples']:>9} "
              f"| {r['seconds'] * 1e3:>8.1f} ms |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
            out.write("\n")
        print(f"cpu_peers: wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
