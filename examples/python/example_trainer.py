#!/usr/bin/env python3
"""An example trainer that speaks proxytask's trial file protocol, with a synthetic model.

It shows a training loop instrumented with proxytask_trainer.py, and it is what the
cross-language tests launch (the C++ example trainer takes the same command line):

    example_trainer.py --model_dir=D [--model_spec=...] [--seed=N] [--total_steps=N (1000)]
        [--cycle_steps=K (100)] [--step_seconds=S (0)] [--fail=oom|diverged]
        [--heartbeat_threshold_secs=S (900)]

The "model" needs no framework: its accuracy is a smooth increasing function of the step that
tends to the model spec's "final_accuracy" parameter (default 0.9), plus noise set by the seed,
bit for bit the C++ example's curve. Its own knobs (--total_steps ...) arrive as proxy
arguments. ``--step_seconds`` sleeps per step, so that tests can post stop signals while it
runs. It asks should_stop before the first cycle and after each one. ``--fail`` records that
failure in TRIAL_FAILURE.json at the first cycle and exits 3. The LAST line on stdout is exactly
``stopped: <reason>``: a should_stop reason, or ``completed`` when all steps were trained.
Exit 0 on a graceful stop or completion, 1 on a protocol file that cannot be read or written,
2 on a bad command line, 3 on a --fail failure.

With PyTorch the loop has the same shape (no torch import here; a sketch):

    launch = proxytask_trainer.parse_launch()
    spec = proxytask_trainer.read_model_spec(launch.model_spec)
    torch.manual_seed(launch.seed)
    model = build_model(**spec["parameters"]).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=float(launch.proxy_args.get("lr", "0.1")))
    reporter = proxytask_trainer.TrialReporter(launch.model_dir)
    step = load_checkpoint(model, optimizer, launch.model_dir, launch.resume_from)  # 0 if none
    batches = iter(train_loader)
    while step < total_steps:
        if reporter.should_stop(step - 1, total_steps) != proxytask_trainer.KEEP_GOING:
            break                       # graceful: checkpoint below, exit 0
        end_step = min(step + cycle_steps, total_steps) - 1
        torch.cuda.synchronize(); start = time.monotonic()
        for current in range(step, end_step + 1):
            x, y = next(batches)
            loss = loss_fn(model(x.cuda()), y.cuda())
            if not torch.isfinite(loss):
                reporter.report_failure("diverged", f"loss {loss.item()}", current)
                sys.exit(3)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        torch.cuda.synchronize(); cycle_seconds = time.monotonic() - start  # no validation
        accuracy = evaluate(model, val_loader)
        reporter.report_accuracy(step, end_step, cycle_seconds, total_steps, accuracy)
        step = end_step + 1
        save_checkpoint(model, optimizer, step, launch.model_dir)
    reporter.report_latency(measure_latency_ms(model))   # optional
    # and around it: except torch.cuda.OutOfMemoryError as e: reporter.report_failure("oom", ...)
"""

from __future__ import annotations

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import proxytask_trainer as pt  # noqa: E402  (found through the line above)

# Exit statuses, the C++ example trainer's.
EXIT_STOPPED = 0
EXIT_ERROR = 1             # a protocol file that cannot be read or written
EXIT_USAGE = 2             # a bad command line
EXIT_FAILURE_RECORDED = 3  # --fail: the failure is in TRIAL_FAILURE.json

DEFAULT_FINAL_ACCURACY = 0.9
_MASK64 = 2**64 - 1


class UsageError(Exception):
    """A bad command line: exit 2, as opposed to a protocol file problem (exit 1)."""


class Options:
    """This trainer's own knobs, which arrive as proxy arguments (strings)."""

    def __init__(self, proxy_args: dict[str, str]) -> None:
        self.total_steps = 1000
        self.cycle_steps = 100
        self.step_seconds = 0.0
        self.heartbeat_threshold_secs = pt.DEFAULT_HEARTBEAT_THRESHOLD_SECS
        self.fail: str | None = None
        for name, value in proxy_args.items():
            if name in ("total_steps", "cycle_steps"):
                setattr(self, name, _positive_int(name, value))
            elif name in ("step_seconds", "heartbeat_threshold_secs"):
                setattr(self, name, _non_negative_float(name, value))
            elif name == "fail":
                if value not in ("oom", "diverged"):
                    raise UsageError(f"--{name}={value}: expected oom or diverged")
                self.fail = value
            else:
                print(f"ignoring the unknown argument --{name}", file=sys.stderr)


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"--{name}={text}: expected a positive integer")
    return value


