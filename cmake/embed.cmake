# Turn the part of a C file after "/* cnngen:embed-begin */" into a C
# string constant, so cnngen can print it into standalone programs.
#   cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P embed.cmake
file(READ "${INPUT}" content)
string(FIND "${content}" "/* cnngen:embed-begin */" start)
if(start EQUAL -1)
  message(FATAL_ERROR "${INPUT}: no cnngen:embed-begin marker")
endif()
string(SUBSTRING "${content}" ${start} -1 content)
string(REPLACE "\\" "\\\\" content "${content}")
string(REPLACE "\"" "\\\"" content "${content}")
string(REPLACE "\n" "\\n\"\n\"" content "${content}")
file(WRITE "${OUTPUT}" "/* Generated from ${INPUT}; do not edit. */\nconst char ${NAME}[] =\n\"${content}\";\n")
