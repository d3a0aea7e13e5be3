// modgap::evaluate and its registered wrapper modgap::_evaluate (returns the JSON and the table).
//
// Protocol (measures.md §9, upstreams.md §1.5), every choice an option echoed under "protocol":
//   * rows of every modality are L2-normalised (the seed code normalises before every metric);
//   * per modality pair (a, b), a < b: gap_stats (gap, Cos TP mean/var, pair distance mean/var, RMG,
//     centroid cosine), Recall@K in both directions with row i of a matching row i of b, and (unless
//     fill_gap_k = 0) the Fill-the-Gap measures of the mixed collection (fill_gap_stats: ITR, TIR,
//     TMR, IMR over fill_gap_k neighbours, inter-modal FID);
//   * per modality: AV (mean intra-modal cosine, i != j);
//   * with labels: k-means (k = n_clusters or the number of classes, k-means++, n_init, seed) on the
//     union of all modalities' rows, true labels repeated per modality (the paper's joint clustering),
//     scored with V-measure; kNN accuracy on a seeded split of the rows (test_fraction held out), per
//     modality (train and test from that modality) and joint (the split is drawn over all M*N rows, so
//     as in the seed code a sample's other modalities can be in the training set); linear-probe accuracy
//     (multinomial logistic regression, LogisticRegression(C=probe_c, max_iter=probe_max_iter) of
//     scikit-learn, the "linear classifier" of the paper's Table 7) on the same splits;
//   * per modality pair, unless probe_max_iter = 0: linear separability (Fahim et al., measures.md §8), the
//     held-out accuracy of logistic regression telling the pair's two modalities apart, pairs split by
//     sample index (both members of a pair on the same side; test_fraction held out). 0.5: inseparable.
#include <modgap/evaluate.h>
#include <modgap/modgap.h>

#include <torch/library.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/common/json.h"
#include "ops/kmeans/kmeans.h"
#include "ops/logistic_regression/logistic_regression.h"

