// GoogleTest suite of the C++ API (modgap/modgap.h): every call goes through the dispatcher, as a C++
// user's would. Oracles are naive formulas written here (the full N x N matrix in float64), and the
// error messages are checked text.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <modgap/evaluate.h>
#include <modgap/modgap.h>

#include "ops/kmeans/kmeans_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

namespace {

// Eq. 7 written naively.
at::Tensor naive_atp(const std::vector<at::Tensor>& z, int64_t anchor) {
  at::Tensor total = at::zeros({}, z[0].options());
  for (size_t m = 0; m < z.size(); ++m) {
    if (static_cast<int64_t>(m) != anchor) {
      total = total + (z[m] - z[anchor]).pow(2).sum(1).mean();
    }
  }
  return total / static_cast<double>(z.size() - 1);
}

// Reference lunif_loss(F.normalize(centroids), t) with the full pair matrix.
at::Tensor naive_centroid_uniformity(const std::vector<at::Tensor>& z, double t, bool normalize) {
  at::Tensor c = at::stack(z).mean(0);
  if (normalize) {
    c = c / c.norm(2, {1}, true).clamp_min(1e-12);
  }
  const int64_t n = c.size(0);
  at::Tensor sq = (c.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(-1);
  at::Tensor upper = at::triu(at::ones({n, n}, at::kBool), 1);
  return sq.masked_select(upper).mul(-t).exp().mean().log();
}

std::vector<at::Tensor> random_embeddings(int64_t modalities, int64_t n, int64_t d, bool requires_grad,
                                          uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> z;
  for (int64_t m = 0; m < modalities; ++m) {
    z.push_back(torch::randn({n, d}, torch::kFloat64).requires_grad_(requires_grad));
  }
  return z;
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const c10::Error& error) {
    return error.what_without_backtrace();
  }
  return "";
}

// Optimal transport between uniform masses on a square cost matrix, by brute force: the optimum is a
// vertex, a permutation matrix / n, so it is the cheapest of all n! permutations, divided by n.
double best_permutation_cost(const at::Tensor& M) {
  const int64_t n = M.size(0);
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += M[i][perm[i]].item<double>();
    best = std::min(best, total / n);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

TEST(AtpLoss, MatchesNaiveFormulaForTwoToFourModalities) {
  for (int64_t modalities = 2; modalities <= 4; ++modalities) {
    for (int64_t anchor = 0; anchor < modalities; ++anchor) {
      auto z = random_embeddings(modalities, 37, 11, false, 7 + modalities);
      const double got = modgap::atp_loss(z, anchor).item<double>();
      const double expected = naive_atp(z, anchor).item<double>();
      EXPECT_NEAR(got, expected, 1e-12 * std::abs(expected)) << "M=" << modalities << " anchor=" << anchor;
    }
  }
}

TEST(AtpLoss, GradientsMatchAutogradOfNaiveFormula) {
  auto z = random_embeddings(3, 19, 5, true, 3);
  auto got = torch::autograd::grad({modgap::atp_loss(z, 1)}, z);
  auto expected = torch::autograd::grad({naive_atp(z, 1)}, z);
  for (size_t m = 0; m < z.size(); ++m) {
    EXPECT_TRUE(torch::allclose(got[m], expected[m], 1e-12, 1e-14)) << "modality " << m;
  }
}

TEST(CentroidUniformity, MatchesNaivePairMatrix) {
  for (bool normalize : {true, false}) {
    for (int64_t modalities : {2, 3}) {
      // 700 rows cross the CPU tile size (256 x 1024) in the row direction.
      auto z = random_embeddings(modalities, 700, 9, false, 11);
      const double got = modgap::centroid_uniformity(z, 2.0, normalize).item<double>();
      const double expected = naive_centroid_uniformity(z, 2.0, normalize).item<double>();
      EXPECT_NEAR(got, expected, 1e-10 * std::abs(expected)) << "normalize=" << normalize;
    }
  }
}

TEST(CentroidUniformity, GradientsMatchAutogradOfNaivePairMatrix) {
  auto z = random_embeddings(2, 300, 6, true, 5);
  auto got = torch::autograd::grad({modgap::centroid_uniformity(z, 3.0, true)}, z);
  auto expected = torch::autograd::grad({naive_centroid_uniformity(z, 3.0, true)}, z);
  for (size_t m = 0; m < z.size(); ++m) {
    EXPECT_TRUE(torch::allclose(got[m], expected[m], 1e-9, 1e-12)) << "modality " << m;
  }
}

TEST(CentroidUniformity, Float32AccumulatesLikeFloat64) {
  auto z = random_embeddings(2, 500, 32, false, 9);
  std::vector<at::Tensor> z32 = {z[0].to(at::kFloat), z[1].to(at::kFloat)};
  const at::Tensor loss32 = modgap::centroid_uniformity(z32);
  EXPECT_EQ(loss32.scalar_type(), at::kFloat);
  EXPECT_NEAR(loss32.item<double>(), modgap::centroid_uniformity(z).item<double>(), 1e-5);
}

// Fahim et al.'s L_xunif from the full float64 distance matrix, the true pairs left out.
at::Tensor naive_cross_uniformity(const at::Tensor& x, const at::Tensor& y, double t) {
  const int64_t n = x.size(0);
  at::Tensor sq = (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1);
  at::Tensor off_diagonal = at::eye(n, at::kBool).logical_not();
  return sq.masked_select(off_diagonal).mul(-t).exp().mean().log();
}

// C++ callers under autocast (ops/common/autocast.cpp): the losses take bf16 rows as float32 and return a
// float32 loss equal to the op on the cast rows; the float64 path is untouched. Before the autocast
// kernels, this call raised "expected scalar type Float but found BFloat16".
TEST(CentroidUniformity, UnderCpuAutocastIsTheFloat32OpOnCastRows) {
  auto z = random_embeddings(2, 64, 8, false, 21);
  std::vector<at::Tensor> bf16 = {z[0].to(at::kBFloat16), z[1].to(at::kBFloat16)};
  std::vector<at::Tensor> cast = {bf16[0].to(at::kFloat), bf16[1].to(at::kFloat)};
  const at::Tensor expected = modgap::centroid_uniformity(cast);
  const at::Tensor expected_float64 = modgap::centroid_uniformity(z);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::Tensor got;
  at::Tensor got_float64;
  try {
    got = modgap::centroid_uniformity(bf16);
    got_float64 = modgap::centroid_uniformity(z);
  } catch (...) {
    at::autocast::set_autocast_enabled(at::kCPU, false);
    throw;
  }
  at::autocast::set_autocast_enabled(at::kCPU, false);
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::equal(got, expected));
  EXPECT_EQ(got_float64.scalar_type(), at::kDouble);
  EXPECT_TRUE(torch::equal(got_float64, expected_float64));
}
TEST(CrossUniformity, MatchesNaivePairMatrixWithGradients) {
  // 600 rows cross the CPU tile's rows (512).
  auto z = random_embeddings(2, 600, 7, true, 21);
  const at::Tensor got = modgap::cross_uniformity(z[0], z[1], 0.8);
  const at::Tensor expected = naive_cross_uniformity(z[0], z[1], 0.8);
  EXPECT_NEAR(got.item<double>(), expected.item<double>(), 1e-10 * std::abs(expected.item<double>()));
  auto got_grads = torch::autograd::grad({got}, z);
  auto expected_grads = torch::autograd::grad({expected}, z);
  for (size_t m = 0; m < z.size(); ++m) {
    EXPECT_TRUE(torch::allclose(got_grads[m], expected_grads[m], 1e-9, 1e-13)) << "input " << m;
  }
  EXPECT_NE(error_of([&] { modgap::cross_uniformity(z[0], z[1].narrow(0, 0, 5)); })
                .find("x and y are paired row by row and must have the same number of rows, got 600 and 5"),
            std::string::npos);
}

TEST(Errors, NameTheArgumentAndTheExpectation) {
  auto z = random_embeddings(2, 8, 4, false, 1);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({}); }).find("expected at least 2 modalities in `embeddings`, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0]}); }).find("expected at least 2 modalities in `embeddings`, got 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0], torch::randn({8, 3}, torch::kFloat64)}); })
                .find("embeddings[1] has shape [8, 3] but embeddings[0] has shape [8, 4]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss(z, 2); }).find("`anchor` must index one of the 2 modalities"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity(z, 0.0); }).find("`t` (the uniformity temperature) must be"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0].narrow(0, 0, 1), z[1].narrow(0, 0, 1)}); })
                .find("expected at least 2 rows (N)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0], z[1].to(at::kFloat)}); }).find("embeddings[1] has dtype Float"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0].to(at::kLong), z[1].to(at::kLong)}); })
                .find("must have a floating dtype"),
            std::string::npos);
  at::Tensor with_nan = z[1].clone();
  with_nan[3][2] = std::nan("");
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0], with_nan}); })
                .find("embeddings[1] contains NaN or Inf values"),
            std::string::npos);
}

