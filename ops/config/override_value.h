// An override's value (the text after `key=`) read by Hydra 1.3's override grammar: see override_value.cpp.
#pragma once

#include <yaml-cpp/yaml.h>

#include <regex>
#include <string>

namespace modgap {

// The value as the composer's YAML tree holds it: [lists] as sequences, {dicts} as maps, strings tagged
// "!" (never retyped), ints / floats / booleans / null as plain scalars the YAML 1.1 typing reads as the
// value Hydra gives them. Interpolations stay in the strings, resolved with the rest of the config. A
// value outside the grammar throws ConfigError naming `context` and the position.
YAML::Node parse_hydra_value(const std::string& text, const std::string& context);

// Scalars as the composer's tree holds them, shared with the interpolation grammar (interpolation.cpp):
// a string tagged "!" (never retyped), a float in a form the YAML 1.1 typing reads back as that float.
YAML::Node string_node(const std::string& text);
YAML::Node float_node(double value);

// Python's float() of a FLOAT token of Hydra's or OmegaConf's grammar (sign, '_', inf / nan in any case).
double python_float_literal(const std::string& text);

// Token rules Hydra's override grammar (OverrideLexer.g4) and OmegaConf's interpolation grammar
// (OmegaConfGrammarLexer.g4, VALUE_MODE) share: Hydra's copies OmegaConf's. Each *_length is the length of
// the match starting at `at`, 0 for none.
struct ValueTokenPatterns {
  std::regex float_re;  // FLOAT: 1.5, 1e3, .5, 1_0.0, inf, nan (any case, signed)
  std::regex int_re;    // INT: 0, -12, 1_000
  std::regex bool_re;   // BOOL: true / false, any case
  std::regex null_re;   // NULL: null, any case
  std::regex id_re;     // ID: [a-zA-Z_][a-zA-Z0-9_-]*
  std::regex escape_re; // ESC: runs of \\ \( \) \[ \] \{ \} \: \= \, \<space> \<tab>
  std::string unquoted_chars;  // UNQUOTED_CHAR: / - \ + . $ % * @ ? |
};
const ValueTokenPatterns& value_token_patterns();
size_t regex_length(const std::string& text, size_t at, const std::regex& pattern);
size_t whitespace_length(const std::string& text, size_t at);  // WS: [ \t]+
// WS? c WS?, each whitespace optional per rule (COMMA: WS? ',' WS?, BRACKET_OPEN: '[' WS?, ...).
size_t punctuation_length(const std::string& text, size_t at, char c, bool space_before, bool space_after);

}  // namespace modgap
