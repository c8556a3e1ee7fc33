#include "generated/build_info.h"  // written at build time by build_info.cmake
#include "supervisor/cli/cli.h"

int main(int argc, char** argv) {
  return packvisor::RunCli(argc, argv, {kPackvisorVersion, kPackvisorCommit});
}
