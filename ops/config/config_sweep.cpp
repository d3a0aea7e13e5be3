// Multirun sweeps (Hydra's BasicSweeper): command-line overrides whose value is a sweep expand into the
// cartesian product of jobs, each a plain override list that compose_config() accepts.
//
// Hydra 1.3's rules, followed here:
//   * `key=a,b,c` (a comma at the top level of the value, outside quotes, [], {}, () and ${}) and
//     `key=choice(a,b,c)` are discrete sweeps; `key=range(stop)`, `key=range(start,stop[,step])` is
//     Python's range when all arguments are integers, and Hydra's FloatRange otherwise (start, then
//     start + step, ... accumulated in extended precision as Hydra accumulates in decimal, while below
//     stop for a positive step / above it for a negative one; every element a float);
//   * each element keeps its text (whitespace around it stripped), so `'a,b'`, `[1,2]` and `{x: 1}`
//     stay one value; prefixes `+`, `++`, `~` are kept on every job's override;
//   * jobs are `itertools.product` over the overrides in command-line order (the first override varies
//     slowest); a key given twice keeps its first position and its last value, as Hydra's OrderedDict.
// Not supported (errors naming the override): `glob`, `interval`, `sort`, `shuffle`, `tag`, and
// products of more than kMaxJobs jobs (a guard against `range(0, 1e9)` hanging the caller).
#include <modgap/config.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "ops/config/override_syntax.h"

