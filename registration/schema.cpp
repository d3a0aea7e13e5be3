// The one TORCH_LIBRARY block of the `modgap` namespace: every operator's schema is here.
// Kernels live beside each other in ops/<op>/: <op>_cpu.cpp, <op>_cuda.cu, <op>_meta.cpp and
// <op>_autograd.cpp, each with its own TORCH_LIBRARY_IMPL block. The autocast kernels of all ops are one
// table in ops/common/autocast.cpp (a new op that takes tensors goes there too; test_autocast.py checks).
//
// Schemas are part of the public contract; ops whose name starts with `_` are internal (the
// forward/backward halves the autograd kernels call through the dispatcher, so that torch.compile
// and TorchScript see registered ops on both passes).
#include <torch/library.h>

#ifdef MODGAP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <modgap/config.h>
#include <modgap/evaluate.h>
#include <modgap/modgap.h>

namespace modgap {
namespace detail {
int64_t link_anchor() { return 1; }
}  // namespace detail

// Config errors become ValueError in Python (c10::ValueError), with the composer's message.
std::tuple<std::string, std::string, std::vector<std::string>> compose_config_op(std::string config_dir,
                                                                                std::string config_name,
                                                                                std::vector<std::string> overrides) {
  try {
    ComposedConfig composed = compose_config(config_dir, config_name, overrides);
    return {composed.json, composed.yaml, composed.defaults};
  } catch (const ConfigError& error) {
    TORCH_CHECK_VALUE(false, error.what());
  }
}

// The jobs of a multirun sweep, flattened: every job has `per_job` overrides (one per distinct key).
std::tuple<std::vector<std::string>, int64_t> expand_sweeps_op(std::vector<std::string> overrides) {
  try {
    const auto jobs = expand_sweeps(overrides);
    std::vector<std::string> flat;
    for (const auto& job : jobs) flat.insert(flat.end(), job.begin(), job.end());
    return {flat, static_cast<int64_t>(jobs.front().size())};
  } catch (const ConfigError& error) {
    TORCH_CHECK_VALUE(false, error.what());
  }
}

// Every job of a multirun sweep composed (modgap::compose_multirun): the jobs' overrides flattened as
// above, and each job's config as JSON.
std::tuple<std::vector<std::string>, int64_t, std::vector<std::string>> compose_multirun_op(
    std::string config_dir, std::string config_name, std::vector<std::string> overrides) {
  try {
    const auto jobs = compose_multirun(config_dir, config_name, overrides);
    std::vector<std::string> flat;
    std::vector<std::string> configs;
    for (const auto& job : jobs) {
      flat.insert(flat.end(), job.overrides.begin(), job.overrides.end());
      configs.push_back(job.config.json);
    }
    return {flat, static_cast<int64_t>(jobs.front().overrides.size()), configs};
  } catch (const ConfigError& error) {
    TORCH_CHECK_VALUE(false, error.what());
  }
}

int64_t cuda_version() {
#ifdef MODGAP_WITH_CUDA
  return CUDART_VERSION;
#else
  return -1;
#endif
}
}  // namespace modgap

