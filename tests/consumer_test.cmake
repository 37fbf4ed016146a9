# Installs purevlm from BUILD into a temporary prefix, then configures, builds and runs
# tests/consumer against it with find_package(purevlm).
set(prefix "${WORK}/prefix")
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${prefix}" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE}" -B "${WORK}/build" "-DCMAKE_PREFIX_PATH=${prefix}"
                        -DCMAKE_BUILD_TYPE=Release RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND "${WORK}/build/consumer" "${WORK}/model.ckpt" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer failed: ${rc}")
endif()
# read_digit, built against the installed package, loads that model and reads a picture
execute_process(COMMAND "${WORK}/build/read_digit" "${WORK}/model.ckpt" "${SOURCE}/../data/digits/dkg-hand_7_0.pgm"
                RESULT_VARIABLE rc OUTPUT_VARIABLE said)
if(rc OR NOT said MATCHES "^[a-z]* \\(p = [0-9.]+\\)")
  message(FATAL_ERROR "read_digit failed (${rc}): ${said}")
endif()
message(STATUS "read_digit: ${said}")