// ---- evaluation ops through the C++ API ----

TEST(Evaluation, VMeasureEdgeCasesAsScikitLearn) {
  const auto values = [](std::vector<int64_t> a, std::vector<int64_t> b) {
    auto [h, c, v] = modgap::vmeasure(torch::tensor(a), torch::tensor(b));
    return std::vector<double>{h.item<double>(), c.item<double>(), v.item<double>()};
  };
  EXPECT_EQ(values({4, 4, 4}, {0, 1, 2}), (std::vector<double>{1.0, 0.0, 0.0}));  // one class
  EXPECT_EQ(values({0, 1, 2}, {5, 5, 5}), (std::vector<double>{0.0, 1.0, 0.0}));  // one cluster
  EXPECT_EQ(values({0, 0, 1, 1}, {0, 1, 0, 1}), (std::vector<double>{0.0, 0.0, 0.0}));
  auto [h, c, v] = modgap::vmeasure(torch::empty({0}, torch::kLong), torch::empty({0}, torch::kLong));
  EXPECT_EQ(v.item<double>(), 1.0);
  // sklearn 1.9.1 prints (0.7103099178571525, 0.7715561736794712, 0.739667376800759) for its docstring example.
  const auto example = values({0, 0, 1, 1, 2, 2}, {0, 0, 1, 2, 2, 2});
  EXPECT_NEAR(example[0], 0.7103099178571526, 1e-12);
  EXPECT_NEAR(example[1], 0.7715561736794712, 1e-12);
  EXPECT_NEAR(example[2], 0.739667376800759, 1e-12);
}

