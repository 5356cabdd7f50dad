#!/usr/bin/env python3
"""GPU peers of the CUDA rank-correlation code: what a PyTorch user writes, on our inputs.

The Google Benchmark program of the CUDA code times Spearman correlations over steps (one
coefficient per step between the models' proxy scores and their reference accuracies), with and
without a bootstrap, on inputs made by benchmarks/support/gpu_inputs.hpp. This script builds the
very same inputs (make_inputs below, bit for bit) and times the PyTorch-based equivalents on the
GPU, so that the two can be put side by side:

  plain_spearman/200x15625 (steps x models)
    torch         a hand-written batched pipeline: average ranks with ties by torch.sort +
                  two torch.searchsorted, of every step's scores and of the reference, then
                  Pearson of the rank rows (float64 ranks); data already on the GPU
    torchmetrics  torchmetrics.functional.spearman_corrcoef(preds (n, S), target (n, S)), if
                  torchmetrics imports
    scipy         a Python loop of scipy.stats.spearmanr over steps on the CPU, if scipy imports
  bootstrap_spearman/SxNxB for (S, n, B) in DEFAULT_BOOTSTRAP
    torch         per step, B resamples of the n models (torch.randint inside the timed
                  region), gathered to (S, B, n), ranked along the last dim as above, Pearson
                  along the last dim: the (S, B) replicates (NaN for a constant resample)
    torch_with_ci the same plus the 2.5% and 97.5% percentiles per step (torch.nanquantile)
  copy_bandwidth
    a 1 GiB device-to-device dst.copy_(src); GB/s = bytes / time (read + write counted once)

Timing: CUDA events around each call, the median of --repeats calls (default 20) after 3
warm-up calls, in milliseconds. Each measurement is also bounded by --budget-s seconds (fewer
timed calls when one call is slow; the number taken is reported as "*_runs"), so that the whole
script stays under a minute on an H100. Variants that would take too long at full size (scipy's
Python loop, and torchmetrics when it ranks column by column) are timed on the first steps only
and scaled linearly to all steps, as their "*_note" says.

Usage:
  python3 benchmarks/peers/gpu_peers.py [--cases plain,bootstrap,copy] [--json out.json]
  python3 benchmarks/peers/gpu_peers.py --device cpu --quick    # smoke run without a GPU
  python3 benchmarks/peers/gpu_peers.py --self-test             # make_inputs(3, 4), for C++

Prints one JSON object on stdout: {"device": ..., "torch": ..., "torchmetrics": ... or null,
"scipy": ... or null, "results": {case: {"torch_ms": ..., ...} or {"error": ...}}}. A variant
that fails records "<variant>_error" (a case where nothing could be timed also gets "error");
without PyTorch or a CUDA device it prints {"error": ...} and exits 0.
"""

import argparse
import json
import math
import statistics
import sys
import time

#: (steps, models) of the plain Spearman case.
DEFAULT_PLAIN = (200, 15625)
#: (steps, models, resamples) of the bootstrap cases.
DEFAULT_BOOTSTRAP = [(100, 10, 10000), (200, 1000, 1000), (200, 15625, 100)]
#: Bytes of the device-to-device copy.
DEFAULT_COPY_BYTES = 1 << 30
#: Small sizes for --quick (a smoke run, e.g. with --device cpu).
QUICK_PLAIN = (20, 500)
QUICK_BOOTSTRAP = [(10, 10, 200), (20, 100, 50)]
QUICK_COPY_BYTES = 16 << 20

#: Warm-up calls before the timed ones.
WARMUP = 3
#: Steps that the slow CPU/Python-loop peers are timed on (then scaled to all steps).
SUBSET_STEPS = 20
#: Seed of torch's generators (the bootstrap indices).
SEED = 42

CASES = ("plain", "bootstrap", "copy")


# --------------------------------------------------------------------------------------------
# The inputs: the same formula as benchmarks/support/gpu_inputs.hpp
# --------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
#: The key offset of the score noise (keys 0..n-1 are the references').
_SCORE_KEY = 1000003


def splitmix64(x):
    """SplitMix64's output function applied to the keys x (a numpy uint64 array).

    Stateless: the value for key x is the first output of a SplitMix64 generator seeded with x.
    numpy's uint64 arithmetic wraps modulo 2**64, as C++'s std::uint64_t does; every constant
    is an np.uint64 so that nothing is promoted to float64.
    """
    import numpy as np
    u64 = np.uint64
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + u64(_GAMMA)
        z = (z ^ (z >> u64(30))) * u64(_MIX1)
        z = (z ^ (z >> u64(27))) * u64(_MIX2)
        return z ^ (z >> u64(31))


