// Hydra-style config composition with yaml-cpp (see include/modgap/config.h for the supported subset and
// ../shared/notes/style-perf.md §6 for the Hydra/OmegaConf rules it follows).
//
// Algorithm (Hydra's, simplified):
//   1. command-line overrides are split into defaults-list overrides (the key names a config group, i.e.
//      a directory under config_dir) and value overrides;
//   2. the defaults tree is expanded depth-first from the primary config. `override` entries found in
//      any config, and the command line's `group=option` (highest priority), form a table of group
//      selections; since an `override` can sit in a config expanded after the group it overrides (an
//      experiment listed last), expansion is repeated until the table no longer changes;
//   3. the configs are merged in the resulting order (each config's own body at its `_self_` position),
//      each placed at its package;
//   4. value overrides are applied, then every interpolation is resolved.
#include <modgap/config.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "ops/common/json.h"
#include "ops/config/interpolation.h"
#include "ops/config/override_syntax.h"
#include "ops/config/override_value.h"

namespace modgap {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& message) { throw ConfigError(message); }

std::vector<std::string> split_path(const std::string& path, char separator = '.') {
  std::vector<std::string> parts;
  std::string part;
  std::stringstream stream(path);
  while (std::getline(stream, part, separator)) {
    if (!part.empty()) {
      parts.push_back(part);
    }
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    out += (i ? separator : "") + parts[i];
  }
  return out;
}

bool is_missing(const YAML::Node& node) { return node.IsScalar() && node.Scalar() == "???" && node.Tag() != "!"; }

std::string kind_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    default: return "a scalar";
  }
}

// ---- scalar types ----
// Values read from YAML files are typed as OmegaConf's loader types them: YAML 1.1 (PyYAML's SafeLoader:
// yes/no/on/off are booleans, 010 is octal, 0x10 hex, 1:30 sexagesimal) plus OmegaConf's wider float
// pattern (1e-3 is a float), no timestamps. Override values follow Hydra's override grammar instead
// (hydra_typed below): yes is a string there, 1_000 an int, inf a float.
struct TypedScalar {
  enum class Kind { Null, Bool, Int, Float, String } kind = Kind::String;
  bool boolean = false;
  long long integer = 0;
  double real = 0;
  std::string text;

  bool operator==(const TypedScalar& other) const {
    if (kind != other.kind) return false;
    switch (kind) {
      case Kind::Null: return true;
      case Kind::Bool: return boolean == other.boolean;
      case Kind::Int: return integer == other.integer;
      case Kind::Float: return real == other.real || (std::isnan(real) && std::isnan(other.real));
      case Kind::String: return text == other.text;
    }
    return false;
  }
};