TEST(Evaluation, GapStatsMatchesNaiveFormulas) {
  const auto z = random_embeddings(2, 40, 6, /*requires_grad=*/false, 21);
  const auto stats = modgap::gap_stats(z);
  const at::Tensor a = z[0] / z[0].norm(2, {1}, true);
  const at::Tensor b = z[1] / z[1].norm(2, {1}, true);
  EXPECT_NEAR(std::get<0>(stats)[0][1].item<double>(), (a.mean(0) - b.mean(0)).norm().item<double>(), 1e-12);
  EXPECT_NEAR(std::get<1>(stats)[1][0].item<double>(), (a * b).sum(1).mean().item<double>(), 1e-12);
  const at::Tensor gram = at::mm(a, a.t());
  const double av = (gram.sum().item<double>() - gram.trace().item<double>()) / (40.0 * 39.0);
  EXPECT_NEAR(std::get<7>(stats)[0].item<double>(), av, 1e-12);
}

TEST(Evaluation, FillGapStatsOnSeparatedModalities) {
  // Images around +e_0, texts around -e_0: every neighbour is of the query's own modality, the best other-
  // modality item ranks behind all N - 1 (M - 1) same-modality ones, and the Frechet distance is about
  // the centroid distance 2.
  torch::manual_seed(4);
  at::Tensor x = 0.01 * torch::randn({30, 5}, torch::kFloat64);
  at::Tensor y = 0.01 * torch::randn({20, 5}, torch::kFloat64);
  x.select(1, 0).add_(1.0);
  y.select(1, 0).sub_(1.0);
  auto [counts, ratios, ranks, fid] = modgap::fill_gap_stats(x, y, 2);
  EXPECT_TRUE(counts.equal(torch::tensor({60, 0, 0, 40}, torch::kLong).view({2, 2})));
  EXPECT_TRUE(std::isinf(ratios[0].item<double>()) && std::isinf(ratios[1].item<double>()));
  EXPECT_EQ(ranks[0].item<double>(), 30.0);
  EXPECT_EQ(ranks[1].item<double>(), 20.0);
  EXPECT_NEAR(fid.item<double>(), 2.0, 0.01);
  EXPECT_THROW(
      {
        try {
          modgap::fill_gap_stats(x, y, 50);
        } catch (const c10::ValueError& e) {
          EXPECT_NE(std::string(e.what()).find("`k` (neighbours) must be in [1, 49]"), std::string::npos);
          throw;
        }
      },
      c10::ValueError);
}