TORCH_LIBRARY(modgap, m) {
  // ---- losses (paper eq. 7, 8/9, 21) ----
  // Eq. 7: alignment of true pairs to the anchor modality.
  m.def("atp_loss(Tensor[] embeddings, int anchor=0) -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def("_atp_loss_backward(Tensor grad_output, Tensor[] embeddings, int anchor) -> Tensor[]",
        {at::Tag::pt2_compliant_tag});

  // Eq. 8/9: uniformity of the (normalised) per-sample centroids, as the reference code's
  // lunif_loss(F.normalize(centroids)). The internal forward half also returns, when compute_grad,
  // dL/dc (gradient with respect to the centroids for an upstream gradient of 1, [N, D] in the
  // accumulation dtype; an empty tensor otherwise): it is computed in the same pass over the pairs, so
  // the backward half only scales it and hands 1/M of it to each modality.
  m.def("centroid_uniformity(Tensor[] embeddings, float t=2.0, bool normalize=True) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_forward(Tensor[] embeddings, float t, bool normalize, bool compute_grad) -> (Tensor, "
      "Tensor)",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_backward(Tensor grad_output, Tensor centroid_grad, int num_modalities, ScalarType dtype) "
      "-> Tensor[]",
      {at::Tag::pt2_compliant_tag});

  // Distributed form (python/modgap/distributed.py): centroids of the local rows (accumulation dtype, to
  // be gathered), the n x N partial log-sum-exp state of the local rows against all gathered centroids
  // (row max, row sum and, with compute_grad, sum_j exp(x_ij - m_i) u_j), and the local rows' gradient
  // once the ranks agreed on log_pair_sum (times `scale`, e.g. world_size for DDP's averaging).
  m.def("_centroids(Tensor[] embeddings, bool normalize) -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_partial(Tensor[] local_embeddings, Tensor all_centroids, int row_offset, float t, "
      "bool normalize, bool compute_grad) -> (Tensor row_max, Tensor row_sum, Tensor weighted)",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_partial_backward(Tensor grad_output, Tensor[] local_embeddings, Tensor row_max, "
      "Tensor row_sum, Tensor weighted, Tensor log_pair_sum, float t, bool normalize, float scale) -> Tensor[]",
      {at::Tag::pt2_compliant_tag});

  // Fahim et al.'s cross-modal uniformity (the NotAGap baseline's L_xunif): log of the mean of
  // exp(-t ||x_i - y_j||^2) over the pairs of a row of x and a row of y, the true pairs i = j left out
  // when exclude_diagonal. Tiled (no N x N buffer); the internal forward half also returns log_pair_sum
  // for the backward half, which recomputes the pair weights tile by tile.
  m.def("cross_uniformity(Tensor x, Tensor y, float t=2.0, bool exclude_diagonal=True) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("_cross_uniformity_forward(Tensor x, Tensor y, float t, bool exclude_diagonal) -> (Tensor loss, Tensor "
        "log_pair_sum)",
        {at::Tag::pt2_compliant_tag});
  m.def("_cross_uniformity_backward(Tensor grad_output, Tensor x, Tensor y, Tensor log_pair_sum, float t, bool "
        "exclude_diagonal) -> (Tensor grad_x, Tensor grad_y)",
        {at::Tag::pt2_compliant_tag});

  // ---- evaluation (no autograd; CPU and CUDA kernels, Meta kernels) ----
  // Gap measures per modality pair on L2-normalised rows (eq. 2, 3; Tables 3, 4, 10; measures.md §2, §8).
  m.def(
      "gap_stats(Tensor[] embeddings, bool rmg_include_diagonal=False) -> (Tensor gap, Tensor cos_tp_mean, "
      "Tensor cos_tp_var, Tensor pair_distance_mean, Tensor pair_distance_var, Tensor rmg, Tensor centroid_cosine, "
      "Tensor angular_value)",
      {at::Tag::pt2_compliant_tag});
  // scikit-learn's homogeneity_completeness_v_measure.
  m.def("vmeasure(Tensor labels_true, Tensor labels_pred, float beta=1.0) -> (Tensor homogeneity, Tensor "
        "completeness, Tensor v_measure)",
        {at::Tag::pt2_compliant_tag});
  // k-means++ + Lloyd with scikit-learn's semantics (relative tol, strict convergence, empty clusters).
  m.def("kmeans(Tensor x, int k, int max_iter=300, float tol=1e-4, int n_init=1, int seed=0) -> (Tensor "
        "centroids, Tensor labels, Tensor inertia)",
        {at::Tag::pt2_compliant_tag});
  // KNeighborsClassifier(n_neighbors=k, weights="uniform").predict, tiled top-k.
  m.def("knn_predict(Tensor train_x, Tensor train_y, Tensor query_x, int k=5, str metric=\"cosine\") -> Tensor",
        {at::Tag::pt2_compliant_tag});
  // LogisticRegression(C, max_iter, tol) of scikit-learn (L2, lbfgs, intercept), fitted in float64 on class
  // indices in [0, num_classes); and the linear probe it gives (fit on the training rows, predict queries).
  m.def("logistic_regression(Tensor x, Tensor y, int num_classes, float C=1.0, int max_iter=100, float tol=1e-4) -> "
        "(Tensor coef, Tensor intercept, Tensor n_iter)",
        {at::Tag::pt2_compliant_tag});
  m.def("linear_probe_predict(Tensor train_x, Tensor train_y, Tensor query_x, float C=1.0, int max_iter=100, "
        "float tol=1e-4) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  // Recall@K with one true gallery item per query, and with several (any of them in the top K).
  m.def("retrieval_recall(Tensor queries, Tensor gallery, Tensor query_to_gallery, int[] ks) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("retrieval_recall_any(Tensor queries, Tensor gallery, Tensor gallery_to_query, int[] ks) -> Tensor",
        {at::Tag::pt2_compliant_tag});

  // "Fill the Gap" measures on the mixed image + text collection: neighbour-modality counts and ratios
  // (ITR, TIR), mean ranks of the best other-modality item (TMR, IMR), Frechet distance (measures.md §1.2).
  m.def(
      "fill_gap_stats(Tensor x, Tensor y, int k=1) -> (Tensor neighbour_counts, Tensor neighbour_ratios, "
      "Tensor mean_ranks, Tensor fid)",
      {at::Tag::pt2_compliant_tag});

  // The post-hoc spectral method of "Fill the Gap": images and texts embedded jointly by the bipartite
  // similarity graph's random-walk Laplacian (SVD form, measures.md §1.3).
  m.def(
      "spectral_align(Tensor x, Tensor y, int k=60, str nonnegative=\"clamp\", int graph_topk=0) -> (Tensor x_new, "
      "Tensor y_new)",
      {at::Tag::pt2_compliant_tag});

  // Exact optimal transport (earth mover's distance) between two discrete distributions: the plan and its
  // cost, as POT's ot.emd; the linear-programme solver under Fill the Gap's OT method (measures.md §1.4).
  m.def("emd(Tensor a, Tensor b, Tensor M, int max_iter=10000000) -> (Tensor plan, Tensor cost)",
        {at::Tag::pt2_compliant_tag});

  // "Fill the Gap"'s optimal-transport method: POT's EMDLaplaceTransport (exact transport regularised by
  // kNN-graph Laplacians, conditional gradient) and the barycentric map of the sources (measures.md §1.4).
  m.def(
      "emd_laplace(Tensor xs, Tensor xt, float reg_lap=1.0, float reg_src=1.0, int k=3, str reg_type=\"pos\", "
      "int max_iter=100, float tol=1e-9, int max_inner_iter=10000000, float inner_tol=1e-9) -> (Tensor coupling, "
      "Tensor xs_transported)",
      {at::Tag::pt2_compliant_tag});

  // The out-of-sample map of a fitted transport (Ferradans; POT's transform of new points): the displacement
  // of the nearest fitted source.
  m.def("ot_map_new_points(Tensor x, Tensor xs, Tensor xs_transported) -> Tensor", {at::Tag::pt2_compliant_tag});

  // Liang et al.'s post-hoc shift of two modalities along their centroid difference (the paper's Fig. 1).
  m.def("shift_modalities(Tensor x, Tensor y, float delta, Tensor? direction=None) -> (Tensor x_new, Tensor y_new)",
        {at::Tag::pt2_compliant_tag});

  // One-call evaluation (internal; public entry points: modgap.evaluate() and modgap::evaluate() in
  // <modgap/evaluate.h>): the result as JSON text and a readable table.
  m.def(
      "_evaluate(Tensor[] embeddings, str[] names, Tensor? labels, int[] ks, int n_clusters, int n_init, "
      "int max_iter, float tol, int knn_k, str knn_metric, float test_fraction, int seed, bool progress, "
      "int fill_gap_k=1, float probe_c=1.0, int probe_max_iter=100) -> (str json, str table)");

  // Internal: evaluate()'s protocol options and their defaults as JSON (modgap::evaluation_protocol_defaults_json),
  // the one list `modgap eval config=...` and modgap.evaluation_options() check a config's `eval` section against.
  m.def("_evaluation_protocol_defaults() -> str", &modgap::evaluation_protocol_defaults_json);

  // ---- configs (Hydra-style composition with yaml-cpp; include/modgap/config.h) ----
  // Internal: the composed config as JSON and YAML, and the final defaults list. Python:
  // modgap.config.compose(); C++: modgap::compose_config().
  m.def("_compose_config(str config_dir, str config_name, str[] overrides) -> (str json, str yaml, str[] defaults)",
        &modgap::compose_config_op);
  // Internal: Hydra multirun sweep expansion (`a=1,2 b=range(0,1,0.5)` -> the product of jobs),
  // flattened with `per_job` overrides per job. Python: modgap.config.sweep(); C++: modgap::expand_sweeps().
  m.def("_expand_sweeps(str[] overrides) -> (str[] jobs, int per_job)", &modgap::expand_sweeps_op);
  // Internal: the same jobs, each composed (modgap::compose_multirun). Python: modgap.config.compose_multirun().
  m.def("_compose_multirun(str config_dir, str config_name, str[] overrides) -> (str[] jobs, int per_job, str[] configs)",
        &modgap::compose_multirun_op);

  // ---- library information ----
  m.def("_cuda_version() -> int", &modgap::cuda_version);
}