// PyYAML's construct_yaml_int / construct_yaml_float; nullopt when the digits do not fit.
std::optional<long long> yaml11_int(const std::string& raw) {
  std::string value = without_underscores(raw);
  long long sign = 1;
  if (!value.empty() && (value[0] == '-' || value[0] == '+')) {
    sign = value[0] == '-' ? -1 : 1;
    value = value.substr(1);
  }
  try {
    if (value == "0") return 0;
    if (value.rfind("0b", 0) == 0) return sign * std::stoll(value.substr(2), nullptr, 2);
    if (value.rfind("0x", 0) == 0) return sign * std::stoll(value.substr(2), nullptr, 16);
    if (value[0] == '0') return sign * std::stoll(value, nullptr, 8);
    if (value.find(':') != std::string::npos) {
      long long total = 0;
      for (const auto& part : split_path(value, ':')) total = total * 60 + std::stoll(part);
      return sign * total;
    }
    return sign * std::stoll(value);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

double yaml11_float(const std::string& raw) {
  std::string value = without_underscores(raw);
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  double sign = 1;
  if (value[0] == '-' || value[0] == '+') {
    sign = value[0] == '-' ? -1 : 1;
    value = value.substr(1);
  }
  if (value == ".inf") return sign * std::numeric_limits<double>::infinity();
  if (value == ".nan") return std::numeric_limits<double>::quiet_NaN();
  if (value.find(':') != std::string::npos) {
    double total = 0;
    for (const auto& part : split_path(value, ':')) total = total * 60 + python_float(part);
    return sign * total;
  }
  return sign * python_float(value);
}

TypedScalar typed_scalar(const YAML::Node& node) {
  TypedScalar out;
  if (!node.IsDefined() || node.IsNull()) {
    out.kind = TypedScalar::Kind::Null;
    return out;
  }
  out.text = node.Scalar();
  if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
    return out;  // quoted in YAML, or produced as a string
  }
  if (node.Tag() == "tag:yaml.org,2002:float") {  // `!!float 1` is 1.0, as PyYAML's construct_yaml_float
    static const std::regex tagged_float_re(
        R"(^[-+]?([0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9][0-9_]*([eE][-+]?[0-9]+)?|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
    if (!std::regex_match(out.text, tagged_float_re)) {
      fail("`!!float " + out.text + "`: not a number");
    }
    out.kind = TypedScalar::Kind::Float;
    out.real = yaml11_float(out.text);
    return out;
  }
  const std::string& text = out.text;
  // PyYAML's resolvers in their order (bool, SafeLoader float, int, null), then OmegaConf's float.
  static const std::regex bool_re("^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$");
  static const std::regex safe_float_re(
      R"(^([-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)?|\.[0-9][0-9_]*([eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
  static const std::regex int_re(
      R"(^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$)");
  static const std::regex null_re("^(~|null|Null|NULL|)$");
  static const std::regex omegaconf_float_re(
      R"(^([-+]?[0-9]+(_[0-9]+)*\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9]+(_[0-9]+)*([eE][-+]?[0-9]+)|\.[0-9]+(_[0-9]+)*([eE][-+][0-9]+)?|[-+]?[0-9]+(_[0-9]+)*(:[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
  if (std::regex_match(text, bool_re)) {
    out.kind = TypedScalar::Kind::Bool;
    out.boolean = text[0] == 'y' || text[0] == 'Y' || text[0] == 't' || text[0] == 'T' ||
                  ((text[0] == 'o' || text[0] == 'O') && (text[1] == 'n' || text[1] == 'N'));
  } else if (std::regex_match(text, safe_float_re)) {
    out.kind = TypedScalar::Kind::Float;
    out.real = yaml11_float(text);
  } else if (std::regex_match(text, int_re)) {
    if (const auto value = yaml11_int(text)) {
      out.kind = TypedScalar::Kind::Int;
      out.integer = *value;
    }
  } else if (std::regex_match(text, null_re)) {
    out.kind = TypedScalar::Kind::Null;
  } else if (std::regex_match(text, omegaconf_float_re)) {
    out.kind = TypedScalar::Kind::Float;
    out.real = yaml11_float(text);
  }
  return out;
}

// What str() of the value prints in Python: how OmegaConf inserts a value into a string interpolation.
std::string python_str(const TypedScalar& value) {
  switch (value.kind) {
    case TypedScalar::Kind::Null: return "None";
    case TypedScalar::Kind::Bool: return value.boolean ? "True" : "False";
    case TypedScalar::Kind::Int: return std::to_string(value.integer);
    case TypedScalar::Kind::Float: return python_float_repr(value.real);
    case TypedScalar::Kind::String: return value.text;
  }
  return value.text;
}

// ---- merge (OmegaConf.merge): mappings deep-merge, everything else is replaced, ??? never overwrites ----
void merge_into(YAML::Node destination, const YAML::Node& source) {
  for (const auto& entry : source) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    YAML::Node existing = destination[key];
    if (existing.IsDefined() && !existing.IsNull() && is_missing(value)) {
      continue;
    }
    if (existing.IsDefined() && existing.IsMap() && value.IsMap()) {
      merge_into(existing, value);
    } else {
      destination[key] = YAML::Clone(value);
    }
  }
}

YAML::Node wrap_in_package(const YAML::Node& body, const std::string& package) {
  YAML::Node wrapped = YAML::Clone(body);
  const auto parts = split_path(package);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    YAML::Node outer(YAML::NodeType::Map);
    outer[*it] = wrapped;
    wrapped = outer;
  }
  return wrapped;
}

// ---- files ----

struct LoadedConfig {
  YAML::Node body;                    // without `defaults`
  YAML::Node defaults;                // the defaults list (undefined if none)
  std::optional<std::string> header;  // `# @package X`
  std::string file;
};

// YAML 1.1 merge keys as OmegaConf reads them: in a mapping, `<<: *base` (or a list of aliased mappings)
// adds the merged mappings' entries that the mapping does not set itself; of several merged mappings the
// earlier ones win. Keys come out in OmegaConf's order (the merged keys first, mapping by mapping, then the
// mapping's own; an own key that overrides a merged one keeps the merged key's place; tested against
// OmegaConf). yaml-cpp keeps `<<` as a plain key and aliases as shared nodes, so the result is built afresh.
// Keys must be scalars (OmegaConf rejects a complex key too; it would otherwise become an empty string).
YAML::Node resolve_merge_keys(const YAML::Node& node, const std::string& file) {
  if (node.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : node) out.push_back(resolve_merge_keys(item, file));
    return out;
  }
  if (!node.IsMap()) {
    return node;
  }
  // A plain `<<` key (a quoted '<<' is an ordinary key).
  const auto is_merge_key = [](const YAML::Node& key) { return key.Scalar() == "<<" && key.Tag() != "!"; };
  std::vector<std::pair<std::string, YAML::Node>> entries;  // in OmegaConf's order
  std::vector<YAML::Node> merged;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      fail(file + ": a mapping key must be a scalar, got " + kind_name(entry.first));
    }
    if (is_merge_key(entry.first)) {
      if (entry.second.IsMap()) {
        merged.push_back(entry.second);
      } else if (entry.second.IsSequence()) {
        for (const auto& item : entry.second) {
          if (!item.IsMap()) fail(file + ": a merge key `<<` takes a mapping or a list of mappings");
          merged.push_back(item);
        }
      } else {
        fail(file + ": a merge key `<<` takes a mapping or a list of mappings, got " + kind_name(entry.second));
      }
    }
  }
  std::set<std::string> from_merges;
  for (const auto& source : merged) {
    for (const auto& entry : resolve_merge_keys(source, file)) {
      if (from_merges.insert(entry.first.Scalar()).second) {  // an earlier merged mapping wins
        entries.emplace_back(entry.first.Scalar(), entry.second);
      }
    }
  }
  for (const auto& entry : node) {
    if (!is_merge_key(entry.first)) {
      entries.emplace_back(entry.first.Scalar(), resolve_merge_keys(entry.second, file));
    }
  }
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& [key, value] : entries) out[key] = value;  // an own key overriding a merged one keeps its place
  return out;
}

LoadedConfig load_config_file(const fs::path& path) {
  LoadedConfig loaded;
  loaded.file = path.string();
  std::ifstream input(path);
  if (!input) {
    fail(loaded.file + ": cannot read the config file");
  }
  std::string line;
  while (std::getline(input, line)) {  // the header must precede the content (comments/blank lines allowed)
    static const std::regex header(R"(^\s*#\s*@package\s+(\S+)\s*$)");
    std::smatch match;
    if (std::regex_match(line, match, header)) {
      loaded.header = match[1];
      break;
    }
    if (!line.empty() && line.find_first_not_of(" \t") != std::string::npos && line[line.find_first_not_of(" \t")] != '#') {
      break;
    }
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& error) {
    fail(loaded.file + ": invalid YAML: " + error.what());
  }
  if (root.IsNull() || !root.IsDefined()) {
    root = YAML::Node(YAML::NodeType::Map);
  }
  if (!root.IsMap()) {
    fail(loaded.file + ": a config file must hold a mapping at the top level, got " + kind_name(root));
  }
  root = resolve_merge_keys(root, loaded.file);
  loaded.body = YAML::Node(YAML::NodeType::Map);
  for (const auto& entry : root) {
    if (entry.first.Scalar() == "defaults") {
      loaded.defaults = entry.second;
      if (!loaded.defaults.IsSequence()) {
        fail(loaded.file + ": `defaults` must be a list, got " + kind_name(loaded.defaults));
      }
    } else {
      loaded.body[entry.first.Scalar()] = entry.second;
    }
  }
  return loaded;
}

std::vector<std::string> options_of_group(const fs::path& config_dir, const std::string& group) {
  std::vector<std::string> options;
  const fs::path directory = config_dir / group;
  if (fs::is_directory(directory)) {
    for (const auto& file : fs::directory_iterator(directory)) {
      if (file.path().extension() == ".yaml") {
        options.push_back(file.path().stem().string());
      }
    }
  }
  std::sort(options.begin(), options.end());
  return options;
}

