// Group-wise and instance-wise evaluation of multimodal embeddings in one call: the paper's protocol
// (Tables 1-5, 7, 10) with every choice an explicit option that is echoed in the result.
// Used by the `modgap eval` CLI and, through the internal op modgap::_evaluate, by modgap.evaluate().
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace modgap {

struct EvaluateOptions {
  std::vector<int64_t> ks{1, 5, 10};  // Recall@K cut-offs (both directions of every modality pair)
  int64_t n_clusters = 0;             // k of the joint k-means; 0: the number of distinct labels
  int64_t n_init = 1;                 // k-means initialisations (scikit-learn >= 1.4 default for k-means++)
  int64_t kmeans_max_iter = 300;
  double kmeans_tol = 1e-4;
  int64_t knn_k = 5;                  // neighbours of the kNN classifier
  std::string knn_metric = "cosine";  // "cosine" or "euclidean" (same ranking on L2-normalised rows)
  double test_fraction = 0.2;         // kNN hold-out fraction (the seed code's 80/20 split)
  int64_t seed = 0;                   // seeds the kNN split and the k-means initialisation
  int64_t fill_gap_k = 1;             // neighbours of the Fill-the-Gap measures per pair (0: skip them)
  double probe_c = 1.0;               // linear probe / separability: LogisticRegression's C (sklearn default)
  int64_t probe_max_iter = 100;       // ... and its max_iter (sklearn default; 0: skip both)
  bool progress = false;              // progress lines on stderr
  // How EvaluationReport::json writes a non-finite number (an infinite ITR / TIR when no query's nearest
  // neighbour is of the other modality; a NaN probe accuracy when a training split holds one class):
  // false: null (strict JSON, what `modgap eval` writes to its file); true: Infinity / NaN, which Python's
  // json.loads reads back as floats (modgap.evaluate() uses this, so it returns inf where the op gives inf).
  bool json_python_tokens = false;
};

struct EvaluationReport {
  std::string json;   // the full result (see README, "Evaluation")
  std::string table;  // a readable summary
};

// The protocol options by the names `modgap eval`, a config's `eval` section and Python's
// modgap.evaluate() give them, in this order, with the defaults of EvaluateOptions{} (`n_clusters`:
// null, the number of classes), as a JSON object. The one list of them: the CLI and the Python package
// read their keys here, and a test checks that modgap.evaluate()'s defaults are these values.
std::string evaluation_protocol_defaults_json();
std::vector<std::string> evaluation_protocol_keys();

// `embeddings`: M >= 2 modalities [N, D] (row i of every modality is one sample), named by `names`.
// Rows are L2-normalised first. `labels` (optional, [N] integers) enables the group-wise part:
// V-measure of k-means on the union of all modalities' rows, kNN and linear-probe accuracy per modality
// and joint. Without labels: gap statistics, Recall@K, Fill the Gap, AV and linear separability per pair.
EvaluationReport evaluate(at::TensorList embeddings, const std::vector<std::string>& names,
                          const std::optional<at::Tensor>& labels, const EvaluateOptions& options = {});

}  // namespace modgap