namespace modgap {

namespace {

constexpr size_t kMaxJobs = 100000;

[[noreturn]] void fail(const std::string& message) { throw ConfigError(message); }

std::string strip(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

}  // namespace

std::vector<std::string> split_top_level_commas(const std::string& text, const std::string& context) {
  std::vector<std::string> parts;
  std::string closers;  // expected closing brackets, innermost last
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == '\\' && i + 1 < text.size()) {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '\\' && i + 1 < text.size()) {
      ++i;  // Hydra's escapes (\, \( \[ ...): the next character is literal, never a separator
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{' || c == '(') {
      closers.push_back(c == '[' ? ']' : c == '{' ? '}' : ')');
    } else if (c == ']' || c == '}' || c == ')') {
      if (closers.empty() || closers.back() != c) {
        fail(context + ": unbalanced '" + std::string(1, c) + "' at position " + std::to_string(i));
      }
      closers.pop_back();
    } else if (c == ',' && closers.empty()) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (quote) {
    fail(context + ": unterminated " + std::string(quote == '\'' ? "single" : "double") + " quote");
  }
  if (!closers.empty()) {
    fail(context + ": '" + std::string(1, closers.back()) + "' expected before the end of the value");
  }
  parts.push_back(text.substr(start));
  return parts;
}

namespace {

// A number of range(): an int when it has no '.', exponent, inf or nan, as Python's literal would be.
struct RangeNumber {
  bool is_int = true;
  long long integer = 0;
  long double real = 0;
};

RangeNumber parse_range_number(const std::string& raw, const std::string& context) {
  const std::string text = strip(raw);
  RangeNumber number;
  static const std::regex integer_pattern(R"([+-]?[0-9]+)");
  static const std::regex float_pattern(R"([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)");
  if (std::regex_match(text, integer_pattern)) {
    try {
      number.integer = std::stoll(text);
    } catch (const std::out_of_range&) {
      fail(context + ": range() argument '" + text + "' is out of range");
    }
    number.real = static_cast<long double>(number.integer);
    return number;
  }
  if (!std::regex_match(text, float_pattern)) {
    fail(context + ": range() expects numbers, got '" + text + "'");
  }
  number.is_int = false;
  // Hydra converts the float to Decimal exactly: start from the double the literal denotes.
  number.real = static_cast<long double>(python_float(text));
  return number;
}

std::vector<std::string> expand_range(const std::vector<std::string>& args, const std::string& context) {
  if (args.empty() || args.size() > 3 || (args.size() == 1 && strip(args[0]).empty())) {
    fail(context + ": range() takes 1 to 3 arguments: range(stop), range(start, stop) or range(start, stop, step)");
  }
  std::vector<RangeNumber> numbers;
  for (const auto& arg : args) numbers.push_back(parse_range_number(arg, context));
  RangeNumber start;  // 0
  RangeNumber stop;
  RangeNumber step;
  step.integer = 1;
  step.real = 1;
  if (numbers.size() == 1) {
    stop = numbers[0];
  } else {
    start = numbers[0];
    stop = numbers[1];
    if (numbers.size() == 3) step = numbers[2];
  }
  if ((step.is_int && step.integer == 0) || (!step.is_int && step.real == 0)) {
    fail(context + ": range() step must not be zero");
  }
  std::vector<std::string> values;
  const auto guard = [&] {
    if (values.size() > kMaxJobs) {
      fail(context + ": range() has more than " + std::to_string(kMaxJobs) + " values");
    }
  };
  if (start.is_int && stop.is_int && step.is_int) {
    for (long long v = start.integer; step.integer > 0 ? v < stop.integer : v > stop.integer; v += step.integer) {
      values.push_back(std::to_string(v));
      guard();
    }
  } else {
    if (!std::isfinite(static_cast<double>(start.real)) || !std::isfinite(static_cast<double>(stop.real)) ||
        !std::isfinite(static_cast<double>(step.real))) {
      fail(context + ": range() arguments must be finite");
    }
    for (long double v = start.real; step.real > 0 ? v < stop.real : v > stop.real; v += step.real) {
      values.push_back(python_float_repr(static_cast<double>(v)));
      guard();
    }
  }
  if (values.empty()) {
    fail(context + ": the sweep is empty (range() yields no value)");
  }
  return values;
}

struct ParsedSweep {
  std::string key;                  // with its prefix (+, ++, ~): Hydra's key element
  std::vector<std::string> values;  // empty: the override has no value (`~key`)
};

ParsedSweep parse_sweep(const std::string& text) {
  const std::string context = "override '" + text + "'";
  ParsedSweep parsed;
  const auto equals = text.find('=');
  parsed.key = text.substr(0, equals);
  if (strip(parsed.key).empty() || parsed.key == "+" || parsed.key == "++" || parsed.key == "~") {
    fail(context + ": the key is empty (expected key=value)");
  }
  if (equals == std::string::npos) {
    return parsed;
  }
  const std::string value = text.substr(equals + 1);
  std::vector<std::string> elements = split_top_level_commas(value, context);
  if (elements.size() == 1) {
    static const std::regex function_pattern(R"(^\s*([A-Za-z_][A-Za-z_0-9]*)\s*\(([\s\S]*)\)\s*$)");
    std::smatch match;
    const std::string single = elements[0];
    if (std::regex_match(single, match, function_pattern)) {
      const std::string function = match[1];
      const std::string arguments = match[2];
      if (function == "choice") {
        elements = split_top_level_commas(arguments, context);
        if (elements.size() == 1 && strip(elements[0]).empty()) {
          fail(context + ": choice() needs at least one value");
        }
      } else if (function == "range") {
        parsed.values = expand_range(split_top_level_commas(arguments, context), context);
        return parsed;
      } else if (function == "glob" || function == "interval" || function == "sort" || function == "shuffle" ||
                 function == "tag" || function == "str" || function == "int" || function == "float" ||
                 function == "bool" || function == "json_str") {
        fail(context + ": " + function + "() is not supported; sweeps are a,b,c, choice(a,b,c) and range(start,stop,step)");
      }
    }
  }
  for (auto& element : elements) {
    element = strip(element);
    if (element.empty() && elements.size() > 1) {
      fail(context + ": a sweep element is empty (expected a,b,c)");
    }
  }
  parsed.values = elements;
  return parsed;
}

}  // namespace

std::vector<std::vector<std::string>> expand_sweeps(const std::vector<std::string>& overrides) {
  std::vector<ParsedSweep> sweeps;  // one per distinct key, first position, last value
  std::map<std::string, size_t> position;
  for (const auto& text : overrides) {
    ParsedSweep parsed = parse_sweep(text);
    const auto found = position.find(parsed.key);
    if (found != position.end()) {
      sweeps[found->second] = std::move(parsed);
    } else {
      position.emplace(parsed.key, sweeps.size());
      sweeps.push_back(std::move(parsed));
    }
  }
  size_t total = 1;
  for (const auto& sweep : sweeps) {
    total *= std::max<size_t>(sweep.values.size(), 1);
    if (total > kMaxJobs) {
      fail("multirun: the sweep has more than " + std::to_string(kMaxJobs) + " jobs (at override '" + sweep.key +
           "=...')");
    }
  }
  std::vector<std::vector<std::string>> jobs(total);
  for (size_t job = 0; job < total; ++job) {
    // Mixed-radix digits of the job number, the last override varying fastest (itertools.product).
    size_t rest = job;
    std::vector<std::string> line(sweeps.size());
    for (size_t s = sweeps.size(); s-- > 0;) {
      const auto& sweep = sweeps[s];
      if (sweep.values.empty()) {
        line[s] = sweep.key;
        continue;
      }
      line[s] = sweep.key + "=" + sweep.values[rest % sweep.values.size()];
      rest /= sweep.values.size();
    }
    jobs[job] = std::move(line);
  }
  return jobs;
}

std::vector<MultirunJob> compose_multirun(const std::string& config_dir, const std::string& config_name,
                                          const std::vector<std::string>& overrides) {
  std::vector<MultirunJob> jobs;
  size_t number = 0;
  for (auto& job_overrides : expand_sweeps(overrides)) {
    try {
      ComposedConfig config = compose_config(config_dir, config_name, job_overrides);
      jobs.push_back({job_overrides, std::move(config)});
    } catch (const ConfigError& error) {
      std::string joined;
      for (const auto& o : job_overrides) joined += (joined.empty() ? "" : " ") + o;
      throw ConfigError("multirun job " + std::to_string(number) + " (" + joined + "): " + error.what());
    }
    ++number;
  }
  return jobs;
}

}  // namespace modgap
