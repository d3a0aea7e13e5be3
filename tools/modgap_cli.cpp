// `modgap` command-line tool.
//
//   modgap eval FILE [key=value ...] [config=CONFIG.yaml [Hydra-style overrides, e.g. eval.knn_k=10]]
//
// FILE is a dict of tensors saved with torch.save (e.g. {"image": [N, D], "text": [N, D], "labels": [N]}),
// or the scripts' {"embeddings": {"image": [N, D], ...}, "labels": [N]}.
// Every 2-D floating tensor is a modality (in the file's order) unless `modalities=` names them, and the
// other entries are named in a notice on stderr; the integer tensor under `labels` (key configurable)
// enables the group-wise metrics. Prints a table and writes the full result as JSON (modgap::evaluate;
// same numbers as modgap.evaluate() in Python).
//
//   modgap config CONFIG.yaml [override ...] [--info defaults|yaml] [-m|--multirun]
//
// composes a Hydra-style config (the same composer as modgap.config.compose in Python) and prints it as
// JSON (or its final defaults list, or YAML). With --multirun, sweeps (`a=1,2`, `choice(..)`,
// `range(..)`) expand into jobs (Hydra's BasicSweeper): a JSON list of {"job", "overrides", "config"},
// or one YAML document / defaults list per job, each headed by a `# job N: overrides` comment.
//
// eval keys: modalities=a,b[,c]  labels=KEY|none  ks=1,5,10  n_clusters=K  n_init=N  max_iter=N  tol=X
//       knn_k=K  knn_metric=cosine|euclidean  test_fraction=X  seed=S  fill_gap_k=K  device=cpu|cuda[:i]
//       probe_c=C  probe_max_iter=I (linear probe and separability; 0 skips them)
//       out=PATH (default: FILE with the extension .eval.json)  progress=true|false
#include <modgap/config.h>
#include <modgap/evaluate.h>
#include <modgap/modgap.h>

#include "ops/common/json.h"

#include <torch/serialize.h>
#include <yaml-cpp/yaml.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: modgap eval FILE [key=value ...] [config=CONFIG.yaml [eval.key=value ...]]\n"
    "       modgap config CONFIG.yaml [override ...] [--info defaults|yaml] [-m|--multirun]\n"
    "  FILE: a dict of tensors saved with torch.save, e.g. {'image': [N, D], 'text': [N, D], 'labels': [N]}\n"
    "  keys: modalities=a,b  labels=KEY|none  ks=1,5,10  n_clusters=K  n_init=N  max_iter=N  tol=X\n"
    "        knn_k=K  knn_metric=cosine|euclidean  test_fraction=X  seed=S  fill_gap_k=K  device=cpu|cuda[:I]\n"
    "        probe_c=C  probe_max_iter=I (linear probe and separability; 0 skips them)\n"
    "        out=PATH  progress=true|false\n";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) {
    if (!part.empty()) {
      parts.push_back(part);
    }
  }
  return parts;
}

int64_t parse_int(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const int64_t parsed = std::stoll(value, &used);
    if (used == value.size()) {
      return parsed;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("modgap eval: `" + key + "` expects an integer, got '" + value + "'");
}

double parse_float(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const double parsed = std::stod(value, &used);
    if (used == value.size()) {
      return parsed;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("modgap eval: `" + key + "` expects a number, got '" + value + "'");
}

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "no") return false;
  throw std::invalid_argument("modgap eval: `" + key + "` expects true or false, got '" + value + "'");
}

// What an entry of the file is, for the notice about entries that are not modalities: "a str",
// "a 3-D Float tensor of shape [50, 1, 8]".
std::string describe_entry(const c10::IValue& value) {
  if (!value.isTensor()) {
    if (value.isString()) return "a str";
    if (value.isGenericDict()) return "a dict";
    if (value.isList()) return "a list";
    if (value.isTuple()) return "a tuple";
    if (value.isNone()) return "None";
    return std::string("a ") + value.tagKind();
  }
  const at::Tensor& tensor = value.toTensor();
  std::ostringstream text;
  text << "a " << tensor.dim() << "-D " << tensor.scalar_type() << " tensor of shape " << tensor.sizes();
  return text.str();
}

