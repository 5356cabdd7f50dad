# End-to-end checks of proxytask-correlate: runs the program on a fixture, checks the exit status,
# the messages (regexes) and the JSON / CSV it writes (parsed with string(JSON), compared as
# numbers with bounds, never as JSON text).
#
#   cmake -DPROGRAM=<proxytask-correlate> -DDATA_DIR=<tests/examples/data> -DWORK_DIR=<scratch>
#         -DCASE=<name> -P run_cli.cmake
#
# Expected values are worked out by hand from the fixtures (tests/examples/data/good.csv has ten
# models whose reference score is 0.1 ... 1.0):
#   up          10 ... 100              tau = rho = 1; exact two-sided p = 2 / 10! = 5.5114638e-07
#   down        9 ... 0                 tau = rho = -1
#   flat        all 7                   NaN, constant_input
#   none        all missing             NaN, too_few_pairs, n = 0
#   partial     1 ... 6, 4 missing      6 / 10 < 70% of the models: too_few_valid_models
#   "one, swap" 1 ... 8, 10, 9          one discordant pair of 45: tau = 43/45; p = 2 / 9!;
#                                       rho = 1 - 6 * 2 / (10 * 99) = 0.98787878...
#   tied        1, 1, 3 ... 10          tau-b = 44 / sqrt(45 * 44) = sqrt(44/45) = 0.98882646...
#                                       (tau-a would be 44/45); rho = sqrt(82 / 82.5) = 0.99696509...

cmake_minimum_required(VERSION 3.25)