// ---- command-line overrides ----

struct Override {
  enum class Kind { Set, Add, Upsert, Delete } kind = Kind::Set;
  std::string key;
  std::optional<std::string> value;
  std::string text;  // as given, for messages
};

Override parse_override(const std::string& text) {
  Override parsed;
  parsed.text = text;
  std::string rest = text;
  if (rest.rfind("++", 0) == 0) {
    parsed.kind = Override::Kind::Upsert;
    rest = rest.substr(2);
  } else if (rest.rfind("+", 0) == 0) {
    parsed.kind = Override::Kind::Add;
    rest = rest.substr(1);
  } else if (rest.rfind("~", 0) == 0) {
    parsed.kind = Override::Kind::Delete;
    rest = rest.substr(1);
  }
  const auto equals = rest.find('=');
  parsed.key = rest.substr(0, equals);
  if (equals != std::string::npos) {
    parsed.value = rest.substr(equals + 1);
  }
  if (parsed.key.empty()) {
    fail("override '" + text + "': the key is empty (expected key=value)");
  }
  if (!parsed.value && parsed.kind != Override::Kind::Delete) {
    fail("override '" + text + "': expected key=value (or ~key to delete)");
  }
  return parsed;
}

// An override value: Hydra's override grammar (override_value.cpp). A sweep (`a,b`, `choice(a,b)`,
// `range(...)`) is Hydra multirun syntax: compose_multirun expands it into jobs; here it is an error.
void reject_sweep(const Override& override_) {
  const std::string context = "override '" + override_.text + "'";
  static const std::regex sweep_function(R"(^\s*(choice|range|glob|interval)\s*\([\s\S]*\)\s*$)");
  if (override_.value && (split_top_level_commas(*override_.value, context).size() > 1 ||
                          std::regex_match(*override_.value, sweep_function))) {
    fail(context + ": the value is a sweep, which needs multirun (modgap.config.compose_multirun, "
                   "`modgap config --multirun`); quote it for a string");
  }
}

YAML::Node parse_override_value(const Override& override_) {
  reject_sweep(override_);
  return parse_hydra_value(*override_.value, "override '" + override_.text + "'");
}

// ---- the defaults tree ----

struct Composer {
  fs::path config_dir;
  std::map<std::string, std::optional<std::string>> selections;  // override key -> option (nullopt: group=null)
  std::set<std::string> command_line_groups;                     // groups set with group=option
  std::vector<std::pair<std::string, std::string>> appended;     // +group=option
  std::set<std::string> removed_configs;                         // ~path/config (groups: `deletions`)
  std::map<std::string, std::string> discovered_overrides;       // `override` entries by key, DFS order, last wins
  std::set<std::string> groups_seen;                             // override keys (group[@package]) met in the tree
  std::map<std::string, std::optional<std::string>> deletions;   // ~group[@package][=option] from the command line
  std::set<std::string> deletions_used;                          // the deletions that removed a default
  std::set<std::string> final_keys;                              // override keys of the group configs included
  std::vector<std::pair<YAML::Node, std::string>> merge_order;   // (body, package)
  std::vector<std::string> defaults_lines;
  std::vector<std::string> stack;                                // files being expanded (cycle check)

  std::string resolve_group(const std::string& group, const std::string& parent_group_dir) const {
    if (group.find("..") != std::string::npos || group.find('\\') != std::string::npos) {
      fail("defaults: group path '" + group + "' may not contain '..' or '\\'");
    }
    if (!group.empty() && group[0] == '/') {
      return group.substr(1);
    }
    return parent_group_dir.empty() ? group : parent_group_dir + "/" + group;
  }

  // Hydra's InputDefault._get_final_package: the entry's @package, else the config's `# @package` header
  // (always absolute: read as _global_.<header>), else the group as the entry writes it (`sub` in
  // server/apache.yaml, `g3` for `/g3`), appended to the including config's final package; whatever
  // precedes the last `_global_` is dropped. So a group config's own defaults land under its package
  // (`/g3: p` inside server/x.yaml, selected as server@nest, goes to nest.g3), as Hydra composes them.
  static std::string package_of(const std::optional<std::string>& entry_package, const std::string& parent_package,
                                const std::optional<std::string>& header, const std::string& relative_group) {
    std::string package;
    if (entry_package) {
      package = *entry_package;
    } else if (header) {
      package = header->empty() ? "_global_"
                : (*header == "_global_" || header->rfind("_global_.", 0) == 0) ? *header
                : "_global_." + *header;
    } else {
      package = relative_group;
      std::replace(package.begin(), package.end(), '/', '.');
    }
    const std::string joined = parent_package.empty() ? package
                               : package.empty()      ? parent_package
                                                      : parent_package + "." + package;
    const size_t last_global = joined.rfind("_global_");
    if (last_global == std::string::npos) return joined;
    const size_t rest = last_global + std::string("_global_").size() + 1;  // past "_global_."
    return rest <= joined.size() ? joined.substr(rest) : "";
  }

  // `relative_group`: the group as the including entry writes it (no leading '/'); `shown`: the entry as
  // --info defaults lists it ("group: option" or the config path), empty for the primary config.
  void expand(const fs::path& file, const std::string& group_dir, const std::string& package,
              const std::optional<std::string>& entry_package, bool primary,
              const std::vector<std::pair<std::string, std::string>>& extra_defaults,
              const std::string& relative_group = "", const std::string& shown = "") {
    const std::string file_key = fs::relative(file, config_dir).string();
    if (std::find(stack.begin(), stack.end(), file_key) != stack.end()) {
      fail(file_key + ": defaults list cycle: " + join(stack, " -> ") + " -> " + file_key);
    }
    stack.push_back(file_key);
    LoadedConfig loaded = load_config_file(file);
    const std::string own_package =
        primary ? "" : package_of(entry_package, package, loaded.header, relative_group);
    if (!primary) {
      defaults_lines.push_back(shown + " -> " + (own_package.empty() ? "_global_" : own_package));
    }
    bool self_done = false;
    const auto merge_self = [&] {
      merge_order.emplace_back(loaded.body, own_package);
      self_done = true;
    };
    if (loaded.defaults.IsDefined()) {
      for (const auto& entry : loaded.defaults) {
        expand_entry(entry, loaded.file, group_dir_of_config(file), own_package, merge_self);
      }
    }
    if (!self_done) {
      merge_self();
    }
    for (const auto& [group, option] : extra_defaults) {  // +group=option from the command line
      YAML::Node entry(YAML::NodeType::Map);
      entry["/" + group] = option;
      expand_entry(entry, "command line", "", own_package, [] {});
    }
    stack.pop_back();
  }