// device=cpu|cuda|cuda:I, checked before the file is read: a typo, a device type the evaluation has no
// kernels for, or a machine without that GPU is named as such instead of surfacing as a driver error
// (or "Cannot copy out of meta tensor") from the first copy.
at::Device parse_device(const std::string& value) {
  std::optional<at::Device> device;
  try {
    device = at::Device(value);
  } catch (const c10::Error&) {
  }
  if (!device || !(device->is_cpu() || device->is_cuda())) {
    throw std::invalid_argument("modgap eval: `device` must be cpu, cuda or cuda:I, got '" + value + "'");
  }
  if (device->is_cuda()) {
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (count == 0) {
      throw std::invalid_argument("modgap eval: device=" + value +
                                  " but no CUDA device is usable here (torch::cuda::device_count() is 0); use device=cpu");
    }
    if (device->has_index() && device->index() >= count) {
      throw std::invalid_argument("modgap eval: device=" + value + " but this machine has " + std::to_string(count) +
                                  " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1));
    }
  }
  return *device;
}

c10::Dict<c10::IValue, c10::IValue> load_tensor_dict(const std::string& path) {
  std::ifstream input(path, std::ios::binary);
  if (!input) {
    throw std::invalid_argument("modgap eval: cannot open '" + path + "'");
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(input)), std::istreambuf_iterator<char>());
  c10::IValue loaded;
  try {
    loaded = torch::pickle_load(bytes);
  } catch (const c10::Error& error) {
    const std::string what = error.what_without_backtrace();
    throw std::invalid_argument("modgap eval: cannot read '" + path + "' as a file written by torch.save: " +
                                what.substr(0, what.find('\n')));
  }
  if (!loaded.isGenericDict()) {
    throw std::invalid_argument("modgap eval: '" + path + "' must hold a dict of tensors saved with torch.save, got " +
                                loaded.tagKind());
  }
  c10::Dict<c10::IValue, c10::IValue> dict = loaded.toGenericDict();
  // The scripts' format, {"embeddings": {name: [N, D]}, "labels": [N], ...} (scripts/av_mnist.py,
  // scripts/openclip_digits.py): the nested modalities first, then the other top-level tensors.
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == "embeddings" && entry.value().isGenericDict()) {
      c10::Dict<c10::IValue, c10::IValue> flat(c10::StringType::get(), c10::AnyType::get());
      for (const auto& nested : entry.value().toGenericDict()) flat.insert(nested.key(), nested.value());
      for (const auto& other : dict) {
        if (other.key().isString() && other.key().toStringRef() != "embeddings" && other.value().isTensor()) {
          flat.insert(other.key(), other.value());
        }
      }
      return flat;
    }
  }
  return dict;
}

