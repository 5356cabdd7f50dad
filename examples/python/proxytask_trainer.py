"""proxytask's trial file protocol for Python trainers (PyTorch, TensorFlow, JAX ...).

The same trainer-side API as the C++ SDK (include/proxytask/protocol/), in one standard-library-only
module that a trainer can copy next to its own code: no pip install, no third-party import, so it
works in any training image.

A trainer talks to the proxytask controller only through files in its trial directory (the
``--model_dir`` it was launched with). The files are those of Google's Vertex AI NAS trainer
library, so a trainer already instrumented for it writes the same data:

- ``TRIAL_TRAINING_METRICS.json`` (the trainer writes it): the accuracy after each training cycle,
  the training time (validation excluded) and steps so far, and the latency (-1 when not measured).
- ``DESIRED_TRAINING_PCT.json``, ``MAX_TRAINING_TIME.json``, ``controller_alive_timestamp.json``
  (the controller writes them): when to stop, as a percentage of the training steps or a time
  limit, and the controller's heartbeat.
- ``MODEL_SPEC.json`` (the controller writes it): which model to train.
- ``TRIAL_FAILURE.json`` (the trainer writes it before exiting non-zero): a typed failure.

Typical use in a training loop::

    launch = parse_launch()
    spec = read_model_spec(launch.model_spec)
    reporter = TrialReporter(launch.model_dir)
    step = 0
    while step < total_steps:
        if reporter.should_stop(step - 1, total_steps) != KEEP_GOING:
            break
        ...  # train steps [step, end_step], timing only the training
        reporter.report_accuracy(step, end_step, cycle_seconds, total_steps, accuracy)
        step = end_step + 1

Every file is written atomically (a temporary file in the same directory, flush, fsync, rename,
fsync of the directory), so a reader never sees half a file and a crash never loses the previous
state. Writers never write NaN or Infinity (a failed accuracy is ``null``); readers accept the
NaN/Infinity tokens that Python's json module writes by default, because other trainers write
them. A malformed file raises :class:`ProtocolError` naming the file and the JSON pointer of the
bad field, e.g. ``TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/3/accuracy``.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import operator
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "METRICS_FILE", "DESIRED_PCT_FILE", "MAX_TIME_FILE", "HEARTBEAT_FILE", "MODEL_SPEC_FILE",
    "FAILURE_FILE", "KEEP_GOING", "DESIRED_PCT_REACHED", "TIME_LIMIT_REACHED", "CONTROLLER_LOST",
    "STOP_REASONS", "FAILURE_KINDS", "DEFAULT_HEARTBEAT_THRESHOLD_SECS", "NOT_MEASURED_LATENCY",
    "ProtocolError", "LaunchArguments", "CurvePoint", "TrialMetrics", "TrialFailure",
    "TrialReporter", "parse_launch", "read_model_spec", "write_model_spec", "read_metrics",
    "read_failure", "read_desired_pct", "read_time_limit_hrs", "read_heartbeat",
    "post_desired_pct", "post_time_limit", "post_heartbeat", "training_step_pct",
    "normalise_curve", "accuracy_at_pct", "write_json_atomically",
]

# File names in a trial directory (the Vertex AI NAS library's names).
METRICS_FILE = "TRIAL_TRAINING_METRICS.json"
DESIRED_PCT_FILE = "DESIRED_TRAINING_PCT.json"
MAX_TIME_FILE = "MAX_TRAINING_TIME.json"
HEARTBEAT_FILE = "controller_alive_timestamp.json"
MODEL_SPEC_FILE = "MODEL_SPEC.json"
FAILURE_FILE = "TRIAL_FAILURE.json"

# What TrialReporter.should_stop answers (the C++ enum stop_reason, by name).
KEEP_GOING = "keep_going"
DESIRED_PCT_REACHED = "desired_pct_reached"
TIME_LIMIT_REACHED = "time_limit_reached"
CONTROLLER_LOST = "controller_lost"
STOP_REASONS = (KEEP_GOING, DESIRED_PCT_REACHED, TIME_LIMIT_REACHED, CONTROLLER_LOST)

# The one trial failure taxonomy used everywhere (DESIGN.md "Trial file protocol").
FAILURE_KINDS = ("crashed", "oom", "diverged", "no_metrics", "timed_out", "cancelled",
                 "preempted", "node_failed", "lost")

# A controller whose heartbeat is older than this is taken as gone (15 minutes).
DEFAULT_HEARTBEAT_THRESHOLD_SECS = 900.0

# The latency value meaning "not measured", exactly as the Vertex AI NAS library writes it.
NOT_MEASURED_LATENCY = -1.0

# The launch convention: flag names and their environment variables.
_MODEL_DIR_FLAG, _MODEL_SPEC_FLAG, _SEED_FLAG, _RESUME_FROM_FLAG = (
    "model_dir", "model_spec", "seed", "resume_from")
_ENV_MODEL_DIR = "PROXYTASK_MODEL_DIR"
_ENV_MODEL_SPEC = "PROXYTASK_MODEL_SPEC"
_ENV_SEED = "PROXYTASK_SEED"
_ENV_RESUME_FROM = "PROXYTASK_RESUME_FROM"
_ENV_PROXY_ARGS = "PROXYTASK_PROXY_ARGS"


class ProtocolError(ValueError):
    """A protocol file or launch argument that does not follow the protocol.

    A ValueError, so code that already guards against bad values catches it. ``source`` is the
    file (or flag / environment variable) and ``pointer`` the JSON pointer of the bad field
    ("" for the whole document); the message names both as ``source#pointer``.
    """

    def __init__(self, source: str, pointer: str | None, what: str) -> None:
        self.source = source
        self.pointer = pointer
        where = source if pointer is None else f"{source}#{pointer}"
        super().__init__(f"{where}: {what}")


# --------------------------------------------------------------------------------------------
# Launch convention


@dataclass(frozen=True)
class LaunchArguments:
    """What the controller launched this trial with.

    ``proxy_args`` holds every other ``--name=value`` flag, the value kept as a string, because
    only the trainer knows what its proxy knobs (data %, model scale ...) mean and how to parse
    them.
    """

    model_dir: str
    model_spec: str
    seed: int
    resume_from: str | None
    proxy_args: dict[str, str]


def parse_launch(argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> LaunchArguments:
    """Parses the launch convention from the command line and the environment.

    The controller passes ``--model_dir=<dir> --model_spec=<dir>/MODEL_SPEC.json --seed=<n>
    [--resume_from=<previous trial dir>] [--<proxy arg>=<value> ...]`` and also sets
    PROXYTASK_MODEL_DIR, PROXYTASK_MODEL_SPEC, PROXYTASK_SEED, PROXYTASK_RESUME_FROM and
    PROXYTASK_PROXY_ARGS (a JSON object of proxy-arg name -> string value), so a trainer whose
    command line is fixed by a framework can read the environment instead. Flags win over the
    environment. A flag given twice is an error: the controller never does that, so it is a
    mistake in a hand-written command line, and which value would win is not obvious.

    Args:
        argv: the arguments without the program name; ``sys.argv[1:]`` when None.
        environ: the environment; ``os.environ`` when None. An empty variable counts as unset.

    Raises:
        ProtocolError: naming the flag or variable: a malformed flag (no '=' or no name), a
            flag given twice, a missing model dir, a seed that is not a non-negative 64-bit
            integer, or a PROXYTASK_PROXY_ARGS that is not a JSON object of strings.
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ

    flags: dict[str, str] = {}
    for argument in argv:
        if not argument.startswith("--") or "=" not in argument:
            raise ProtocolError(argument, None, "expected a flag of the form --name=value")
        name, value = argument[2:].split("=", 1)
        if not name:
            raise ProtocolError(argument, None, "the flag has no name (expected --name=value)")
        if name in flags:
            raise ProtocolError(f"--{name}", None, "given twice")
        flags[name] = value

    def env(name: str) -> str | None:
        value = environ.get(name)
        return value if value else None

    proxy_args = _parse_env_proxy_args(env(_ENV_PROXY_ARGS))
    for name, value in flags.items():
        if name not in (_MODEL_DIR_FLAG, _MODEL_SPEC_FLAG, _SEED_FLAG, _RESUME_FROM_FLAG):
            proxy_args[name] = value

    if _MODEL_DIR_FLAG in flags:
        model_dir = flags[_MODEL_DIR_FLAG]
        if not model_dir:
            raise ProtocolError(f"--{_MODEL_DIR_FLAG}", None, "empty value (expected a directory)")
    else:
        model_dir = env(_ENV_MODEL_DIR)
        if model_dir is None:
            raise ProtocolError(
                f"--{_MODEL_DIR_FLAG}", None,
                f"required (pass --{_MODEL_DIR_FLAG}=<dir> or set {_ENV_MODEL_DIR})")

    # An empty --model_spec= means the default, as in the C++ parse_launch.
    model_spec = (flags[_MODEL_SPEC_FLAG] if _MODEL_SPEC_FLAG in flags
                  else env(_ENV_MODEL_SPEC)) or os.path.join(model_dir, MODEL_SPEC_FILE)

    if _SEED_FLAG in flags:
        seed = _parse_seed(flags[_SEED_FLAG], f"--{_SEED_FLAG}")
    else:
        seed_text = env(_ENV_SEED)
        seed = 0 if seed_text is None else _parse_seed(seed_text, _ENV_SEED)

    # An explicitly empty --resume_from= means "start fresh", even when the environment says
    # otherwise: flags win.
    if _RESUME_FROM_FLAG in flags:
        resume_from = flags[_RESUME_FROM_FLAG] or None
    else:
        resume_from = env(_ENV_RESUME_FROM)

    return LaunchArguments(model_dir=model_dir, model_spec=model_spec, seed=seed,
                           resume_from=resume_from, proxy_args=proxy_args)