  std::string group_dir_of_config(const fs::path& file) const {
    const fs::path relative = fs::relative(file.parent_path(), config_dir);
    return relative == "." ? "" : relative.string();
  }

  void expand_entry(const YAML::Node& entry, const std::string& file, const std::string& group_dir,
                    const std::string& package, const std::function<void()>& merge_self) {
    if (entry.IsScalar()) {
      const std::string text = entry.Scalar();
      if (text == "_self_") {
        merge_self();
        return;
      }
      // A non-overridable config: path[@package], relative to this config's group unless absolute.
      const auto at = text.find('@');
      const std::string path = resolve_group(text.substr(0, at), group_dir);
      const std::optional<std::string> entry_package =
          at == std::string::npos ? std::nullopt : std::optional<std::string>(text.substr(at + 1));
      if (removed_configs.count(path)) {
        return;
      }
      const fs::path target = config_dir / (path + ".yaml");
      if (!fs::exists(target)) {
        fail(file + ": defaults: config '" + text + "' not found (looked for " + target.string() + ")");
      }
      const std::string parent = fs::path(path).parent_path().string();
      std::string written = text.substr(0, at);  // its directory as written is the default package
      written = written.rfind('/') == std::string::npos ? "" : written.substr(0, written.rfind('/'));
      if (!written.empty() && written[0] == '/') written = written.substr(1);
      expand(target, parent, package, entry_package, false, {}, written, path);
      return;
    }
    if (!entry.IsMap() || entry.size() != 1) {
      fail(file + ": defaults: each entry must be `_self_`, a config path or a single `group: option` mapping");
    }
    std::string key = entry.begin()->first.Scalar();
    const YAML::Node value = entry.begin()->second;
    bool is_override = false;
    bool optional = false;
    if (key.rfind("override ", 0) == 0) {
      is_override = true;
      key = key.substr(9);
    } else if (key.rfind("optional ", 0) == 0) {
      optional = true;
      key = key.substr(9);
    }
    const auto at = key.find('@');
    const std::string group = resolve_group(key.substr(0, at), group_dir);
    const std::optional<std::string> entry_package =
        at == std::string::npos ? std::nullopt : std::optional<std::string>(key.substr(at + 1));
    std::optional<std::string> option;
    if (value.IsScalar()) {
      option = value.Scalar();
    } else if (!value.IsNull()) {
      fail(file + ": defaults: the option of group '" + group + "' must be a config name or null (lists of options are not supported)");
    }
    std::string written = key.substr(0, at);
    if (!written.empty() && written[0] == '/') written = written.substr(1);
    // Hydra's GroupDefault.get_override_key(): the group, plus `@<final package>` when the entry's final
    // package (its header aside) is not the group's own; `g1@pk: a` is selected by `g1@pk=b`, not `g1=b`.
    std::string default_package = group;
    std::replace(default_package.begin(), default_package.end(), '/', '.');
    const std::string entry_final_package = package_of(entry_package, package, std::nullopt, written);
    const std::string override_key =
        entry_final_package == default_package
            ? group
            : group + "@" + (entry_final_package.empty() ? std::string("_global_") : entry_final_package);
    if (is_override) {
      if (option) {
        discovered_overrides[override_key] = *option;
      } else {
        discovered_overrides[override_key] = "";
      }
      return;
    }
    groups_seen.insert(override_key);
    // Priority: command line, then `override` entries, then this default.
    if (selections.count(override_key)) {
      option = selections.at(override_key);
    } else if (discovered_overrides.count(override_key)) {
      const std::string& overridden = discovered_overrides.at(override_key);
      option = overridden.empty() ? std::nullopt : std::optional<std::string>(overridden);
    }
    if (const auto deletion = deletions.find(override_key); deletion != deletions.end()) {
      if (!deletion->second || (option && *deletion->second == *option)) {  // ~group, or ~group=option naming it
        deletions_used.insert(override_key);
        return;
      }
    }
    if (!option) {
      return;  // null: a placeholder
    }
    const fs::path target = config_dir / group / (*option + ".yaml");
    if (!fs::exists(target)) {
      if (optional) {
        return;
      }
      const auto available = options_of_group(config_dir, group);
      fail(file + ": defaults: unknown option '" + *option + "' for config group '" + group + "' (available: " +
           (available.empty() ? std::string("none; the group directory does not exist") : join(available, ", ")) + ")");
    }
    if (!final_keys.insert(override_key).second) {  // Hydra's ensure_no_duplicates_in_list
      fail(file + ": defaults: " + override_key + " appears more than once in the final defaults list");
    }
    expand(target, group, package, entry_package, false, {}, written, group + ": " + *option);
  }
};

// ---- value overrides ----

// The child under `key` without inserting it (the const operator[] never adds entries).
YAML::Node child_of(const YAML::Node& node, const std::string& key) { return node[key]; }

YAML::Node find_node(const YAML::Node& root, const std::vector<std::string>& parts) {
  YAML::Node node = root;
  for (const auto& part : parts) {
    if (!node.IsMap() || !child_of(node, part).IsDefined()) {
      return YAML::Node(YAML::NodeType::Undefined);
    }
    node.reset(child_of(node, part));
  }
  return node;
}

// The first key of `value` (a mapping merged into `existing`) that `existing` lacks, as a dotted path.
std::optional<std::string> first_new_key(const YAML::Node& existing, const YAML::Node& value, const std::string& path) {
  for (const auto& entry : value) {
    const std::string key = entry.first.Scalar();
    const YAML::Node current = existing[key];
    if (!current.IsDefined()) {
      return path + "." + key;
    }
    if (current.IsMap() && entry.second.IsMap()) {
      if (auto nested = first_new_key(current, entry.second, path + "." + key)) return nested;
    }
  }
  return std::nullopt;
}