namespace modgap {

namespace {

constexpr const char* kEvaluateName = "modgap::evaluate";

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  void operator()(const std::string& message) const {
    if (!enabled_) {
      return;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::cerr << "[modgap.evaluate " << std::fixed << std::setprecision(1) << seconds << "s] " << message
              << std::endl;
  }
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

double scalar(const at::Tensor& t) { return t.item<double>(); }

void check_options(const EvaluateOptions& options, int64_t n) {
  TORCH_CHECK_VALUE(!options.ks.empty(), kEvaluateName, ": `ks` must list at least one K");
  for (const int64_t k : options.ks) {
    TORCH_CHECK_VALUE(k >= 1 && k <= n, kEvaluateName, ": every K in `ks` must be in [1, ", n,
                      "] (the number of samples), got ", k);
  }
  TORCH_CHECK_VALUE(options.n_clusters >= 0, kEvaluateName, ": `n_clusters` must be >= 1 (or 0 for the number of classes), got ",
                    options.n_clusters);
  TORCH_CHECK_VALUE(options.test_fraction > 0.0 && options.test_fraction < 1.0, kEvaluateName,
                    ": `test_fraction` must be in (0, 1), got ", options.test_fraction);
  TORCH_CHECK_VALUE(options.knn_metric == "cosine" || options.knn_metric == "euclidean", kEvaluateName,
                    ": `knn_metric` must be \"cosine\" or \"euclidean\", got \"", options.knn_metric, "\"");
  TORCH_CHECK_VALUE(options.knn_k >= 1, kEvaluateName, ": `knn_k` must be >= 1, got ", options.knn_k);
  TORCH_CHECK_VALUE(std::isfinite(options.probe_c) && options.probe_c > 0.0, kEvaluateName,
                    ": `probe_c` (the linear probe's C) must be finite and > 0, got ", options.probe_c);
  TORCH_CHECK_VALUE(options.probe_max_iter >= 0, kEvaluateName,
                    ": `probe_max_iter` must be >= 0 (0 skips the linear probe and separability), got ",
                    options.probe_max_iter);
  TORCH_CHECK_VALUE(options.fill_gap_k >= 0 && options.fill_gap_k <= 2 * n - 1, kEvaluateName,
                    ": `fill_gap_k` must be in [0, ", 2 * n - 1, "] (0 skips the Fill-the-Gap measures), got ",
                    options.fill_gap_k);
}

Json recall_json(const at::Tensor& recall, const std::vector<int64_t>& ks) {
  Json out = Json::object();
  const at::Tensor values = recall.cpu();
  for (size_t i = 0; i < ks.size(); ++i) {
    out.set("R@" + std::to_string(ks[i]), Json::number(values[static_cast<int64_t>(i)].item<double>()));
  }
  return out;
}

// The rows of a seeded split: `permutation`'s first n_test entries are held out, the rest train.
struct HeldOutSplit {
  at::Tensor train_rows;
  at::Tensor test_rows;
};

HeldOutSplit held_out_split(const at::Tensor& permutation, int64_t n_test, const at::Device& device) {
  const at::Tensor perm = permutation.to(device);
  return {perm.narrow(0, n_test, perm.size(0) - n_test), perm.narrow(0, 0, n_test)};
}

// The probe's gradient tolerance: LogisticRegression's default tol.
constexpr double kProbeTol = 1e-4;

using Classifier = std::function<at::Tensor(const at::Tensor& train_x, const at::Tensor& train_y,
                                            const at::Tensor& test_x)>;

// Held-out accuracy of `classify` trained on the split's training rows of (x, y).
double split_accuracy(const at::Tensor& x, const at::Tensor& y, const HeldOutSplit& split, const Classifier& classify) {
  const at::Tensor predicted = classify(x.index_select(0, split.train_rows), y.index_select(0, split.train_rows),
                                        x.index_select(0, split.test_rows));
  return scalar((predicted == y.index_select(0, split.test_rows)).to(at::kDouble).mean());
}

// kNN accuracy of `x` (rows) with `y` on the split given by `permutation` (first n_test rows held out).
double knn_accuracy(const at::Tensor& x, const at::Tensor& y, const at::Tensor& permutation, int64_t n_test,
                    const EvaluateOptions& options) {
  return split_accuracy(x, y, held_out_split(permutation, n_test, x.device()),
                        [&](const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& test_x) {
                          return modgap::knn_predict(train_x, train_y, test_x, options.knn_k, options.knn_metric);
                        });
}

// Linear-probe accuracy on the same split; NaN (null in strict JSON, see EvaluateOptions::json_python_tokens)
// when the training rows hold one class.
double probe_accuracy(const at::Tensor& x, const at::Tensor& y, const at::Tensor& permutation, int64_t n_test,
                      const EvaluateOptions& options) {
  const HeldOutSplit split = held_out_split(permutation, n_test, x.device());
  if (std::get<0>(at::_unique2(y.index_select(0, split.train_rows))).size(0) < 2) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return split_accuracy(x, y, split, [&](const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& test_x) {
    return modgap::linear_probe_predict(train_x, train_y, test_x, options.probe_c, options.probe_max_iter, kProbeTol);
  });
}

// Fahim et al.'s linear separability of modalities a and b: logistic regression tells a's rows (0) from
// b's (1); samples split by index (`permutation`, first n_test held out), both members on the same side.
double linear_separability(const at::Tensor& a, const at::Tensor& b, const at::Tensor& permutation, int64_t n_test,
                           const EvaluateOptions& options) {
  const HeldOutSplit split = held_out_split(permutation, n_test, a.device());
  const int64_t n = a.size(0);
  // Rows of [a; b] with b's rows offset by n: a sample's two rows sit on the same side of the split.
  const HeldOutSplit stacked{at::cat({split.train_rows, split.train_rows + n}), at::cat({split.test_rows, split.test_rows + n})};
  const at::Tensor modality = at::cat({at::zeros({n}, split.train_rows.options()), at::ones({n}, split.train_rows.options())});
  return split_accuracy(at::cat({a, b}), modality, stacked,
                        [&](const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& test_x) {
                          const LogisticRegressionFit fit = logistic_regression_fit(
                              train_x, train_y, 2, options.probe_c, options.probe_max_iter, kProbeTol);
                          return logistic_regression_predict(fit, test_x);
                        });
}

std::string format_table(const Json& result, const std::vector<std::string>& names, const std::vector<int64_t>& ks) {
  std::ostringstream out;
  out << std::fixed;
  const Json& protocol = result.at("protocol");
  out << "modgap evaluation: " << static_cast<int64_t>(protocol.at("num_samples").as_number()) << " samples, "
      << names.size() << " modalities, D = " << static_cast<int64_t>(protocol.at("dim").as_number()) << "\n\n";
  out << std::left << std::setw(24) << "pair" << std::right << std::setw(8) << "gap" << std::setw(9) << "CosTP"
      << std::setw(8) << "RMG" << std::setw(10) << "cen.cos";
  for (const int64_t k : ks) {
    out << std::setw(10) << ("R@" + std::to_string(k) + " ->") << std::setw(10) << ("R@" + std::to_string(k) + " <-");
  }
  out << "\n";
  for (const auto& [key, pair] : result.at("pairs").entries()) {
    out << std::left << std::setw(24) << key << std::right << std::setprecision(3) << std::setw(8)
        << pair.at("gap").as_number() << std::setw(9) << pair.at("cos_tp_mean").as_number() << std::setw(8)
        << pair.at("rmg").as_number() << std::setw(10) << pair.at("centroid_cosine").as_number();
    const auto& recall = pair.at("recall").entries();
    for (const int64_t k : ks) {
      const std::string name = "R@" + std::to_string(k);
      out << std::setprecision(1) << std::setw(10) << 100.0 * recall[0].second.at(name).as_number() << std::setw(10)
          << 100.0 * recall[1].second.at(name).as_number();
    }
    out << "\n";
  }
  out << "(R@K in %, '->' retrieves the second modality of the pair from the first)\n\n";
  bool header = false;
  for (const auto& [key, pair] : result.at("pairs").entries()) {
    if (!pair.contains("fill_the_gap")) {
      continue;
    }
    if (!header) {
      out << std::left << std::setw(24) << "Fill the Gap" << std::right << std::setw(10) << "ITR" << std::setw(10)
          << "TIR" << std::setw(10) << "TMR" << std::setw(10) << "IMR" << std::setw(8) << "FID" << "\n";
      header = true;
    }
    const Json& ftg = pair.at("fill_the_gap");
    out << std::left << std::setw(24) << key << std::right << std::setprecision(2);
    for (const char* name : {"itr", "tir", "tmr", "imr"}) {
      out << std::setw(10) << ftg.at(name).as_number();
    }
    out << std::setprecision(3) << std::setw(8) << ftg.at("fid").as_number() << "\n";
  }
  if (header) {
    out << "(first modality = 'images': ITR/TIR ~1 without a gap; TMR/IMR: rank of the best other-modality item)\n\n";
  }
  out << "AV (mean intra-modal cosine):";
  for (const auto& [name, stats] : result.at("modalities").entries()) {
    out << "  " << name << " " << std::setprecision(3) << stats.at("angular_value").as_number();
  }
  out << "\n";
  if (result.contains("clustering")) {
    const Json& clustering = result.at("clustering");
    out << "joint k-means (k = " << static_cast<int64_t>(clustering.at("n_clusters").as_number())
        << "): homogeneity " << std::setprecision(4) << clustering.at("homogeneity").as_number() << ", completeness "
        << clustering.at("completeness").as_number() << ", V-measure " << clustering.at("v_measure").as_number()
        << "\n";
    const auto accuracy_line = [&](const std::string& title, const Json& accuracies) {
      out << title << ":";
      for (const auto& [name, accuracy] : accuracies.entries()) {
        out << "  " << name << " " << std::setprecision(2) << 100.0 * accuracy.as_number() << "%";
      }
      out << "\n";
    };
    accuracy_line("kNN accuracy (k = " + std::to_string(static_cast<int64_t>(protocol.at("knn_k").as_number())) + ")",
                  result.at("knn").at("accuracy"));
    if (result.contains("linear_probe")) {
      accuracy_line("linear-probe accuracy", result.at("linear_probe").at("accuracy"));
    }
  }
  bool separability = false;
  for (const auto& [key, pair] : result.at("pairs").entries()) {
    if (pair.contains("linear_separability")) {
      out << (separability ? "  " : "linear separability (0.5: modalities inseparable):  ") << key << " "
          << std::setprecision(3) << pair.at("linear_separability").as_number();
      separability = true;
    }
  }
  if (separability) {
    out << "\n";
  }
  return out.str();
}

}  // namespace

EvaluationReport evaluate(at::TensorList embeddings, const std::vector<std::string>& names,
                          const std::optional<at::Tensor>& labels, const EvaluateOptions& options) {
  // Checked by name first, so that an error says which modality ("`embeddings['audio']` has 9 rows ...");
  // the generic check after it names list positions and covers a names/embeddings count mismatch.
  if (names.size() == embeddings.size()) {
    std::vector<std::string> labels_of(names.size());
    for (size_t m = 0; m < names.size(); ++m) {
      labels_of[m] = "embeddings['" + names[m] + "']";
      check_matrix(kEvaluateName, labels_of[m].c_str(), embeddings[m], /*min_rows=*/2);
      if (m == 0) continue;
      check_same_columns(kEvaluateName, labels_of[0].c_str(), embeddings[0], labels_of[m].c_str(), embeddings[m]);
      TORCH_CHECK_VALUE(embeddings[m].sym_size(0) == embeddings[0].sym_size(0), kEvaluateName, ": `", labels_of[m],
                        "` has ", embeddings[m].sym_size(0), " rows but `", labels_of[0], "` has ",
                        embeddings[0].sym_size(0), "; row i of every modality must be the same sample");
    }
    for (size_t m = 0; m < names.size(); ++m) {
      check_finite(kEvaluateName, labels_of[m].c_str(), embeddings[m]);
    }
  }
  check_embeddings_metadata(kEvaluateName, embeddings, /*min_rows=*/2);
  const int64_t num_modalities = static_cast<int64_t>(embeddings.size());
  TORCH_CHECK_VALUE(static_cast<int64_t>(names.size()) == num_modalities, kEvaluateName, ": got ", names.size(),
                    " names for ", num_modalities, " modalities in `embeddings`");
  std::set<std::string> unique_names;
  for (const auto& name : names) {
    TORCH_CHECK_VALUE(!name.empty() && unique_names.insert(name).second, kEvaluateName,
                      ": modality names must be non-empty and distinct, got '", name, "' twice or empty");
  }
  const int64_t n = embeddings[0].size(0);
  check_options(options, n);
  const at::Device device = embeddings[0].device();
  if (labels.has_value()) {
    check_labels(kEvaluateName, "labels", *labels, n, device);
  }
  const Progress progress(options.progress);

  Json protocol = Json::object();
  Json modality_names = Json::array();
  for (const auto& name : names) {
    modality_names.push(Json::string(name));
  }
  Json ks_json = Json::array();
  for (const int64_t k : options.ks) {
    ks_json.push(Json::integer(k));
  }
  protocol.set("modalities", modality_names)
      .set("num_samples", Json::integer(n))
      .set("dim", Json::integer(embeddings[0].size(1)))
      .set("device", Json::string(device.str()))
      .set("l2_normalized", Json::boolean(true))
      .set("ks", ks_json)
      .set("recall_ties", Json::string("counted in the query's favour (copies of a true item are ties)"))
      .set("variance", Json::string("population (divide by N)"));

  progress("gap statistics");
  std::vector<at::Tensor> unit;
  for (const auto& z : embeddings) {
    unit.push_back(eval::l2_normalize_rows(z));
  }
  const auto stats = modgap::gap_stats(embeddings, /*rmg_include_diagonal=*/false);
  const at::Tensor gap = std::get<0>(stats).cpu(), cos_mean = std::get<1>(stats).cpu(),
                   cos_var = std::get<2>(stats).cpu(), dist_mean = std::get<3>(stats).cpu(),
                   dist_var = std::get<4>(stats).cpu(), rmg = std::get<5>(stats).cpu(),
                   centroid_cos = std::get<6>(stats).cpu(), angular_value = std::get<7>(stats).cpu();

  Json result = Json::object();
  Json pairs = Json::object();
  const at::Tensor identity = at::arange(n, at::TensorOptions().dtype(at::kLong).device(device));
  // The seeded splits: the sample permutation (linear separability; per-modality kNN and probe) is drawn
  // first, the joint one (labels only) second, from one CPU generator.
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(options.seed));
  const at::Tensor sample_permutation = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  const int64_t separability_n_test =
      std::min<int64_t>(n - 1, std::max<int64_t>(1, std::llround(static_cast<double>(n) * options.test_fraction)));
  for (int64_t a = 0; a < num_modalities; ++a) {
    for (int64_t b = a + 1; b < num_modalities; ++b) {
      progress("pair " + names[a] + "-" + names[b] + ": Recall@K both directions");
      Json pair = Json::object();
      pair.set("gap", Json::number(gap[a][b].item<double>()))
          .set("cos_tp_mean", Json::number(cos_mean[a][b].item<double>()))
          .set("cos_tp_var", Json::number(cos_var[a][b].item<double>()))
          .set("pair_distance_mean", Json::number(dist_mean[a][b].item<double>()))
          .set("pair_distance_var", Json::number(dist_var[a][b].item<double>()))
          .set("rmg", Json::number(rmg[a][b].item<double>()))
          .set("centroid_cosine", Json::number(centroid_cos[a][b].item<double>()));
      Json recall = Json::object();
      recall.set(names[a] + "->" + names[b],
                 recall_json(modgap::retrieval_recall(embeddings[a], embeddings[b], identity, options.ks), options.ks));
      recall.set(names[b] + "->" + names[a],
                 recall_json(modgap::retrieval_recall(embeddings[b], embeddings[a], identity, options.ks), options.ks));
      pair.set("recall", recall);
      if (options.fill_gap_k > 0) {
        progress("pair " + names[a] + "-" + names[b] + ": Fill-the-Gap measures");
        const auto [counts, ratios, ranks, fid] = modgap::fill_gap_stats(embeddings[a], embeddings[b], options.fill_gap_k);
        const at::Tensor counts_cpu = counts.cpu(), ratios_cpu = ratios.cpu(), ranks_cpu = ranks.cpu();
        Json neighbour_counts = Json::array();
        for (int64_t q = 0; q < 2; ++q) {
          neighbour_counts.push(Json::array()
                                    .push(Json::integer(counts_cpu[q][0].item<int64_t>()))
                                    .push(Json::integer(counts_cpu[q][1].item<int64_t>())));
        }
        pair.set("fill_the_gap", Json::object()
                                     .set("itr", Json::number(ratios_cpu[0].item<double>()))
                                     .set("tir", Json::number(ratios_cpu[1].item<double>()))
                                     .set("tmr", Json::number(ranks_cpu[0].item<double>()))
                                     .set("imr", Json::number(ranks_cpu[1].item<double>()))
                                     .set("fid", Json::number(fid.item<double>()))
                                     .set("neighbour_counts", neighbour_counts));
      }
      if (options.probe_max_iter > 0) {
        progress("pair " + names[a] + "-" + names[b] + ": linear separability");
        pair.set("linear_separability", Json::number(linear_separability(unit[a], unit[b], sample_permutation,
                                                                          separability_n_test, options)));
      }
      pairs.set(names[a] + "-" + names[b], pair);
    }
  }
  Json modalities = Json::object();
  for (int64_t m = 0; m < num_modalities; ++m) {
    modalities.set(names[m], Json::object().set("angular_value", Json::number(angular_value[m].item<double>())));
  }

