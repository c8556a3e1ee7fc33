# Writes OUTPUT, the bash completion script, from BINARY's own command line definition
# (`packvisor completion bash`). Inputs: BINARY, OUTPUT.
execute_process(COMMAND ${BINARY} completion bash OUTPUT_FILE ${OUTPUT} RESULT_VARIABLE failed)
if(failed)
  file(REMOVE ${OUTPUT})
  message(FATAL_ERROR "`${BINARY} completion bash` failed: ${failed}")
endif()
