#include "supervisor/packs/pack_yaml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>

#include "envs/names.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::detail {

using nlohmann::json;

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;  // Mark() throws on an invalid (absent) node
  YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 200)) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out + (text.size() > 200 ? "...\"" : "\"");
}

// ---------------------------------------------------------------------------------------------
// Reading YAML safely: size cap, no symlink, one document, depth and expanded-size caps.

std::optional<std::string> ReadYamlFile(const std::string& path, Problems* problems) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ELOOP) {
      problems->AddFile(path, "is a symbolic link (pack YAML files must be regular files)");
    } else if (errno == ENOENT) {
      problems->AddFile(path, "missing");
    } else {
      problems->AddFile(path, ErrnoError("open").message());
    }
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    problems->AddFile(path, ErrnoError("stat").message());
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    problems->AddFile(path, "not a regular file");
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxYamlBytes) {
    problems->AddFile(path, "larger than " + std::to_string(kMaxYamlBytes) + " bytes (refused)");
    return std::nullopt;
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      problems->AddFile(path, ErrnoError("read").message());
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxYamlBytes) {
      problems->AddFile(path, "larger than " + std::to_string(kMaxYamlBytes) + " bytes (refused)");
      return std::nullopt;
    }
  }
  return text;
}

namespace {

struct YamlLimitExceeded {
  int line;
  std::string detail;
};

// Counts the nodes a document would have once every alias is expanded, without expanding
// anything: each anchor remembers the expanded size of its subtree, and an alias adds it.
// Stops (by throwing YamlLimitExceeded, caught in ParseYaml) as soon as a limit is passed.
class BudgetHandler : public YAML::EventHandler {
 public:
  explicit BudgetHandler(uint64_t max_nodes = kMaxYamlNodes) : max_nodes_(max_nodes) {}
  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    Leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    uint64_t size = anchor < anchor_sizes_.size() ? anchor_sizes_[anchor] : 1;
    Add(mark, size == 0 ? 1 : size);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    YAML::anchor_t anchor;
    uint64_t size;
    YAML::Mark mark;
  };

  void Leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    Record(anchor, 1);
    Add(mark, 1);
  }
  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= kMaxYamlDepth) {
      throw YamlLimitExceeded{mark.line + 1,
                              "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels"};
    }
    stack_.push_back(Frame{anchor, 1, mark});
  }
  void Close() {
    if (stack_.empty()) return;
    Frame frame = stack_.back();
    stack_.pop_back();
    Record(frame.anchor, frame.size);
    Add(frame.mark, frame.size);
  }
  void Record(YAML::anchor_t anchor, uint64_t size) {
    if (anchor == YAML::NullAnchor) return;
    if (anchor >= anchor_sizes_.size()) anchor_sizes_.resize(anchor + 1, 0);
    anchor_sizes_[anchor] = size;
  }
  // Adds `size` expanded nodes to the innermost open collection (or the document).
  void Add(const YAML::Mark& mark, uint64_t size) {
    uint64_t& target = stack_.empty() ? total_ : stack_.back().size;
    target = std::min<uint64_t>(target + size, max_nodes_ + 1);
    if (target > max_nodes_) {
      throw YamlLimitExceeded{mark.line + 1, "more than " + std::to_string(max_nodes_) +
                                                 " nodes once aliases are expanded (refused)"};
    }
  }

  std::vector<Frame> stack_;
  std::vector<uint64_t> anchor_sizes_;
  uint64_t max_nodes_;
  uint64_t total_ = 0;
  int documents_ = 0;
};

}  // namespace