  if (labels.has_value()) {
    const at::Tensor y = labels->to(at::kLong);
    const int64_t num_classes = std::get<0>(at::_unique2(y)).size(0);
    const int64_t k = options.n_clusters > 0 ? options.n_clusters : num_classes;
    const at::Tensor joint = at::cat(unit, 0);
    const at::Tensor joint_labels = y.repeat({num_modalities});
    TORCH_CHECK_VALUE(k <= joint.size(0), kEvaluateName, ": n_clusters = ", k, " exceeds the ", joint.size(0),
                      " rows to cluster");
    progress("joint k-means: " + std::to_string(joint.size(0)) + " rows, k = " + std::to_string(k) + ", n_init = " +
             std::to_string(options.n_init));
    const KMeansProgress on_init = [&](int64_t run, int64_t n_init, int64_t iterations, double inertia) {
      std::ostringstream message;
      message << "  k-means initialisation " << run + 1 << "/" << n_init << ": " << iterations
              << " iterations, inertia " << std::setprecision(6) << inertia;
      progress(message.str());
    };
    const KMeansResult clustering = kmeans_fit(joint, k, options.kmeans_max_iter, options.kmeans_tol, options.n_init,
                                               options.seed, progress.enabled() ? on_init : KMeansProgress());
    const auto [homogeneity, completeness, v] = modgap::vmeasure(joint_labels, clustering.labels, 1.0);
    result.set("clustering", Json::object()
                                 .set("n_clusters", Json::integer(k))
                                 .set("num_classes", Json::integer(num_classes))
                                 .set("homogeneity", Json::number(scalar(homogeneity)))
                                 .set("completeness", Json::number(scalar(completeness)))
                                 .set("v_measure", Json::number(scalar(v)))
                                 .set("inertia", Json::number(scalar(clustering.inertia)))
                                 .set("iterations", Json::integer(clustering.iterations)));

    progress("kNN accuracy");
    const auto split_sizes = [&](int64_t rows) {
      const int64_t n_test = std::max<int64_t>(1, std::llround(static_cast<double>(rows) * options.test_fraction));
      TORCH_CHECK_VALUE(rows - n_test >= options.knn_k, kEvaluateName, ": the kNN training split has ", rows - n_test,
                        " rows, fewer than knn_k = ", options.knn_k);
      return n_test;
    };
    const at::Tensor& permutation = sample_permutation;
    const at::Tensor joint_permutation =
        at::randperm(n * num_modalities, generator, at::TensorOptions().dtype(at::kLong));
    const int64_t n_test = split_sizes(n);
    const int64_t joint_n_test = split_sizes(n * num_modalities);
    Json accuracy = Json::object();
    for (int64_t m = 0; m < num_modalities; ++m) {
      accuracy.set(names[m], Json::number(knn_accuracy(unit[m], y, permutation, n_test, options)));
    }
    accuracy.set("joint", Json::number(knn_accuracy(joint, joint_labels, joint_permutation, joint_n_test, options)));
    result.set("knn", Json::object()
                          .set("accuracy", accuracy)
                          .set("n_test", Json::integer(n_test))
                          .set("joint_n_test", Json::integer(joint_n_test)));
    if (options.probe_max_iter > 0) {
      progress("linear-probe accuracy");
      Json probe = Json::object();
      for (int64_t m = 0; m < num_modalities; ++m) {
        probe.set(names[m], Json::number(probe_accuracy(unit[m], y, permutation, n_test, options)));
      }
      probe.set("joint", Json::number(probe_accuracy(joint, joint_labels, joint_permutation, joint_n_test, options)));
      result.set("linear_probe", Json::object().set("accuracy", probe));
    }
    protocol.set("n_clusters", Json::integer(k))
        .set("kmeans_init", Json::string("k-means++"))
        .set("n_init", Json::integer(options.n_init))
        .set("kmeans_max_iter", Json::integer(options.kmeans_max_iter))
        .set("kmeans_tol", Json::number(options.kmeans_tol))
        .set("clustering_rows", Json::string("union of all modalities (labels repeated per modality)"))
        .set("knn_k", Json::integer(options.knn_k))
        .set("knn_metric", Json::string(options.knn_metric))
        .set("knn_vote_ties", Json::string("smallest label"))
        .set("test_fraction", Json::number(options.test_fraction));
  }
  protocol.set("probe_c", Json::number(options.probe_c))
      .set("probe_max_iter", Json::integer(options.probe_max_iter))
      .set("probe", Json::string("LogisticRegression (L2, lbfgs, tol 1e-4) of scikit-learn, on the kNN splits; "
                                 "linear separability: sample split by index, test_fraction held out"));
  protocol.set("seed", Json::integer(options.seed))
      .set("labels", Json::boolean(labels.has_value()))
      .set("fill_gap_k", Json::integer(options.fill_gap_k));

