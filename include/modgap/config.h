// Hydra-style configuration composition in C++ (yaml-cpp), shared by the C++ tools and, through the
// internal op modgap::_compose_config, by modgap.config.compose() in Python: both read the same files
// the same way.
//
// Supported (a documented subset of Hydra 1.3 / OmegaConf 2.3; see README "Configs"):
//   * a primary config with a `defaults:` list: group defaults (`- loss: ours`, `- loss@train.loss: ours`,
//     `- optional loss: x`, `- loss: null`), non-overridable configs (`- data/common`), `override` entries
//     in any config (`- override /loss: clip_ft`; the last one in depth-first order wins), absolute
//     (`/group`) and relative group paths, `_self_` (implicitly last), `# @package` headers
//     (`_global_`, `a.b`), packages `@pkg` in defaults entries;
//   * command-line overrides: `key=value` (the key must exist), `+key=value` (must not exist),
//     `++key=value` (upsert), `~key` / `~key=value` (delete), `group=option`, `+group=option`, `~group`;
//     values are YAML flow scalars, `[lists]` (assigned) and `{dicts}` (merged); sweeps (`a,b`,
//     `choice(a,b)`, `range(0,1,0.25)`) are rejected by compose_config and expanded by expand_sweeps /
//     compose_multirun (Hydra's BasicSweeper: the cartesian product, first override varying slowest);
//   * merge: mappings deep-merge, lists are replaced, `???` (missing) never overwrites a value; an override
//     `key={dict}` merges into existing keys only (Hydra's struct mode), `++key={dict}` may add keys;
//   * scalar types: file values as OmegaConf's YAML 1.1 loader types them (yes/on booleans, 010 octal,
//     0x10 hex, 1:30 sexagesimal, 1e-3 float, .inf), override values as Hydra's override grammar (yes and
//     010 strings, 1_000 int, inf float); in a string interpolation a value prints as Python's str();
//     Hydra's backslash escapes (`a\,b`, `f\(x\)`, `\\`) in plain override values make a string;
//   * interpolation, read by OmegaConf 2.3's grammar (ops/config/interpolation.cpp): `${a.b}`, `${a.list.0}`,
//     `${a[0]}`, relative `${.sibling}` / `${..uncle}`, nested `${a.${b}}`, `${oc.env:VAR}` /
//     `${oc.env:VAR,default}`, `${oc.select:key,default}`, `${oc.decode:text}`; a value that is exactly one
//     interpolation keeps the referenced node's type (whole subtrees too), a mixed string is a string
//     (a dict or list inside it prints as Python's str()); `\${x}` is the text `${x}`; cycles and references
//     to missing keys are errors; `???` values are kept as "???".
// Every error names the file (or override) and key and says what was wrong.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace modgap {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ComposedConfig {
  std::string json;                   // the composed, interpolation-resolved config
  std::string yaml;                   // the same as YAML
  std::vector<std::string> defaults;  // the final defaults list, one "group: option -> package" per line
};

// Composes `<config_dir>/<config_name>.yaml` with `overrides`. Throws ConfigError.
ComposedConfig compose_config(const std::string& config_dir, const std::string& config_name,
                              const std::vector<std::string>& overrides);

// Hydra's multirun: the jobs of a sweep, each a plain override list for compose_config. `a=1,2 b=x,y`
// gives [a=1 b=x], [a=1 b=y], [a=2 b=x], [a=2 b=y]; values may be `a,b`, `choice(a,b)` or
// `range(start, stop[, step])` (ints as Python's range, floats as Hydra's FloatRange). Without a sweep,
// one job. Throws ConfigError naming the override (unbalanced brackets, empty element, unsupported
// sweep function, zero step, empty range, more than 100000 jobs).
std::vector<std::vector<std::string>> expand_sweeps(const std::vector<std::string>& overrides);

struct MultirunJob {
  std::vector<std::string> overrides;  // this job's overrides (no sweeps left)
  ComposedConfig config;
};

// expand_sweeps, then compose_config for every job; a job's error names the job and its overrides.
std::vector<MultirunJob> compose_multirun(const std::string& config_dir, const std::string& config_name,
                                          const std::vector<std::string>& overrides);

}  // namespace modgap
