// An override's value read by Hydra 1.3's override grammar (hydra/grammar/OverrideLexer.g4, VALUE_MODE,
// and OverrideParser.g4's `element`), and typed as Hydra's OverridesVisitor types it. The composer used to
// read values as YAML flow text and patch the differences afterwards; a fuzz against Hydra found the
// patches incomplete (`a= ` was null, `12:30` and `@` did not parse inside a {dict}, `x=y` and `[1] `
// were accepted, backslash escapes inside lists were refused), so the grammar itself is followed here.
//
// Lexer: at each position the longest match among the VALUE_MODE rules wins, ties going to the rule
// listed first, as ANTLR does. Parser: element := primitive | [list] | {dict} | function;
// primitive := QUOTED_VALUE | (ID | NULL | INT | FLOAT | BOOL | INTERPOLATION | UNQUOTED_CHAR | COLON |
// ESC | WS)+. A primitive of one token is typed by the token (INT -> int, FLOAT -> float incl. inf / nan,
// BOOL / NULL case-insensitive, anything else a string); several tokens concatenate into a string with
// the outer whitespace dropped and `\x` escapes undone.
#include "ops/config/override_value.h"

#include <modgap/config.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "ops/config/override_syntax.h"

namespace modgap {

YAML::Node string_node(const std::string& text) {
  YAML::Node node(text);
  node.SetTag("!");  // a string whatever it looks like (the YAML typing leaves "!" scalars alone)
  return node;
}

// A float as the composer's YAML typing reads it back: Python's repr (always with '.', 'e'), or .inf / .nan.
YAML::Node float_node(double value) {
  if (std::isnan(value)) return YAML::Node(".nan");
  if (std::isinf(value)) return YAML::Node(value < 0 ? "-.inf" : ".inf");
  return YAML::Node(python_float_repr(value));
}

// Python's float() of a literal Hydra's FLOAT token or a cast accepts (sign, '_', inf / infinity / nan,
// any case, surrounding whitespace).
double python_float_literal(const std::string& text) {
  std::string lower = without_underscores(text);
  lower.erase(0, lower.find_first_not_of(" \t\n"));
  lower.erase(lower.find_last_not_of(" \t\n") + 1);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string body = lower[0] == '-' || lower[0] == '+' ? lower.substr(1) : lower;
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  return python_float(lower);  // strtod reads inf / infinity with their sign; 1e400 is inf, as in Python
}

size_t whitespace_length(const std::string& text, size_t at) {
  size_t end = at;
  while (end < text.size() && (text[end] == ' ' || text[end] == '\t')) ++end;
  return end - at;
}

// WS? c WS? with either whitespace optional per rule (POPEN: WS? '(' WS?, PCLOSE: WS? ')', ...).
size_t punctuation_length(const std::string& text, size_t at, char c, bool space_before, bool space_after) {
  size_t length = space_before ? whitespace_length(text, at) : 0;
  if (at + length >= text.size() || text[at + length] != c) return 0;
  ++length;
  return length + (space_after ? whitespace_length(text, at + length) : 0);
}

size_t regex_length(const std::string& text, size_t at, const std::regex& pattern) {
  std::smatch match;
  if (!std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(at), text.end(), match, pattern,
                         std::regex_constants::match_continuous)) {
    return 0;
  }
  return static_cast<size_t>(match.length(0));
}

const ValueTokenPatterns& value_token_patterns() {
  static const std::string kInt = "(?:0|[1-9](?:_?[0-9])*)";
  static const std::string kDigits = "[0-9](?:_?[0-9])*";
  static const std::string kPointFloat = "(?:" + kInt + "?\\." + kDigits + "|" + kInt + "\\.)";
  static const ValueTokenPatterns patterns{
      std::regex("[+-]?(?:(?:" + kPointFloat + "|" + kInt + ")[eE][+-]?" + kDigits + "|" + kPointFloat +
                 "|[Ii][Nn][Ff]|[Nn][Aa][Nn])"),
      std::regex("[+-]?" + kInt),
      std::regex("[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"),
      std::regex("[Nn][Uu][Ll][Ll]"),
      std::regex("[a-zA-Z_][a-zA-Z0-9_\\-]*"),
      std::regex(R"((?:\\\\|\\[()\[\]{}:=, \t])+)"),
      "/-\\+.$%*@?|"};
  return patterns;
}

