// An override's value (the text after `key=`) read by Hydra 1.3's override grammar: see override_value.cpp.
#pragma once

#include <yaml-cpp/yaml.h>

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

}  // namespace modgap
