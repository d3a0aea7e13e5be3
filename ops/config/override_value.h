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

}  // namespace modgap
