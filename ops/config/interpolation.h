// String interpolation (`${key}`, `${resolver:args}`) read by OmegaConf 2.3's own grammar: see
// interpolation.cpp. The composer (config_compose.cpp) supplies what the grammar cannot know: the config
// tree behind `${key}` and the resolvers.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace modgap {

// A resolved value as the composer's YAML tree holds it (strings tagged "!"), the text str() of it gives in
// Python (what a string interpolation inserts: 1.0, True, None, {'k': 1}), and, for a container taken from
// the config, the path it was taken from (str() of a config node prints its values unresolved).
struct InterpolatedValue {
  YAML::Node node;
  std::string text;
  bool from_config = false;
  std::vector<std::string> source;
  // A container that holds the string being resolved (`${oc.select:''}` selects the root): OmegaConf prints
  // it inside text, unresolved, and recurses without end when it is the whole value.
  bool holds_itself = false;
};

// Whether a value is a string: the host and the grammar tag every string value "!".
inline bool is_string(const InterpolatedValue& value) { return value.node.IsScalar() && value.node.Tag() == "!"; }

class InterpolationHost {
 public:
  virtual ~InterpolationHost() = default;
  // ${key}: `key` as OmegaConf joins it from the parsed tokens (`..a.b`, `a[0]`, nested interpolations
  // already replaced by their strings); `spelled` is the interpolation as written, for messages.
  virtual InterpolatedValue select(const std::string& key, const std::string& spelled) = 0;
  // ${name:arg,...}: the arguments already resolved, in order.
  virtual InterpolatedValue call(const std::string& name, const std::vector<InterpolatedValue>& arguments,
                                 const std::string& spelled) = 0;
  // str() of a value the grammar built (an int, a quoted string, a [list] or {dict} argument).
  virtual std::string text_of(const YAML::Node& node) = 0;
};

// OmegaConf resolves a string value only when it contains "${" (anything else is taken as written).
inline bool has_interpolation(const std::string& text) { return text.find("${") != std::string::npos; }

// The value of a string holding "${", as OmegaConf's `configValue` rule reads it: a lone interpolation
// gives the referenced value itself (type kept), anything else the concatenated string with its escapes
// undone (`\${` and the backslashes before an interpolation). A string outside the grammar throws
// ConfigError naming `where` and the position.
InterpolatedValue resolve_string(const std::string& text, InterpolationHost& host, const std::string& where);

// oc.decode: `text` read as one element of the grammar (an int, float, bool, null, quoted string, [list]
// or {dict}, interpolations resolved), as OmegaConf's `singleElement` rule in VALUE_MODE.
InterpolatedValue decode_element(const std::string& text, InterpolationHost& host, const std::string& where);

}  // namespace modgap