// Python's == between the values the two nodes stand for: True == 1 == 1.0, a string equals only a string,
// lists element by element, dicts key by key (what `~key=value` compares, as Hydra does).
bool python_equal(const YAML::Node& a, const YAML::Node& b) {
  if (a.IsSequence() || b.IsSequence()) {
    if (!a.IsSequence() || !b.IsSequence() || a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!python_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsMap() || b.IsMap()) {
    if (!a.IsMap() || !b.IsMap() || a.size() != b.size()) return false;
    for (const auto& entry : a) {
      const YAML::Node other = b[entry.first.Scalar()];
      if (!other.IsDefined() || !python_equal(entry.second, other)) return false;
    }
    return true;
  }
  const TypedScalar x = typed_scalar(a);
  const TypedScalar y = typed_scalar(b);
  const auto numeric = [](const TypedScalar& v, double& out) {
    switch (v.kind) {
      case TypedScalar::Kind::Bool: out = v.boolean ? 1.0 : 0.0; return true;
      case TypedScalar::Kind::Int: out = static_cast<double>(v.integer); return true;
      case TypedScalar::Kind::Float: out = v.real; return true;
      default: return false;
    }
  };
  double u = 0, v = 0;
  if (numeric(x, u) && numeric(y, v)) {
    if (x.kind == TypedScalar::Kind::Int && y.kind == TypedScalar::Kind::Int) return x.integer == y.integer;
    return u == v;  // nan != nan, as in Python
  }
  return x == y;
}

// Hydra applies `key=value` and `++key=value` with OmegaConf.update(cfg, key, value, merge=True): a
// [list] or {dict} value is merged into a list or dict already there (a dict into a dict key by key, a list
// replaces a list), anything else replaces the old value (a scalar may become a dict and a dict a scalar).
// Merging a dict into a list or a list into a dict is an error there, and here.
void check_container_merge(const Override& override_, const YAML::Node& existing, const YAML::Node& value) {
  const bool existing_container = existing.IsMap() || existing.IsSequence();
  const bool value_container = value.IsMap() || value.IsSequence();
  if (existing_container && value_container && existing.IsMap() != value.IsMap()) {
    fail("override '" + override_.text + "': type mismatch: '" + override_.key + "' is " + kind_name(existing) +
         " and the new value is " + kind_name(value) + "; Hydra merges a [list] or {dict} value into the one "
         "there, which fails between a list and a dict (delete it first with ~" + override_.key + ")");
  }
}

void apply_value_override(YAML::Node& root, const Override& override_) {
  const auto parts = split_path(override_.key);
  if (parts.empty()) {
    fail("override '" + override_.text + "': the key is empty");
  }
  YAML::Node parent = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = parent[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      if (override_.kind == Override::Kind::Set || override_.kind == Override::Kind::Delete) {
        break;
      }
      parent[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(parent[parts[i]]);
    } else if (!child.IsMap()) {
      fail("override '" + override_.text + "': '" + join({parts.begin(), parts.begin() + i + 1}, ".") + "' is " +
           kind_name(child) + ", not a mapping");
    }
    parent.reset(child);
  }
  const std::string& leaf = parts.back();
  const YAML::Node existing = find_node(root, parts);
  const bool exists = existing.IsDefined();
  switch (override_.kind) {
    case Override::Kind::Set: {
      if (!exists) {
        fail("override '" + override_.text + "': could not override '" + override_.key +
             "': the key is not in the config. To append to your config use +" + override_.text);
      }
      const YAML::Node value = parse_override_value(override_);
      check_container_merge(override_, existing, value);
      if (existing.IsMap() && value.IsMap()) {
        // {dict} values are merged (Hydra), into the keys that exist: the config is in struct mode there.
        if (const auto added = first_new_key(existing, value, override_.key)) {
          fail("override '" + override_.text + "': could not override '" + override_.key + "': '" + *added +
               "' is not in the config. To add keys use ++" + override_.text);
        }
        merge_into(parent[leaf], value);
      } else {
        parent[leaf] = value;
      }
      return;
    }
    case Override::Kind::Add:
      if (exists) {
        fail("override '" + override_.text + "': could not append to config: an item is already at '" +
             override_.key + "'. Use " + override_.text.substr(1) + " to change it or +" + override_.text + " to upsert");
      }
      parent[leaf] = parse_override_value(override_);
      return;
    case Override::Kind::Upsert: {
      const YAML::Node value = parse_override_value(override_);
      if (exists) check_container_merge(override_, existing, value);
      if (exists && existing.IsMap() && value.IsMap()) {
        merge_into(parent[leaf], value);  // ++key={dict} merges, adding keys (Hydra's force_add merge)
      } else {
        parent[leaf] = value;
      }
      return;
    }
      return;
    case Override::Kind::Delete: {
      if (!exists) {
        fail("override '" + override_.text + "': could not delete '" + override_.key + "': the key is not in the config");
      }
      if (override_.value) {
        const YAML::Node expected = parse_override_value(override_);
        // Hydra deletes unless `value is not None and value != config_val` (Python's comparison).
        if (!expected.IsNull() && !python_equal(existing, expected)) {
          fail("override '" + override_.text + "': could not delete '" + override_.key +
               "': its value does not match '" + *override_.value + "'");
        }
      }
      parent.remove(leaf);
      return;
    }
  }
}

// ---- interpolation ----
// Strings holding "${" are read by OmegaConf's grammar (interpolation.cpp); this part answers what the
// grammar asks: the node behind `${key}` (OmegaConf's _resolve_key_and_root, split_key and _select_impl)
// and the resolvers oc.env and oc.select. Nodes are resolved in place, each once: a resolved string that
// holds "${" (from an escaped `\${`) is never read again.

// Python's repr of a string: single quotes unless the text holds ' and no ", backslash escapes.
std::string python_string_repr(const std::string& text) {
  const char quote = text.find('\'') != std::string::npos && text.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      static const char* digits = "0123456789abcdef";
      out += "\\x";
      out += digits[byte >> 4];
      out += digits[byte & 15];
    } else {
      out += c;
    }
  }
  return out + quote;
}