// Parses one YAML document after checking its shape with BudgetHandler.
std::optional<YAML::Node> ParseYaml(const std::string& path, const std::string& text,
                                    Problems* problems) {
  try {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    BudgetHandler budget;
    if (!parser.HandleNextDocument(budget)) {
      problems->AddFile(path, "empty (expected a YAML mapping)");
      return std::nullopt;
    }
    if (parser.HandleNextDocument(budget)) {
      problems->AddFile(path, "more than one YAML document");
      return std::nullopt;
    }
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      problems->Add(path, LineOf(root), "", "expected a YAML mapping at the top level");
      return std::nullopt;
    }
    return root;
  } catch (const YamlLimitExceeded& e) {
    problems->Add(path, e.line, "", e.detail);
  } catch (const YAML::Exception& e) {
    problems->Add(path, e.mark.is_null() ? 0 : e.mark.line + 1, "", "YAML: " + e.msg);
  } catch (const std::exception& e) {
    problems->Add(path, 0, "", std::string("YAML: ") + e.what());
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Scalars and YAML -> JSON.

bool IsNullScalar(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> ParseCoreBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<bool> ParseLenientBool(const std::string& s) {
  if (std::optional<bool> b = ParseCoreBool(s)) return b;
  static const std::set<std::string> kTrue = {"yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
  static const std::set<std::string> kFalse = {"no", "No", "NO", "off", "Off", "OFF", "n", "N"};
  if (kTrue.count(s)) return true;
  if (kFalse.count(s)) return false;
  return std::nullopt;
}

namespace {

bool AllOf(std::string_view s, std::string_view allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

}  // namespace

std::optional<int64_t> ParseInt(const std::string& s) {
  std::string_view digits = s;
  int base = 10;
  bool negative = false;
  if (digits.rfind("0x", 0) == 0) {
    digits.remove_prefix(2);
    base = 16;
    if (!AllOf(digits, "0123456789abcdefABCDEF")) return std::nullopt;
  } else if (digits.rfind("0o", 0) == 0) {
    digits.remove_prefix(2);
    base = 8;
    if (!AllOf(digits, "01234567")) return std::nullopt;
  } else {
    if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
      negative = digits.front() == '-';
      digits.remove_prefix(1);
    }
    if (!AllOf(digits, envs::kDigits)) return std::nullopt;
  }
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (magnitude > (negative ? kMax + 1 : kMax)) return std::nullopt;
  if (negative) return magnitude == kMax + 1 ? INT64_MIN : -static_cast<int64_t>(magnitude);
  return static_cast<int64_t>(magnitude);
}

std::optional<double> ParseFloat(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < n && s[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits == 0 && frac_digits == 0) return std::nullopt;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  std::string_view text = s;
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool IsQuotedOrStr(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str";
}

Result<json> ToJson(const YAML::Node& node, std::optional<ParamType> hint, int depth,
                    Budget* budget) {
  if (budget->left == 0) return Failure("", "", "too many nodes");
  --budget->left;
  if (depth > kMaxYamlDepth) return Failure("", "", "nested too deeply");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const YAML::Node& element : node) {
        Result<json> value = ToJson(element, std::nullopt, depth + 1, budget);
        if (!value.ok()) return value.error();
        array.push_back(std::move(*value));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      // yaml-cpp's iterator->first is a member of a temporary: copy the pair (cheap handles).
      for (const auto& entry : node) {
        YAML::Node key = entry.first;
        YAML::Node child = entry.second;
        if (!key.IsScalar()) return Failure("", "", "mapping keys must be strings");
        Result<json> value = ToJson(child, std::nullopt, depth + 1, budget);
        if (!value.ok()) return value.error();
        object[key.Scalar()] = std::move(*value);
      }
      return object;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = node.Scalar();
  if (IsQuotedOrStr(node) || hint == ParamType::kString) return json(s);
  if (IsNullScalar(s)) return json(nullptr);
  if (hint == ParamType::kBoolean) {
    if (std::optional<bool> b = ParseLenientBool(s)) return json(*b);
  }
  if (std::optional<bool> b = ParseCoreBool(s)) return json(*b);
  if (std::optional<int64_t> i = ParseInt(s)) return json(*i);
  if (std::optional<double> d = ParseFloat(s)) return json(*d);
  return json(s);
}

std::optional<std::string> GetString(const FileContext& ctx, const YAML::Node& value,
                                     const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) {
    ctx.Add(LineOf(value), key, "expected a string");
    return std::nullopt;
  }
  if (value.Scalar().find('\0') != std::string::npos) {
    ctx.Add(LineOf(value), key, "contains a NUL byte");
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<bool> GetBool(const FileContext& ctx, const YAML::Node& value,
                            const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  std::optional<bool> b = value.IsScalar() ? ParseLenientBool(value.Scalar()) : std::nullopt;
  if (!b) ctx.Add(LineOf(value), key, "expected true or false");
  return b;
}

std::optional<double> GetNumber(const FileContext& ctx, const YAML::Node& value,
                                const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (value.IsScalar() && !IsQuotedOrStr(value)) {
    if (std::optional<int64_t> i = ParseInt(value.Scalar())) return static_cast<double>(*i);
    if (std::optional<double> d = ParseFloat(value.Scalar())) return d;
  }
  ctx.Add(LineOf(value), key, "expected a number");
  return std::nullopt;
}

size_t EditDistance(std::string_view a, std::string_view b, size_t limit) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  size_t longer = std::max(a.size(), b.size());
  size_t shorter = std::min(a.size(), b.size());
  if (longer - shorter > limit) return limit + 1;
  // rows[i][j]: the distance of a[0..i) and b[0..j); three rows suffice for transpositions.
  std::vector<std::vector<size_t>> rows(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) rows[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) rows[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      size_t best = std::min({rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        best = std::min(best, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = best;
    }
  }
  return std::min(rows[a.size()][b.size()], limit + 1);
}

std::string_view DidYouMean(std::string_view key, const std::vector<std::string_view>& known) {
  // Keys are short, and only 64 characters are compared: a 1 MiB key costs nothing.
  if (key.size() > 64) return {};
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view candidate : known) {
    size_t allowed = candidate.size() <= 4 ? 1 : 2;
    size_t distance = EditDistance(key, candidate, allowed);
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

void ReportUnknownKey(const FileContext& ctx, int line, const std::string& full,
                      const std::string& key, const std::vector<std::string_view>& known,
                      UnknownKeys policy) {
  std::string_view guess = DidYouMean(key, known);
  std::string hint = guess.empty() ? "" : "; did you mean " + Quote(guess) + "?";
  if (policy == UnknownKeys::kError) {
    std::string list;
    for (std::string_view name : known) list += (list.empty() ? "" : ", ") + std::string(name);
    ctx.Add(line, full, "unknown key (known: " + list + ")" + hint);
  } else if (!guess.empty()) {
    ctx.Add(Severity::kWarning, line, full, "unknown key, ignored" + hint);
  } else {
    ctx.Add(Severity::kNote, line, full, "ignored (packvisor does not use it)");
  }
}

}  // namespace packvisor::detail

namespace packvisor {

Result<void> CheckYamlBudget(std::string_view text, uint64_t max_nodes) {
  auto at = [](int line, const std::string& detail) {
    return Failure("", line > 0 ? "line " + std::to_string(line) : "", detail);
  };
  try {
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    detail::BudgetHandler budget(max_nodes);
    parser.HandleNextDocument(budget);
    return Ok{};
  } catch (const detail::YamlLimitExceeded& e) {
    return at(e.line, e.detail);
  } catch (const YAML::Exception& e) {
    // e.msg is not quoted: yaml-cpp may put a piece of the text in it.
    return at(e.mark.is_null() ? 0 : e.mark.line + 1, "not a valid YAML document");
  } catch (const std::exception&) {
    return at(0, "not a valid YAML document");
  }
}

}  // namespace packvisor
