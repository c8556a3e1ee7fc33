// The supervisor's log (spdlog to stderr) as every adapter sets it up: one place for its format.
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace packvisor {

// `flush_each_line`: a long-lived process (the daemon) flushes every info line, so that its log
// is whole when it is killed; a one-shot command flushes at exit.
inline void SetUpLogging(const std::string& level, bool flush_each_line) {
  auto logger = spdlog::stderr_color_mt("packvisor");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  if (flush_each_line) spdlog::flush_on(spdlog::level::info);
}

}  // namespace packvisor
