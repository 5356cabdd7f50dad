# End-to-end runs of the README's small example programs (proxytask-correlate has
# run_cli.cmake): each case runs the built program in a fresh scratch directory and checks its exit
# status, its output and the files it writes.
#
#   cmake -DPROGRAM=<program> -DWORK_DIR=<scratch> -DCASE=<name> -P run_example.cmake

cmake_minimum_required(VERSION 3.25)

foreach(var PROGRAM WORK_DIR CASE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_example.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(fail what)
  message(FATAL_ERROR "FAILED [${CASE}]: ${what}")
endfunction()

# run(<args>...): runs the program in WORK_DIR; sets rc, out, err in the caller's scope.
function(run)
  execute_process(COMMAND "${PROGRAM}" ${ARGN}
                  RESULT_VARIABLE result OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr
                  WORKING_DIRECTORY "${WORK_DIR}")
  message(STATUS "$ ${PROGRAM} ${ARGN}\n-- exit ${result}\n${stdout}${stderr}")
  set(rc "${result}" PARENT_SCOPE)
  set(out "${stdout}" PARENT_SCOPE)
  set(err "${stderr}" PARENT_SCOPE)
endfunction()

function(expect_rc expected)
  if(NOT rc STREQUAL "${expected}")
    fail("exit status ${rc}, expected ${expected}")
  endif()
endfunction()

function(expect_match text regex)
  if(NOT text MATCHES "${regex}")
    fail("output does not match '${regex}':\n${text}")
  endif()
endfunction()

# expect_json(<file> <expected> <path>...): the string or number at <path> of <file>.
function(expect_json file expected)
  if(NOT EXISTS "${file}")
    fail("${file} was not written")
  endif()
  file(READ "${file}" doc)
  string(JSON value ERROR_VARIABLE json_error GET "${doc}" ${ARGN})
  if(json_error OR NOT value STREQUAL "${expected}")
    fail("${file}: ${ARGN} is '${value}' ${json_error}, expected '${expected}'")
  endif()
endfunction()

if(CASE STREQUAL "orchestrator")
  # Model selection (12 models -> 6), then the proxy-task search on its reference models.
  set(run_dir "${WORK_DIR}/run")
  run("${run_dir}")
  expect_rc(0)
  expect_match("${out}" "^status: \"found\", best proxy: \"data_pct=[0-9]+\", training steps: [0-9]+\n$")
  expect_match("${err}" "model selection \\| done \\|[^\n]*complete: 6 reference models")
  expect_match("${err}" "proxy-task search \\| done \\|")
  expect_json("${run_dir}/selection/MODEL_SELECTION_RESULT.json" complete status)
  expect_json("${run_dir}/selection/MODEL_SELECTION_RESULT.json" 6 num_reference_models)
  expect_json("${run_dir}/search/PROXY_SEARCH_RESULT.json" found status)
  # Run again on the finished run directory: both tools resume at their end, same result.
  set(first "${out}")
  run("${run_dir}")
  expect_rc(0)
  if(NOT out STREQUAL first)
    fail("a second run printed another result:\n${first}\n---\n${out}")
  endif()
  run()
  expect_rc(2)
  expect_match("${err}" "^usage: proxytask-orchestrator-example RUN_DIR")

elseif(CASE STREQUAL "correlation_ci_width")
  # Tiny counts: the table's shape, not its numbers.
  run(--repetitions 20 --resamples 100 --threads 2 --seed 3)
  expect_rc(0)
  expect_match("${out}" "^Kendall tau-b, 95% BCa interval \\(100 resamples\\), 20 repetitions per row, seed 3\n")
  expect_match("${out}" "\n\\| models \\| true tau \\| mean tau-b \\| median CI width \\| estimate >= 0\\.65 \\| CI low >= 0\\.65 \\|\n\\|---:\\|")
  set(number "-?[0-9]+\\.[0-9]+")
  string(REGEX MATCHALL "\n\\| [0-9]+ \\| 0\\.[0-9]+ \\| ${number} \\| ${number} \\| [0-9]+% \\| [0-9]+% \\|"
         rows "${out}")
  list(LENGTH rows count)
  if(NOT count EQUAL 12)
    fail("${count} table rows, expected 12 (4 model counts x 3 taus):\n${out}")
  endif()
  foreach(n 10 15 20 30)
    foreach(tau 0.50 0.65 0.80)
      expect_match("${out}" "\n\\| ${n} \\| ${tau} \\| ")
    endforeach()
  endforeach()
  run(--repetitions 0)
  expect_rc(2)
  expect_match("${err}" "--repetitions: unknown, or a bad value")
  run(--help)
  expect_rc(0)
  expect_match("${out}" "^usage: proxytask-correlation-ci-width")

else()
  message(FATAL_ERROR "run_example.cmake: unknown CASE '${CASE}'")
endif()