TEST(Evaluation, EmdMatchesTheBestPermutationForUniformMasses) {
  // Uniform masses on a square cost matrix: the naive reference is the cheapest permutation.
  torch::manual_seed(6);
  const int64_t n = 6;
  const at::Tensor M = torch::rand({n, n}, torch::kFloat64);
  const double best = best_permutation_cost(M);
  const at::Tensor uniform = torch::empty({0}, torch::kFloat64);
  auto [plan, cost] = modgap::emd(uniform, uniform, M);
  EXPECT_NEAR(cost.item<double>(), best, 1e-14);
  EXPECT_TRUE(torch::allclose(plan.sum(0), torch::full({n}, 1.0 / n, torch::kFloat64), 0.0, 1e-15));
  EXPECT_TRUE(torch::allclose(plan.sum(1), torch::full({n}, 1.0 / n, torch::kFloat64), 0.0, 1e-15));
  EXPECT_THROW(modgap::emd(torch::ones({n}, torch::kFloat64), uniform, M), c10::ValueError);  // mass n vs 1
}

TEST(Evaluation, EmdLaplaceWithoutRegularisationReachesTheExactTransport) {
  // reg_lap = 0 leaves the linear programme: the conditional gradient steps (0.99 of the way each time)
  // towards the exact optimum, the best permutation / n of the squared distances.
  torch::manual_seed(8);
  const int64_t n = 5;
  const at::Tensor xs = torch::randn({n, 3}, torch::kFloat64);
  const at::Tensor xt = torch::randn({n, 3}, torch::kFloat64) + 1.0;
  const at::Tensor M = torch::cdist(xs, xt).square();
  const double best = best_permutation_cost(M);
  auto [coupling, moved] = modgap::emd_laplace(xs, xt, /*reg_lap=*/0.0, /*reg_src=*/1.0, /*k=*/2);
  EXPECT_NEAR((coupling * M).sum().item<double>(), best, 1e-8);
  EXPECT_TRUE(torch::allclose(moved.mean(0), xt.mean(0), 0.0, 1e-12));  // uniform masses: means agree
}

TEST(Evaluation, KMeansKnnAndRecallOnSeparatedClusters) {
  torch::manual_seed(3);
  const at::Tensor centers = torch::randn({4, 8}, torch::kFloat64) * 10;
  const at::Tensor y = torch::arange(400, torch::kLong).remainder(4);
  const at::Tensor x = centers.index_select(0, y) + 0.1 * torch::randn({400, 8}, torch::kFloat64);
  auto [centroids, labels, inertia] = modgap::kmeans(x, 4, 300, 1e-4, 2, 0);
  auto [h, c, v] = modgap::vmeasure(y, labels);
  EXPECT_NEAR(v.item<double>(), 1.0, 1e-12);
  const at::Tensor predicted = modgap::knn_predict(x, y, x, 3, "euclidean");
  EXPECT_TRUE(predicted.equal(y));
  const at::Tensor recall = modgap::retrieval_recall(x, x, torch::arange(400, torch::kLong), {1, 400});
  EXPECT_EQ(recall[1].item<double>(), 1.0);
}

