// Status: the one error channel of the server. A code (the gRPC canonical codes, so gRPC frontends pass
// it through unchanged) and a message that names the field, model or limit at fault. HTTP frontends map
// the code with HttpStatusFor(), the same table Envoy's grpc_json_transcoder applies (README "Errors", docs/api.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace serving {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// Longest message a Status keeps. Messages can quote client input, reach the client (gRPC sends them in
// a header, which clients cap at 16 KiB) and the logs, so a longer one is cut with a note saying so.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message" (for logs).
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status Unavailable(std::string message);
Status Internal(std::string message);
Status ResourceExhausted(std::string message);
Status FailedPrecondition(std::string message);
Status Unimplemented(std::string message);
Status DeadlineExceeded(std::string message);
Status Cancelled(std::string message);

// Client input quoted in a message: at most `max` bytes (cut on a UTF-8 boundary, with "...(N bytes)"
// saying how long it was) in single quotes, so a 10 MB name or value is never echoed back whole. Bytes that are
// not well-formed UTF-8 become U+FFFD: the message goes into JSON and protobuf strings.
std::string Quote(std::string_view input, size_t max = 128);
// `s` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD: client input quoted
// in a message goes into JSON and protobuf strings, which must be UTF-8 (protobuf logs a plain-text error line
// for each one that is not; found by tests/fuzz/http_fuzz.cc with a path byte of 0xB2).
std::string ValidUtf8(std::string_view s);
// The same without the quotes (for numbers and JSON tokens).
std::string Excerpt(std::string_view input, size_t max = 128);

// Canonical upper-case name of a code: "INVALID_ARGUMENT".
const char* StatusCodeName(StatusCode code);

// The HTTP status Envoy's grpc_json_transcoder gives a gRPC code (400 for INVALID_ARGUMENT, ...).
int HttpStatusFor(StatusCode code);

// Reading the value of a StatusOr that holds none is a bug in the caller: this says which status it held
// and aborts, instead of reading an empty value.
[[noreturn]] void StatusOrValueMissing(const Status& status);

// A value or the Status explaining why there is none; never OK without a value (as absl::StatusOr: built from
// an OK status it holds INTERNAL). Reading the value of one that is not OK aborts (StatusOrValueMissing).
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design, like absl::StatusOr.
  StatusOr(Status status)                          // NOLINT
      : status_(status.ok() ? Internal("a StatusOr was built from an OK status without a value") : std::move(status)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return Checked(), *value_; }
  const T& value() const& { return Checked(), *value_; }
  T&& value() && { return Checked(), std::move(*value_); }
  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Checked() const {
    if (!value_) StatusOrValueMissing(status_);
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace serving

// Returns early from the enclosing function with the status when it is not OK.
#define SERVING_RETURN_IF_ERROR(expr)   \
  do {                                  \
    ::serving::Status status_ = (expr); \
    if (!status_.ok()) return status_;  \
  } while (0)

// `SERVING_ASSIGN_OR_RETURN(auto x, MakeX());`: the value into `lhs`, or an early return with the status.
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` is a declaration or an lvalue, `tmp` a name.
#define SERVING_ASSIGN_OR_RETURN(lhs, expr) \
  SERVING_ASSIGN_OR_RETURN_IMPL(SERVING_STATUS_CONCAT(statusor_, __LINE__), lhs, expr)
#define SERVING_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
#define SERVING_STATUS_CONCAT(a, b) SERVING_STATUS_CONCAT_IMPL(a, b)
#define SERVING_STATUS_CONCAT_IMPL(a, b) a##b
// NOLINTEND(bugprone-macro-parentheses)
