// Override-value syntax shared by the composer (config_compose.cpp) and the multirun sweeper
// (config_sweep.cpp), so that both agree on what is one value and what is a sweep.
#pragma once

#include <string>
#include <vector>

namespace modgap {

// Splits `text` at the commas outside quotes ('...', "..."), [], {}, () and ${}, and not escaped with a
// backslash (Hydra's `\,`): one part means one value, several mean a sweep. Unbalanced brackets and unterminated quotes throw ConfigError naming
// `context`.
std::vector<std::string> split_top_level_commas(const std::string& text, const std::string& context);

// Python's repr of a float (shortest round-trip digits; fixed for 1e-4 <= |x| < 1e16, else scientific;
// "2.0", "inf", "nan"): how OmegaConf prints a float into a string interpolation and how Hydra writes
// the floats of range().
std::string python_float_repr(double value);

// Python's float(text) for a decimal literal: out-of-range values become +-inf or 0 (std::stod throws).
double python_float(const std::string& text);

// `text` without its '_' digit separators (Python, YAML 1.1 and Hydra allow them in numbers).
std::string without_underscores(std::string text);

}  // namespace modgap