int run_eval(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string path = args[0];
  std::map<std::string, std::string> overrides;
  std::vector<std::string> config_overrides;  // Hydra-style overrides of config=... (eval.knn_k=10, +eval.x=1, ~k)
  for (size_t i = 1; i < args.size(); ++i) {
    const auto equals = args[i].find('=');
    const std::string key = args[i].substr(0, equals);
    if (!key.empty() && (key.find('.') != std::string::npos || key[0] == '+' || key[0] == '~')) {
      config_overrides.push_back(args[i]);
      continue;
    }
    if (equals == std::string::npos || equals == 0) {
      throw std::invalid_argument("modgap eval: expected key=value, got '" + args[i] + "'\n" + kUsage);
    }
    overrides[key] = args[i].substr(equals + 1);
  }
  modgap::EvaluateOptions options;
  // config=CONFIG.yaml: the protocol comes from the composed config's `eval` section (the same file the
  // training patch reads), with Hydra-style overrides; plain keys below still win.
  if (overrides.count("config")) {
    const std::filesystem::path config_path(overrides.at("config"));
    const auto directory = config_path.parent_path().empty() ? std::filesystem::path(".") : config_path.parent_path();
    const YAML::Node composed =
        YAML::Load(modgap::compose_config(directory.string(), config_path.stem().string(), config_overrides).yaml);
    const YAML::Node eval = composed["eval"];
    if (!eval.IsMap()) {
      throw std::invalid_argument("modgap eval: " + overrides.at("config") + " has no `eval` section");
    }
    // The config's values go through the same key=value parsing as the command line; plain keys win.
    // The keys modgap.evaluation_options() checks in Python too (include/modgap/evaluate.h).
    const std::vector<std::string> keys = modgap::evaluation_protocol_keys();
    const std::set<std::string> protocol_keys(keys.begin(), keys.end());
    for (const auto& entry : eval) {
      const std::string key = entry.first.Scalar();
      if (!protocol_keys.count(key)) {
        throw std::invalid_argument("modgap eval: unknown key `eval." + key + "` in " + overrides.at("config"));
      }
      std::string value = entry.second.IsNull() ? "0" : "";
      if (entry.second.IsSequence()) {
        for (const auto& item : entry.second) value += (value.empty() ? "" : ",") + item.Scalar();
      } else if (entry.second.IsScalar()) {
        value = entry.second.Scalar();
      }
      overrides.emplace(key, value);  // does not replace a plain key given on the command line
    }
    overrides.erase("config");
  } else if (!config_overrides.empty()) {
    throw std::invalid_argument("modgap eval: '" + config_overrides[0] + "' is a config override; give config=CONFIG.yaml");
  }
  std::string labels_key = "labels";
  at::Device device(at::kCPU);
  std::string out = path.substr(0, path.rfind('.') == std::string::npos ? path.size() : path.rfind('.')) + ".eval.json";
  std::vector<std::string> wanted_modalities;
  for (const auto& [key, value] : overrides) {
    if (key == "ks") {
      options.ks.clear();
      // 1,5,10 or, as the config writes a list, [1,5,10]
      const bool bracketed = value.size() >= 2 && value.front() == '[' && value.back() == ']';
      for (const auto& k : split(bracketed ? value.substr(1, value.size() - 2) : value, ',')) {
        options.ks.push_back(parse_int(key, k));
      }
    } else if (key == "n_clusters") {
      options.n_clusters = parse_int(key, value);
    } else if (key == "n_init") {
      options.n_init = parse_int(key, value);
    } else if (key == "max_iter") {
      options.kmeans_max_iter = parse_int(key, value);
    } else if (key == "tol") {
      options.kmeans_tol = parse_float(key, value);
    } else if (key == "knn_k") {
      options.knn_k = parse_int(key, value);
    } else if (key == "knn_metric") {
      options.knn_metric = value;
    } else if (key == "test_fraction") {
      options.test_fraction = parse_float(key, value);
    } else if (key == "fill_gap_k") {
      options.fill_gap_k = parse_int(key, value);
    } else if (key == "probe_c") {
      options.probe_c = parse_float(key, value);
    } else if (key == "probe_max_iter") {
      options.probe_max_iter = parse_int(key, value);
    } else if (key == "seed") {
      options.seed = parse_int(key, value);
    } else if (key == "progress") {
      options.progress = parse_bool(key, value);
    } else if (key == "labels") {
      labels_key = value;
    } else if (key == "modalities") {
      wanted_modalities = split(value, ',');
    } else if (key == "device") {
      device = parse_device(value);
    } else if (key == "out") {
      out = value;
    } else {
      throw std::invalid_argument("modgap eval: unknown key '" + key + "'\n" + kUsage);
    }
  }

  const auto dict = load_tensor_dict(path);
  std::vector<std::string> names;
  std::vector<at::Tensor> embeddings;
  std::optional<at::Tensor> labels;
  const auto tensor_at = [&](const std::string& key) -> at::Tensor {
    for (const auto& entry : dict) {
      if (entry.key().isString() && entry.key().toStringRef() == key) {
        if (!entry.value().isTensor()) {
          throw std::invalid_argument("modgap eval: '" + key + "' in '" + path + "' is not a tensor");
        }
        return entry.value().toTensor();
      }
    }
    throw std::invalid_argument("modgap eval: '" + path + "' has no entry '" + key + "'");
  };
  // Entries that are neither a modality nor the labels, named in a notice (and in the error when fewer
  // than 2 modalities are left): an image tower's [N, 1, D] output or half-precision embeddings saved as
  // something else must not silently drop out of the evaluation.
  std::string not_modalities;
  if (wanted_modalities.empty()) {
    for (const auto& entry : dict) {
      const bool named = entry.key().isString();
      if (named && entry.key().toStringRef() == labels_key) continue;
      if (named && entry.value().isTensor()) {
        const at::Tensor& t = entry.value().toTensor();
        if (t.dim() == 2 && at::isFloatingType(t.scalar_type())) {
          wanted_modalities.push_back(entry.key().toStringRef());
          continue;
        }
      }
      std::ostringstream name;
      if (named) {
        name << "'" << entry.key().toStringRef() << "'";
      } else {
        name << "key " << entry.key();
      }
      not_modalities += (not_modalities.empty() ? "" : ", ") + name.str() + " (" + describe_entry(entry.value()) + ")";
    }
  }
  const std::string not_modalities_note =
      not_modalities.empty() ? ""
                             : "not a modality (a modality is a 2-D floating tensor [N, D]; name the modalities with "
                               "modalities=a,b): " + not_modalities;
  for (const auto& name : wanted_modalities) {
    names.push_back(name);
    embeddings.push_back(tensor_at(name).to(device));
  }
  if (labels_key != "none") {
    bool present = false;
    for (const auto& entry : dict) {
      present = present || (entry.key().isString() && entry.key().toStringRef() == labels_key);
    }
    if (present) {
      labels = tensor_at(labels_key).to(device);
    } else if (overrides.count("labels")) {
      throw std::invalid_argument("modgap eval: '" + path + "' has no entry '" + labels_key + "'");
    }
  }
  if (embeddings.size() < 2) {
    throw std::invalid_argument("modgap eval: '" + path + "' must hold at least 2 modalities (2-D floating tensors), found " +
                                std::to_string(embeddings.size()) +
                                (not_modalities_note.empty() ? "" : "; " + not_modalities_note));
  }
  if (!not_modalities_note.empty()) {
    std::cerr << "modgap eval: " << not_modalities_note << "\n";
  }
  const modgap::EvaluationReport report = modgap::evaluate(embeddings, names, labels, options);
  std::cout << report.table;
  std::ofstream json_file(out);
  if (!json_file) {
    throw std::invalid_argument("modgap eval: cannot write '" + out + "'");
  }
  json_file << report.json << "\n";
  std::cout << "\nwrote " << out << "\n";
  return 0;
}

