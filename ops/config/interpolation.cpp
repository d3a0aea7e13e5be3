// String interpolation read by OmegaConf 2.3's grammar (omegaconf/grammar/OmegaConfGrammarLexer.g4 and
// OmegaConfGrammarParser.g4, rule `configValue`) and evaluated as its GrammarVisitor evaluates it. The
// composer used to substitute `${...}` bodies into the string innermost-first; a fuzz against OmegaConf
// found that this re-read escaped text (`\${x}` became the value of x once another key referred to it),
// kept `\\${x}` unresolved, refused `${ x }` and str() of a container, and accepted `${x.}` (and, in the
// composer's key lookup, resolved `${..x}` at the top from the root).
//
// Lexer: five modes, as in the .g4 file. At each position the longest match among the current mode's
// rules wins, ties going to the rule listed first (ANTLR). Modes change on tokens: `${` pushes
// INTERPOLATION, `:` inside an interpolation switches it to VALUE (resolver arguments), `{` pushes VALUE,
// quotes push QUOTED, the closing `}` / quote pops.
//   DEFAULT        INTER_OPEN '${' WS? | ANY_STR ~[$]* ~[\\$] | ESC_INTER (\\\\)* \\${ | TOP_ESC (\\\\)+ |
//                  '\\'+ (ANY_STR) | '$' (ANY_STR)
//   VALUE          INTER_OPEN | '{' WS? | WS? '}' | ' | " | WS? ',' WS? | '[' WS? | WS? ']' | WS? ':' WS? |
//                  FLOAT | INT | BOOL | NULL | UNQUOTED_CHAR [/\-\\+.$%*@?|] | ID | ESC | WS
//   INTERPOLATION  '${' WS? | WS? ':' WS? (COLON) | WS? '}' | '.' | '[' | ']' | ID | INTER_KEY ~[\\{}()[\]:. \t'"]+
//   QUOTED (' / ") INTER_OPEN | the quote | ANY_STR ~[q$]* ~[q\\$] | ESC_INTER | (\\\\)* \\q (ESC) |
//                  QUOTED_ESC (\\\\)+ | '\\'+ (ANY_STR) | '$' (ANY_STR)
// Parser (evaluating as it reads; OmegaConf also resolves every resolver argument before the call):
//   text        := (interpolation | ANY_STR | ESC | ESC_INTER | TOP_ESC | QUOTED_ESC)+
//   interpolation := '${' '.'* (key | '[' key ']') ('.' key | '[' key ']')* '}'      (a config node)
//                  | '${' name ('.' name)* ':' sequence? '}'                         (a resolver call)
//   sequence    := element (',' element?)* | (',' element?)+      (a missing element is "")
//   element     := primitive | quoted | '[' sequence? ']' | '{' (dictKey ':' element (',' ...)*)? '}'
#include "ops/config/interpolation.h"

#include <modgap/config.h>

#include <string>
#include <string_view>
#include <vector>

#include "ops/config/override_syntax.h"
#include "ops/config/override_value.h"

namespace modgap {

namespace {

enum class Mode { Default, Value, Interpolation, QuotedSingle, QuotedDouble };

enum class Token {
  InterOpen, InterClose, BraceOpen, BraceClose, QuoteOpenSingle, QuoteOpenDouble, QuoteClose, Comma,
  BracketOpen, BracketClose, Colon, Float, Int, Bool, Null, UnquotedChar, Id, Esc, Ws, Dot, InterKey,
  AnyStr, EscInter, TopEsc, QuotedEsc
};

enum class ModeChange { None, PushValue, PushInterpolation, PushQuotedSingle, PushQuotedDouble, Pop, SwitchToValue };

struct Rule {
  size_t length;
  Token type;
  ModeChange change = ModeChange::None;
};

struct Lexeme {
  Token type;
  size_t begin;
  std::string text;
};

class Lexer {
 public:
  Lexer(const std::string& text, const std::string& where) : text_(text), where_(where) {}