// repr() of a value as OmegaConf prints a config node inside a string: {'k': 1, 'l': [1.0, None]}.
std::string python_repr(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "None";
  if (node.IsMap() || node.IsSequence()) {
    std::string out(1, node.IsMap() ? '{' : '[');
    bool first = true;
    for (const auto& entry : node) {
      out += first ? "" : ", ";
      first = false;
      out += node.IsMap() ? python_repr(entry.first) + ": " + python_repr(entry.second) : python_repr(entry);
    }
    return out + (node.IsMap() ? '}' : ']');
  }
  if (is_missing(node)) return "'???'";
  const TypedScalar value = typed_scalar(node);
  return value.kind == TypedScalar::Kind::String ? python_string_repr(value.text) : python_str(value);
}

// str() of a value: what a string interpolation inserts.
std::string python_text(const YAML::Node& node) {
  if (node.IsMap() || node.IsSequence()) return python_repr(node);
  return python_str(typed_scalar(node));
}

// Python's int(text) for a list index (surrounding whitespace, a sign, '_' between digits).
std::optional<long long> python_int(const std::string& text) {
  static const std::regex int_re(R"(^\s*[-+]?[0-9](_?[0-9])*\s*$)");
  if (!std::regex_match(text, int_re)) return std::nullopt;
  try {
    return std::stoll(without_underscores(text));
  } catch (const std::exception&) {
    return std::nullopt;  // beyond any list's length
  }
}