namespace {

[[noreturn]] void fail(const std::string& message) { throw ConfigError(message); }

// In the lexer file's order: on a tie the earlier rule wins.
enum class Token {
  ParenOpen, Comma, ParenClose, BracketOpen, BracketClose, BraceOpen, BraceClose, Colon, Equal,
  Float, Int, Bool, Null, UnquotedChar, Id, Escape, Whitespace, Quoted, Interpolation
};

struct Lexeme {
  Token type;
  size_t begin;
  std::string text;
};

// QUOTED_VALUE: the shortest quoted run whose closing quote follows an even number of backslashes.
size_t quoted_length(const std::string& text, size_t at) {
  const char quote = text[at];
  if (quote != '\'' && quote != '"') return 0;
  for (size_t j = at + 1; j < text.size(); ++j) {
    if (text[j] != quote) continue;
    size_t backslashes = 0;
    while (j - backslashes - 1 > at && text[j - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return j - at + 1;
  }
  return 0;
}

std::vector<Lexeme> tokenize(const std::string& text, const std::string& context) {
  const ValueTokenPatterns& value = value_token_patterns();
  static const std::regex interpolation_re(R"(\$\{[^}]+\})");

  std::vector<Lexeme> tokens;
  size_t at = 0;
  while (at < text.size()) {
    const size_t lengths[] = {
        punctuation_length(text, at, '(', true, true),  punctuation_length(text, at, ',', true, true),
        punctuation_length(text, at, ')', true, false), punctuation_length(text, at, '[', false, true),
        punctuation_length(text, at, ']', true, false), punctuation_length(text, at, '{', false, true),
        punctuation_length(text, at, '}', true, false), punctuation_length(text, at, ':', true, true),
        punctuation_length(text, at, '=', true, true),  regex_length(text, at, value.float_re),
        regex_length(text, at, value.int_re),           regex_length(text, at, value.bool_re),
        regex_length(text, at, value.null_re),          value.unquoted_chars.find(text[at]) != std::string::npos ? 1u : 0u,
        regex_length(text, at, value.id_re),            regex_length(text, at, value.escape_re),
        whitespace_length(text, at),                    quoted_length(text, at),
        regex_length(text, at, interpolation_re)};
    size_t best = 0;
    for (size_t rule = 1; rule < std::size(lengths); ++rule) {
      if (lengths[rule] > lengths[best]) best = rule;
    }
    if (lengths[best] == 0) {
      size_t end = at + 1;  // the whole UTF-8 sequence, for the message
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
      const std::string character = text.substr(at, end - at);
      if (character == "'" || character == "\"") {
        fail(context + ": unterminated " + std::string(character == "'" ? "single" : "double") +
             " quote at position " + std::to_string(at));
      }
      fail(context + ": '" + character + "' at position " + std::to_string(at) +
           " is not allowed in an unquoted value (Hydra's override grammar: letters, digits, spaces and "
           "_ - / \\ + . $ % * @ ? | :); quote the value");
    }
    tokens.push_back({static_cast<Token>(best), at, text.substr(at, lengths[best])});
    at += lengths[best];
  }
  return tokens;
}

// Hydra's OverridesVisitor._unescape_quoted_string: only backslashes before a quote are escapes.
std::string unquote(const std::string& token) {
  const char quote = token[0];
  const std::string body = token.substr(1);  // keeps the closing quote, as Hydra's code does
  std::string out;
  size_t at = 0;
  while (at < body.size()) {
    size_t run = at;
    while (run < body.size() && body[run] == '\\') ++run;
    if (run > at && run < body.size() && body[run] == quote) {
      for (size_t k = at + 1; k <= run; k += 2) out += body[k];  // text[start + 1 : stop : 2]
      at = run + 1;
      continue;
    }
    if (at == body.size() - 1 && body[at] == quote) break;  // the closing quote
    out += body[at++];
  }
  return out;
}

// A one-token primitive typed as Hydra types it, written in a form the composer's YAML 1.1 typing reads as
// that same value.
YAML::Node typed_token(const Lexeme& token, const std::string& context) {
  switch (token.type) {
    case Token::Int: {
      try {
        return YAML::Node(std::to_string(std::stoll(without_underscores(token.text))));
      } catch (const std::exception&) {
        fail(context + ": the integer " + token.text + " does not fit in 64 bits");
      }
    }
    case Token::Float: return float_node(python_float_literal(token.text));
    case Token::Bool: return YAML::Node(token.text[0] == 't' || token.text[0] == 'T' ? "true" : "false");
    case Token::Null: return YAML::Node(YAML::NodeType::Null);
    case Token::Quoted: return string_node(unquote(token.text));
    case Token::Escape: {
      std::string out;
      for (size_t k = 1; k < token.text.size(); k += 2) out += token.text[k];
      return string_node(out);
    }
    default: return string_node(token.text);  // ID, INTERPOLATION (resolved later), UNQUOTED_CHAR, COLON
  }
}

class ValueParser {
 public:
  ValueParser(std::vector<Lexeme> tokens, std::string text, std::string context)
      : tokens_(std::move(tokens)), text_(std::move(text)), context_(std::move(context)) {}

  YAML::Node parse() {
    YAML::Node value = element();
    if (at_ < tokens_.size()) {
      unexpected("the end of the value");
    }
    return value;
  }

 private:
  bool peek(Token type) const { return at_ < tokens_.size() && tokens_[at_].type == type; }

  [[noreturn]] void unexpected(const std::string& expected) const {
    if (at_ >= tokens_.size()) {
      fail(context_ + ": the value ends where " + expected + " was expected");
    }
    const Lexeme& token = tokens_[at_];
    const size_t first = token.text.find_first_not_of(" \t");
    std::string what = "whitespace";
    if (first != std::string::npos) {  // the token without the whitespace punctuation tokens carry
      what = std::string(1, '\'');
      what.append(token.text, first, token.text.find_last_not_of(" \t") - first + 1);
      what.push_back('\'');
    }
    fail(context_ + ": unexpected " + what + " at position " + std::to_string(token.begin) + " of the value where " +
         expected + " was expected (Hydra's override grammar; quote the value, or escape the character with a "
         "backslash, for a string)");
  }

  void expect(Token type, const std::string& what) {
    if (!peek(type)) unexpected(what);
    ++at_;
  }

  static bool in_primitive(Token type) {
    switch (type) {
      case Token::Id: case Token::Null: case Token::Int: case Token::Float: case Token::Bool:
      case Token::Interpolation: case Token::UnquotedChar: case Token::Colon: case Token::Escape:
      case Token::Whitespace:
        return true;
      default:
        return false;
    }
  }

  // dictKey: primitive's tokens less COLON and INTERPOLATION.
  static bool in_dict_key(Token type) { return in_primitive(type) && type != Token::Colon && type != Token::Interpolation; }

  // The tokens [first, last) as one primitive: typed when one token remains once the outer whitespace is
  // dropped, else their concatenation (escapes undone) as a string.
  YAML::Node primitive(size_t first, size_t last) {
    if (tokens_[first].type == Token::Whitespace) ++first;
    if (last > first && tokens_[last - 1].type == Token::Whitespace) --last;
    if (first >= last) {
      fail(context_ + ": a value made of whitespace only");
    }
    if (last - first == 1) {
      return typed_token(tokens_[first], context_);
    }
    std::string out;
    for (size_t k = first; k < last; ++k) {
      const std::string& piece = tokens_[k].text;
      if (tokens_[k].type == Token::Escape) {
        for (size_t c = 1; c < piece.size(); c += 2) out += piece[c];
      } else {
        out += piece;
      }
    }
    return string_node(out);
  }

  YAML::Node element() {
    if (peek(Token::BracketOpen)) return list();
    if (peek(Token::BraceOpen)) return dict();
    if (peek(Token::Quoted)) return typed_token(tokens_[at_++], context_);
    if (peek(Token::Id) && at_ + 1 < tokens_.size() && tokens_[at_ + 1].type == Token::ParenOpen) {
      return function();
    }
    const size_t first = at_;
    while (at_ < tokens_.size() && in_primitive(tokens_[at_].type)) ++at_;
    if (at_ == first) unexpected("a value");
    return primitive(first, at_);
  }

  // Hydra's cast functions int(x), float(x), str(x), bool(x) (also with `value=x`), applied to every
  // element of a list and every value of a dict. Several arguments would make a sweep, which needs multirun.
  YAML::Node function() {
    const Lexeme name = tokens_[at_];
    at_ += 2;  // ID '('
    static const std::vector<std::string> casts = {"int", "float", "str", "bool"};
    const bool is_cast = std::find(casts.begin(), casts.end(), name.text) != casts.end();
    const bool is_sweep = name.text == "choice" || name.text == "range" || name.text == "interval" || name.text == "glob";
    if (!is_cast && !is_sweep) {
      fail(context_ + ": unknown function '" + name.text + "' (Hydra's functions: int, float, str, bool; the sweeps "
                      "choice, range, interval, glob)");
    }
    std::vector<YAML::Node> arguments;
    while (!peek(Token::ParenClose)) {
      if (!arguments.empty()) expect(Token::Comma, "',' or ')'");
      if (peek(Token::Id) && at_ + 1 < tokens_.size() && tokens_[at_ + 1].type == Token::Equal) {
        if (tokens_[at_].text != "value" || !is_cast) {
          fail(context_ + ": " + name.text + "() has no argument '" + tokens_[at_].text + "'");
        }
        at_ += 2;
      }
      arguments.push_back(element());
    }
    ++at_;  // ')'
    if (is_sweep || arguments.size() > 1) {
      fail(context_ + ": the value is a sweep, which needs multirun (modgap.config.compose_multirun, "
                      "`modgap config --multirun`); quote it for a string");
    }
    if (arguments.empty()) {
      fail(context_ + ": " + name.text + "() needs a value");
    }
    return cast(name.text, arguments[0]);
  }

  // The scalars typed_token writes: null, "!" strings, true / false, ints in decimal, floats with '.', 'e',
  // or .inf / .nan.
  enum class Kind { Null, String, Bool, Int, Float };
  static Kind kind_of(const YAML::Node& node) {
    if (node.IsNull()) return Kind::Null;
    if (node.Tag() == "!") return Kind::String;
    const std::string& text = node.Scalar();
    if (text == "true" || text == "false") return Kind::Bool;
    return text.find_first_of(".eE") == std::string::npos ? Kind::Int : Kind::Float;
  }

  static double float_of(const std::string& text) {
    if (text == ".inf") return std::numeric_limits<double>::infinity();
    if (text == "-.inf") return -std::numeric_limits<double>::infinity();
    if (text == ".nan") return std::numeric_limits<double>::quiet_NaN();
    return python_float(text);
  }

  YAML::Node cast(const std::string& to, const YAML::Node& value) {
    if (value.IsSequence()) {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& item : value) out.push_back(cast(to, item));
      return out;
    }
    if (value.IsMap()) {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& entry : value) out[entry.first.Scalar()] = cast(to, entry.second);
      return out;
    }
    const Kind kind = kind_of(value);
    const std::string text = kind == Kind::Null ? "None" : value.Scalar();
    const std::string what = context_ + ": cannot cast '" +
                             (kind == Kind::Float ? python_float_repr(float_of(text)) : text) + "' to " + to;
    if (kind == Kind::Null) fail(what);
    if (to == "str") {
      return string_node(kind == Kind::Float ? python_float_repr(float_of(text)) : text);  // bools: true / false
    }
    if (to == "bool") {
      if (kind == Kind::String) {
        std::string lower = text;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (lower != "true" && lower != "false") fail(what);
        return YAML::Node(lower);
      }
      if (kind == Kind::Bool) return YAML::Node(text);
      const double number = kind == Kind::Int ? static_cast<double>(std::stoll(text)) : float_of(text);
      return YAML::Node(number != 0 || std::isnan(number) ? "true" : "false");  // Python: bool(nan) is True
    }
    // int() and float() of a string take Python's literals: surrounding whitespace, a sign, '_' between digits.
    static const std::regex int_text(R"(^\s*[+-]?[0-9](_?[0-9])*\s*$)");
    static const std::regex float_text(
        R"(^\s*[+-]?(([0-9](_?[0-9])*)?\.?[0-9](_?[0-9])*([eE][+-]?[0-9](_?[0-9])*)?|[0-9](_?[0-9])*\.([eE][+-]?[0-9](_?[0-9])*)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*$)");
    double number = 0;
    switch (kind) {
      case Kind::Bool: number = text == "true" ? 1 : 0; break;
      case Kind::Int: number = static_cast<double>(std::stoll(text)); break;
      case Kind::Float: number = float_of(text); break;
      default: {
        if (to == "int") {
          if (!std::regex_match(text, int_text)) fail(what);
          try {
            return YAML::Node(std::to_string(std::stoll(without_underscores(text))));
          } catch (const std::exception&) {
            fail(what + " (beyond 64 bits)");
          }
        }
        if (!std::regex_match(text, float_text)) fail(what);
        return float_node(python_float_literal(text));
      }
    }
    if (to == "float") return float_node(number);
    if (kind == Kind::Int) return YAML::Node(text);
    if (!std::isfinite(number) || std::fabs(number) >= 9.2e18) fail(what);
    return YAML::Node(std::to_string(static_cast<long long>(std::trunc(number))));  // int(2.7) is 2
  }

  YAML::Node list() {
    expect(Token::BracketOpen, "'['");
    YAML::Node out(YAML::NodeType::Sequence);
    if (peek(Token::BracketClose)) {
      ++at_;
      return out;
    }
    out.push_back(element());
    while (peek(Token::Comma)) {
      ++at_;
      out.push_back(element());
    }
    expect(Token::BracketClose, "',' or ']'");
    return out;
  }

  YAML::Node dict() {
    expect(Token::BraceOpen, "'{'");
    YAML::Node out(YAML::NodeType::Map);
    if (peek(Token::BraceClose)) {
      ++at_;
      return out;
    }
    while (true) {
      if (peek(Token::Interpolation)) {
        fail(context_ + ": a dict key cannot be an interpolation");
      }
      const size_t first = at_;
      while (at_ < tokens_.size() && in_dict_key(tokens_[at_].type)) ++at_;
      if (at_ == first) unexpected("a dict key");
      const YAML::Node key = primitive(first, at_);
      expect(Token::Colon, "':' after the dict key");
      // Keys are kept as text (Python would keep an int key an int; the composed config's keys are strings).
      out[key.IsNull() ? std::string("None") : key.Scalar()] = element();
      if (!peek(Token::Comma)) break;
      ++at_;
    }
    expect(Token::BraceClose, "',' or '}'");
    return out;
  }

  std::vector<Lexeme> tokens_;
  std::string text_;
  std::string context_;
  size_t at_ = 0;
};

}  // namespace

YAML::Node parse_hydra_value(const std::string& text, const std::string& context) {
  // The lexer's EQUAL token ('=' WS?) takes the whitespace after '='; an empty value is the empty string.
  const std::string value = text.substr(std::min(text.size(), whitespace_length(text, 0)));
  if (value.empty()) {
    return string_node("");
  }
  return ValueParser(tokenize(value, context), value, context).parse();
}

}  // namespace modgap