TEST(Evaluation, LogisticRegressionStopsWhereTheGradientVanishes) {
  torch::manual_seed(5);
  const int64_t n = 90, classes = 3;
  const double C = 0.7;
  const at::Tensor y = torch::arange(n, torch::kLong).remainder(classes);
  const at::Tensor x = torch::randn({n, 4}, torch::kFloat64) + y.unsqueeze(1).to(torch::kFloat64);
  auto [coef, intercept, iterations] = modgap::logistic_regression(x, y, classes, C, /*max_iter=*/1000, /*tol=*/1e-10);
  ASSERT_EQ(coef.sizes(), (std::vector<int64_t>{classes, 4}));
  // The gradient of sklearn's objective 1/n sum CE + ||W||^2 / (2 C n), written out here: zero at the minimiser.
  const at::Tensor p = torch::softmax(torch::matmul(x, coef.t()) + intercept, 1);
  const at::Tensor residual = p - torch::one_hot(y, classes).to(torch::kFloat64);
  const at::Tensor grad_coef = torch::matmul(residual.t(), x) / n + coef / (C * n);
  // (tol = 1e-10 is below what float64 resolves here: the relative-decrease stop, 64 eps as sklearn sets
  // scipy's ftol, ends the run with a gradient near 1e-8.)
  EXPECT_LT(grad_coef.abs().max().item<double>(), 1e-6);
  EXPECT_LT((residual.sum(0) / n).abs().max().item<double>(), 1e-6);
  EXPECT_GT(iterations.item<int64_t>(), 0);
  // Two classes: one score, class 1 positive (as sklearn).
  auto [binary_coef, binary_intercept, unused] = modgap::logistic_regression(x, (y > 0).to(torch::kLong), 2);
  EXPECT_EQ(binary_coef.sizes(), (std::vector<int64_t>{1, 4}));
  // Well separated classes: the probe predicts the training labels (here: labels 10, 20, 30).
  const at::Tensor separated = x + 20.0 * y.unsqueeze(1).to(torch::kFloat64);
  EXPECT_TRUE(modgap::linear_probe_predict(separated, 10 * (y + 1), separated).equal(10 * (y + 1)));
  EXPECT_NE(error_of([&] { modgap::logistic_regression(x, y, 2); }).find("class indices in [0, 2)"), std::string::npos);
}

TEST(Evaluation, EvaluateReportsEveryPartAndEchoesTheProtocol) {
  torch::manual_seed(4);
  const auto z = random_embeddings(2, 60, 5, /*requires_grad=*/false, 22);
  modgap::EvaluateOptions options;
  options.ks = {1, 5};
  options.seed = 7;
  const auto report = modgap::evaluate(z, {"image", "text"}, torch::randint(0, 3, {60}, torch::kLong), options);
  for (const char* key : {"\"protocol\"", "\"image-text\"", "\"image->text\"", "\"R@5\"", "\"v_measure\"",
                          "\"joint\"", "\"seed\": 7", "\"n_clusters\": 3", "\"linear_probe\"",
                          "\"linear_separability\"", "\"probe_max_iter\": 100"}) {
    EXPECT_NE(report.json.find(key), std::string::npos) << key;
  }
  EXPECT_NE(report.table.find("V-measure"), std::string::npos);
  EXPECT_NE(error_of([&] { modgap::evaluate(z, {"image"}, std::nullopt, options); })
                .find("got 1 names for 2 modalities"),
            std::string::npos);
}