  std::vector<Lexeme> tokens(Mode first = Mode::Default) {
    std::vector<Lexeme> out;
    std::vector<Mode> modes{first};
    size_t at = 0;
    while (at < text_.size()) {
      const std::vector<Rule> rules = rules_of(modes.back(), at);
      const Rule* best = nullptr;
      for (const Rule& rule : rules) {
        if (rule.length > 0 && (best == nullptr || rule.length > best->length)) best = &rule;
      }
      if (best == nullptr) {
        size_t end = at + 1;  // the whole UTF-8 sequence, for the message
        while (end < text_.size() && (static_cast<unsigned char>(text_[end]) & 0xC0) == 0x80) ++end;
        throw ConfigError(where_ + ": '" + text_.substr(at, end - at) + "' at position " + std::to_string(at) +
                          " of '" + text_ + "' is not allowed there (OmegaConf's interpolation grammar; quote a "
                          "resolver argument, or escape the character with a backslash)");
      }
      out.push_back({best->type, at, text_.substr(at, best->length)});
      at += best->length;
      switch (best->change) {
        case ModeChange::None: break;
        case ModeChange::PushValue: modes.push_back(Mode::Value); break;
        case ModeChange::PushInterpolation: modes.push_back(Mode::Interpolation); break;
        case ModeChange::PushQuotedSingle: modes.push_back(Mode::QuotedSingle); break;
        case ModeChange::PushQuotedDouble: modes.push_back(Mode::QuotedDouble); break;
        case ModeChange::SwitchToValue: modes.back() = Mode::Value; break;
        case ModeChange::Pop:
          modes.pop_back();
          if (modes.empty()) {
            throw ConfigError(where_ + ": unbalanced '" + out.back().text + "' at position " +
                              std::to_string(out.back().begin) + " of '" + text_ + "'");
          }
          break;
      }
    }
    return out;
  }

 private:
  size_t whitespace(size_t at) const { return whitespace_length(text_, at); }

  size_t punctuation(size_t at, char c, bool space_before, bool space_after) const {
    return punctuation_length(text_, at, c, space_before, space_after);
  }

  size_t inter_open(size_t at) const {
    return text_.compare(at, 2, "${") == 0 ? 2 + whitespace(at + 2) : 0;
  }

  size_t backslashes(size_t at) const {
    size_t end = at;
    while (end < text_.size() && text_[end] == '\\') ++end;
    return end - at;
  }

  // ~[stop]* ~[\\ stop]: the longest run free of `stop` characters that does not end with a backslash.
  size_t plain_text(size_t at, const char* stop) const {
    size_t end = at;
    while (end < text_.size() && std::string_view(stop).find(text_[end]) == std::string_view::npos) ++end;
    while (end > at && text_[end - 1] == '\\') --end;
    return end - at;
  }

  // ESC_INTER: an odd number of backslashes, then ${ (the last backslash escapes the interpolation).
  size_t escaped_interpolation(size_t at) const {
    const size_t run = backslashes(at);
    return run % 2 == 1 && text_.compare(at + run, 2, "${") == 0 ? run + 2 : 0;
  }

  size_t escaped_quote(size_t at, char quote) const {
    const size_t run = backslashes(at);
    return run % 2 == 1 && at + run < text_.size() && text_[at + run] == quote ? run + 1 : 0;
  }

  size_t backslash_pairs(size_t at) const { return backslashes(at) / 2 * 2; }

