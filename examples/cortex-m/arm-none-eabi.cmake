# A CMake toolchain file for a Cortex-M board with arm-none-eabi-gcc and
# newlib (semihosting through librdimon):
#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE=arm-none-eabi.cmake -DCORTEX_M=m4f
# CORTEX_M: m4f (the default), m7, m3 or m0plus.  cnngen itself, found by
# find_package(cnngen), runs on the host as it does in a native build.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)   # no board to run a test program

set(CORTEX_M m4f CACHE STRING "the CPU: m4f, m7, m3 or m0plus")
set(cpu_m4f "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(cpu_m7 "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16")
set(cpu_m3 "-mcpu=cortex-m3 -mthumb")
set(cpu_m0plus "-mcpu=cortex-m0plus -mthumb")
if(NOT DEFINED cpu_${CORTEX_M})
  message(FATAL_ERROR "CORTEX_M is m4f, m7, m3 or m0plus, not '${CORTEX_M}'")
endif()
set(CMAKE_C_FLAGS_INIT "${cpu_${CORTEX_M}} -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "${cpu_${CORTEX_M}} --specs=rdimon.specs -nostartfiles -Wl,--gc-sections")
