#include "supervisor/cli.h"

int main(int argc, char** argv) { return packvisor::RunCli(argc, argv); }