  std::vector<Rule> rules_of(Mode mode, size_t at) const {
    const ValueTokenPatterns& value = value_token_patterns();  // VALUE_MODE's rules, shared with Hydra's grammar
    const char c = text_[at];
    switch (mode) {
      case Mode::Default:
        return {{inter_open(at), Token::InterOpen, ModeChange::PushInterpolation},
                {plain_text(at, "$"), Token::AnyStr},
                {escaped_interpolation(at), Token::EscInter},
                {backslash_pairs(at), Token::TopEsc},
                {backslashes(at), Token::AnyStr},
                {c == '$' ? 1u : 0u, Token::AnyStr}};
      case Mode::Value:
        return {{inter_open(at), Token::InterOpen, ModeChange::PushInterpolation},
                {punctuation(at, '{', false, true), Token::BraceOpen, ModeChange::PushValue},
                {punctuation(at, '}', true, false), Token::BraceClose, ModeChange::Pop},
                {c == '\'' ? 1u : 0u, Token::QuoteOpenSingle, ModeChange::PushQuotedSingle},
                {c == '"' ? 1u : 0u, Token::QuoteOpenDouble, ModeChange::PushQuotedDouble},
                {punctuation(at, ',', true, true), Token::Comma},
                {punctuation(at, '[', false, true), Token::BracketOpen},
                {punctuation(at, ']', true, false), Token::BracketClose},
                {punctuation(at, ':', true, true), Token::Colon},
                {regex_length(text_, at, value.float_re), Token::Float},
                {regex_length(text_, at, value.int_re), Token::Int},
                {regex_length(text_, at, value.bool_re), Token::Bool},
                {regex_length(text_, at, value.null_re), Token::Null},
                {value.unquoted_chars.find(c) != std::string::npos ? 1u : 0u, Token::UnquotedChar},
                {regex_length(text_, at, value.id_re), Token::Id},
                {regex_length(text_, at, value.escape_re), Token::Esc},
                {whitespace(at), Token::Ws}};
      case Mode::Interpolation: {
        size_t key = 0;
        while (at + key < text_.size() && std::string_view("\\{}()[]:. \t'\"").find(text_[at + key]) == std::string_view::npos) ++key;
        return {{inter_open(at), Token::InterOpen, ModeChange::PushInterpolation},
                {punctuation(at, ':', true, true), Token::Colon, ModeChange::SwitchToValue},
                {punctuation(at, '}', true, false), Token::InterClose, ModeChange::Pop},
                {c == '.' ? 1u : 0u, Token::Dot},
                {c == '[' ? 1u : 0u, Token::BracketOpen},
                {c == ']' ? 1u : 0u, Token::BracketClose},
                {regex_length(text_, at, value.id_re), Token::Id},
                {key, Token::InterKey}};
      }
      case Mode::QuotedSingle:
      case Mode::QuotedDouble: {
        const char quote = mode == Mode::QuotedSingle ? '\'' : '"';
        const char stop[] = {quote, '$', '\0'};
        return {{inter_open(at), Token::InterOpen, ModeChange::PushInterpolation},
                {c == quote ? 1u : 0u, Token::QuoteClose, ModeChange::Pop},
                {plain_text(at, stop), Token::AnyStr},
                {escaped_interpolation(at), Token::EscInter},
                {escaped_quote(at, quote), Token::Esc},
                {backslash_pairs(at), Token::QuotedEsc},
                {backslashes(at), Token::AnyStr},
                {c == '$' ? 1u : 0u, Token::AnyStr}};
      }
    }
    return {};
  }

  const std::string& text_;
  const std::string& where_;
};

// Every second character: `\\` -> `\`, `\,` -> `,` (the visitor's text[1::2]).
std::string unescaped(const std::string& text) {
  std::string out;
  for (size_t k = 1; k < text.size(); k += 2) out += text[k];
  return out;
}

class Evaluator {
 public:
  Evaluator(std::vector<Lexeme> tokens, const std::string& text, InterpolationHost& host, const std::string& where)
      : tokens_(std::move(tokens)), text_(text), host_(host), where_(where) {}

  InterpolatedValue config_value() {
    InterpolatedValue value = composite_text(/*quoted=*/false);
    if (at_ < tokens_.size()) unexpected("the end of the string");
    return value;
  }

  InterpolatedValue single_element() {
    if (!starts_element()) unexpected("a value");
    InterpolatedValue value = element();
    if (at_ < tokens_.size()) unexpected("the end of the value");
    return value;
  }

 private:
  bool peek(Token type) const { return at_ < tokens_.size() && tokens_[at_].type == type; }

