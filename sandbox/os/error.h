// Errors are values: an Error carries errno, the operation that failed and the path (or other
// subject) it failed on. Functions return Result<T>; only the top level logs.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace packvisor {

struct Error {
  int err = 0;            // errno, or 0 when the failure is not a system call's
  std::string operation;  // what was being done: "open", "parse config", "mount /pack"
  std::string subject;    // the path, key or value it was done to; may be empty

  // One line: "operation subject: strerror(err)" (parts omitted when empty).
  std::string message() const;
};

// Error from errno of the call that just failed.
Error ErrnoError(std::string operation, std::string subject = {});
// Error with an explanation instead of an errno.
Error Failure(std::string operation, std::string subject, std::string detail);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace packvisor

// Propagates a failed Result<...> to the caller, which must return a Result of any type.
#define PV_TRY(expr)                                         \
  do {                                                       \
    auto&& pv_try_result_ = (expr);                          \
    if (!pv_try_result_.ok()) return pv_try_result_.error(); \
  } while (0)