foreach(var PROGRAM DATA_DIR WORK_DIR CASE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_cli.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# --- helpers ------------------------------------------------------------------------------------

# run(<args>...): runs the program; sets rc, out, err in the caller's scope.
function(run)
  execute_process(COMMAND "${PROGRAM}" ${ARGN}
                  RESULT_VARIABLE result OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr
                  WORKING_DIRECTORY "${WORK_DIR}")
  message(STATUS "$ proxytask-correlate ${ARGN}\n-- exit ${result}\n${stdout}${stderr}")
  set(rc "${result}" PARENT_SCOPE)
  set(out "${stdout}" PARENT_SCOPE)
  set(err "${stderr}" PARENT_SCOPE)
endfunction()

function(fail what)
  message(FATAL_ERROR "FAILED [${CASE}]: ${what}")
endfunction()

function(expect_rc expected)
  if(NOT rc STREQUAL "${expected}")
    fail("exit status ${rc}, expected ${expected}")
  endif()
endfunction()

# expect_match(<text> <regex>)
function(expect_match text regex)
  if(NOT text MATCHES "${regex}")
    fail("output does not match '${regex}':\n${text}")
  endif()
endfunction()

function(expect_equal actual expected what)
  if(NOT "${actual}" STREQUAL "${expected}")
    fail("${what} is '${actual}', expected '${expected}'")
  endif()
endfunction()

# expect_between(<value> <lo> <hi> <what>): lo <= value <= hi, compared as numbers.
function(expect_between value lo hi what)
  if(NOT value MATCHES "^-?[0-9]" OR value LESS lo OR value GREATER hi)
    fail("${what} is '${value}', expected a number in [${lo}, ${hi}]")
  endif()
endfunction()

# json(<out-var> <path>...): a value of the document in `doc` (fails if absent).
macro(json var)
  string(JSON ${var} ERROR_VARIABLE json_error GET "${doc}" ${ARGN})
  if(json_error)
    fail("JSON ${ARGN}: ${json_error}")
  endif()
endmacro()

function(expect_json_type type)
  string(JSON actual ERROR_VARIABLE json_error TYPE "${doc}" ${ARGN})
  if(NOT actual STREQUAL type)
    fail("JSON ${ARGN} has type ${actual} ${json_error}, expected ${type}")
  endif()
endfunction()

# step_index(<out-var> <label>): the index of the step called <label> in `doc`.
function(step_index var label)
  string(JSON count LENGTH "${doc}" steps)
  math(EXPR last "${count} - 1")
  foreach(i RANGE ${last})
    string(JSON name GET "${doc}" steps ${i} step)
    if(name STREQUAL label)
      set(${var} ${i} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  fail("no step '${label}' in the JSON output")
endfunction()

# expect_step(<label> N <n> REASON <reason> [COEFFICIENT <lo> <hi> | NAN] [P <lo> <hi>]
#             [MEDIAN <lo> <hi> | MEDIAN_NULL])
function(expect_step label)
  cmake_parse_arguments(arg "NAN;MEDIAN_NULL" "N;REASON" "COEFFICIENT;P;MEDIAN" ${ARGN})
  step_index(i "${label}")
  json(n steps ${i} n)
  expect_equal("${n}" "${arg_N}" "step '${label}': n")
  json(reason steps ${i} reason)
  expect_equal("${reason}" "${arg_REASON}" "step '${label}': reason")
  if(arg_NAN)
    expect_json_type(NULL steps ${i} coefficient)
    expect_json_type(NULL steps ${i} p_value)
  endif()
  if(arg_COEFFICIENT)
    json(c steps ${i} coefficient)
    expect_between("${c}" ${arg_COEFFICIENT} "step '${label}': coefficient")
  endif()
  if(arg_P)
    json(p steps ${i} p_value)
    expect_between("${p}" ${arg_P} "step '${label}': p_value")
  endif()
  if(arg_MEDIAN)
    json(m steps ${i} median_score)
    expect_between("${m}" ${arg_MEDIAN} "step '${label}': median_score")
  endif()
  if(arg_MEDIAN_NULL)
    expect_json_type(NULL steps ${i} median_score)
  endif()
endfunction()

macro(read_json path)
  if(NOT EXISTS "${path}")
    fail("${path} was not written")
  endif()
  file(READ "${path}" doc)
endmacro()

# The checks of good.csv under the defaults (kendall, two-sided, 5 pairs, 70%).
function(expect_good_kendall)
  json(method method)
  expect_equal("${method}" "kendall" "method")
  json(alternative alternative)
  expect_equal("${alternative}" "two-sided" "alternative")
  json(models models)
  expect_equal("${models}" "10" "models")
  json(reference reference_column)
  expect_equal("${reference}" "final" "reference_column")
  json(min_pairs min_valid_pairs)
  expect_equal("${min_pairs}" "5" "min_valid_pairs")
  json(min_fraction min_valid_fraction)
  expect_between("${min_fraction}" 0.7 0.7 "min_valid_fraction")
  string(JSON count LENGTH "${doc}" steps)
  expect_equal("${count}" "7" "number of steps")
  set(labels "")
  foreach(i RANGE 6)
    json(label steps ${i} step)
    list(APPEND labels "${label}")
  endforeach()
  expect_equal("${labels}" "up;down;flat;none;partial;one, swap;tied" "step labels")

  expect_step(up N 10 REASON "" COEFFICIENT 0.99999999999 1.00000000001
              P 5.5114638e-07 5.5114639e-07 MEDIAN 59.9999999 60.0000001)
  expect_step(down N 10 REASON "" COEFFICIENT -1.00000000001 -0.99999999999
              P 5.5114638e-07 5.5114639e-07 MEDIAN 4.9999999 5.0000001)
  expect_step(flat N 10 REASON constant_input NAN MEDIAN 6.9999999 7.0000001)
  expect_step(none N 0 REASON too_few_pairs NAN MEDIAN_NULL)
  expect_step(partial N 6 REASON too_few_valid_models NAN MEDIAN 3.9999999 4.0000001)
  expect_step("one, swap" N 10 REASON "" COEFFICIENT 0.95555555555 0.95555555556
              P 5.5114638e-06 5.5114639e-06)
  # Ties: scipy's normal approximation, var = (n(n-1)(2n+5) - 2*1*9) / 18 = 124,
  # p = erfc(44 / sqrt(124) / sqrt(2)) = 7.7722407953e-05
  expect_step(tied N 10 REASON "" COEFFICIENT 0.98882646494 0.98882646495
              P 7.7722407953e-05 7.7722407954e-05)
endfunction()

# --- cases --------------------------------------------------------------------------------------

set(good "${DATA_DIR}/good.csv")

if(CASE STREQUAL "kendall_default")
  run("${good}" --json "${WORK_DIR}/out.json" --csv "${WORK_DIR}/out.csv")
  expect_rc(0)
  expect_match("${out}" "good\\.csv: 10 models, reference 'final' \\(0 missing\\)")
  expect_match("${out}" "method kendall \\(tau-b\\), two-sided")
  expect_match("${out}" "\nstep +n +coefficient +p +median_score +reason\n")
  expect_match("${out}" "\nup +10 +1\\.0000 +5\\.51e-07 +60\n")
  expect_match("${out}" "\ndown +10 +-1\\.0000 ")
  expect_match("${out}" "\nflat +10 +nan +nan +7 +constant_input\n")
  expect_match("${out}" "\none, swap +10 +0\\.9556 +5\\.51e-06 ")
  read_json("${WORK_DIR}/out.json")
  expect_good_kendall()
  json(file file)
  expect_equal("${file}" "${good}" "file")

  file(STRINGS "${WORK_DIR}/out.csv" lines)
  list(LENGTH lines count)
  expect_equal("${count}" "8" "CSV line count")
  list(GET lines 0 line)
  expect_equal("${line}" "step,n,coefficient,p_value,reason,median_score" "CSV header")
  list(GET lines 1 line)
  expect_match("${line}" "^up,10,1,5\\.511463844797[0-9]*e-07,,60$")
  list(GET lines 3 line)
  expect_equal("${line}" "flat,10,,,constant_input,7" "CSV row 'flat'")
  list(GET lines 4 line)
  expect_equal("${line}" "none,0,,,too_few_pairs," "CSV row 'none'")
  # file(STRINGS) splits on ';' too: read the quoted label's row from the raw text.
  file(READ "${WORK_DIR}/out.csv" text)
  expect_match("${text}" "\n\"one, swap\",10,0\\.95555555555555[0-9]*,5\\.511463844797[0-9]*e-06,,")

elseif(CASE STREQUAL "bom_crlf")
  # The same table with a UTF-8 byte-order mark and CRLF line endings, written here so that no
  # checkout setting can change the bytes.
  file(READ "${good}" text)
  string(REPLACE "\n" "\r\n" text "${text}")
  string(ASCII 239 187 191 bom)
  file(WRITE "${WORK_DIR}/good_bom_crlf.csv" "${bom}${text}")
  file(READ "${WORK_DIR}/good_bom_crlf.csv" head HEX LIMIT 5)
  expect_equal("${head}" "efbbbf6d6f" "fixture bytes")
  run("${WORK_DIR}/good_bom_crlf.csv" --json "${WORK_DIR}/out.json")
  expect_rc(0)
  read_json("${WORK_DIR}/out.json")
  expect_good_kendall()
  json(model_column model_column)
  expect_equal("${model_column}" "model" "model_column (the BOM is not part of the name)")

elseif(CASE STREQUAL "spearman")
  run("${good}" --method spearman --json "${WORK_DIR}/out.json")
  expect_rc(0)
  expect_match("${out}" "method spearman, two-sided")
  read_json("${WORK_DIR}/out.json")
  json(method method)
  expect_equal("${method}" "spearman" "method")
  expect_step(up N 10 REASON "" COEFFICIENT 0.99999999999 1.00000000001)
  expect_step(down N 10 REASON "" COEFFICIENT -1.00000000001 -0.99999999999)
  expect_step(flat N 10 REASON constant_input NAN)
  expect_step(none N 0 REASON too_few_pairs NAN)
  expect_step(partial N 6 REASON too_few_valid_models NAN)
  expect_step("one, swap" N 10 REASON "" COEFFICIENT 0.98787878787 0.98787878788)
  expect_step(tied N 10 REASON "" COEFFICIENT 0.99696509163 0.99696509164)

elseif(CASE STREQUAL "options")
  # Named columns, a chosen order, a one-sided p and a looser validity rule.
  run("${good}" --model-column model --reference-column=final --score-columns partial,up
      --alternative greater --min-pairs 3 --min-fraction=0.5 --json "${WORK_DIR}/out.json")
  expect_rc(0)
  expect_match("${out}" "n >= 3 and n >= 50% of the models")
  read_json("${WORK_DIR}/out.json")
  json(alternative alternative)
  expect_equal("${alternative}" "greater" "alternative")
  json(min_pairs min_valid_pairs)
  expect_equal("${min_pairs}" "3" "min_valid_pairs")
  json(min_fraction min_valid_fraction)
  expect_between("${min_fraction}" 0.5 0.5 "min_valid_fraction")
  string(JSON count LENGTH "${doc}" steps)
  expect_equal("${count}" "2" "number of steps")
  json(first steps 0 step)
  expect_equal("${first}" "partial" "first step")
  expect_step(partial N 6 REASON "" COEFFICIENT 0.99999999999 1.00000000001)
  # one-sided exact p = 1 / 10!
  expect_step(up N 10 REASON "" COEFFICIENT 0.99999999999 1.00000000001
              P 2.7557319e-07 2.7557320e-07)

  run("${good}" --score-columns up --min-pairs 11)
  expect_rc(0)
  expect_match("${out}" "\nup +10 +nan +nan +60 +too_few_pairs\n")

elseif(CASE STREQUAL "named_columns_take_the_rest")
  # With named model and reference columns, the steps are every other column in file order.
  run("${good}" --reference-column up --model-column model --json "${WORK_DIR}/out.json")
  expect_rc(0)
  read_json("${WORK_DIR}/out.json")
  json(reference reference_column)
  expect_equal("${reference}" "up" "reference_column")
  string(JSON count LENGTH "${doc}" steps)
  expect_equal("${count}" "7" "number of steps")
  json(first steps 0 step)
  expect_equal("${first}" "final" "first step")
  json(second steps 1 step)
  expect_equal("${second}" "down" "second step")
  expect_step(final N 10 REASON "" COEFFICIENT 0.99999999999 1.00000000001)

elseif(CASE STREQUAL "bad_number")
  run("${DATA_DIR}/bad_number.csv" --json "${WORK_DIR}/out.json")
  expect_rc(1)
  expect_match("${err}" "bad_number\\.csv:4: column 'up' \\(column 3\\): cannot parse 'abc' as a number")
  if(EXISTS "${WORK_DIR}/out.json")
    fail("out.json written although the input is bad")
  endif()

elseif(CASE STREQUAL "ragged")
  run("${DATA_DIR}/ragged.csv")
  expect_rc(1)
  expect_match("${err}" "ragged\\.csv:3: 2 fields, but the header \\(line 1\\) has 3")

elseif(CASE STREQUAL "unterminated_quote")
  run("${DATA_DIR}/unterminated.csv")
  expect_rc(1)
  expect_match("${err}" "unterminated\\.csv:4: column 'up' \\(column 3\\): the quoted field that starts here never closes")

elseif(CASE STREQUAL "duplicate_header")
  run("${DATA_DIR}/duplicate_header.csv")
  expect_rc(1)
  expect_match("${err}" "duplicate_header\\.csv:1: duplicate column name 'final' \\(columns 2 and 4\\)")

elseif(CASE STREQUAL "empty_file")
  run("${DATA_DIR}/empty.csv")
  expect_rc(1)
  expect_match("${err}" "empty\\.csv: the file is empty")

elseif(CASE STREQUAL "missing_file")
  run("${DATA_DIR}/no_such_file.csv")
  expect_rc(1)
  expect_match("${err}" "no_such_file\\.csv: no such file")

elseif(CASE STREQUAL "unknown_column")
  run("${DATA_DIR}/bad_number.csv" --reference-column nope)
  expect_rc(1)
  expect_match("${err}" "no column named 'nope'; the columns are 'model', 'final', 'up'")
  run("${good}" --score-columns up,Down)
  expect_rc(1)
  expect_match("${err}" "no column named 'Down'")

elseif(CASE STREQUAL "unwritable_output")
  run("${good}" --json "${WORK_DIR}/no/such/dir/out.json")
  expect_rc(1)
  expect_match("${err}" "no/such/dir/out\\.json")

elseif(CASE STREQUAL "usage_errors")
  set(usage "Usage: proxytask-correlate FILE")
  run("${good}" --bogus)
  expect_rc(2)
  expect_match("${err}" "unknown option '--bogus'")
  expect_match("${err}" "${usage}")
  run("${good}" --method)
  expect_rc(2)
  expect_match("${err}" "option --method needs a value")
  run("${good}" --method pearson)
  expect_rc(2)
  expect_match("${err}" "'pearson' is not kendall or spearman")
  run("${good}" --alternative both)
  expect_rc(2)
  run("${good}" --min-pairs 1)
  expect_rc(2)
  run("${good}" --min-pairs 5x)
  expect_rc(2)
  run("${good}" --min-fraction 1.5)
  expect_rc(2)
  run("${good}" --score-columns up,,down)
  expect_rc(2)
  run("${good}" --score-columns up,up)
  expect_rc(2)
  run("${good}" --model-column final --reference-column final)
  expect_rc(2)
  run("${good}" "${good}")
  expect_rc(2)
  expect_match("${err}" "more than one FILE")
  run()
  expect_rc(2)
  expect_match("${err}" "no FILE given")

elseif(CASE STREQUAL "help")
  foreach(flag --help -h)
    run(${flag})
    expect_rc(0)
    expect_match("${out}" "^Usage: proxytask-correlate FILE \\[options\\]")
    expect_match("${out}" "--score-columns")
    expect_match("${out}" "--min-fraction")
  endforeach()

else()
  message(FATAL_ERROR "run_cli.cmake: unknown CASE '${CASE}'")
endif()