  [[noreturn]] void unexpected(const std::string& expected) const {
    if (at_ >= tokens_.size()) {
      throw ConfigError(where_ + ": '" + text_ + "' ends where " + expected +
                        " was expected (OmegaConf's interpolation grammar)");
    }
    const Lexeme& token = tokens_[at_];
    throw ConfigError(where_ + ": unexpected '" + token.text + "' at position " + std::to_string(token.begin) +
                      " of '" + text_ + "' where " + expected + " was expected (OmegaConf's interpolation grammar)");
  }

  void expect(Token type, const std::string& what) {
    if (!peek(type)) unexpected(what);
    ++at_;
  }

  InterpolatedValue built(YAML::Node node) {
    InterpolatedValue value;
    value.text = host_.text_of(node);
    value.node = std::move(node);
    return value;
  }

  InterpolatedValue string_value(const std::string& text) {
    InterpolatedValue value;
    value.node = string_node(text);
    value.text = text;
    return value;
  }

  // A token of the text, or an interpolation (resolved) in its place.
  struct Part {
    Token type;
    std::string text;
    bool interpolated = false;
    InterpolatedValue value;
  };

  // text: a lone interpolation is its value; anything else concatenates, undoing the escapes as
  // GrammarVisitor._unescape does (an escaped interpolation keeps `${` and half its backslashes; at the
  // top level backslash pairs are halved only before an interpolation, in quotes also at the end).
  InterpolatedValue composite_text(bool quoted) {
    std::vector<Part> pieces;
    while (at_ < tokens_.size()) {
      const Token type = tokens_[at_].type;
      if (type == Token::InterOpen) {
        pieces.push_back({type, "", true, interpolation()});
      } else if (type == Token::AnyStr || type == Token::Esc || type == Token::EscInter || type == Token::TopEsc ||
                 type == Token::QuotedEsc) {
        pieces.push_back({type, tokens_[at_++].text, false, {}});
      } else {
        break;
      }
    }
    if (pieces.empty()) unexpected(quoted ? "text or the closing quote" : "text");
    if (pieces.size() == 1 && pieces[0].interpolated) return pieces[0].value;
    std::string out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Part& piece = pieces[i];
      const bool before_interpolation = i + 1 < pieces.size() && pieces[i + 1].interpolated;
      const bool last = i + 1 == pieces.size();
      if (piece.interpolated) {
        out += piece.value.text;  // str() of the value, not escaped again
      } else if (piece.type == Token::EscInter) {
        out += piece.text.substr(piece.text.size() - (piece.text.size() / 2 + 1));
      } else if (piece.type == Token::Esc || (piece.type == Token::TopEsc && before_interpolation) ||
                 (piece.type == Token::QuotedEsc && (last || before_interpolation))) {
        out += unescaped(piece.text);
      } else {
        out += piece.text;
      }
    }
    return string_value(out);
  }

