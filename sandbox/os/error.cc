#include "sandbox/os/error.h"

#include <cstring>

namespace packvisor {

std::string Error::message() const {
  std::string text = operation;
  if (!subject.empty()) text += (text.empty() ? "" : " ") + subject;
  if (err != 0) text += std::string(text.empty() ? "" : ": ") + std::strerror(err);
  return text;
}

Error ErrnoError(std::string operation, std::string subject) {
  return Error{errno, std::move(operation), std::move(subject)};
}

Error Failure(std::string operation, std::string subject, std::string detail) {
  if (!detail.empty()) subject += (subject.empty() ? "" : ": ") + detail;
  return Error{0, std::move(operation), std::move(subject)};
}

}  // namespace packvisor