int run_config(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::filesystem::path path(args[0]);
  std::vector<std::string> overrides;
  std::string info = "json";
  bool multirun = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--info" && i + 1 < args.size()) {
      info = args[++i];
    } else if (args[i] == "-m" || args[i] == "--multirun") {
      multirun = true;
    } else {
      overrides.push_back(args[i]);
    }
  }
  if (info != "json" && info != "yaml" && info != "defaults") {
    throw std::invalid_argument("modgap config: --info must be json, yaml or defaults, got '" + info + "'");
  }
  const auto directory = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!multirun) {
    const modgap::ComposedConfig composed = modgap::compose_config(directory.string(), path.stem().string(), overrides);
    if (info == "defaults") {
      for (const auto& line : composed.defaults) std::cout << line << "\n";
    } else if (info == "yaml") {
      std::cout << composed.yaml;
    } else {
      std::cout << composed.json << "\n";
    }
    return 0;
  }
  const auto jobs = modgap::compose_multirun(directory.string(), path.stem().string(), overrides);
  if (info == "json") {
    std::cout << "[";
    for (size_t job = 0; job < jobs.size(); ++job) {
      std::cout << (job ? ",\n" : "\n") << "{\"job\": " << job << ", \"overrides\": [";
      for (size_t i = 0; i < jobs[job].overrides.size(); ++i) {
        std::cout << (i ? ", " : "") << modgap::Json::string(jobs[job].overrides[i]).dump();
      }
      std::cout << "], \"config\": " << jobs[job].config.json << "}";
    }
    std::cout << "\n]\n";
    return 0;
  }
  for (size_t job = 0; job < jobs.size(); ++job) {
    std::string joined;
    for (const auto& o : jobs[job].overrides) joined += (joined.empty() ? "" : " ") + o;
    std::cout << (job ? "---\n" : "") << "# job " << job << ": " << joined << "\n";
    if (info == "defaults") {
      for (const auto& line : jobs[job].config.defaults) std::cout << line << "\n";
    } else {
      std::cout << jobs[job].config.yaml;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  try {
    if (args[0] == "eval") {
      return run_eval(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    if (args[0] == "config") {
      return run_config(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    std::cerr << "modgap: unknown command '" << args[0] << "'\n" << kUsage;
    return 2;
  } catch (const modgap::ConfigError& error) {
    std::cerr << error.what() << "\n";
    return 1;
  } catch (const c10::Error& error) {
    std::cerr << error.what_without_backtrace() << "\n";
    return 1;
  } catch (const YAML::Exception& error) {
    std::cerr << "modgap: config value of the wrong type: " << error.what() << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
}