def uniform01(x):
    """Uniform in [0, 1) with 53 random bits, from the keys x."""
    import numpy as np
    return (splitmix64(x) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def three_decimals(v):
    """Rounds to 3 decimals, halves up: C++'s std::floor(x * 1000 + 0.5) / 1000."""
    import numpy as np
    return np.floor(v * 1000.0 + 0.5) / 1000.0


def make_inputs(steps, models):
    """The benchmark inputs, the same formula as benchmarks/support/gpu_inputs.hpp.

    reference[m] = round3(0.5 + 0.4 * u(m)) and
    scores[m, s] = round3(reference[m] * (0.3 + 0.7 * s / max(S - 1, 1))
                          + 0.2 * u(1000003 + m * S + s)),
    with u = uniform01, round3 = three_decimals, all in float64 (the scores use the float64
    reference, before its cast), then cast to float32. Returns (scores, reference): a
    C-ordered (models, steps) float32 array (models x steps, row-major) and a (models,) float32
    array. (numpy is imported here, not at the top, so that the script can report its absence.)
    """
    import numpy as np
    m = np.arange(models, dtype=np.uint64)
    s = np.arange(steps, dtype=np.uint64)
    reference64 = three_decimals(0.5 + 0.4 * uniform01(m))
    # 0.3 + 0.7 * s / max(S - 1, 1), evaluated left to right as in C++: (0.7 * s) / d.
    progress = 0.3 + 0.7 * s.astype(np.float64) / float(max(steps - 1, 1))
    with np.errstate(over="ignore"):
        keys = np.uint64(_SCORE_KEY) + m[:, None] * np.uint64(steps) + s[None, :]
    scores64 = three_decimals(
        reference64[:, None] * progress[None, :] + 0.2 * uniform01(keys))
    return (np.ascontiguousarray(scores64, dtype=np.float32),
            np.ascontiguousarray(reference64, dtype=np.float32))


def splitmix64_scalar(x):
    """SplitMix64's output for one key, with Python integers (the check of the numpy version)."""
    z = (x + _GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def make_inputs_scalar(steps, models):
    """make_inputs in plain Python, element by element (slow; the self-test's reference).

    Returns float64 lists (before the float32 cast): scores[m][s] and reference[m].
    """
    def u(x):
        return (splitmix64_scalar(x) >> 11) * 2.0**-53

    def round3(v):
        return math.floor(v * 1000.0 + 0.5) / 1000.0

    reference = [round3(0.5 + 0.4 * u(m)) for m in range(models)]
    scores = [[round3(reference[m] * (0.3 + 0.7 * s / max(steps - 1, 1))
                      + 0.2 * u(_SCORE_KEY + m * steps + s)) for s in range(steps)]
              for m in range(models)]
    return scores, reference


def self_test(np):
    """Prints make_inputs(3, 4) (float32 values and their bit patterns) for the C++ side.

    Also checks the vectorised generator against the element-by-element one and SplitMix64
    against its published first output for seed 0. Returns the exit status.
    """
    steps, models = 3, 4
    scores, reference = make_inputs(steps, models)
    ok = True
    first = int(splitmix64(np.zeros(1, dtype=np.uint64))[0])
    if first != 0xE220A8397B1DCDAF or splitmix64_scalar(0) != first:
        print(f"MISMATCH: splitmix64(0) = 0x{first:016x}, expected 0xe220a8397b1dcdaf")
        ok = False
    ref_scores, ref_reference = make_inputs_scalar(steps, models)
    if not (np.array_equal(scores, np.array(ref_scores, dtype=np.float32))
            and np.array_equal(reference, np.array(ref_reference, dtype=np.float32))):
        print("MISMATCH: vectorised make_inputs differs from the element-by-element one")
        ok = False

    def f32(v):  # the shortest repr that round-trips as float32, and the IEEE-754 bits
        return f"{np.float32(v)!s} (0x{int(np.float32(v).view(np.uint32)):08x})"

    print(f"make_inputs(steps={steps}, models={models}): float32, shortest repr (bits)")
    print(f"splitmix64(0) = 0x{first:016x}")
    for m in range(models):
        print(f"reference[{m}] = {f32(reference[m])}")
    for m in range(models):
        print(f"scores[{m}] = [" + ", ".join(f32(v) for v in scores[m]) + "]")
    print("self-test: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

class Timer:
    """Times calls of a function: CUDA events on a GPU, time.perf_counter on the CPU."""

    def __init__(self, torch, device, repeats, warmup, budget_s):
        self.torch = torch
        self.cuda = device.type == "cuda"
        self.repeats = repeats
        self.warmup = warmup
        self.budget_s = budget_s

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def once_ms(self, fn):
        """(milliseconds, result) of one call, the device idle before and after."""
        if self.cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            result = fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end), result
        started = time.perf_counter()
        result = fn()
        return (time.perf_counter() - started) * 1000.0, result

    def measure(self, fn):
        """(median ms, timed calls, result of the last call) after the warm-up calls.

        Warm-up stops early once it has used a quarter of the budget, and timing once it has
        used the whole budget (at least one call of each), so that a slow variant costs about
        budget_s seconds instead of (warmup + repeats) calls.
        """
        self.sync()
        started = time.perf_counter()
        for _ in range(max(self.warmup, 1)):
            fn()
            self.sync()
            if time.perf_counter() - started > self.budget_s / 4:
                break
        times = []
        result = None
        started = time.perf_counter()
        for _ in range(max(self.repeats, 1)):
            ms, result = self.once_ms(fn)
            times.append(ms)
            if time.perf_counter() - started > self.budget_s:
                break
        return statistics.median(times), len(times), result


def error_text(error):
    """A short one-line description of an exception, for the JSON."""
    return f"{type(error).__name__}: {str(error).strip()[:300]}"


def max_abs_diff(np, a, b):
    """Largest |a - b| over the entries where both are finite (None when there are none)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else None


# --------------------------------------------------------------------------------------------
# The PyTorch pipelines
# --------------------------------------------------------------------------------------------

def average_ranks(torch, x):
    """Average ranks (1-based; tied values share the mean of their positions) along the last dim.

    With the sorted rows, lo = #values < x and hi = #values <= x (torch.searchsorted, batched
    over the leading dims), so the tie block of x covers positions lo + 1 .. hi and its average
    rank is (lo + hi + 1) / 2. Returned as float64.
    """
    ordered = torch.sort(x, dim=-1).values
    lo = torch.searchsorted(ordered, x, right=False)
    hi = torch.searchsorted(ordered, x, right=True)
    del ordered
    return lo.add_(hi).add_(1).to(torch.float64).mul_(0.5)


def pearson_last_dim(torch, a, b):
    """Pearson correlation along the last dim (broadcasting a against b); NaN for a constant."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    return (a * b).sum(dim=-1) / torch.sqrt((a * a).sum(dim=-1) * (b * b).sum(dim=-1))


def spearman_over_steps(torch, x, reference):
    """Spearman coefficient of each row of x (steps, models) with reference (models,)."""
    return pearson_last_dim(torch, average_ranks(torch, x), average_ranks(torch, reference))


def bootstrap_spearman(torch, x, reference, resamples):
    """(steps, resamples) bootstrap replicates of each step's Spearman coefficient.

    Each replicate resamples the n models with replacement (its own indices per step and
    resample), ranks the resampled scores and references, and correlates the ranks.
    """
    steps, models = x.shape
    idx = torch.randint(0, models, (steps, resamples, models), device=x.device)
    xb = torch.gather(x[:, None, :].expand(steps, resamples, models), 2, idx)
    yb = reference[idx]
    del idx
    return pearson_last_dim(torch, average_ranks(torch, xb), average_ranks(torch, yb))


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------

def run_variant(case, name, fn):
    """Runs fn(), which fills case; an exception becomes case[name + "_error"]."""
    try:
        fn()
    except Exception as e:  # a variant that cannot run here: out of memory, missing module...
        case[f"{name}_error"] = error_text(e)


def release(torch, device):
    """Frees the allocator's cached blocks after a case (e.g. after an out-of-memory error)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def plain_case(ctx, steps, models):
    """plain_spearman: torch, torchmetrics and scipy on one (steps, models) problem."""
    np, torch, device, timer = ctx["np"], ctx["torch"], ctx["device"], ctx["timer"]
    case = {"steps": steps, "models": models}
    scores, reference = make_inputs(steps, models)
    scores_dev = torch.from_numpy(scores).to(device)            # (n, S), as a user holds it
    x = scores_dev.t().contiguous()                             # (S, n): one row per step
    ref_dev = torch.from_numpy(reference).to(device)
    timer.sync()
    subset = min(steps, SUBSET_STEPS)
    ours = {}

    def torch_variant():
        ms, runs, rho = timer.measure(lambda: spearman_over_steps(torch, x, ref_dev))
        ours["rho"] = rho.cpu().numpy()
        case.update(torch_ms=ms, torch_runs=runs)

    def torchmetrics_variant():
        tm = ctx["torchmetrics"]
        if tm is None:
            case["torchmetrics_error"] = "torchmetrics not installed"
            return
        from torchmetrics.functional import spearman_corrcoef

        def inputs(k):  # preds (n, k) and the reference repeated in k columns, on the device
            return (scores_dev[:, :k].contiguous(),
                    ref_dev[:, None].expand(models, k).contiguous())

        # One call on the first steps predicts the full call's time; torchmetrics ranks
        # column by column in some versions, which would make the full size take minutes.
        preds, target = inputs(subset)
        probe_ms, _ = timer.once_ms(lambda: spearman_corrcoef(preds, target))
        k = steps if probe_ms * steps / subset < timer.budget_s * 1000.0 / 8 else subset
        preds, target = inputs(k)
        ms, runs, rho = timer.measure(lambda: spearman_corrcoef(preds, target))
        case.update(torchmetrics_ms=ms * steps / k, torchmetrics_runs=runs)
        if k < steps:
            case["torchmetrics_note"] = (
                f"timed on the first {k} of {steps} steps ({ms:.3f} ms) and scaled linearly "
                f"to {steps} steps (one full call was predicted to take "
                f"{probe_ms * steps / subset / 1000.0:.1f} s)")
        if "rho" in ours:
            case["max_abs_diff_vs_torchmetrics"] = max_abs_diff(
                np, ours["rho"][:k], rho.cpu().numpy())

    def scipy_variant():
        if ctx["scipy"] is None:
            case["scipy_error"] = "scipy not installed"
            return
        from scipy.stats import spearmanr

        def loop():  # what a scipy user writes: one spearmanr per step
            return [spearmanr(scores[:, s], reference)[0] for s in range(subset)]

        loop()  # warm-up
        times = []
        rho = None
        for _ in range(3):
            started = time.perf_counter()
            rho = loop()
            times.append((time.perf_counter() - started) * 1000.0)
        ms = statistics.median(times)
        case.update(scipy_ms=ms * steps / subset, scipy_runs=len(times))
        case["scipy_note"] = (
            "CPU, a Python loop of scipy.stats.spearmanr over steps, time.perf_counter, "
            "median of 3 calls after 1 warm-up call"
            + (f"; timed on the first {subset} of {steps} steps ({ms:.3f} ms) and scaled "
               f"linearly to {steps} steps" if subset < steps else ""))
        if "rho" in ours:
            case["max_abs_diff_vs_scipy"] = max_abs_diff(np, ours["rho"][:subset], rho)
            case["scipy_checked_steps"] = subset

    run_variant(case, "torch", torch_variant)
    run_variant(case, "torchmetrics", torchmetrics_variant)
    run_variant(case, "scipy", scipy_variant)
    return case


def bootstrap_case(ctx, steps, models, resamples):
    """bootstrap_spearman: the torch replicates, then with the percentile interval."""
    np, torch, device, timer = ctx["np"], ctx["torch"], ctx["device"], ctx["timer"]
    case = {"steps": steps, "models": models, "resamples": resamples}
    scores, reference = make_inputs(steps, models)
    x = torch.from_numpy(scores).to(device).t().contiguous()   # (S, n)
    ref_dev = torch.from_numpy(reference).to(device)
    q = torch.tensor([0.025, 0.975], dtype=torch.float64, device=device)
    torch.manual_seed(SEED)
    timer.sync()

    def torch_variant():
        ms, runs, rep = timer.measure(lambda: bootstrap_spearman(torch, x, ref_dev, resamples))
        case.update(torch_ms=ms, torch_runs=runs,
                    nan_replicates=int(torch.isnan(rep).sum().item()))

    def ci_variant():
        def with_ci():  # (2, S): the 2.5% and 97.5% percentiles of each step's replicates
            rep = bootstrap_spearman(torch, x, ref_dev, resamples)
            return torch.nanquantile(rep, q, dim=1)

        ms, runs, _ = timer.measure(with_ci)
        case.update(torch_with_ci_ms=ms, torch_with_ci_runs=runs)

    run_variant(case, "torch", torch_variant)
    if "torch_error" not in case:  # out of memory without the interval: no use trying with it
        run_variant(case, "torch_with_ci", ci_variant)
    return case


def copy_case(ctx, nbytes):
    """copy_bandwidth: one device-to-device copy of nbytes; GB/s = nbytes / time."""
    torch, device, timer = ctx["torch"], ctx["device"], ctx["timer"]
    case = {"bytes": nbytes}

    def copy_variant():
        src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
        dst = torch.empty_like(src)
        ms, runs, _ = timer.measure(lambda: dst.copy_(src))
        case.update(ms=ms, runs=runs, gb_per_s=nbytes / (ms / 1000.0) / 1e9,
                    note="dst.copy_(src); bytes / time, read and write counted once")

    run_variant(case, "copy", copy_variant)
    return case


def run_case(ctx, name, fn, *args):
    """Runs one case; any exception is recorded as its "error" and the script goes on."""
    started = time.perf_counter()
    try:
        case = fn(ctx, *args)
    except Exception as e:
        case = {"error": error_text(e)}
    finally:
        release(ctx["torch"], ctx["device"])
    errors = [v for k, v in case.items() if k.endswith("_error")]
    if "error" not in case and errors and not any(k.endswith("_ms") or k == "ms" for k in case):
        case["error"] = errors[0]  # nothing of the case could be timed
    case["wall_s"] = round(time.perf_counter() - started, 1)
    ctx["out"]["results"][name] = case
    print(f"gpu_peers: {name}: {case}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def finite_json(value):
    """value with non-finite floats replaced by None, so that the output is strict JSON."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(out, path):
    """Prints the JSON object and, with --json, writes it to path too."""
    text = json.dumps(finite_json(out), indent=1)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def optional_module(name):
    """(module, version) if name imports, else (None, None)."""
    try:
        module = __import__(name)
        return module, getattr(module, "__version__", "unknown")
    except Exception:  # not installed, or broken: that peer is reported as missing
        return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of " + ",".join(CASES))
    parser.add_argument("--repeats", type=int, default=20, help="timed calls (median reported)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="untimed calls first")
    parser.add_argument("--budget-s", type=float, default=4.0,
                        help="about the most seconds one measurement may take (fewer timed "
                             "calls when a call is slow)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cpu: a debug run of the same code with torch on the CPU "
                             "(perf_counter timing)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (a smoke run, e.g. with --device cpu)")
    parser.add_argument("--self-test", action="store_true",
                        help="print make_inputs(3, 4) for comparison with the C++ generator")
    parser.add_argument("--json", help="also write the JSON object to this file")
    args = parser.parse_args()

    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {','.join(unknown)}; choose from {','.join(CASES)}")

    try:
        import numpy as np
    except ImportError as e:
        if args.self_test:
            print(f"self-test: numpy is not importable: {e}")
            return 1
        emit({"error": f"numpy is not importable: {e}"}, args.json)
        return 0
    if args.self_test:
        return self_test(np)

    try:
        import torch
    except ImportError as e:
        emit({"error": f"PyTorch is not importable: {e}"}, args.json)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        emit({"error": "torch.cuda.is_available() is false: no CUDA device"}, args.json)
        return 0
    device = torch.device(args.device)

    torchmetrics, torchmetrics_version = optional_module("torchmetrics")
    scipy, scipy_version = optional_module("scipy")
    out = {
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else "cpu (debug run, perf_counter timing)"),
        "torch": torch.__version__,
        "torchmetrics": torchmetrics_version,
        "scipy": scipy_version,
        "numpy": np.__version__,
        "timing": (f"median of {args.repeats} calls after {args.warmup} warm-up calls, ms "
                   f"(fewer when a measurement exceeds {args.budget_s} s: see *_runs); "
                   + ("CUDA events" if device.type == "cuda" else "time.perf_counter")),
        "results": {},
    }
    ctx = {
        "np": np, "torch": torch, "device": device, "out": out,
        "torchmetrics": torchmetrics, "scipy": scipy,
        "timer": Timer(torch, device, args.repeats, args.warmup, args.budget_s),
    }
    plain = QUICK_PLAIN if args.quick else DEFAULT_PLAIN
    bootstrap = QUICK_BOOTSTRAP if args.quick else DEFAULT_BOOTSTRAP
    copy_bytes = QUICK_COPY_BYTES if args.quick else DEFAULT_COPY_BYTES

    started = time.perf_counter()
    if "plain" in cases:
        run_case(ctx, f"plain_spearman/{plain[0]}x{plain[1]}", plain_case, *plain)
    if "bootstrap" in cases:
        for steps, models, resamples in bootstrap:
            run_case(ctx, f"bootstrap_spearman/{steps}x{models}x{resamples}", bootstrap_case,
                     steps, models, resamples)
    if "copy" in cases:
        run_case(ctx, "copy_bandwidth", copy_case, copy_bytes)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