  Json ordered = Json::object();
  ordered.set("protocol", protocol).set("pairs", pairs).set("modalities", modalities);
  for (const auto& [key, value] : result.entries()) {
    ordered.set(key, value);
  }
  progress("done");
  return {ordered.dump(2, options.json_python_tokens), format_table(ordered, names, options.ks)};
}

namespace {

Json evaluation_protocol_defaults() {
  const EvaluateOptions defaults;
  Json ks = Json::array();
  for (const int64_t k : defaults.ks) {
    ks.push(Json::integer(k));
  }
  Json protocol = Json::object();
  protocol.set("ks", ks)
      .set("n_clusters", defaults.n_clusters == 0 ? Json::null() : Json::integer(defaults.n_clusters))
      .set("knn_k", Json::integer(defaults.knn_k))
      .set("seed", Json::integer(defaults.seed))
      .set("n_init", Json::integer(defaults.n_init))
      .set("max_iter", Json::integer(defaults.kmeans_max_iter))
      .set("tol", Json::number(defaults.kmeans_tol))
      .set("knn_metric", Json::string(defaults.knn_metric))
      .set("test_fraction", Json::number(defaults.test_fraction))
      .set("fill_gap_k", Json::integer(defaults.fill_gap_k))
      .set("probe_c", Json::number(defaults.probe_c))
      .set("probe_max_iter", Json::integer(defaults.probe_max_iter));
  return protocol;
}

}  // namespace

std::string evaluation_protocol_defaults_json() { return evaluation_protocol_defaults().dump(0); }

std::vector<std::string> evaluation_protocol_keys() {
  const Json defaults = evaluation_protocol_defaults();  // named: entries() refers into it
  std::vector<std::string> keys;
  for (const auto& entry : defaults.entries()) {
    keys.push_back(entry.first);
  }
  return keys;
}

namespace {

std::tuple<std::string, std::string> evaluate_op(at::TensorList embeddings, std::vector<std::string> names,
                                                 const std::optional<at::Tensor>& labels, std::vector<int64_t> ks,
                                                 int64_t n_clusters, int64_t n_init, int64_t max_iter, double tol,
                                                 int64_t knn_k, std::string knn_metric, double test_fraction,
                                                 int64_t seed, bool progress, int64_t fill_gap_k, double probe_c,
                                                 int64_t probe_max_iter) {
  TORCH_CHECK_VALUE(!embeddings.empty(), kEvaluateName, ": expected at least 2 modalities, got 0");
  EvaluateOptions options;
  options.ks = std::move(ks);
  options.n_clusters = n_clusters;
  options.n_init = n_init;
  options.kmeans_max_iter = max_iter;
  options.kmeans_tol = tol;
  options.knn_k = knn_k;
  options.knn_metric = std::move(knn_metric);
  options.test_fraction = test_fraction;
  options.seed = seed;
  options.progress = progress;
  options.fill_gap_k = fill_gap_k;
  options.probe_c = probe_c;
  options.probe_max_iter = probe_max_iter;
  options.json_python_tokens = true;  // read by Python's json.loads only (modgap.evaluate): inf stays inf
  EvaluationReport report = evaluate(embeddings, names, labels, options);
  return {report.json, report.table};
}

}  // namespace

// Host-side driver over the evaluation ops (it returns text, so it is not traceable).
TORCH_LIBRARY_IMPL(modgap, CompositeExplicitAutograd, m) { m.impl("_evaluate", &evaluate_op); }

}  // namespace modgap
