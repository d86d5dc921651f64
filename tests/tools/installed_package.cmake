# CTest `installed_package`: the package works for a project outside the tree. Installs the build
# into a fresh prefix, builds examples/ against it with find_package(blocks), and runs the
# examples: training must lower the loss, a Hugging Face folder written by the installed blockc
# must run, and a program linking only blocks::types must compile without LibTorch's headers.
#   cmake -DBINARY_DIR=build -DSOURCE_DIR=. -DWORK=dir -DGENERATOR=Ninja -DCXX=c++
#         [-DLAUNCHER=ccache] -P installed_package.cmake
cmake_minimum_required(VERSION 3.22)
foreach(input BINARY_DIR SOURCE_DIR WORK GENERATOR CXX)
  if(NOT DEFINED ${input})
    message(FATAL_ERROR "give -D${input}=...")
  endif()
endforeach()
set(prefix ${WORK}/prefix)
set(build ${WORK}/build)
string(TIMESTAMP started "%s")

# Runs the command; stops the test with its output unless it exits 0. Its stdout is in `output`.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "`${command}` failed (${status}):\n${out}\n${err}")
  endif()
  set(output "${out}" PARENT_SCOPE)
endfunction()

function(elapsed what)
  string(TIMESTAMP now "%s")
  math(EXPR seconds "${now} - ${started}")
  message(STATUS "${what} (${seconds} s)")
endfunction()

# The build's own paths must not reach the installed package (a leaked source include dir, an
# absolute library path of the build tree would work here and nowhere else).
file(REMOVE_RECURSE ${prefix} ${WORK}/hf)
run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
file(GLOB package_files ${prefix}/lib*/cmake/blocks/*.cmake)
foreach(file ${package_files})
  file(READ ${file} text)
  foreach(tree ${BINARY_DIR} ${SOURCE_DIR})
    string(FIND "${text}" "${tree}" at)
    if(at GREATER_EQUAL 0)
      message(FATAL_ERROR "${file} names the build's ${tree}")
    endif()
  endforeach()
endforeach()
foreach(installed bin/blockc bin/blockc-model include/blocks/framework/nn/builder.h
                  share/blocks/configs/llama3-8b.yaml share/blocks/schemas/blocks.schema.json)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "the install has no ${installed}")
  endif()
endforeach()
elapsed("installed into ${prefix}")

# examples/ as a user builds it (its default Release): its own project, finding blocks through
# CMAKE_PREFIX_PATH. The build folder is kept between runs (Ninja rebuilds what changed). Parsing
# LibTorch's headers is most of it: ~24 s a torch-using file at -O2 and at -O0 alike.
set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${build} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
if(LAUNCHER)
  list(APPEND configure -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run(${configure})
run(${CMAKE_COMMAND} --build ${build} -j2)
elapsed("built examples/ against the install")

# validate_config linked blocks::types only: no LibTorch header may be on its command line, while
# train_from_yaml's (blocks::modules) has them, so the check can fail.
file(READ ${build}/compile_commands.json commands)
string(JSON count LENGTH "${commands}")
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON file GET "${commands}" ${i} file)
  string(JSON command GET "${commands}" ${i} command)
  get_filename_component(name ${file} NAME_WE)
  set(${name}_command "${command}")
endforeach()
if(NOT DEFINED validate_config_command OR NOT DEFINED train_from_yaml_command)
  message(FATAL_ERROR "compile_commands.json lacks an example:\n${commands}")
endif()
if(validate_config_command MATCHES "torch")
  message(FATAL_ERROR "validate_config (blocks::types) compiles with LibTorch's headers:\n"
                      "${validate_config_command}")
endif()
if(NOT train_from_yaml_command MATCHES "torch/csrc/api/include")
  message(FATAL_ERROR "train_from_yaml (blocks::modules) has no LibTorch include path:\n"
                      "${train_from_yaml_command}")
endif()

# Configs: the zoo's installed file is valid, a misspelt key is reported with a suggestion.
run(${build}/validate_config ${prefix}/share/blocks/configs/llama3-8b.yaml
    ${SOURCE_DIR}/examples/tiny.yaml)
if(NOT output MATCHES "llama3-8b.yaml: a valid language_model of 8.03e\\+09 parameters")
  message(FATAL_ERROR "validate_config printed:\n${output}")
endif()
file(READ ${SOURCE_DIR}/examples/tiny.yaml tiny)
string(REPLACE "num_layers:" "num_layer:" misspelt "${tiny}")
file(WRITE ${WORK}/misspelt.yaml "${misspelt}")
execute_process(COMMAND ${build}/validate_config ${WORK}/misspelt.yaml
                RESULT_VARIABLE status ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT status EQUAL 1 OR NOT err MATCHES "misspelt.yaml:[0-9]+:[0-9]+: error: .*num_layers")
  message(FATAL_ERROR "validate_config on a misspelt key exited ${status}:\n${err}")
endif()

# Training: the example exits 1 itself when the loss does not fall.
run(${build}/train_from_yaml ${SOURCE_DIR}/examples/tiny.yaml 20)
if(NOT output MATCHES "step 20 loss [0-9.]+\nloss fell from")
  message(FATAL_ERROR "train_from_yaml printed:\n${output}")
endif()
string(REGEX MATCH "loss fell from [^\n]*" fell "${output}")
message(STATUS "train_from_yaml: ${fell}")

# A Hugging Face folder of the tiny model, written by the installed blockc (which must find
# blockc-model beside it), then run by hf_forward: one argmax per position, each in the vocab.
run(${prefix}/bin/blockc export --model ${SOURCE_DIR}/examples/tiny.yaml --seed 0 --to hf
    -o ${WORK}/hf)
run(${build}/hf_forward ${WORK}/hf 1 17 42 255 3)
string(REGEX MATCHALL "position [0-9]+: token [0-9]+ -> [0-9]+" lines "${output}")
list(LENGTH lines found)
if(NOT found EQUAL 5)
  message(FATAL_ERROR "hf_forward printed ${found} positions, not 5:\n${output}")
endif()
foreach(line ${lines})
  string(REGEX REPLACE ".* -> " "" id "${line}")
  if(id GREATER_EQUAL 256)
    message(FATAL_ERROR "hf_forward's argmax ${id} is outside the vocabulary of 256:\n${output}")
  endif()
endforeach()
elapsed("ran the examples")
