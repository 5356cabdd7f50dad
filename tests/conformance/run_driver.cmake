# Runs the proxytask-reference-check binary on one public vector per stats function, through
# stdin/stdout as a user would, and checks the answer. Usage: cmake -DDRIVER=... -DDATA_DIR=... -P
function(check func input expected_regex)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/driver-input-${func}.json" "${input}")
  execute_process(COMMAND "${DRIVER}" ${func}
                  INPUT_FILE "${CMAKE_CURRENT_BINARY_DIR}/driver-input-${func}.json"
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${func}: exit status ${rc}, output: ${out}")
  endif()
  if(NOT out MATCHES "${expected_regex}")
    message(FATAL_ERROR "${func}: output '${out}' does not match '${expected_regex}'")
  endif()
endfunction()

# edge-nan_pairs of scipy_kendall.jsonl, as a bare input
check(scipy_kendall [=[{"x":[1,2,null,4,5,6],"y":[2,1,3,null,5,4]}]=]
      [=["statistic":3\.333333333333333[0-9]*E-1,"pvalue":7\.5E-1]=])
# a whole vector line is accepted too (edge-exactly_five_valid of correlation_over_step.jsonl)
file(STRINGS "${DATA_DIR}/reference/correlation_over_step.jsonl" lines LIMIT_COUNT 1)
check(correlation_over_step "${lines}" [=["correlation":\[6E-1\]]=])
# a rejected input is an {"error"} answer
check(scipy_spearman [=[{"x":[1,2,3],"y":[1,2]}]=] [=[^{"error":{"type":"ValueError"]=])

# usage errors exit with 2
execute_process(COMMAND "${DRIVER}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "usage: proxytask-reference-check FUNC")
  message(FATAL_ERROR "no argument: expected exit 2 and usage, got ${rc}: ${err}")
endif()
