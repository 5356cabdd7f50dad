"""Tests of examples/python/proxytask_trainer.py and example_trainer.py (standard library only).

Run from this directory with the module on the path:
    PYTHONPATH=../../examples/python python3 -m unittest -v test_proxytask_trainer
(ctest runs exactly that: tests/python/CMakeLists.txt).
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any
from unittest import mock

try:
    import proxytask_trainer as pt
except ImportError:  # run without PYTHONPATH: find the module in the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                    os.pardir, "examples", "python"))
    import proxytask_trainer as pt

EXAMPLE_TRAINER = os.path.join(os.path.dirname(os.path.abspath(pt.__file__)),
                               "example_trainer.py")


def strict_json_load(path: str) -> Any:
    """Loads a file we wrote, failing on NaN/Infinity: writers must never produce them."""
    def refuse(token: str) -> Any:
        raise AssertionError(f"{path} contains the non-JSON token {token}")
    with open(path, encoding="utf-8") as file:
        return json.load(file, parse_constant=refuse)


class TrialDirTestCase(unittest.TestCase):
    """A fresh trial directory per test."""

    def setUp(self) -> None:
        self._temp = tempfile.TemporaryDirectory(prefix="proxytask_py_")
        self.dir = self._temp.name

    def tearDown(self) -> None:
        self._temp.cleanup()

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write_text(self, name: str, text: str) -> str:
        path = self.path(name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        return path

    def assert_protocol_error(self, where: str, call: Any, *args: Any) -> pt.ProtocolError:
        """``call(*args)`` raises a ProtocolError whose message contains ``where``."""
        with self.assertRaises(pt.ProtocolError) as caught:
            call(*args)
        self.assertIn(where, str(caught.exception))
        return caught.exception


class FakeClock:
    """Unix seconds that a test sets, so heartbeat tests need not wait."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------------


class FileNamesTest(unittest.TestCase):
    def test_file_names_are_the_vertex_ai_nas_names(self) -> None:
        self.assertEqual(pt.METRICS_FILE, "TRIAL_TRAINING_METRICS.json")
        self.assertEqual(pt.DESIRED_PCT_FILE, "DESIRED_TRAINING_PCT.json")
        self.assertEqual(pt.MAX_TIME_FILE, "MAX_TRAINING_TIME.json")
        self.assertEqual(pt.HEARTBEAT_FILE, "controller_alive_timestamp.json")
        self.assertEqual(pt.MODEL_SPEC_FILE, "MODEL_SPEC.json")
        self.assertEqual(pt.FAILURE_FILE, "TRIAL_FAILURE.json")

    def test_reason_and_failure_names(self) -> None:
        self.assertEqual(pt.STOP_REASONS, ("keep_going", "desired_pct_reached",
                                           "time_limit_reached", "controller_lost"))
        self.assertEqual(pt.FAILURE_KINDS, ("crashed", "oom", "diverged", "no_metrics",
                                            "timed_out", "cancelled", "preempted",
                                            "node_failed", "lost"))