// OmegaConf's split_key: "a.b" -> [a, b], "a[0].b" -> [a, 0, b], "[a]" -> [a]; text between a closing
// bracket and the next '.' or '[' is skipped, as Python's re.findall skips it.
std::vector<std::string> omegaconf_split_key(const std::string& key) {
  static const std::regex head_re(R"(^\.*[^.\[]*)");
  static const std::regex other_re(R"(\.([^.\[]*)|\[(.*?)\])");
  std::smatch head;
  std::regex_search(key, head, head_re);
  const size_t first_stop = static_cast<size_t>(head.length(0));
  std::vector<std::string> tokens;
  std::string part;
  for (const char c : key.substr(0, first_stop)) {
    if (c == '.') {
      tokens.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  tokens.push_back(part);
  if (first_stop == key.size()) return tokens;
  if (key[first_stop] == '[' && tokens.back().empty()) tokens.pop_back();
  const std::string rest = key.substr(first_stop);
  for (std::sregex_iterator it(rest.begin(), rest.end(), other_re), end; it != end; ++it) {
    tokens.push_back((*it)[1].matched ? (*it)[1].str() : (*it)[2].str());
  }
  return tokens;
}

struct Resolver {
  explicit Resolver(YAML::Node config) : root(config), original(YAML::Clone(config)) {}

  YAML::Node root;
  YAML::Node original;  // before resolution: str() of a config node prints its values unresolved, as OmegaConf
  std::vector<std::string> resolving;  // dotted paths being resolved (cycle detection)
  std::set<std::string> resolved;      // paths (keyed by path_key) whose whole subtree is resolved
  std::map<std::string, std::vector<std::string>> source_of;  // a container an interpolation copied -> its path

  static std::string path_string(const std::vector<std::string>& path) { return path.empty() ? "<root>" : join(path, "."); }
  static std::string path_key(const std::vector<std::string>& path) { return join(path, "\x1f"); }

  bool is_resolved(const std::vector<std::string>& path) const {
    std::string key;
    for (size_t i = 0; i <= path.size(); ++i) {
      if (resolved.count(key)) return true;
      if (i < path.size()) key += (i ? "\x1f" : "") + path[i];
    }
    return false;
  }

  static YAML::Node node_at(const YAML::Node& from, const std::vector<std::string>& path) {
    YAML::Node node = from;
    for (const auto& part : path) {
      if (node.IsMap() && child_of(node, part).IsDefined()) {
        node.reset(child_of(node, part));
      } else if (node.IsSequence()) {
        const auto index = python_int(part);
        if (!index || *index < 0 || static_cast<size_t>(*index) >= node.size()) return YAML::Node(YAML::NodeType::Undefined);
        node.reset(node[static_cast<size_t>(*index)]);
      } else {
        return YAML::Node(YAML::NodeType::Undefined);
      }
    }
    return node;
  }

  // Resolves the node at `path` in place (strings with "${"; containers recursively).
  void resolve_at(YAML::Node node, const std::vector<std::string>& path);

  // The node `key` designates from the node at `at` (OmegaConf's node interpolation, or oc.select when
  // `selecting`: then a missing key, ??? or a step through a non-container gives nullopt, not an error).
  std::optional<InterpolatedValue> select(const std::string& key, const std::vector<std::string>& at,
                                          const std::string& where, bool selecting);

  InterpolatedValue call(const std::string& name, const std::vector<InterpolatedValue>& arguments,
                         const std::vector<std::string>& at, const std::string& where);
};

// The grammar's questions for one string, asked from the node at `at`.
class NodeContext : public InterpolationHost {
 public:
  NodeContext(Resolver& resolver, std::vector<std::string> at) : resolver_(resolver), at_(std::move(at)) {}

  InterpolatedValue select(const std::string& key, const std::string& spelled) override {
    return *resolver_.select(key, at_, where(spelled), /*selecting=*/false);
  }
  InterpolatedValue call(const std::string& name, const std::vector<InterpolatedValue>& arguments,
                         const std::string& spelled) override {
    return resolver_.call(name, arguments, at_, where(spelled));
  }
  std::string text_of(const YAML::Node& node) override { return python_text(node); }

 private:
  std::string where(const std::string& spelled) const {
    return "interpolation " + spelled + " at '" + Resolver::path_string(at_) + "'";
  }

  Resolver& resolver_;
  std::vector<std::string> at_;
};

void Resolver::resolve_at(YAML::Node node, const std::vector<std::string>& path) {
  if (is_resolved(path)) return;
  if (node.IsMap()) {
    for (auto entry : node) {
      std::vector<std::string> child = path;
      child.push_back(entry.first.Scalar());
      resolve_at(entry.second, child);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      std::vector<std::string> child = path;
      child.push_back(std::to_string(i));
      resolve_at(node[i], child);
    }
  } else if (node.IsScalar() && has_interpolation(node.Scalar()) &&
             typed_scalar(node).kind == TypedScalar::Kind::String) {
    const std::string key = path_string(path);
    if (std::find(resolving.begin(), resolving.end(), key) != resolving.end()) {
      fail("interpolation cycle: " + join(resolving, " -> ") + " -> " + key);
    }
    resolving.push_back(key);
    NodeContext context(*this, path);
    const InterpolatedValue value = resolve_string(node.Scalar(), context, "interpolation at '" + key + "'");
    if (value.holds_itself) {
      fail("interpolation cycle: '" + key + "' would hold a container that holds '" + key + "'");
    }
    resolving.pop_back();
    node = value.node;  // assigns the value into the tree (yaml-cpp nodes are references)
    if (value.from_config && (value.node.IsMap() || value.node.IsSequence())) {
      source_of[path_key(path)] = value.source;
    }
  }
  resolved.insert(path_key(path));
}

std::optional<InterpolatedValue> Resolver::select(const std::string& key, const std::vector<std::string>& at,
                                                  const std::string& where, bool selecting) {
  // _resolve_key_and_root: a key with leading dots starts at the container holding `at` (one dot) or
  // further up (one level per extra dot); any other key starts at the root.
  std::vector<std::string> base;
  std::string rest = key;
  if (!rest.empty() && rest[0] == '.') {
    base.assign(at.begin(), at.end() - (at.empty() ? 0 : 1));
    rest = rest.substr(1);
    while (!rest.empty() && rest[0] == '.') {
      if (base.empty()) fail(where + ": '" + key + "' goes above the top of the config");
      base.pop_back();
      rest = rest.substr(1);
    }
  }
  std::vector<std::string> path;
  std::vector<std::string> source;  // where the node at `path` came from (an interpolation may have copied it)
  YAML::Node node = root;
  auto follow_copy = [&]() {
    if (const auto copied = source_of.find(path_key(path)); copied != source_of.end()) source = copied->second;
  };
  // The selected node as a value; str() of a container prints its source unresolved, as OmegaConf's repr.
  auto container_value = [&]() {
    InterpolatedValue value;
    value.node = YAML::Clone(node);
    const YAML::Node unresolved = node_at(original, source);
    value.text = python_repr(unresolved.IsDefined() ? unresolved : node);
    value.from_config = true;
    value.source = source;
    return value;
  };
  // One step into `part`: nullopt when there is nothing there.
  auto step = [&](const std::string& part) -> bool {
    if (node.IsSequence() && !python_int(part)) {
      fail(where + ": index '" + part + "' of the list '" + path_string(path) + "' is not an int");
    }
    // (A yaml-cpp node cannot be assigned an undefined one: the lookup makes a fresh handle.)
    const YAML::Node child = node_at(node, {part});
    if (!child.IsDefined()) return false;
    path.push_back(part);
    source.push_back(part);
    follow_copy();
    node.reset(child);
    return true;
  };
  for (const auto& part : base) step(part);  // containers above `at`: always there
  if (rest.empty()) {  // the container holding `at`, or one above it (oc.select only: `${.}` does not parse)
    InterpolatedValue value = container_value();
    value.holds_itself = true;
    return value;
  }
  const std::vector<std::string> parts = omegaconf_split_key(rest);
  auto not_found = [&]() -> std::optional<InterpolatedValue> {
    if (selecting) return std::nullopt;
    std::vector<std::string> wanted = base;
    wanted.insert(wanted.end(), parts.begin(), parts.end());
    fail(where + ": key '" + path_string(wanted) + "' not found");
  };
  auto missing = [&]() -> std::optional<InterpolatedValue> {
    if (selecting) return std::nullopt;
    fail(where + ": '" + path_string(path) + "' is missing (?\?\?); set it, e.g. " + path_string(path) + "=...");
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!step(parts[i])) return not_found();
    if (i + 1 == parts.size()) break;
    if (is_missing(node)) return missing();
    if (node.IsScalar() && !is_resolved(path)) {  // a step through an interpolation follows it
      resolve_at(node, path);
      node.reset(node_at(root, path));
      follow_copy();
    }
    if (!node.IsMap() && !node.IsSequence()) {
      if (selecting) return std::nullopt;
      fail(where + ": '" + path_string(path) + "' is not a container and thus cannot contain '" + parts[i + 1] + "'");
    }
  }
  if (is_missing(node)) return missing();
  resolve_at(node, path);
  node.reset(node_at(root, path));
  follow_copy();
  if (node.IsMap() || node.IsSequence()) return container_value();
  InterpolatedValue value;
  value.node = YAML::Clone(node);
  if (typed_scalar(value.node).kind == TypedScalar::Kind::String) {
    value.node.SetTag("!");  // a string from now on, whatever a retyping would make of it
  }
  value.text = python_text(node);
  return value;
}

InterpolatedValue Resolver::call(const std::string& name, const std::vector<InterpolatedValue>& arguments,
                                 const std::vector<std::string>& at, const std::string& where) {
  if (name == "oc.env" || name == "oc.select") {
    if (arguments.empty() || arguments.size() > 2) {
      fail(where + ": " + name + " takes a key and an optional default, got " + std::to_string(arguments.size()) +
           " arguments");
    }
    if (!is_string(arguments[0])) {
      fail(where + ": the key of " + name + " must be a string, got " + arguments[0].text);
    }
  }
  if (name == "oc.env") {
    if (const char* value = std::getenv(arguments[0].text.c_str())) {
      return {string_node(value), value, false, {}};  // environment values are strings (OmegaConf 2.1+)
    }
    if (arguments.size() == 2) {
      // OmegaConf returns str() of a default (`${oc.env:X,1}` is "1", `true` "True") and None for null.
      if (arguments[1].node.IsNull()) return {YAML::Node(YAML::NodeType::Null), "None", false, {}};
      return {string_node(arguments[1].text), arguments[1].text, false, {}};
    }
    fail(where + ": environment variable '" + arguments[0].text + "' is not set and no default was given");
  }
  if (name == "oc.select") {
    // select_value(absolute_key=True): a plain key starts at the root, a dotted one at the container.
    if (auto value = select(arguments[0].text, at, where, /*selecting=*/true)) return *value;
    if (arguments.size() == 2) return arguments[1];
    return {YAML::Node(YAML::NodeType::Null), "None", false, {}};
  }
  if (name == "oc.decode") {
    // decode(expr): None stays None, a string is read as one grammar element, anything else is an error.
    if (arguments.size() != 1) {
      fail(where + ": oc.decode takes one argument, got " + std::to_string(arguments.size()));
    }
    if (arguments[0].node.IsNull()) return arguments[0];
    if (!is_string(arguments[0])) {
      fail(where + ": oc.decode takes a string or null, got " + arguments[0].text);
    }
    NodeContext context(*this, at);
    return decode_element(arguments[0].text, context, where);
  }
  fail(where + ": unknown resolver '" + name + "' (supported: oc.env, oc.select, oc.decode)");
}

// ---- output ----

Json scalar_to_json(const YAML::Node& node) {
  const TypedScalar value = typed_scalar(node);
  switch (value.kind) {
    case TypedScalar::Kind::Null: return Json::null();
    case TypedScalar::Kind::Bool: return Json::boolean(value.boolean);
    case TypedScalar::Kind::Int: return Json::integer(value.integer);
    case TypedScalar::Kind::Float: return Json::number(value.real);  // .inf: Infinity (dumped with python_tokens)
    case TypedScalar::Kind::String: return Json::string(value.text);
  }
  return Json::string(value.text);
}

Json to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    Json out = Json::object();
    for (const auto& entry : node) {
      out.set(entry.first.Scalar(), to_json(entry.second));
    }
    return out;
  }
  if (node.IsSequence()) {
    Json out = Json::array();
    for (const auto& item : node) {
      out.push(to_json(item));
    }
    return out;
  }
  if (node.IsScalar()) {
    return scalar_to_json(node);
  }
  return Json::null();
}

}  // namespace