def _non_negative_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0.0:
        raise UsageError(f"--{name}={text}: expected a number >= 0")
    return value


def noise(seed: int, step: int) -> float:
    """A uniform draw in [-1, 1) from (seed, step): SplitMix64's finaliser, bit for bit the C++
    example trainer's, so both trainers report the same curve for the same seed. The noise
    depends only on the seed and the step, not on how training was cut into cycles or resumed.
    """
    z = (seed * 0x9E3779B97F4A7C15 + step + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return float(z >> 11) * 2.0**-52 - 1.0


def synthetic_accuracy(final_accuracy: float, seed: int, steps_done: int,
                       total_steps: int) -> float:
    """The validation accuracy after ``steps_done`` of ``total_steps``: a smooth rising curve
    that reaches ``final_accuracy`` at the end, plus small seeded noise (the C++ formula)."""
    progress = steps_done / total_steps
    curve = final_accuracy * (1.0 - math.exp(-4.0 * progress)) / (1.0 - math.exp(-4.0))
    return min(max(curve + 0.005 * noise(seed, steps_done), 0.0), 1.0)


def final_accuracy_of(launch: pt.LaunchArguments) -> float:
    """The accuracy the model tends to: the spec's numeric "final_accuracy" parameter, or 0.9.

    Without a spec file the defaults are used, so that a person can run this example by hand
    without a controller; a spec that exists but is malformed is still an error.
    """
    if not os.path.exists(launch.model_spec):
        print(f"no model spec at {launch.model_spec}; using the defaults", file=sys.stderr)
        return DEFAULT_FINAL_ACCURACY
    parameters = pt.read_model_spec(launch.model_spec)["parameters"]
    if "final_accuracy" not in parameters:
        return DEFAULT_FINAL_ACCURACY
    value = parameters["final_accuracy"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise pt.ProtocolError(launch.model_spec, "/parameters/final_accuracy",
                               "expected a number")
    return float(value)


def first_step(reporter: pt.TrialReporter, resume_from: str | None) -> int:
    """Where training starts: the synthetic model's "checkpoint" is its step count.

    A trainer restarted in its own directory continues after the steps its metrics file
    records; a new trial launched with --resume_from continues after the previous trial's.
    """
    done = reporter.metrics.total_training_steps
    if done == 0 and resume_from:
        previous = pt.read_metrics(resume_from)
        if previous is not None:
            done = previous.total_training_steps
    return done


def stop(reason: str) -> int:
    print(f"stopped: {reason}", flush=True)
    return EXIT_STOPPED


def train(launch: pt.LaunchArguments, options: Options) -> int:
    final_accuracy = final_accuracy_of(launch)
    reporter = pt.TrialReporter(launch.model_dir,
                                heartbeat_threshold_secs=options.heartbeat_threshold_secs)
    total = options.total_steps
    first = first_step(reporter, launch.resume_from)
    # The controller may have said "stop" (a desired pct of 0, say) before the first cycle.
    reason = reporter.should_stop(first - 1, total)
    if reason != pt.KEEP_GOING:
        return stop(reason)

    for begin in range(first, total, options.cycle_steps):
        end = min(begin + options.cycle_steps, total) - 1
        started = time.monotonic()
        time.sleep(options.step_seconds * (end - begin + 1))  # "training"
        seconds = time.monotonic() - started  # training only: validation is not timed

        if options.fail is not None:
            message = ("synthetic out-of-memory (--fail=oom)" if options.fail == "oom"
                       else "synthetic NaN loss (--fail=diverged)")
            reporter.report_failure(options.fail, message, training_step=end)
            print(f"failed: {options.fail}", file=sys.stderr, flush=True)
            return EXIT_FAILURE_RECORDED

        accuracy = synthetic_accuracy(final_accuracy, launch.seed, end + 1, total)
        reporter.report_accuracy(begin, end, seconds, total, accuracy)
        print(f"cycle {begin}..{end} pct {pt.training_step_pct(end, total):g} "
              f"accuracy {accuracy:g}", flush=True)

        reason = reporter.should_stop(end, total)
        if reason != pt.KEEP_GOING:
            return stop(reason)
    return stop("completed")


def main() -> int:
    try:
        launch = pt.parse_launch()
        options = Options(launch.proxy_args)
    except (pt.ProtocolError, UsageError) as error:
        print(f"example_trainer: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return train(launch, options)
    except (pt.ProtocolError, OSError) as error:
        print(f"example_trainer: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