// Far-apart modalities: no query's nearest neighbour is of the other modality, so ITR = TIR = inf. The
// default report is strict JSON (null); json_python_tokens writes Python json's Infinity instead.
TEST(Evaluation, EvaluateWritesNonFiniteNumbersAsNullOrPythonTokens) {
  torch::manual_seed(5);
  const std::vector<at::Tensor> z = {0.1 * torch::randn({40, 4}, torch::kFloat64) + 2.0,
                                     0.1 * torch::randn({40, 4}, torch::kFloat64) - 2.0};
  modgap::EvaluateOptions options;
  options.ks = {1};
  options.probe_max_iter = 0;
  const auto strict = modgap::evaluate(z, {"image", "text"}, std::nullopt, options);
  EXPECT_NE(strict.json.find("\"itr\": null"), std::string::npos);
  EXPECT_EQ(strict.json.find("Infinity"), std::string::npos);
  options.json_python_tokens = true;
  const auto python = modgap::evaluate(z, {"image", "text"}, std::nullopt, options);
  EXPECT_NE(python.json.find("\"itr\": Infinity"), std::string::npos);
  EXPECT_EQ(python.json.find("null"), std::string::npos);
  EXPECT_EQ(python.table, strict.table);
}

// The CUDA M-step of k-means (kmeans_cuda.cu) runs kmeans_math::accumulate_block_cluster_sums once per
// thread. Here every (block, thread) of a launch runs on the CPU, in an order that is not the GPU's
// (threads backwards), and the block partials are added in block order as the host does: the sums and
// sizes must equal index_add_ / bincount, whatever the block count (one block, more blocks than rows'
// worth, the partial-buffer cap) and for D below, at and above the thread count.
TEST(KMeansClusterSums, EmulatedCudaBlocksMatchIndexAdd) {
  torch::manual_seed(7);
  for (const auto& [n, k, d] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 3}, {5, 3, 1}, {300, 7, 32}, {1000, 20, 256}, {2049, 4, 300}}) {
    const at::Tensor x = torch::randn({n, d}, torch::kFloat64);
    const at::Tensor labels = torch::randint(k, {n}, torch::kLong);
    for (const int64_t threads : {int64_t{32}, int64_t{256}}) {
      const int64_t blocks = modgap::kmeans_math::cluster_sum_blocks(n, k, d);
      ASSERT_GE(blocks, 1);
      ASSERT_LE(blocks * k * d, std::max<int64_t>(int64_t{1} << 24, k * d));
      const int64_t rows_per_block = (n + blocks - 1) / blocks;
      at::Tensor partial_sums = torch::zeros({blocks, k, d}, torch::kFloat64);
      at::Tensor partial_counts = torch::zeros({blocks, k}, torch::kLong);
      for (int64_t block = 0; block < blocks; ++block) {
        for (int64_t thread = threads - 1; thread >= 0; --thread) {
          modgap::kmeans_math::accumulate_block_cluster_sums<double>(
              x.const_data_ptr<double>(), labels.const_data_ptr<int64_t>(), n, d, rows_per_block, block, thread, threads,
              partial_sums[block].data_ptr<double>(), partial_counts[block].data_ptr<int64_t>());
        }
      }
      const at::Tensor expected_sums = torch::zeros({k, d}, torch::kFloat64).index_add_(0, labels, x);
      EXPECT_TRUE(torch::allclose(partial_sums.sum(0), expected_sums, 1e-12, 1e-12)) << n << " " << k << " " << d;
      EXPECT_TRUE(partial_counts.sum(0).equal(torch::bincount(labels, {}, k))) << n << " " << k << " " << d;
    }
  }
  EXPECT_EQ(modgap::kmeans_math::cluster_sum_blocks(100000, 20, 512), 782);  // 128 rows each
  EXPECT_EQ(modgap::kmeans_math::cluster_sum_blocks(1000000, 20, 512), 1024);
  EXPECT_EQ(modgap::kmeans_math::cluster_sum_blocks(1000000, 1000, 1024), 16);  // 2^24 partial elements
}

TEST(Library, ReportsItsCudaBuild) {
  // -1 for CPU-only builds, CUDART_VERSION (e.g. 13000) otherwise.
  EXPECT_TRUE(modgap::cuda_version() == -1 || modgap::cuda_version() >= 11000);
}

}  // namespace
