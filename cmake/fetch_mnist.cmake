# Fetches MNIST into ./data/mnist (or -DDEST=dir) from the public mirror the seed uses, checking
# each file's SHA-256. Files already present with the right hash are kept, so running it again,
# or on a machine that already has the data, downloads nothing. Usage:
#   cmake -P cmake/fetch_mnist.cmake            (or: cmake -DDEST=/some/dir -P cmake/fetch_mnist.cmake)
# With -DFROM=/dir holding the same four files (a local copy), they are copied and checked instead.
if(NOT DEFINED DEST)
  set(DEST "${CMAKE_CURRENT_LIST_DIR}/../data/mnist")
endif()
if(NOT DEFINED MIRROR)  # -DMIRROR=URL: another copy (the tests point it at a closed port)
  set(MIRROR "https://storage.googleapis.com/cvdf-datasets/mnist")
endif()
set(FILES
  "train-images-idx3-ubyte.gz=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
  "train-labels-idx1-ubyte.gz=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
  "t10k-images-idx3-ubyte.gz=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
  "t10k-labels-idx1-ubyte.gz=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
file(MAKE_DIRECTORY "${DEST}")
foreach(entry IN LISTS FILES)
  string(REGEX REPLACE "=.*" "" name "${entry}")
  string(REGEX REPLACE ".*=" "" sha "${entry}")
  set(path "${DEST}/${name}")
  if(EXISTS "${path}")
    file(SHA256 "${path}" have)
    if(have STREQUAL sha)
      message(STATUS "have ${name}")
      continue()
    endif()
    message(STATUS "${name}: wrong SHA-256, fetching again")
  endif()
  if(DEFINED FROM)
    file(COPY_FILE "${FROM}/${name}" "${path}.part")
    file(SHA256 "${path}.part" have)
    if(NOT have STREQUAL sha)
      file(REMOVE "${path}.part")
      message(FATAL_ERROR "${FROM}/${name} has SHA-256 ${have}, expected ${sha}")
    endif()
  else()
    # Download, read the status, and only then check the hash: with EXPECTED_HASH, CMake stops
    # on its own "HASH mismatch" (of an empty file) before the status can say there is no network.
    message(STATUS "downloading ${MIRROR}/${name}")
    string(CONCAT hint "HINT: copy the four MNIST .gz files into ${DEST} (or run with -DFROM=/dir holding "
                       "them), or point mnist_vlm at them with --data DIR or PUREVLM_DATA")
    file(DOWNLOAD "${MIRROR}/${name}" "${path}.part" STATUS st)
    list(GET st 0 code)
    if(NOT code EQUAL 0)
      file(REMOVE "${path}.part")
      list(GET st 1 why)
      message(FATAL_ERROR "could not fetch ${name}: ${why} (no network?)\n${hint}")
    endif()
    file(SHA256 "${path}.part" have)
    if(NOT have STREQUAL sha)
      file(REMOVE "${path}.part")
      message(FATAL_ERROR "${MIRROR}/${name} arrived with SHA-256 ${have}, expected ${sha}\n${hint}")
    endif()
  endif()
  file(RENAME "${path}.part" "${path}")
  message(STATUS "fetched ${name}")
endforeach()
message(STATUS "MNIST is in ${DEST}")
