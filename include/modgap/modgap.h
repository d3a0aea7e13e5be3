// Public C++ API of modgap. Every function calls the registered operator through the PyTorch
// dispatcher, so the CPU/CUDA kernel, the C++ autograd kernel and the Meta kernel are chosen exactly
// as for `torch.ops.modgap.*` in Python.
//
//   find_package(modgap REQUIRED)
//   target_link_libraries(my_tool PRIVATE modgap::modgap)
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

namespace modgap {

// Eq. 7 of "Closing the Modality Gap Aligns Group-Wise Semantics" (ICLR 2026): mean over the M-1
// non-anchor modalities of mean_i ||z_i^m - z_i^a||^2. Inputs are used as given (not re-normalised).
at::Tensor atp_loss(at::TensorList embeddings, int64_t anchor = 0);

// Centroid uniformity (eq. 8/9 as the authors' reference code computes it):
//   mu_i = mean_m z_i^m, L2-normalised when `normalize`;
//   value = log( mean_{i<j} exp(-t ||mu_i - mu_j||^2) ).
// Eq. 8 of the paper (a sum over i != j divided by N) equals this value plus log(N-1).
at::Tensor centroid_uniformity(at::TensorList embeddings, double t = 2.0, bool normalize = true);

// Fahim et al.'s cross-modal uniformity (NotAGap's L_xunif): log( mean over pairs (i, j) of
// exp(-t ||x_i - y_j||^2) ), the true pairs i = j left out when `exclude_diagonal` (x and y then paired,
// same N). Inputs used as given; tiled, no N x N buffer.
at::Tensor cross_uniformity(const at::Tensor& x, const at::Tensor& y, double t = 2.0, bool exclude_diagonal = true);

// ---- evaluation (no autograd). Rows are L2-normalised inside where the measure is defined on unit
// vectors; see the op comments in registration/schema.cpp and ops/<op>/<op>_kernel.cpp. ----

// Per modality pair (M x M float64 matrices): gap (eq. 2), Cos TP mean/variance (eq. 3), pair distance
// mean/variance, RMG (Schrodi et al., analysis form), centroid cosine; per modality: AV [M].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gap_stats(
    at::TensorList embeddings, bool rmg_include_diagonal = false);

// "Fill the Gap" measures of images x [N, D] and texts y [M, D] on their mixed collection (rows
// L2-normalised inside): neighbour_counts [2, 2] int64 (query modality x neighbour modality over the k
// nearest neighbours), neighbour_ratios [2] (ITR, TIR), mean_ranks [2] (TMR, IMR), fid [] (float64).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> fill_gap_stats(const at::Tensor& x, const at::Tensor& y,
                                                                          int64_t k = 1);

// "Fill the Gap"'s post-hoc spectral method: images x [N, D] and texts y [M, D] embedded jointly in k
// dimensions by the random-walk Laplacian of their bipartite cosine-similarity graph (rows L2-normalised;
// nonnegative = "clamp" | "shift" | "none"; graph_topk > 0 keeps each row's and column's top entries).
std::tuple<at::Tensor, at::Tensor> spectral_align(const at::Tensor& x, const at::Tensor& y, int64_t k = 60,
                                                  const std::string& nonnegative = "clamp", int64_t graph_topk = 0);

// Exact optimal transport (POT's ot.emd): the plan G [ns, nt] minimising <G, M> with row sums `a` and column sums `b`
// (empty: uniform), and its cost (float64). Network simplex, on the CPU for any input device.
std::tuple<at::Tensor, at::Tensor> emd(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M,
                                       int64_t max_iter = 10000000);

// "Fill the Gap"'s optimal-transport method, as POT's EMDLaplaceTransport(reg_type, reg_lap, reg_src,
// similarity_param=k).fit(xs, xt).transform(xs): (coupling [ns, nt], sources moved onto the targets [ns, D]).
std::tuple<at::Tensor, at::Tensor> emd_laplace(const at::Tensor& xs, const at::Tensor& xt, double reg_lap = 1.0,
                                               double reg_src = 1.0, int64_t k = 3, const std::string& reg_type = "pos",
                                               int64_t max_iter = 100, double tol = 1e-9,
                                               int64_t max_inner_iter = 10000000, double inner_tol = 1e-9);

// Out-of-sample map of a fitted transport (POT's transform of new points): x + T(xs_i*) - xs_i* with xs_i* the
// nearest fitted source; xs_transported is emd_laplace's second output.
at::Tensor ot_map_new_points(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported);

// Liang et al.'s post-hoc shift: x' = normalize(x^ - delta/2 u), y' = normalize(y^ + delta/2 u) with u the unit
// centroid difference of the L2-normalised rows (or `direction`); delta > 0 closes the gap.
std::tuple<at::Tensor, at::Tensor> shift_modalities(const at::Tensor& x, const at::Tensor& y, double delta,
                                                    const std::optional<at::Tensor>& direction = std::nullopt);

// (homogeneity, completeness, V-measure) exactly as sklearn.metrics.homogeneity_completeness_v_measure.
std::tuple<at::Tensor, at::Tensor, at::Tensor> vmeasure(const at::Tensor& labels_true, const at::Tensor& labels_pred,
                                                        double beta = 1.0);

// k-means++ and Lloyd iterations as scikit-learn's KMeans: (centroids [k, D], labels [N], inertia).
std::tuple<at::Tensor, at::Tensor, at::Tensor> kmeans(const at::Tensor& x, int64_t k, int64_t max_iter = 300,
                                                      double tol = 1e-4, int64_t n_init = 1, int64_t seed = 0);

// Majority vote of the k nearest training rows ("cosine" or "euclidean"); ties go to the smallest label.
at::Tensor knn_predict(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x, int64_t k = 5,
                       const std::string& metric = "cosine");

// L2-regularised logistic regression (scikit-learn's LogisticRegression(C, max_iter, tol), lbfgs) on rows `x`
// with class indices `y` in [0, num_classes): (coef [1 or K, D], intercept [1 or K], iterations), float64.
std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_regression(const at::Tensor& x, const at::Tensor& y,
                                                                   int64_t num_classes, double C = 1.0,
                                                                   int64_t max_iter = 100, double tol = 1e-4);

// Linear probe: logistic_regression fitted on (train_x, train_y) with any integer labels, then the label
// it predicts for each row of query_x.
at::Tensor linear_probe_predict(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                                double C = 1.0, int64_t max_iter = 100, double tol = 1e-4);

// Recall@K (float64 [len(ks)]) of cosine retrieval; one true gallery item per query.
at::Tensor retrieval_recall(const at::Tensor& queries, const at::Tensor& gallery, const at::Tensor& query_to_gallery,
                            at::IntArrayRef ks);

// Recall@K when query i owns the gallery items j with gallery_to_query[j] == i (hit: any in the top K).
at::Tensor retrieval_recall_any(const at::Tensor& queries, const at::Tensor& gallery,
                                const at::Tensor& gallery_to_query, at::IntArrayRef ks);

// CUDA runtime version the library was compiled against (-1 for a CPU-only build).
int64_t cuda_version();

namespace detail {
// Referenced from this header so that a program including it keeps libmodgap linked even under
// -Wl,--as-needed; the library's static initialisers register the operators.
int64_t link_anchor();
inline const int64_t kLinkAnchor = link_anchor();
}  // namespace detail

}  // namespace modgap