  InterpolatedValue interpolation() {
    const size_t begin = tokens_[at_].begin;
    expect(Token::InterOpen, "'${'");
    std::vector<Part> items;
    for (;;) {
      if (peek(Token::InterOpen)) {
        items.push_back({Token::Id, "", true, interpolation()});
      } else if (peek(Token::Dot) || peek(Token::BracketOpen) || peek(Token::BracketClose) || peek(Token::Id) ||
                 peek(Token::InterKey)) {
        items.push_back({tokens_[at_].type, tokens_[at_].text, false, {}});
        ++at_;
      } else {
        break;
      }
    }
    // A key part or a resolver-name part given by a nested interpolation must resolve to a string.
    auto part_text = [&](const Part& item, const char* role) {
      if (!item.interpolated) return item.text;
      if (!is_string(item.value)) {
        throw ConfigError(where_ + ": a nested interpolation in '" + text_ + "' denotes " + role +
                          " and must give a string, not " + item.value.text);
      }
      return item.value.text;
    };
    const auto is_name = [](const Part& item) { return item.interpolated || item.type == Token::Id; };
    const auto is_key = [](const Part& item) { return item.interpolated || item.type == Token::Id || item.type == Token::InterKey; };
    if (peek(Token::Colon)) {
      // resolverName: (interpolation | ID) ('.' (interpolation | ID))*
      std::string name;
      bool valid = !items.empty() && items.size() % 2 == 1;
      for (size_t i = 0; valid && i < items.size(); ++i) {
        valid = i % 2 == 0 ? is_name(items[i]) : items[i].type == Token::Dot && !items[i].interpolated;
        if (valid) name += i % 2 == 0 ? part_text(items[i], "a resolver name") : ".";
      }
      if (!valid) {
        throw ConfigError(where_ + ": '" + text_.substr(begin, tokens_[at_].begin - begin) +
                          "' is not a resolver name (OmegaConf's interpolation grammar: name or name.name...)");
      }
      ++at_;
      std::vector<InterpolatedValue> arguments = sequence();
      const size_t close = at_;
      expect(Token::BraceClose, "'}' closing the resolver call");
      const std::string spelled = text_.substr(begin, tokens_[close].begin + tokens_[close].text.size() - begin);
      return host_.call(name, arguments, spelled);
    }
    // interpolationNode: '.'* (key | '[' key ']') ('.' key | '[' key ']')*
    size_t i = 0;
    std::string key;
    while (i < items.size() && items[i].type == Token::Dot && !items[i].interpolated) {
      key += '.';
      ++i;
    }
    bool valid = i < items.size();
    bool first = true;
    while (valid && i < items.size()) {
      const Part& item = items[i];
      if (!item.interpolated && item.type == Token::BracketOpen) {
        valid = i + 2 < items.size() && is_key(items[i + 1]) && !items[i + 2].interpolated &&
                items[i + 2].type == Token::BracketClose;
        if (valid) key += "[" + part_text(items[i + 1], "a config key") + "]";
        i += 3;
      } else if (first && is_key(item)) {
        key += part_text(item, "a config key");
        i += 1;
      } else if (!first && !item.interpolated && item.type == Token::Dot) {
        valid = i + 1 < items.size() && is_key(items[i + 1]);
        if (valid) key += "." + part_text(items[i + 1], "a config key");
        i += 2;
      } else {
        valid = false;
      }
      first = false;
    }
    if (!valid || !peek(Token::InterClose)) {
      if (valid) unexpected("'}' closing the interpolation");
      const size_t end = at_ < tokens_.size() ? tokens_[at_].begin + tokens_[at_].text.size() : text_.size();
      throw ConfigError(where_ + ": '" + text_.substr(begin, end - begin) + "' in '" + text_ +
                        "' is not a config key (OmegaConf's interpolation grammar: ${a.b}, ${a[0]}, ${..a})");
    }
    const size_t close = at_++;
    const std::string spelled = text_.substr(begin, tokens_[close].begin + tokens_[close].text.size() - begin);
    return host_.select(key, spelled);
  }

  static bool starts_primitive(Token type) {
    switch (type) {
      case Token::Id: case Token::Null: case Token::Int: case Token::Float: case Token::Bool:
      case Token::UnquotedChar: case Token::Colon: case Token::Esc: case Token::Ws: case Token::InterOpen:
        return true;
      default:
        return false;
    }
  }

  bool starts_element() const {
    if (at_ >= tokens_.size()) return false;
    const Token type = tokens_[at_].type;
    return starts_primitive(type) || type == Token::QuoteOpenSingle || type == Token::QuoteOpenDouble ||
           type == Token::BracketOpen || type == Token::BraceOpen;
  }

  // sequence: a comma with no element before it (or a trailing one) stands for "" (OmegaConf warns).
  std::vector<InterpolatedValue> sequence() {
    std::vector<InterpolatedValue> out;
    bool any = false;
    bool after_comma = true;
    for (;;) {
      if (peek(Token::Comma)) {
        if (after_comma) out.push_back(string_value(""));
        after_comma = true;
        any = true;
        ++at_;
      } else if (after_comma && starts_element()) {  // elements are separated by commas
        out.push_back(element());
        after_comma = false;
        any = true;
      } else {
        break;
      }
    }
    if (any && after_comma) out.push_back(string_value(""));
    return out;
  }