double python_float(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

std::string without_underscores(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
  return text;
}

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  char buffer[64];
  const double magnitude = std::fabs(value);
  const auto format = magnitude >= 1e-4 && magnitude < 1e16 ? std::chars_format::fixed : std::chars_format::scientific;
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, format);
  std::string text(buffer, result.ptr);
  if (format == std::chars_format::fixed && text.find('.') == std::string::npos) text += ".0";
  return text;
}

ComposedConfig compose_config(const std::string& config_dir, const std::string& config_name,
                              const std::vector<std::string>& overrides) {
  const fs::path directory(config_dir);
  if (!fs::is_directory(directory)) {
    fail("config_dir '" + config_dir + "' is not a directory");
  }
  const fs::path primary = directory / (config_name + (config_name.size() > 5 &&
                                                               config_name.substr(config_name.size() - 5) == ".yaml"
                                                           ? ""
                                                           : ".yaml"));
  if (!fs::exists(primary)) {
    fail("config_name '" + config_name + "': " + primary.string() + " does not exist");
  }

  // 1. split the overrides.
  std::map<std::string, std::optional<std::string>> selections;
  std::vector<std::pair<std::string, std::string>> appended;
  std::set<std::string> removed_configs;
  std::vector<Override> value_overrides;
  std::vector<std::string> group_override_texts;
  std::map<std::string, std::optional<std::string>> deletions;
  std::vector<std::pair<std::string, std::string>> deletion_texts;  // (key, the override as given)
  for (const auto& text : overrides) {
    Override parsed = parse_override(text);
    reject_sweep(parsed);
    const std::string group = parsed.key.substr(0, parsed.key.find('@'));
    const bool is_group = fs::is_directory(directory / group) && group.find('.') == std::string::npos;
    const bool is_config = parsed.kind == Override::Kind::Delete && fs::exists(directory / (group + ".yaml"));
    if (is_group || (is_config && !parsed.value)) {
      // Selections are keyed as Hydra keys them: `group` or `group@package` exactly as written.
      if (parsed.kind == Override::Kind::Delete) {
        if (is_group) {
          deletions[parsed.key] = parsed.value && !parsed.value->empty() ? parsed.value : std::nullopt;
          deletion_texts.emplace_back(parsed.key, text);
        } else {
          removed_configs.insert(group);
        }
      } else if (parsed.kind == Override::Kind::Add) {
        appended.emplace_back(parsed.key, *parsed.value);  // group[@package], placed as the entry /group[@package]
      } else {
        selections[parsed.key] = parsed.value->empty() || *parsed.value == "null" ? std::nullopt
                                                                                  : std::optional<std::string>(*parsed.value);
        group_override_texts.push_back(text);
      }
    } else {
      value_overrides.push_back(parsed);
    }
  }

  // 2. expand the defaults tree until the `override` table is stable.
  std::map<std::string, std::string> discovered;
  Composer composer;
  for (int round = 0;; ++round) {
    composer = Composer();
    composer.config_dir = directory;
    composer.selections = selections;
    composer.removed_configs = removed_configs;
    composer.deletions = deletions;
    composer.discovered_overrides = discovered;
    composer.expand(primary, "", "", std::nullopt, /*primary=*/true, appended);
    if (composer.discovered_overrides == discovered) {
      break;
    }
    discovered = composer.discovered_overrides;
    if (round == 10) {
      fail(primary.string() + ": the `override` entries of the defaults tree do not settle (they select each other)");
    }
  }
  for (const auto& [group, option] : discovered) {
    if (!composer.groups_seen.count(group)) {
      fail("defaults: `override " + group + "` does not match any group default in the defaults tree");
    }
  }
  for (const auto& [key, text] : deletion_texts) {  // Hydra's ensure_deletions_used
    if (!composer.deletions_used.count(key)) {
      fail("override '" + text + "': could not delete '" + key + "': no match in the defaults list");
    }
  }
  for (const auto& text : group_override_texts) {
    const std::string group = parse_override(text).key;
    if (!composer.groups_seen.count(group)) {
      fail("override '" + text + "': could not override '" + group +
           "': no match in the defaults list. To append to your defaults list use +" + text);
    }
  }

  // 3. merge in order.
  YAML::Node config(YAML::NodeType::Map);
  for (const auto& [body, package] : composer.merge_order) {
    merge_into(config, wrap_in_package(body, package));
  }

  // 4. value overrides, then interpolation.
  for (const auto& override_ : value_overrides) {
    apply_value_override(config, override_);
  }
  Resolver resolver(config);
  resolver.resolve_at(config, {});

  YAML::Emitter emitter;
  emitter << config;
  return {to_json(config).dump(2, /*python_tokens=*/true), std::string(emitter.c_str()) + "\n",
          composer.defaults_lines};
}

}  // namespace modgap