class MetricsWriterTest(TrialDirTestCase):
    def test_writes_the_exact_field_names(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 99, 1.5, 1000, 0.25)
        value = strict_json_load(self.path("TRIAL_TRAINING_METRICS.json"))
        self.assertEqual(value, {
            "training_time": {"total_training_steps": 100, "total_training_time_in_secs": 1.5},
            "latency": -1.0,
            "training_accuracy_over_steps": [
                {"training_step_pct": 10.0, "training_step": 99, "accuracy": 0.25}],
        })
        self.assertIsInstance(value["training_time"]["total_training_steps"], int)
        self.assertIsInstance(value["training_accuracy_over_steps"][0]["training_step"], int)

    def test_pct_is_100_times_end_step_plus_one_over_total_steps(self) -> None:
        self.assertEqual(pt.training_step_pct(99, 1000), 10.0)
        self.assertEqual(pt.training_step_pct(0, 3), 100 / 3)
        self.assertEqual(pt.training_step_pct(2, 3), 100.0)
        self.assertEqual(pt.training_step_pct(-1, 7), 0.0)
        with self.assertRaises(ValueError):
            pt.training_step_pct(5, 0)
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 0, 0.1, 3, 0.5)
        self.assertEqual(reporter.metrics.training_accuracy_over_steps[0].training_step_pct,
                         100 / 3)

    def test_totals_are_the_last_step_and_the_sum_of_cycle_seconds(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 49, 2.0, 200, 0.1)
        reporter.report_accuracy(50, 99, 3.25, 200, 0.2)
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertEqual(metrics.total_training_steps, 100)
        self.assertEqual(metrics.total_training_time_in_secs, 5.25)
        self.assertEqual([p.training_step_pct for p in metrics.training_accuracy_over_steps],
                         [25.0, 50.0])

    def test_cycles_not_beyond_the_last_pct_are_ignored(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        self.assertTrue(reporter.report_accuracy(0, 99, 1.0, 1000, 0.1))
        with open(self.path(pt.METRICS_FILE), "rb") as file:
            before = file.read()
        self.assertFalse(reporter.report_accuracy(0, 99, 7.0, 1000, 0.9))   # the same pct
        self.assertFalse(reporter.report_accuracy(0, 49, 7.0, 1000, 0.9))   # an earlier pct
        with open(self.path(pt.METRICS_FILE), "rb") as file:
            self.assertEqual(file.read(), before)
        self.assertTrue(reporter.report_accuracy(100, 199, 2.0, 1000, 0.2))
        metrics = reporter.metrics
        self.assertEqual(len(metrics.training_accuracy_over_steps), 2)
        self.assertEqual(metrics.total_training_time_in_secs, 3.0)  # ignored time not added
        self.assertEqual(metrics.total_training_steps, 200)

    def test_resume_continues_from_the_existing_file(self) -> None:
        first = pt.TrialReporter(self.dir)
        first.report_latency(4.5)
        first.report_accuracy(0, 99, 1.0, 400, 0.3)
        first.report_accuracy(100, 199, 1.0, 400, 0.5)

        second = pt.TrialReporter(self.dir)  # the trainer restarted in the same directory
        self.assertEqual(second.metrics, first.metrics)
        self.assertFalse(second.report_accuracy(100, 199, 9.0, 400, 0.5))  # a replayed cycle
        self.assertTrue(second.report_accuracy(200, 299, 1.5, 400, 0.6))
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertEqual([p.training_step for p in metrics.training_accuracy_over_steps],
                         [99, 199, 299])
        self.assertEqual(metrics.total_training_time_in_secs, 3.5)
        self.assertEqual(metrics.total_training_steps, 300)
        self.assertEqual(metrics.latency, 4.5)

    def test_non_finite_accuracy_is_written_as_null(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 9, 1.0, 30, math.nan)
        reporter.report_accuracy(10, 19, 1.0, 30, math.inf)
        reporter.report_accuracy(20, 29, 1.0, 30, -math.inf)
        value = strict_json_load(self.path(pt.METRICS_FILE))  # fails on NaN/Infinity tokens
        self.assertEqual([p["accuracy"] for p in value["training_accuracy_over_steps"]],
                         [None, None, None])
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertTrue(all(math.isnan(p.accuracy) for p in metrics.training_accuracy_over_steps))

    def test_reads_the_nan_tokens_python_writes(self) -> None:
        # What json.dump writes by default for a NaN accuracy (the Vertex AI NAS library does).
        self.write_text(pt.METRICS_FILE, """{"training_time": {"total_training_steps": 20,
          "total_training_time_in_secs": 2.0}, "latency": NaN,
          "training_accuracy_over_steps": [
            {"training_step_pct": 50.0, "training_step": 9, "accuracy": NaN},
            {"training_step_pct": 100.0, "training_step": 19, "accuracy": -Infinity}]}""")
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertTrue(math.isnan(metrics.training_accuracy_over_steps[0].accuracy))
        self.assertTrue(math.isnan(metrics.training_accuracy_over_steps[1].accuracy))
        self.assertTrue(math.isnan(metrics.latency))  # a failed measurement
        # A trainer resuming from it rewrites it without the tokens.
        reporter = pt.TrialReporter(self.dir)
        reporter.report_latency(3.0)
        value = strict_json_load(self.path(pt.METRICS_FILE))
        self.assertEqual([p["accuracy"] for p in value["training_accuracy_over_steps"]],
                         [None, None])

    def test_latency_is_one_float(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 9, 1.0, 10, 0.5)
        self.assertEqual(strict_json_load(self.path(pt.METRICS_FILE))["latency"], -1)
        reporter.report_latency(12.5)
        self.assertEqual(strict_json_load(self.path(pt.METRICS_FILE))["latency"], 12.5)
        reporter.report_latency(math.inf)  # a failed measurement: null, as the C++ writer does
        self.assertIsNone(strict_json_load(self.path(pt.METRICS_FILE))["latency"])
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertTrue(math.isnan(metrics.latency))
        self.assertEqual(len(metrics.training_accuracy_over_steps), 1)

    def test_rejects_bad_cycle_arguments(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        with self.assertRaises(ValueError):
            reporter.report_accuracy(0, 9, 1.0, 0, 0.5)          # no steps in total
        with self.assertRaises(ValueError):
            reporter.report_accuracy(10, 9, 1.0, 100, 0.5)       # end before begin
        with self.assertRaises(ValueError):
            reporter.report_accuracy(0, 9, math.nan, 100, 0.5)   # no time
        with self.assertRaises(TypeError):
            reporter.report_accuracy(0, 9.5, 1.0, 100, 0.5)      # not a step
        self.assertFalse(os.path.exists(self.path(pt.METRICS_FILE)))

    def test_report_failure_writes_the_typed_failure(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_failure("oom", "CUDA out of memory", training_step=120)
        self.assertEqual(strict_json_load(self.path("TRIAL_FAILURE.json")),
                         {"kind": "oom", "message": "CUDA out of memory", "training_step": 120})
        self.assertEqual(pt.read_failure(self.dir), pt.TrialFailure("oom", "CUDA out of memory",
                                                                    120))
        reporter.report_failure("diverged", "NaN loss")
        self.assertEqual(strict_json_load(self.path("TRIAL_FAILURE.json")),
                         {"kind": "diverged", "message": "NaN loss"})
        with self.assertRaises(ValueError):
            reporter.report_failure("exploded", "no such kind")

    def test_atomic_writes_leave_no_temporary_files(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        for cycle in range(5):
            reporter.report_accuracy(cycle * 10, cycle * 10 + 9, 1.0, 50, 0.1 * cycle)
        reporter.report_latency(2.0)
        reporter.report_failure("crashed", "test")
        pt.post_desired_pct(self.dir, 50.0)
        pt.post_time_limit(self.dir, 1.0)
        pt.post_heartbeat(self.dir)
        self.assertEqual(sorted(os.listdir(self.dir)), sorted([
            pt.METRICS_FILE, pt.FAILURE_FILE, pt.DESIRED_PCT_FILE, pt.MAX_TIME_FILE,
            pt.HEARTBEAT_FILE]))

    def test_writes_fsync_the_file_before_the_rename_and_the_directory_after(self) -> None:
        events: list[str] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            events.append("fsync directory" if stat.S_ISDIR(os.fstat(fd).st_mode)
                          else "fsync file")
            real_fsync(fd)

        def replace(source: str, target: str) -> None:
            events.append("replace")
            real_replace(source, target)

        with mock.patch.object(pt.os, "fsync", side_effect=fsync), \
                mock.patch.object(pt.os, "replace", side_effect=replace):
            pt.post_desired_pct(self.dir, 10.0)
        self.assertEqual(events, ["fsync file", "replace", "fsync directory"])

    def test_a_failed_write_keeps_the_previous_file(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        reporter.report_accuracy(0, 9, 1.0, 100, 0.1)
        with open(self.path(pt.METRICS_FILE), "rb") as file:
            before = file.read()
        with mock.patch.object(pt.os, "replace", side_effect=OSError("disk gone")):
            with self.assertRaises(OSError):
                reporter.report_accuracy(10, 19, 1.0, 100, 0.2)
        with open(self.path(pt.METRICS_FILE), "rb") as file:
            self.assertEqual(file.read(), before)
        self.assertEqual(os.listdir(self.dir), [pt.METRICS_FILE])
        # Memory still matches the file, so the retried cycle is recorded, not taken for a replay.
        self.assertEqual(reporter.metrics, pt.read_metrics(self.dir))
        self.assertTrue(reporter.report_accuracy(10, 19, 1.0, 100, 0.2))
        self.assertEqual(reporter.metrics.total_training_time_in_secs, 2.0)

    def test_written_files_are_readable_by_others(self) -> None:
        pt.post_desired_pct(self.dir, 10.0)
        self.assertEqual(os.stat(self.path(pt.DESIRED_PCT_FILE)).st_mode & 0o777, 0o644)

    def test_a_missing_metrics_file_reads_as_none(self) -> None:
        self.assertIsNone(pt.read_metrics(self.dir))
        self.assertIsNone(pt.read_failure(self.dir))
        self.assertEqual(pt.TrialReporter(self.dir).metrics, pt.TrialMetrics())


# ------------------------------------------------------------------------------------------------


VALID_METRICS: dict[str, Any] = {
    "training_time": {"total_training_steps": 20, "total_training_time_in_secs": 2.0},
    "latency": -1,
    "training_accuracy_over_steps": [
        {"training_step_pct": 50.0, "training_step": 9, "accuracy": 0.5},
        {"training_step_pct": 100.0, "training_step": 19, "accuracy": 0.7}],
}


def metrics_with(pointer_parts: list[Any], value: Any, delete: bool = False) -> str:
    """VALID_METRICS with one field replaced (or deleted), as JSON text."""
    document = json.loads(json.dumps(VALID_METRICS))
    target = document
    for part in pointer_parts[:-1]:
        target = target[part]
    if delete:
        del target[pointer_parts[-1]]
    else:
        target[pointer_parts[-1]] = value
    return json.dumps(document)


class MalformedFilesTest(TrialDirTestCase):
    def test_malformed_metrics_files_name_the_file_and_the_field(self) -> None:
        valid = json.dumps(VALID_METRICS)
        file = "TRIAL_TRAINING_METRICS.json#"
        curve = "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps"
        time_ = "TRIAL_TRAINING_METRICS.json#/training_time"
        cases = [
            ("empty", "", f"{file}: empty file"),
            ("whitespace", " \n", f"{file}: empty file"),
            ("truncated", valid[: len(valid) // 2], f"{file}: not valid JSON"),
            ("garbage", "{not json}", f"{file}: not valid JSON"),
            ("not an object", "[1, 2]", f"{file}: expected an object"),
            ("no training_time", metrics_with(["training_time"], None, delete=True),
             f"{time_}: missing"),
            ("training_time an array", metrics_with(["training_time"], []),
             f"{time_}: expected an object"),
            ("steps a string", metrics_with(["training_time", "total_training_steps"], "20"),
             f"{time_}/total_training_steps: expected an integer"),
            ("time null", metrics_with(["training_time", "total_training_time_in_secs"], None),
             f"{time_}/total_training_time_in_secs: expected a number"),
            ("no latency", metrics_with(["latency"], None, delete=True),
             f"{file}/latency: missing"),
            ("latency a string", metrics_with(["latency"], "fast"),
             f"{file}/latency: expected a number"),
            ("points an object", metrics_with(["training_accuracy_over_steps"], {}),
             f"{curve}: expected an array"),
            ("point a number", metrics_with(["training_accuracy_over_steps", 1], 3),
             f"{curve}/1: expected an object"),
            ("accuracy a string",
             metrics_with(["training_accuracy_over_steps", 1, "accuracy"], "high"),
             f"{curve}/1/accuracy: expected a number"),
            ("accuracy a boolean",
             metrics_with(["training_accuracy_over_steps", 0, "accuracy"], True),
             f"{curve}/0/accuracy: expected a number"),
            ("no pct", metrics_with(["training_accuracy_over_steps", 0, "training_step_pct"], None,
                                    delete=True),
             f"{curve}/0/training_step_pct: missing"),
            ("fractional step",
             metrics_with(["training_accuracy_over_steps", 0, "training_step"], 1.5),
             f"{curve}/0/training_step: expected an integer"),
            ("NaN pct", metrics_with(["training_accuracy_over_steps", 1, "training_step_pct"],
                                     math.nan),
             f"{curve}/1/training_step_pct: expected a finite number"),
            ("negative pct", metrics_with(["training_accuracy_over_steps", 1, "training_step_pct"],
                                          -5.0),
             f"{curve}/1/training_step_pct: expected a number >= 0"),
            ("negative step", metrics_with(["training_accuracy_over_steps", 0, "training_step"],
                                           -1),
             f"{curve}/0/training_step: expected an integer >= 0"),
            ("huge step", metrics_with(["training_accuracy_over_steps", 0, "training_step"],
                                       2**63),
             f"{curve}/0/training_step: integer out of range"),
            ("negative time",
             metrics_with(["training_time", "total_training_time_in_secs"], -0.5),
             f"{time_}/total_training_time_in_secs: expected a number >= 0"),
            ("infinite time",
             metrics_with(["training_time", "total_training_time_in_secs"], math.inf),
             f"{time_}/total_training_time_in_secs: expected a finite number"),
        ]
        for name, text, where in cases:
            with self.subTest(name):
                self.write_text(pt.METRICS_FILE, text)
                self.assert_protocol_error(where, pt.read_metrics, self.dir)
                # A trainer must not resume over (and so destroy) a file it cannot read.
                self.assert_protocol_error(where, pt.TrialReporter, self.dir)

    def test_the_error_carries_the_file_and_the_pointer(self) -> None:
        path = self.write_text(pt.METRICS_FILE,
                               metrics_with(["training_accuracy_over_steps", 1, "accuracy"], "x"))
        error = self.assert_protocol_error("accuracy", pt.read_metrics, self.dir)
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.source, path)
        self.assertEqual(error.pointer, "/training_accuracy_over_steps/1/accuracy")

    def test_integral_doubles_count_as_integers(self) -> None:
        self.write_text(pt.METRICS_FILE,
                        metrics_with(["training_time", "total_training_steps"], 20.0))
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertEqual(metrics.total_training_steps, 20)

    def test_model_spec(self) -> None:
        path = self.path(pt.MODEL_SPEC_FILE)
        pt.write_model_spec(path, "mlp-3", {"depth": 3, "width": 128, "activation": "relu"})
        spec = pt.read_model_spec(path)
        self.assertEqual(spec, {"model_id": "mlp-3",
                                "parameters": {"depth": 3, "width": 128, "activation": "relu"}})
        cases = [
            ("", "MODEL_SPEC.json#: empty file"),
            ('{"model_id": "m", "parameters": ', "MODEL_SPEC.json#: not valid JSON"),
            ('"m"', "MODEL_SPEC.json#: expected an object"),
            ('{"parameters": {}}', "MODEL_SPEC.json#/model_id: missing"),
            ('{"model_id": 3, "parameters": {}}', "MODEL_SPEC.json#/model_id: expected a string"),
            ('{"model_id": "m"}', "MODEL_SPEC.json#/parameters: missing"),
            ('{"model_id": "m", "parameters": [1]}',
             "MODEL_SPEC.json#/parameters: expected an object"),
        ]
        for text, where in cases:
            with self.subTest(text):
                self.write_text(pt.MODEL_SPEC_FILE, text)
                self.assert_protocol_error(where, pt.read_model_spec, path)
        self.assert_protocol_error("nowhere.json: no such file", pt.read_model_spec,
                                   self.path("nowhere.json"))

    def test_malformed_control_files_name_the_file_and_the_field(self) -> None:
        reporter = pt.TrialReporter(self.dir)
        cases = [
            (pt.DESIRED_PCT_FILE, '{"desired_training_pct": "half"}',
             "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a number"),
            (pt.DESIRED_PCT_FILE, '{"desired_training_pct": NaN}',
             "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a finite number"),
            (pt.DESIRED_PCT_FILE, "", "DESIRED_TRAINING_PCT.json#: empty file"),
            (pt.DESIRED_PCT_FILE, '{"desired_training_pct": -1}',
             "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a number >= 0"),
            (pt.MAX_TIME_FILE, '{"max_training_time_in_hrs": -0.5}',
             "MAX_TRAINING_TIME.json#/max_training_time_in_hrs: expected a number >= 0"),
            (pt.MAX_TIME_FILE, '{"max_training_time_in_hours": 1}',
             "MAX_TRAINING_TIME.json#/max_training_time_in_hrs: missing"),
            (pt.HEARTBEAT_FILE, '{"timestamp": ',
             "controller_alive_timestamp.json#: not valid JSON"),
            (pt.HEARTBEAT_FILE, '{"timestamp": null}',
             "controller_alive_timestamp.json#/timestamp: expected a number"),
        ]
        for name, text, where in cases:
            with self.subTest(where):
                self.write_text(name, text)
                self.assert_protocol_error(where, reporter.should_stop, 0, 100)
                os.remove(self.path(name))

    def test_malformed_failure_file(self) -> None:
        self.write_text(pt.FAILURE_FILE, '{"kind": "exploded", "message": "x"}')
        self.assert_protocol_error("TRIAL_FAILURE.json#/kind: unknown kind", pt.read_failure,
                                   self.dir)
        self.write_text(pt.FAILURE_FILE, '{"kind": "oom", "message": "x", "training_step": "7"}')
        self.assert_protocol_error("TRIAL_FAILURE.json#/training_step: expected an integer",
                                   pt.read_failure, self.dir)
        self.write_text(pt.FAILURE_FILE, '{"kind": "oom", "training_step": 7}')
        self.assert_protocol_error("TRIAL_FAILURE.json#/message: missing", pt.read_failure,
                                   self.dir)

    def test_pointer_tokens_are_escaped(self) -> None:
        environ = {"PROXYTASK_MODEL_DIR": self.dir, "PROXYTASK_PROXY_ARGS": '{"a/b~c": 1}'}
        self.assert_protocol_error("PROXYTASK_PROXY_ARGS#/a~1b~0c: expected a string",
                                   pt.parse_launch, [], environ)


# ------------------------------------------------------------------------------------------------


class ShouldStopTest(TrialDirTestCase):
    NOW = 1_700_000_000.0

    def reporter(self, threshold: float = pt.DEFAULT_HEARTBEAT_THRESHOLD_SECS
                 ) -> pt.TrialReporter:
        return pt.TrialReporter(self.dir, heartbeat_threshold_secs=threshold,
                                clock=FakeClock(self.NOW))

    def test_keeps_going_without_control_files(self) -> None:
        self.assertEqual(self.reporter().should_stop(999, 1000), pt.KEEP_GOING)

    def test_desired_pct_zero_means_stop_now(self) -> None:
        pt.post_desired_pct(self.dir, 0.0)
        self.assertEqual(strict_json_load(self.path(pt.DESIRED_PCT_FILE)),
                         {"desired_training_pct": 0.0})
        self.assertEqual(self.reporter().should_stop(-1, 1000), pt.DESIRED_PCT_REACHED)
        self.assertEqual(self.reporter().should_stop(0, 1000), pt.DESIRED_PCT_REACHED)

    def test_desired_pct_is_reached_at_equality(self) -> None:
        pt.post_desired_pct(self.dir, 30.0)
        reporter = self.reporter()
        self.assertEqual(reporter.should_stop(298, 1000), pt.KEEP_GOING)       # 29.9%
        self.assertEqual(reporter.should_stop(299, 1000), pt.DESIRED_PCT_REACHED)  # 30%
        self.assertEqual(reporter.should_stop(300, 1000), pt.DESIRED_PCT_REACHED)

    def test_time_limit_is_reached_at_equality(self) -> None:
        pt.post_time_limit(self.dir, 0.5)  # 1800 s
        self.assertEqual(strict_json_load(self.path(pt.MAX_TIME_FILE)),
                         {"max_training_time_in_hrs": 0.5})
        reporter = self.reporter()
        reporter.report_accuracy(0, 9, 1799.5, 1000, 0.1)
        self.assertEqual(reporter.should_stop(9, 1000), pt.KEEP_GOING)
        reporter.report_accuracy(10, 19, 0.5, 1000, 0.2)
        self.assertEqual(reporter.should_stop(19, 1000), pt.TIME_LIMIT_REACHED)

    def test_heartbeat_missing_fresh_and_old(self) -> None:
        reporter = self.reporter(threshold=60.0)
        self.assertEqual(reporter.should_stop(0, 100), pt.KEEP_GOING)      # no heartbeat file
        pt.post_heartbeat(self.dir, self.NOW - 60.0)                        # exactly the threshold
        self.assertEqual(strict_json_load(self.path(pt.HEARTBEAT_FILE)),
                         {"timestamp": self.NOW - 60.0})
        self.assertEqual(reporter.should_stop(0, 100), pt.KEEP_GOING)
        pt.post_heartbeat(self.dir, self.NOW + 5.0)                         # a clock ahead
        self.assertEqual(reporter.should_stop(0, 100), pt.KEEP_GOING)
        pt.post_heartbeat(self.dir, self.NOW - 60.5)                        # older than it
        self.assertEqual(reporter.should_stop(0, 100), pt.CONTROLLER_LOST)
        pt.post_heartbeat(self.dir, clock=FakeClock(self.NOW))             # the controller is back
        self.assertEqual(reporter.should_stop(0, 100), pt.KEEP_GOING)

    def test_default_heartbeat_threshold_is_15_minutes(self) -> None:
        reporter = self.reporter()
        pt.post_heartbeat(self.dir, self.NOW - 900.0)
        self.assertEqual(reporter.should_stop(0, 100), pt.KEEP_GOING)
        pt.post_heartbeat(self.dir, self.NOW - 901.0)
        self.assertEqual(reporter.should_stop(0, 100), pt.CONTROLLER_LOST)

    def test_reasons_are_checked_in_order(self) -> None:
        reporter = self.reporter(threshold=10.0)
        reporter.report_accuracy(0, 49, 3600.0, 100, 0.5)
        pt.post_heartbeat(self.dir, self.NOW - 100.0)
        self.assertEqual(reporter.should_stop(49, 100), pt.CONTROLLER_LOST)
        pt.post_time_limit(self.dir, 1.0)
        self.assertEqual(reporter.should_stop(49, 100), pt.TIME_LIMIT_REACHED)
        pt.post_desired_pct(self.dir, 50.0)
        self.assertEqual(reporter.should_stop(49, 100), pt.DESIRED_PCT_REACHED)

    def test_both_signals_are_kept(self) -> None:
        pt.post_time_limit(self.dir, 2.0)
        pt.post_desired_pct(self.dir, 80.0)
        pt.post_desired_pct(self.dir, 90.0)  # a new desired pct must not drop the time limit
        self.assertEqual(pt.read_time_limit_hrs(self.dir), 2.0)
        self.assertEqual(pt.read_desired_pct(self.dir), 90.0)
        pt.post_time_limit(self.dir, 1.0)   # nor a new time limit the desired pct
        self.assertEqual(pt.read_desired_pct(self.dir), 90.0)
        self.assertEqual(pt.read_time_limit_hrs(self.dir), 1.0)
        reporter = self.reporter()
        reporter.report_accuracy(0, 9, 3600.0, 100, 0.1)
        self.assertEqual(reporter.should_stop(9, 100), pt.TIME_LIMIT_REACHED)
        self.assertEqual(reporter.should_stop(89, 100), pt.DESIRED_PCT_REACHED)

    def test_control_files_are_read_at_every_call(self) -> None:
        reporter = self.reporter()
        self.assertEqual(reporter.should_stop(9, 100), pt.KEEP_GOING)
        pt.post_desired_pct(self.dir, 10.0)
        self.assertEqual(reporter.should_stop(9, 100), pt.DESIRED_PCT_REACHED)

    def test_posting_non_finite_values_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            pt.post_desired_pct(self.dir, math.nan)
        with self.assertRaises(ValueError):
            pt.post_time_limit(self.dir, math.inf)
        with self.assertRaises(ValueError):
            pt.post_heartbeat(self.dir, math.nan)
        with self.assertRaises(ValueError):
            pt.post_desired_pct(self.dir, -1.0)
        with self.assertRaises(ValueError):
            pt.post_time_limit(self.dir, -0.5)
        self.assertEqual(os.listdir(self.dir), [])
        with self.assertRaises(ValueError):
            pt.TrialReporter(self.dir, heartbeat_threshold_secs=math.nan)
        with self.assertRaises(ValueError):
            pt.TrialReporter(self.dir, heartbeat_threshold_secs=-1.0)


# ------------------------------------------------------------------------------------------------


def points(*triples: tuple[float, int, float]) -> list[pt.CurvePoint]:
    return [pt.CurvePoint(*t) for t in triples]


class CurveTest(unittest.TestCase):
    """The cases of tests/stats/curve_test.cpp: the C++ and Python answers must agree."""

    def test_normalise_orders_points_by_pct(self) -> None:
        out = pt.normalise_curve(points((60.0, 5, 0.6), (30.0, 2, 0.3), (100.0, 9, 0.9)))
        self.assertEqual([p.training_step_pct for p in out], [30.0, 60.0, 100.0])
        self.assertEqual(out[0], pt.CurvePoint(30.0, 2, 0.3))

    def test_normalise_keeps_the_latest_value_of_a_duplicate_pct(self) -> None:
        out = pt.normalise_curve(points((50.0, 4, 0.1), (100.0, 9, 0.2), (50.0, 4, 0.3),
                                        (50.0, 4, 0.35)))
        self.assertEqual([(p.training_step_pct, p.accuracy) for p in out],
                         [(50.0, 0.35), (100.0, 0.2)])

    def test_normalise_drops_points_without_a_pct(self) -> None:
        out = pt.normalise_curve(points((math.nan, 1, 0.5), (20.0, 2, 0.4)))
        self.assertEqual(out, points((20.0, 2, 0.4)))
        self.assertEqual(pt.normalise_curve([]), [])

    def test_interpolates_from_the_origin(self) -> None:
        self.assertAlmostEqual(pt.accuracy_at_pct(points((40.0, 39, 0.8)), 10.0), 0.2, places=15)

    def test_interpolates_between_recorded_points(self) -> None:
        curve = points((20.0, 19, 0.4), (60.0, 59, 0.6), (100.0, 99, 0.7))
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 40.0), 0.5, places=15)
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 80.0), 0.65, places=15)

    def test_returns_the_recorded_value_at_a_point(self) -> None:
        curve = points((14.0, 139, 0.694795), (24.0, 239, 0.83882), (100.0, 999, 0.884052))
        self.assertEqual(pt.accuracy_at_pct(curve, 14.0), 0.694795)
        self.assertEqual(pt.accuracy_at_pct(curve, 100.0), 0.884052)

    def test_is_absent_beyond_the_highest_recorded_pct(self) -> None:
        curve = points((40.0, 39, 0.8))
        self.assertIsNone(pt.accuracy_at_pct(curve, 40.0001))
        self.assertEqual(pt.accuracy_at_pct(curve, 40.0), 0.8)
        self.assertIsNone(pt.accuracy_at_pct([], 0.0))
        self.assertIsNone(pt.accuracy_at_pct(curve, math.nan))

    def test_gives_the_origin_value_below_the_origin(self) -> None:
        curve = points((20.0, 19, 0.4))
        self.assertEqual(pt.accuracy_at_pct(curve, -3.0), 0.0)
        self.assertEqual(pt.accuracy_at_pct(curve, 0.0), 0.0)

    def test_uses_a_recorded_point_at_pct_zero_instead_of_the_origin(self) -> None:
        curve = points((0.0, 0, 0.3), (100.0, 9, 0.9))
        self.assertEqual(pt.accuracy_at_pct(curve, 0.0), 0.3)
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 50.0), 0.6, places=15)

    def test_sorts_unsorted_points_first(self) -> None:
        curve = points((60.0, 5, 0.6), (30.0, 2, 0.3), (100.0, 9, 0.9))
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 45.0), 0.45, places=15)
        # Availability follows the highest pct, not the last point in recording order.
        late_low = points((100.0, 9, 0.9), (50.0, 4, 0.5))
        self.assertAlmostEqual(pt.accuracy_at_pct(late_low, 75.0), 0.7, places=15)

    def test_uses_the_latest_value_of_a_duplicate_pct(self) -> None:
        curve = points((50.0, 4, 0.1), (50.0, 4, 0.3), (100.0, 9, 0.5))
        self.assertEqual(pt.accuracy_at_pct(curve, 50.0), 0.3)
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 75.0), 0.4, places=15)

    def test_a_failed_accuracy_next_to_the_pct_gives_nan(self) -> None:
        curve = points((50.0, 4, math.nan), (100.0, 9, 0.5))
        self.assertTrue(math.isnan(pt.accuracy_at_pct(curve, 75.0)))
        self.assertTrue(math.isnan(pt.accuracy_at_pct(curve, 25.0)))
        self.assertEqual(pt.accuracy_at_pct(curve, 100.0), 0.5)

    def test_matches_numpy_interp_on_a_reference_vector(self) -> None:
        # accuracy_at_step-public-0017 (tests/data/reference)
        curve = points((21.295917, 211, 0.34038), (43.705093, 436, 0.407853),
                       (45.506184, 454, 0.447902), (81.726081, 816, 0.476008),
                       (92.178486, 920, 0.499407), (100.0, 999, 0.503535))
        self.assertAlmostEqual(pt.accuracy_at_pct(curve, 11.527879), 0.18425407339914035,
                               delta=1e-15)

    def test_works_on_a_curve_read_from_a_file(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            reporter = pt.TrialReporter(directory)
            reporter.report_accuracy(0, 49, 1.0, 100, 0.4)
            reporter.report_accuracy(50, 99, 1.0, 100, 0.6)
            metrics = pt.read_metrics(directory)
            assert metrics is not None
            self.assertAlmostEqual(
                pt.accuracy_at_pct(metrics.training_accuracy_over_steps, 75.0), 0.5, places=15)
            self.assertAlmostEqual(
                pt.accuracy_at_pct(metrics.training_accuracy_over_steps, 25.0), 0.2, places=15)


# ------------------------------------------------------------------------------------------------


class LaunchTest(unittest.TestCase):
    def test_parses_the_flags(self) -> None:
        launch = pt.parse_launch(
            ["--model_dir=/runs/t1", "--model_spec=/runs/t1/spec.json", "--seed=42",
             "--resume_from=/runs/t0", "--data_pct=25", "--opt=a=b", "--empty="], {})
        self.assertEqual(launch, pt.LaunchArguments(
            model_dir="/runs/t1", model_spec="/runs/t1/spec.json", seed=42,
            resume_from="/runs/t0", proxy_args={"data_pct": "25", "opt": "a=b", "empty": ""}))

    def test_defaults(self) -> None:
        launch = pt.parse_launch(["--model_dir=/runs/t1"], {})
        self.assertEqual(launch.model_spec, os.path.join("/runs/t1", "MODEL_SPEC.json"))
        self.assertEqual(launch.seed, 0)
        self.assertIsNone(launch.resume_from)
        self.assertEqual(launch.proxy_args, {})

    def test_reads_the_environment(self) -> None:
        environ = {"PROXYTASK_MODEL_DIR": "/runs/t2", "PROXYTASK_MODEL_SPEC": "/specs/m.json",
                   "PROXYTASK_SEED": "7", "PROXYTASK_RESUME_FROM": "/runs/t1",
                   "PROXYTASK_PROXY_ARGS": '{"data_pct": "10", "scale": "0.5"}'}
        self.assertEqual(pt.parse_launch([], environ), pt.LaunchArguments(
            model_dir="/runs/t2", model_spec="/specs/m.json", seed=7, resume_from="/runs/t1",
            proxy_args={"data_pct": "10", "scale": "0.5"}))

    def test_flags_win_over_the_environment(self) -> None:
        environ = {"PROXYTASK_MODEL_DIR": "/env/dir", "PROXYTASK_MODEL_SPEC": "/env/spec.json",
                   "PROXYTASK_SEED": "7", "PROXYTASK_RESUME_FROM": "/env/prev",
                   "PROXYTASK_PROXY_ARGS": '{"data_pct": "10", "scale": "0.5"}'}
        launch = pt.parse_launch(["--model_dir=/flag/dir", "--seed=3", "--data_pct=50",
                                  "--resume_from="], environ)
        self.assertEqual(launch, pt.LaunchArguments(
            model_dir="/flag/dir", model_spec="/env/spec.json", seed=3, resume_from=None,
            proxy_args={"data_pct": "50", "scale": "0.5"}))

    def test_the_spec_defaults_to_the_environment_model_dir(self) -> None:
        launch = pt.parse_launch([], {"PROXYTASK_MODEL_DIR": "/env/dir", "PROXYTASK_SEED": ""})
        self.assertEqual(launch.model_spec, os.path.join("/env/dir", "MODEL_SPEC.json"))
        self.assertEqual(launch.seed, 0)  # an empty variable counts as unset

    def test_an_empty_model_spec_flag_means_the_default(self) -> None:
        launch = pt.parse_launch(["--model_dir=/a", "--model_spec="],
                                 {"PROXYTASK_MODEL_SPEC": "/env/spec.json"})
        self.assertEqual(launch.model_spec, os.path.join("/a", "MODEL_SPEC.json"))

    def test_seeds_fill_64_bits(self) -> None:
        self.assertEqual(pt.parse_launch(["--model_dir=/a", f"--seed={2**64 - 1}"], {}).seed,
                         2**64 - 1)

    def test_defaults_to_sys_argv_and_os_environ(self) -> None:
        with mock.patch.object(sys, "argv", ["trainer.py", "--model_dir=/argv/dir", "--k=v"]), \
                mock.patch.dict(os.environ, {"PROXYTASK_SEED": "11"}):
            launch = pt.parse_launch()
        self.assertEqual((launch.model_dir, launch.seed, launch.proxy_args),
                         ("/argv/dir", 11, {"k": "v"}))

    def test_errors_name_the_flag(self) -> None:
        cases = [
            ([], {}, "--model_dir: required"),
            (["--model_dir="], {}, "--model_dir: empty value"),
            (["--model_dir=/d", "--x=1", "--x=2"], {}, "--x: given twice"),
            (["--model_dir=/d", "--model_dir=/e"], {}, "--model_dir: given twice"),
            (["--model_dir=/d", "--seed=abc"], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d", "--seed=-1"], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d", "--seed=+1"], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d", "--seed= 1"], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d", "--seed="], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d", f"--seed={2**64}"], {}, "--seed: expected a non-negative integer"),
            (["--model_dir=/d"], {"PROXYTASK_SEED": "x"},
             "PROXYTASK_SEED: expected a non-negative integer"),
            (["--model_dir=/d", "--verbose"], {}, "--verbose: expected a flag of the form"),
            (["--model_dir=/d", "--=3"], {}, "--=3: the flag has no name"),
            (["--model_dir=/d", "positional"], {}, "positional: expected a flag of the form"),
            (["-m=/d"], {}, "-m=/d: expected a flag of the form"),
            (["--model_dir=/d"], {"PROXYTASK_PROXY_ARGS": "{bad"},
             "PROXYTASK_PROXY_ARGS#: not valid JSON"),
            (["--model_dir=/d"], {"PROXYTASK_PROXY_ARGS": "[1]"},
             "PROXYTASK_PROXY_ARGS#: expected an object"),
            (["--model_dir=/d"], {"PROXYTASK_PROXY_ARGS": '{"scale": 0.5}'},
             "PROXYTASK_PROXY_ARGS#/scale: expected a string"),
        ]
        for argv, environ, where in cases:
            with self.subTest(argv=argv, environ=environ):
                with self.assertRaises(pt.ProtocolError) as caught:
                    pt.parse_launch(argv, environ)
                self.assertIn(where, str(caught.exception))
                self.assertIsInstance(caught.exception, ValueError)