  InterpolatedValue element() {
    if (peek(Token::QuoteOpenSingle) || peek(Token::QuoteOpenDouble)) {
      ++at_;
      if (peek(Token::QuoteClose)) {
        ++at_;
        return string_value("");
      }
      const InterpolatedValue inside = composite_text(/*quoted=*/true);
      expect(Token::QuoteClose, "the closing quote");
      return string_value(inside.text);  // str() of the text, even of a lone interpolation
    }
    if (peek(Token::BracketOpen)) {
      ++at_;
      YAML::Node list(YAML::NodeType::Sequence);
      for (const InterpolatedValue& item : sequence()) list.push_back(item.node);
      expect(Token::BracketClose, "',' or ']'");
      return built(list);
    }
    if (peek(Token::BraceOpen)) {
      ++at_;
      YAML::Node dict(YAML::NodeType::Map);
      while (!peek(Token::BraceClose)) {
        const std::string key = host_.text_of(primitive(/*dict_key=*/true).node);
        expect(Token::Colon, "':' after a dict key");
        if (!starts_element()) unexpected("a value");
        dict[key] = element().node;
        if (!peek(Token::Comma)) break;
        ++at_;
      }
      expect(Token::BraceClose, "',' or '}' in a dict");
      return built(dict);
    }
    if (!starts_element()) unexpected("a value");
    return primitive(/*dict_key=*/false);
  }

  // primitive (and dictKey, which has no ':' and no interpolation): one token is typed (int, float,
  // bool, null, a string); several concatenate into a string, escapes undone.
  InterpolatedValue primitive(bool dict_key) {
    std::vector<Part> pieces;
    while (at_ < tokens_.size() && starts_primitive(tokens_[at_].type)) {
      const Token type = tokens_[at_].type;
      if (dict_key && (type == Token::Colon || type == Token::InterOpen)) break;
      if (type == Token::InterOpen) {
        pieces.push_back({type, "", true, interpolation()});
      } else {
        pieces.push_back({type, tokens_[at_++].text, false, {}});
      }
    }
    if (pieces.empty()) unexpected(dict_key ? "a dict key" : "a value");
    if (pieces.size() == 1) {
      if (pieces[0].interpolated) return pieces[0].value;
      const Part& token = pieces[0];
      switch (token.type) {
        case Token::Null: return built(YAML::Node(YAML::NodeType::Null));
        case Token::Bool: return built(YAML::Node(token.text[0] == 't' || token.text[0] == 'T' ? "true" : "false"));
        case Token::Float: return built(float_node(python_float_literal(token.text)));
        case Token::Int: {
          try {
            return built(YAML::Node(std::to_string(std::stoll(without_underscores(token.text)))));
          } catch (const std::exception&) {
            throw ConfigError(where_ + ": the integer " + token.text + " in '" + text_ + "' does not fit in 64 bits");
          }
        }
        case Token::Esc: return string_value(unescaped(token.text));
        case Token::Ws:  // (OmegaConf fails an assertion here: whitespace is otherwise always part of another token)
          throw ConfigError(where_ + ": a value made of whitespace only in '" + text_ + "'");
        default: return string_value(token.text);  // ID, UNQUOTED_CHAR, COLON
      }
    }
    std::string out;
    for (const Part& piece : pieces) {
      if (piece.interpolated) {
        out += piece.value.text;
      } else {
        out += piece.type == Token::Esc ? unescaped(piece.text) : piece.text;
      }
    }
    return string_value(out);
  }

  std::vector<Lexeme> tokens_;
  const std::string& text_;
  InterpolationHost& host_;
  const std::string& where_;
  size_t at_ = 0;
};

}  // namespace

InterpolatedValue resolve_string(const std::string& text, InterpolationHost& host, const std::string& where) {
  return Evaluator(Lexer(text, where).tokens(), text, host, where).config_value();
}

InterpolatedValue decode_element(const std::string& text, InterpolationHost& host, const std::string& where) {
  return Evaluator(Lexer(text, where).tokens(Mode::Value), text, host, where).single_element();
}

}  // namespace modgap