_MAX_SEED = 2**64 - 1  # the C++ side keeps the seed in a std::uint64_t


def _parse_seed(text: str, source: str) -> int:
    """A seed is a non-negative decimal integer that fits 64 bits, without sign or spaces.

    Every framework's seeding accepts those, and the C++ parse_launch reads the same set.
    """
    # The length test keeps int() away from its limit on digits (4300) for absurd input.
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or int(text) > _MAX_SEED:
        raise ProtocolError(source, None, f"expected a non-negative integer, got {text!r}")
    return int(text)


def _parse_env_proxy_args(text: str | None) -> dict[str, str]:
    """PROXYTASK_PROXY_ARGS: a JSON object whose values are strings, like the flags' values."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProtocolError(_ENV_PROXY_ARGS, "", f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ProtocolError(_ENV_PROXY_ARGS, "", f"expected an object, got {_json_type(value)}")
    for name, arg in value.items():
        if not isinstance(arg, str):
            raise ProtocolError(_ENV_PROXY_ARGS, _pointer("", name),
                                f"expected a string, got {_json_type(arg)}")
    return dict(value)


# --------------------------------------------------------------------------------------------
# Reading JSON with errors that name the file and the field


def _pointer(parent: str, token: str | int) -> str:
    """The JSON pointer (RFC 6901) of a child: '~' and '/' in a key are escaped."""
    text = str(token).replace("~", "~0").replace("/", "~1")
    return f"{parent}/{text}"


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _read_json_file(path: str) -> Any:
    """Parses one JSON file; NaN, Infinity and -Infinity tokens are accepted.

    Raises FileNotFoundError for a missing file (callers decide what absence means) and
    ProtocolError for anything unreadable or malformed (empty, truncated, not UTF-8 ...).
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ProtocolError(path, None, f"cannot read: {error.strerror or error}") from None
    if not data.strip():
        raise ProtocolError(path, "", "empty file (expected a JSON document)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(path, "", f"not UTF-8 text: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ProtocolError(path, "", f"not valid JSON: line {error.lineno}, column "
                            f"{error.colno}: {error.msg}") from None
    except RecursionError:
        raise ProtocolError(path, "", "not valid JSON: nested too deeply") from None


def _object(value: Any, source: str, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(source, pointer, f"expected an object, got {_json_type(value)}")
    return value


def _member(obj: dict[str, Any], key: str, source: str, pointer: str) -> tuple[Any, str]:
    """A required member and its pointer."""
    child = _pointer(pointer, key)
    if key not in obj:
        raise ProtocolError(source, child, "missing")
    return obj[key], child


def _number(value: Any, source: str, pointer: str, *, finite: bool = True) -> float:
    """A JSON number as a float; with ``finite``, NaN and infinities are refused too."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(source, pointer, f"expected a number, got {_json_type(value)}")
    number = float(value)
    if finite and not math.isfinite(number):
        raise ProtocolError(source, pointer, f"expected a finite number, got {number}")
    return number


def _non_negative(value: Any, source: str, pointer: str) -> float:
    """A finite number >= 0: a pct, a duration."""
    number = _number(value, source, pointer)
    if number < 0.0:
        raise ProtocolError(source, pointer, f"expected a number >= 0, got {number}")
    return number


def _count(value: Any, source: str, pointer: str) -> int:
    """An integer >= 0 in int64's range (a step); 12.0 counts, as some writers emit every number
    as a double. The range is the C++ reader's, so both sides accept the same files."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(source, pointer, f"expected an integer, got {_json_type(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ProtocolError(source, pointer, f"expected an integer, got {value}")
    integer = int(value)
    if not -(2**63) <= integer < 2**63:
        raise ProtocolError(source, pointer, f"integer out of range: {integer}")
    if integer < 0:
        raise ProtocolError(source, pointer, f"expected an integer >= 0, got {integer}")
    return integer


def _string(value: Any, source: str, pointer: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(source, pointer, f"expected a string, got {_json_type(value)}")
    return value


def _metric_value(value: Any, source: str, pointer: str) -> float:
    """A measured value: a number, or NaN for a failed one (null, NaN or an infinity)."""
    if value is None:
        return math.nan
    number = _number(value, source, pointer, finite=False)
    return number if math.isfinite(number) else math.nan


def _json_number(value: float) -> float | None:
    """A number for a file we write: finite, or None (null) for a missing or failed value."""
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Atomic writes


def write_json_atomically(path: str, value: Any) -> None:
    """Writes ``value`` as JSON to ``path`` so that no reader ever sees half a file.

    A temporary file in the same directory (so the rename stays on one file system) is written,
    flushed and fsynced, renamed over ``path``, and the directory is fsynced so that the rename
    itself survives a crash. On failure the previous file is untouched and the temporary file
    removed. NaN and infinities are refused (ValueError): JSON has no such numbers, and the C++
    readers' Boost.JSON would reject them.
    """
    text = json.dumps(value, allow_nan=False, indent=2) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # The temporary name starts with a dot, as the C++ writer's does, so directory listings and
    # globs for *.json skip it.
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            # mkstemp creates 0600; a protocol file is read by the controller, maybe as another
            # user of the same group, as any file written with open() would be.
            os.fchmod(file.fileno(), 0o644)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Makes a rename in ``directory`` durable: it is on disk once the directory entry is."""
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --------------------------------------------------------------------------------------------
# TRIAL_TRAINING_METRICS.json


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation of a trial; the field names are those of TRIAL_TRAINING_METRICS.json.

    ``accuracy`` is NaN for a failed metric (written as null), as in the C++ curve_point, so
    arithmetic on curves propagates the failure instead of raising.
    """

    training_step_pct: float  # 100 * (training_step + 1) / total_steps
    training_step: int        # the 0-based step the training cycle ended at
    accuracy: float           # NaN when the metric failed


@dataclass
class TrialMetrics:
    """The content of TRIAL_TRAINING_METRICS.json."""

    total_training_steps: int = 0
    total_training_time_in_secs: float = 0.0
    latency: float = NOT_MEASURED_LATENCY  # -1: not measured; NaN: failed (written as null)
    training_accuracy_over_steps: list[CurvePoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON value, without NaN or infinities (a failed accuracy is null)."""
        return {
            "training_time": {
                "total_training_steps": self.total_training_steps,
                "total_training_time_in_secs": float(self.total_training_time_in_secs),
            },
            "latency": _json_number(float(self.latency)),
            "training_accuracy_over_steps": [
                {"training_step_pct": p.training_step_pct, "training_step": p.training_step,
                 "accuracy": _json_number(p.accuracy)}
                for p in self.training_accuracy_over_steps
            ],
        }

    @classmethod
    def from_json(cls, value: Any, source: str = METRICS_FILE) -> "TrialMetrics":
        """Validates a parsed file; errors name ``source`` and the pointer of the bad field.

        A null, NaN or infinite accuracy or latency is a failed metric (NaN here), not an
        error. Steps and times must be >= 0, pcts finite and >= 0; unknown members are ignored.
        """
        root = _object(value, source, "")
        time_value, time_ptr = _member(root, "training_time", source, "")
        training_time = _object(time_value, source, time_ptr)
        steps_value, steps_ptr = _member(training_time, "total_training_steps", source, time_ptr)
        secs_value, secs_ptr = _member(training_time, "total_training_time_in_secs", source,
                                       time_ptr)
        latency_value, latency_ptr = _member(root, "latency", source, "")
        latency = _metric_value(latency_value, source, latency_ptr)
        points_value, points_ptr = _member(root, "training_accuracy_over_steps", source, "")
        if not isinstance(points_value, list):
            raise ProtocolError(source, points_ptr,
                                f"expected an array, got {_json_type(points_value)}")
        points = []
        for index, item in enumerate(points_value):
            item_ptr = _pointer(points_ptr, index)
            point = _object(item, source, item_ptr)
            pct_value, pct_ptr = _member(point, "training_step_pct", source, item_ptr)
            step_value, step_ptr = _member(point, "training_step", source, item_ptr)
            accuracy_value, accuracy_ptr = _member(point, "accuracy", source, item_ptr)
            points.append(CurvePoint(
                training_step_pct=_non_negative(pct_value, source, pct_ptr),
                training_step=_count(step_value, source, step_ptr),
                accuracy=_metric_value(accuracy_value, source, accuracy_ptr)))
        return cls(
            total_training_steps=_count(steps_value, source, steps_ptr),
            total_training_time_in_secs=_non_negative(secs_value, source, secs_ptr),
            latency=latency,
            training_accuracy_over_steps=points)


def read_metrics(model_dir: str) -> TrialMetrics | None:
    """The trial's TRIAL_TRAINING_METRICS.json; None while the trainer has not written it.

    Raises:
        ProtocolError: the file is malformed (naming file#pointer).
    """
    path = os.path.join(model_dir, METRICS_FILE)
    try:
        value = _read_json_file(path)
    except FileNotFoundError:
        return None
    return TrialMetrics.from_json(value, path)


def training_step_pct(end_step: int, total_steps: int) -> float:
    """100 * (end_step + 1) / total_steps: how far training is after the 0-based ``end_step``.

    ``end_step`` = -1 (nothing trained yet) gives 0.
    """
    end_step = operator.index(end_step)
    total_steps = operator.index(total_steps)
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    return 100 * (end_step + 1) / total_steps


# --------------------------------------------------------------------------------------------
# Curves: the controller's view of TRIAL_TRAINING_METRICS.json


def normalise_curve(curve: Iterable[CurvePoint]) -> list[CurvePoint]:
    """The curve ordered by training_step_pct, one point per pct.

    Mirrors proxytask::stats::normalise_curve: points whose pct is NaN are dropped (they have no
    position); among points with the same pct the LATEST in input order is kept (a re-evaluation
    replaces the earlier one).
    """
    kept = [p for p in curve if not math.isnan(p.training_step_pct)]
    kept.sort(key=lambda p: p.training_step_pct)  # stable: recording order among equal pcts
    out: list[CurvePoint] = []
    for point in kept:
        if out and out[-1].training_step_pct == point.training_step_pct:
            out[-1] = point
        else:
            out.append(point)
    return out


def accuracy_at_pct(curve: Iterable[CurvePoint], desired_pct: float) -> float | None:
    """The accuracy at ``desired_pct``, or None when the trial has not reached it.

    Mirrors proxytask::stats::accuracy_at_pct (the reference tool's numpy.interp over
    [0] + pcts, [0] + accuracies): linear interpolation over the origin (0, 0.0) followed by
    the points of normalise_curve (a recorded point at pct 0 replaces the origin). At or left of
    the first knot the first value is returned, as numpy.interp does; a NaN accuracy next to
    ``desired_pct`` gives NaN. None when the highest recorded pct is below ``desired_pct``, the
    curve has no point, or ``desired_pct`` is NaN.
    """
    knots = normalise_curve(curve)
    x = float(desired_pct)
    if not knots or math.isnan(x) or knots[-1].training_step_pct < x:
        return None
    pcts = [p.training_step_pct for p in knots]
    origin = bisect.bisect_left(pcts, 0.0)
    if origin == len(knots) or pcts[origin] != 0.0:
        knots.insert(origin, CurvePoint(0.0, 0, 0.0))
        pcts.insert(origin, 0.0)

    if x <= pcts[0]:
        return knots[0].accuracy
    j = bisect.bisect_right(pcts, x) - 1
    if pcts[j] == x or j + 1 == len(knots):
        return knots[j].accuracy
    slope = (knots[j + 1].accuracy - knots[j].accuracy) / (pcts[j + 1] - pcts[j])
    return slope * (x - pcts[j]) + knots[j].accuracy


# --------------------------------------------------------------------------------------------
# Control files (the controller writes them, the trainer reads them)


def _read_single_number(model_dir: str, name: str, key: str,
                        read: Callable[[Any, str, str], float]) -> float | None:
    """The one number of a control file, read with ``read``; None when there is no file."""
    path = os.path.join(model_dir, name)
    try:
        value = _read_json_file(path)
    except FileNotFoundError:
        return None
    member, pointer = _member(_object(value, path, ""), key, path, "")
    return read(member, path, pointer)


def read_desired_pct(model_dir: str) -> float | None:
    """DESIRED_TRAINING_PCT.json's desired_training_pct; None without the file."""
    return _read_single_number(model_dir, DESIRED_PCT_FILE, "desired_training_pct",
                               _non_negative)


def read_time_limit_hrs(model_dir: str) -> float | None:
    """MAX_TRAINING_TIME.json's max_training_time_in_hrs; None without the file."""
    return _read_single_number(model_dir, MAX_TIME_FILE, "max_training_time_in_hrs",
                               _non_negative)


def read_heartbeat(model_dir: str) -> float | None:
    """controller_alive_timestamp.json's timestamp (unix seconds); None without the file."""
    return _read_single_number(model_dir, HEARTBEAT_FILE, "timestamp", _number)


def _finite(value: float, name: str, *, non_negative: bool = False) -> float:
    number = float(value)
    if not math.isfinite(number) or (non_negative and number < 0.0):
        raise ValueError(f"{name} must be finite{' and >= 0' if non_negative else ''}, "
                         f"got {number}")
    return number


def post_desired_pct(model_dir: str, desired_pct: float) -> None:
    """Asks the trainer to stop once its pct >= ``desired_pct``; 0 means "stop now".

    Independent of the time limit: posting one never drops the other.
    """
    write_json_atomically(os.path.join(model_dir, DESIRED_PCT_FILE),
                          {"desired_training_pct": _finite(desired_pct, "desired_pct",
                                                           non_negative=True)})


def post_time_limit(model_dir: str, max_training_time_in_hrs: float) -> None:
    """Asks the trainer to stop once its recorded training seconds >= hours * 3600."""
    write_json_atomically(
        os.path.join(model_dir, MAX_TIME_FILE),
        {"max_training_time_in_hrs": _finite(max_training_time_in_hrs,
                                             "max_training_time_in_hrs", non_negative=True)})


def post_heartbeat(model_dir: str, timestamp: float | None = None,
                   clock: Callable[[], float] = time.time) -> None:
    """Says the controller is alive at ``timestamp`` (unix seconds; ``clock()`` when None)."""
    now = clock() if timestamp is None else timestamp
    write_json_atomically(os.path.join(model_dir, HEARTBEAT_FILE),
                          {"timestamp": _finite(now, "timestamp")})


# --------------------------------------------------------------------------------------------
# MODEL_SPEC.json


def read_model_spec(path: str) -> dict[str, Any]:
    """The model to train: ``{"model_id": str, "parameters": {...}}``.

    ``parameters`` is whatever JSON object the search space chose; other members are kept.

    Raises:
        ProtocolError: the file is missing, unreadable or malformed (naming file#pointer).
    """
    try:
        value = _read_json_file(path)
    except FileNotFoundError:
        raise ProtocolError(path, None, "no such file (the model spec is required)") from None
    root = _object(value, path, "")
    model_id, model_id_ptr = _member(root, "model_id", path, "")
    _string(model_id, path, model_id_ptr)
    parameters, parameters_ptr = _member(root, "parameters", path, "")
    _object(parameters, path, parameters_ptr)
    return root


def write_model_spec(path: str, model_id: str, parameters: Mapping[str, Any]) -> None:
    """Writes MODEL_SPEC.json (controller side; also handy for running a trainer by hand)."""
    write_json_atomically(path, {"model_id": str(model_id), "parameters": dict(parameters)})


# --------------------------------------------------------------------------------------------
# TRIAL_FAILURE.json


@dataclass(frozen=True)
class TrialFailure:
    """A typed failure the trainer recorded before exiting non-zero."""

    kind: str                         # one of FAILURE_KINDS
    message: str
    training_step: int | None = None  # the step where it failed, when known

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.training_step is not None:
            value["training_step"] = self.training_step
        return value

    @classmethod
    def from_json(cls, value: Any, source: str = FAILURE_FILE) -> "TrialFailure":
        root = _object(value, source, "")
        kind_value, kind_ptr = _member(root, "kind", source, "")
        kind = _string(kind_value, source, kind_ptr)
        if kind not in FAILURE_KINDS:
            raise ProtocolError(
                source, kind_ptr,
                f"unknown kind {kind!r} (expected one of {', '.join(FAILURE_KINDS)})")
        message_value, message_ptr = _member(root, "message", source, "")
        step = None
        if "training_step" in root:
            step = _count(root["training_step"], source, _pointer("", "training_step"))
        return cls(kind=kind, message=_string(message_value, source, message_ptr),
                   training_step=step)


def read_failure(model_dir: str) -> TrialFailure | None:
    """The trial's TRIAL_FAILURE.json; None when the trainer recorded no failure."""
    path = os.path.join(model_dir, FAILURE_FILE)
    try:
        value = _read_json_file(path)
    except FileNotFoundError:
        return None
    return TrialFailure.from_json(value, path)


# --------------------------------------------------------------------------------------------
# The trainer side


class TrialReporter:
    """What a trainer calls: report each training cycle, ask whether to stop.

    It keeps the metrics in memory and rewrites TRIAL_TRAINING_METRICS.json atomically on every
    report, so the controller always reads a complete, current file. A trainer restarted in the
    same directory (preempted, or continued by model selection) continues from the file it
    finds, so its curve and training time carry on where they stopped.

    Args:
        model_dir: the trial directory (``--model_dir``).
        heartbeat_threshold_secs: a controller heartbeat older than this means the controller
            is gone, and should_stop answers ``controller_lost`` (``math.inf``: never).
        clock: unix seconds now; replaceable so that tests need not wait 15 minutes.

    Raises:
        ProtocolError: an existing metrics file is malformed. Continuing would overwrite the
            only record of the trial's progress, so the trainer should fail loudly instead.
    """

    def __init__(self, model_dir: str,
                 heartbeat_threshold_secs: float = DEFAULT_HEARTBEAT_THRESHOLD_SECS,
                 clock: Callable[[], float] = time.time) -> None:
        threshold = float(heartbeat_threshold_secs)
        if not threshold >= 0.0:  # NaN too; math.inf disables the heartbeat check
            raise ValueError(f"heartbeat_threshold_secs must be >= 0, got {threshold}")
        self.model_dir = model_dir
        self.heartbeat_threshold_secs = threshold
        self._clock = clock
        # Created now, so a wrong or unwritable directory fails at start-up, not after the first
        # training cycle.
        os.makedirs(model_dir, exist_ok=True)
        self._metrics = read_metrics(model_dir) or TrialMetrics()

    @property
    def metrics(self) -> TrialMetrics:
        """A copy of what has been recorded so far (resumed points included)."""
        return dataclasses.replace(
            self._metrics,
            training_accuracy_over_steps=list(self._metrics.training_accuracy_over_steps))

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.model_dir, METRICS_FILE)

    def report_accuracy(self, begin_step: int, end_step: int, cycle_seconds: float,
                        total_steps: int, accuracy: float) -> bool:
        """Records one training cycle [begin_step, end_step] (0-based, inclusive).

        ``cycle_seconds`` is the cycle's training time WITHOUT validation: the time limit and
        the proxy search compare training cost, which evaluation frequency must not change.
        A non-finite ``accuracy`` (a diverged model) is recorded as a failed metric (null).
        A cycle whose pct is not beyond the last recorded one (a replay after a restart) is
        ignored: neither its point nor its time is added.

        Returns:
            True when the cycle was recorded, False when it was ignored.
        """
        begin_step = operator.index(begin_step)
        end_step = operator.index(end_step)
        if begin_step < 0 or end_step < begin_step:
            raise ValueError(
                f"expected 0 <= begin_step <= end_step, got begin_step={begin_step}, "
                f"end_step={end_step}")
        pct = training_step_pct(end_step, total_steps)
        seconds = float(cycle_seconds)
        if not math.isfinite(seconds) or seconds < 0.0:
            raise ValueError(f"cycle_seconds must be finite and >= 0, got {cycle_seconds}")
        points = self._metrics.training_accuracy_over_steps
        if points and pct <= points[-1].training_step_pct:
            return False
        value = float(accuracy)
        point = CurvePoint(pct, end_step, value if math.isfinite(value) else math.nan)
        self._commit(TrialMetrics(
            total_training_steps=end_step + 1,
            total_training_time_in_secs=self._metrics.total_training_time_in_secs + seconds,
            latency=self._metrics.latency,
            training_accuracy_over_steps=[*points, point]))
        return True

    def report_latency(self, latency: float) -> None:
        """Records the model's latency, in whatever unit the search uses (seconds or ms).

        One float, as the Vertex AI NAS library takes it. A non-finite value is a failed
        measurement, written as null (the file has -1 until a latency is reported).
        """
        value = float(latency)
        self._commit(dataclasses.replace(self._metrics,
                                         latency=value if math.isfinite(value) else math.nan))

    def report_failure(self, kind: str, message: str, training_step: int | None = None) -> None:
        """Writes TRIAL_FAILURE.json; call it just before exiting non-zero.

        ``kind`` is one of FAILURE_KINDS ("oom", "diverged" ...), so the controller can tell a
        model that does not fit (sample another) from a machine that failed (retry).
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r} (expected one of "
                             f"{', '.join(FAILURE_KINDS)})")
        step = None if training_step is None else operator.index(training_step)
        failure = TrialFailure(kind=kind, message=str(message), training_step=step)
        write_json_atomically(os.path.join(self.model_dir, FAILURE_FILE), failure.to_json())

    def should_stop(self, end_step: int, total_steps: int) -> str:
        """Why to stop after the 0-based ``end_step``, or KEEP_GOING.

        Checked in this order, reading the controller's files each time:
        DESIRED_PCT_REACHED (pct >= desired pct; a desired pct of 0 means "stop now"),
        TIME_LIMIT_REACHED (recorded training seconds >= hours * 3600), CONTROLLER_LOST (the
        heartbeat file exists and is older than the threshold; without the file there is no
        heartbeat to lose). A stop is graceful: save a checkpoint and exit 0.
        Pass ``end_step`` = -1 before the first cycle: nothing trained yet is pct 0.

        Raises:
            ProtocolError: a control file is malformed (naming file#pointer).
        """
        pct = training_step_pct(end_step, total_steps)
        desired = read_desired_pct(self.model_dir)
        if desired is not None and pct >= desired:
            return DESIRED_PCT_REACHED
        limit_hrs = read_time_limit_hrs(self.model_dir)
        if (limit_hrs is not None
                and self._metrics.total_training_time_in_secs >= limit_hrs * 3600.0):
            return TIME_LIMIT_REACHED
        heartbeat = read_heartbeat(self.model_dir)
        if heartbeat is not None and self._clock() - heartbeat > self.heartbeat_threshold_secs:
            return CONTROLLER_LOST
        return KEEP_GOING

    def _commit(self, metrics: TrialMetrics) -> None:
        """Writes ``metrics``, then keeps them: if the write fails, memory still matches the
        file, so a retried report is recorded rather than taken for a replay."""
        write_json_atomically(self.metrics_path, metrics.to_json())
        self._metrics = metrics