# ------------------------------------------------------------------------------------------------


class ExampleTrainerTest(TrialDirTestCase):
    """Runs example_trainer.py as a controller would, and drives it through the files."""

    TIMEOUT = 120.0  # generous: the test machines are shared

    def command(self, *args: str, model_dir: str | None = None) -> list[str]:
        return [sys.executable, EXAMPLE_TRAINER, f"--model_dir={model_dir or self.dir}", *args]

    @staticmethod
    def environment() -> dict[str, str]:
        """The test's environment without PROXYTASK_* variables, which would change the launch."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PROXYTASK_")}

    def run_trainer(self, *args: str, model_dir: str | None = None
                    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, model_dir=model_dir), capture_output=True,
                              text=True, timeout=self.TIMEOUT, env=self.environment())

    def start_trainer(self, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=self.environment())
        self.addCleanup(self.stop_process, process)
        return process

    @staticmethod
    def stop_process(process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            process.kill()
        process.communicate()

    def last_line(self, stdout: str) -> str:
        lines = stdout.strip().splitlines()
        self.assertTrue(lines, "the trainer printed nothing")
        return lines[-1]

    def recorded_steps(self, model_dir: str | None = None) -> list[int]:
        metrics = pt.read_metrics(model_dir or self.dir)
        return [] if metrics is None else [p.training_step
                                           for p in metrics.training_accuracy_over_steps]

    def wait_for_points(self, process: subprocess.Popen[str], count: int) -> None:
        deadline = time.monotonic() + self.TIMEOUT
        while len(self.recorded_steps()) < count:
            self.assertIsNone(process.poll(), "the trainer ended before the test could act")
            self.assertLess(time.monotonic(), deadline, "the trainer recorded nothing")
            time.sleep(0.02)

    def test_completes_all_steps(self) -> None:
        pt.write_model_spec(self.path(pt.MODEL_SPEC_FILE), "mlp-a", {"final_accuracy": 0.75})
        result = self.run_trainer("--total_steps=300", "--cycle_steps=100", "--seed=5")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: completed")
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertEqual(self.recorded_steps(), [99, 199, 299])
        self.assertEqual(metrics.total_training_steps, 300)
        self.assertEqual([p.training_step_pct for p in metrics.training_accuracy_over_steps],
                         [100 / 3, 200 / 3, 100.0])
        accuracies = [p.accuracy for p in metrics.training_accuracy_over_steps]
        self.assertEqual(accuracies, sorted(accuracies))  # the synthetic curve rises
        self.assertAlmostEqual(accuracies[-1], 0.75, delta=0.005)  # to the spec's accuracy
        self.assertEqual(metrics.latency, -1.0)
        self.assertIsNone(pt.read_failure(self.dir))
        strict_json_load(self.path(pt.METRICS_FILE))

    def test_the_curve_is_the_cpp_example_trainers(self) -> None:
        # Printed by the C++ example trainer's noise() and synthetic_accuracy() (with %.17g):
        # the same seed gives the same curve in both languages.
        sys.path.insert(0, os.path.dirname(EXAMPLE_TRAINER))
        self.addCleanup(sys.path.remove, os.path.dirname(EXAMPLE_TRAINER))
        import example_trainer
        self.assertEqual(example_trainer.noise(0, 100), 0.31117318164447028)
        self.assertEqual(example_trainer.noise(42, 300), 0.4144962124362872)
        self.assertEqual(example_trainer.noise(2**64 - 1, 7), 0.12385032210255931)
        self.assertEqual(example_trainer.synthetic_accuracy(0.9, 0, 100, 1000),
                         0.30380368641138994)
        self.assertEqual(example_trainer.synthetic_accuracy(0.75, 42, 300, 1000),
                         0.53595522568751364)
        self.assertEqual(example_trainer.synthetic_accuracy(0.9, 5, 1000, 1000),
                         0.90006999964815082)

    def test_a_malformed_model_spec_is_an_error_naming_the_field(self) -> None:
        self.write_text(pt.MODEL_SPEC_FILE, '{"model_id": "m", "parameters": []}')
        result = self.run_trainer("--total_steps=100")
        self.assertEqual(result.returncode, 1)
        self.assertIn("MODEL_SPEC.json#/parameters: expected an object", result.stderr)
        pt.write_model_spec(self.path(pt.MODEL_SPEC_FILE), "m", {"final_accuracy": "high"})
        result = self.run_trainer("--total_steps=100")
        self.assertEqual(result.returncode, 1)
        self.assertIn("MODEL_SPEC.json#/parameters/final_accuracy: expected a number",
                      result.stderr)

    def test_the_seed_makes_runs_reproducible(self) -> None:
        other = tempfile.TemporaryDirectory(prefix="proxytask_py_")
        self.addCleanup(other.cleanup)
        for directory in (self.dir, other.name):
            result = self.run_trainer("--total_steps=200", "--seed=9", model_dir=directory)
            self.assertEqual(result.returncode, 0, result.stderr)
        first, second = pt.read_metrics(self.dir), pt.read_metrics(other.name)
        assert first is not None and second is not None
        self.assertEqual([p.accuracy for p in first.training_accuracy_over_steps],
                         [p.accuracy for p in second.training_accuracy_over_steps])

    def test_stops_at_the_desired_pct_and_resumes(self) -> None:
        pt.post_desired_pct(self.dir, 30.0)
        result = self.run_trainer("--total_steps=1000", "--cycle_steps=100")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: desired_pct_reached")
        self.assertEqual(self.recorded_steps(), [99, 199, 299])

        # Model selection's next iteration: a higher desired pct, the same directory.
        pt.post_desired_pct(self.dir, 50.0)
        result = self.run_trainer("--total_steps=1000", "--cycle_steps=100")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: desired_pct_reached")
        self.assertEqual(self.recorded_steps(), [99, 199, 299, 399, 499])
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertEqual(metrics.total_training_steps, 500)

        # A new trial continuing from this one's checkpoint (--resume_from).
        successor = tempfile.TemporaryDirectory(prefix="proxytask_py_")
        self.addCleanup(successor.cleanup)
        pt.post_desired_pct(successor.name, 70.0)
        result = self.run_trainer("--total_steps=1000", f"--resume_from={self.dir}",
                                  model_dir=successor.name)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: desired_pct_reached")
        self.assertEqual(self.recorded_steps(successor.name), [599, 699])

    def test_desired_pct_zero_before_the_start_trains_nothing(self) -> None:
        pt.post_desired_pct(self.dir, 0.0)
        result = self.run_trainer("--total_steps=1000")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: desired_pct_reached")
        self.assertEqual(self.recorded_steps(), [])

    def test_stop_now_while_it_runs(self) -> None:
        # 1000 steps of 10 ms: 10 s if nothing stopped it.
        process = self.start_trainer("--total_steps=1000", "--cycle_steps=10",
                                     "--step_seconds=0.01")
        self.wait_for_points(process, 2)
        pt.post_desired_pct(self.dir, 0.0)
        stdout, stderr = process.communicate(timeout=self.TIMEOUT)
        self.assertEqual(process.returncode, 0, stderr)
        self.assertEqual(self.last_line(stdout), "stopped: desired_pct_reached")
        self.assertLess(len(self.recorded_steps()), 100)

    def test_stops_when_the_controller_is_lost(self) -> None:
        pt.post_heartbeat(self.dir)  # alive now, then never again
        process = self.start_trainer("--total_steps=1000", "--cycle_steps=10",
                                     "--step_seconds=0.01", "--heartbeat_threshold_secs=0.5")
        stdout, stderr = process.communicate(timeout=self.TIMEOUT)
        self.assertEqual(process.returncode, 0, stderr)
        self.assertEqual(self.last_line(stdout), "stopped: controller_lost")
        self.assertLess(len(self.recorded_steps()), 100)

    def test_keeps_going_while_the_controller_beats(self) -> None:
        pt.post_heartbeat(self.dir)
        process = self.start_trainer("--total_steps=100", "--cycle_steps=10",
                                     "--step_seconds=0.01", "--heartbeat_threshold_secs=2")
        deadline = time.monotonic() + self.TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            pt.post_heartbeat(self.dir)
            time.sleep(0.1)
        stdout, stderr = process.communicate(timeout=self.TIMEOUT)
        self.assertEqual(process.returncode, 0, stderr)
        self.assertEqual(self.last_line(stdout), "stopped: completed")
        self.assertEqual(len(self.recorded_steps()), 10)

    def test_stops_at_the_time_limit(self) -> None:
        pt.post_time_limit(self.dir, 0.1 / 3600.0)  # 0.1 s of training
        result = self.run_trainer("--total_steps=1000", "--cycle_steps=10", "--step_seconds=0.01")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: time_limit_reached")
        metrics = pt.read_metrics(self.dir)
        assert metrics is not None
        self.assertGreaterEqual(metrics.total_training_time_in_secs, 0.1)
        self.assertLess(len(metrics.training_accuracy_over_steps), 100)

    def test_records_an_oom_failure(self) -> None:
        result = self.run_trainer("--fail=oom")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(pt.read_failure(self.dir),
                         pt.TrialFailure("oom", "synthetic out-of-memory (--fail=oom)", 99))
        self.assertEqual(self.recorded_steps(), [])

    def test_records_a_divergence(self) -> None:
        result = self.run_trainer("--fail=diverged", "--cycle_steps=50")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(strict_json_load(self.path(pt.FAILURE_FILE)),
                         {"kind": "diverged", "message": "synthetic NaN loss (--fail=diverged)",
                          "training_step": 49})
        self.assertEqual(self.recorded_steps(), [])

    def test_bad_command_lines_name_the_flag(self) -> None:
        result = self.run_trainer("--total_steps=many")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--total_steps=many: expected a positive integer", result.stderr)
        result = self.run_trainer("--fail=segfault")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--fail=segfault: expected oom or diverged", result.stderr)
        result = subprocess.run([sys.executable, EXAMPLE_TRAINER, "--seed=1"],
                                capture_output=True, text=True, timeout=self.TIMEOUT,
                                env=self.environment())
        self.assertEqual(result.returncode, 2)
        self.assertIn("--model_dir: required", result.stderr)

    def test_reads_the_launch_from_the_environment(self) -> None:
        environment = self.environment()
        environment.update(PROXYTASK_MODEL_DIR=self.dir,
                           PROXYTASK_PROXY_ARGS='{"total_steps": "40", "cycle_steps": "20"}')
        result = subprocess.run([sys.executable, EXAMPLE_TRAINER], capture_output=True,
                                text=True, timeout=self.TIMEOUT, env=environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.last_line(result.stdout), "stopped: completed")
        self.assertEqual(self.recorded_steps(), [19, 39])


if __name__ == "__main__":
    unittest.main()
