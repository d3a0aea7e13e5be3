// A small ordered JSON value used to report evaluation results (C++ CLI and the Python wrapper parse the
// same text). Writing only: the configs (yaml-cpp) are the library's input format.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>

namespace modgap {

class Json {
 public:
  enum class Kind { Null, Bool, Integer, Number, String, Array, Object };

  Json() = default;
  static Json null() { return Json(); }
  static Json boolean(bool value) { Json j(Kind::Bool); j.bool_ = value; return j; }
  static Json integer(int64_t value) { Json j(Kind::Integer); j.integer_ = value; return j; }
  // Non-finite numbers become null (JSON has no NaN), unless dumped with python_tokens (below).
  static Json number(double value) { Json j(Kind::Number); j.number_ = value; return j; }
  static Json string(std::string value) { Json j(Kind::String); j.string_ = std::move(value); return j; }
  static Json array() { return Json(Kind::Array); }
  static Json object() { return Json(Kind::Object); }

  Kind kind() const { return kind_; }

  // Object: inserts or replaces `key`, keeping first-insertion order.
  Json& set(const std::string& key, Json value) {
    TORCH_CHECK(kind_ == Kind::Object, "Json::set on a non-object");
    for (auto& entry : entries_) {
      if (entry.first == key) {
        entry.second = std::move(value);
        return *this;
      }
    }
    entries_.emplace_back(key, std::move(value));
    return *this;
  }
  Json& push(Json value) {
    TORCH_CHECK(kind_ == Kind::Array, "Json::push on a non-array");
    entries_.emplace_back(std::string(), std::move(value));
    return *this;
  }
  const Json& at(const std::string& key) const {
    for (const auto& entry : entries_) {
      if (entry.first == key) {
        return entry.second;
      }
    }
    TORCH_CHECK(false, "Json: no key '", key, "'");
  }
  bool contains(const std::string& key) const {
    for (const auto& entry : entries_) {
      if (entry.first == key) {
        return true;
      }
    }
    return false;
  }
  double as_number() const { return kind_ == Kind::Integer ? static_cast<double>(integer_) : number_; }
  const std::vector<std::pair<std::string, Json>>& entries() const { return entries_; }

  // `python_tokens`: every non-finite number is written as Infinity, -Infinity or NaN (for text that only
  // Python's json.loads reads, which turns them back into floats; strict JSON readers refuse them)
  // instead of strict JSON's null. The composed configs use it (.inf is a legal YAML float), and so does
  // modgap.evaluate().
  std::string dump(int indent = 2, bool python_tokens = false) const {
    std::ostringstream out;
    write(out, indent, 0, python_tokens);
    return out.str();
  }

 private:
  explicit Json(Kind kind) : kind_(kind) {}

  static void write_string(std::ostringstream& out, const std::string& text) {
    out << '"';
    for (const char c : text) {
      switch (c) {
        case '"': out << "\\\""; break;
        case '\\': out << "\\\\"; break;
        case '\n': out << "\\n"; break;
        case '\t': out << "\\t"; break;
        case '\r': out << "\\r"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            out << "\\u" << std::hex << std::setw(4) << std::setfill('0') << static_cast<int>(c) << std::dec;
          } else {
            out << c;
          }
      }
    }
    out << '"';
  }

  void write(std::ostringstream& out, int indent, int depth, bool python_tokens) const {
    const std::string pad = indent > 0 ? "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ') : "";
    const std::string close = indent > 0 ? "\n" + std::string(static_cast<size_t>(indent * depth), ' ') : "";
    switch (kind_) {
      case Kind::Null: out << "null"; break;
      case Kind::Bool: out << (bool_ ? "true" : "false"); break;
      case Kind::Integer: out << integer_; break;
      case Kind::Number:
        if (std::isfinite(number_)) {
          char buffer[32];  // shortest text that reads back as the same double
          const auto result = std::to_chars(buffer, buffer + sizeof(buffer), number_);
          const std::string text(buffer, result.ptr);
          out << text;
          if (text.find_first_of(".eE") == std::string::npos) {
            out << ".0";  // keep it a float for JSON readers that distinguish
          }
        } else if (python_tokens) {
          out << (std::isnan(number_) ? "NaN" : number_ > 0 ? "Infinity" : "-Infinity");
        } else {
          out << "null";
        }
        break;
      case Kind::String: write_string(out, string_); break;
      case Kind::Array:
      case Kind::Object: {
        const bool object = kind_ == Kind::Object;
        out << (object ? '{' : '[');
        for (size_t i = 0; i < entries_.size(); ++i) {
          out << (i ? "," : "") << pad;
          if (object) {
            write_string(out, entries_[i].first);
            out << (indent > 0 ? ": " : ":");
          }
          entries_[i].second.write(out, indent, depth + 1, python_tokens);
        }
        if (!entries_.empty()) {
          out << close;
        }
        out << (object ? '}' : ']');
        break;
      }
    }
  }

  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t integer_ = 0;
  double number_ = 0.0;
  std::string string_;
  std::vector<std::pair<std::string, Json>> entries_;
};

}  // namespace modgap
