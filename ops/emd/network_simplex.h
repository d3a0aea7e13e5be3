// Exact optimal transport between two discrete distributions (the earth mover's distance), by the
// network simplex on the bipartite transportation graph: the solver behind modgap::emd, and the inner
// solver of Fill the Gap's optimal-transport method (POT's EMDLaplaceTransport solves the same linear
// programme with LEMON's network simplex, measures.md §1.4). Plain C++ on doubles, no ATen.
//
//   min_G <G, M>  subject to  G >= 0,  G 1 = a,  G^T 1 = b        (sum a = sum b)
//
// A basis is a spanning tree of the ns + nt nodes (rows, then columns) made of ns + nt - 1 cells; node
// potentials u_i + v_j = M_ij on the tree cells give the reduced costs M_ij - u_i - v_j, and a cell with a
// negative reduced cost enters (block search over the cells, as LEMON's default pivot rule), closing a
// cycle with the tree path between its two nodes; flow moves round the cycle and the first cell it
// empties leaves.
//
// Degeneracy (transport between uniform masses is highly degenerate: most pivots move zero flow, and a
// zero-flow pivot can cycle) is removed with Charnes' perturbation, kept symbolic: every supply a_i
// becomes a_i + eps and the last demand b_nt + ns eps, and flows are pairs x + k eps compared
// lexicographically. The perturbed problem is nondegenerate (every basic cell carries a positive
// perturbed flow), so every pivot strictly lowers the perturbed cost and the simplex cannot cycle; the
// optimal basis of the perturbed problem is optimal for the original one, whose flows are the x parts.
// Start: the row-minimum rule on the perturbed masses.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace modgap::ot {

struct TransportSolution {
  std::vector<int64_t> rows, cols;  // the basic cells (ns + nt - 1 of them)
  std::vector<double> flows;        // their flows (>= 0; zero for degenerate basic cells)
  int64_t pivots = 0;
  bool optimal = false;  // false: max_pivots was reached first (the plan is feasible, not optimal)
};

namespace detail {

// x + k eps with eps -> 0+.
struct PerturbedFlow {
  double x;
  int64_t k;
};

class PerturbedOrder {
 public:
  explicit PerturbedOrder(double tolerance) : tolerance_(tolerance) {}
  // p < q in the lexicographic order, x compared up to the rounding tolerance.
  bool less(const PerturbedFlow& p, const PerturbedFlow& q) const {
    if (p.x < q.x - tolerance_) return true;
    if (p.x > q.x + tolerance_) return false;
    return p.k < q.k;
  }

 private:
  double tolerance_;
};

inline PerturbedFlow minus(const PerturbedFlow& p, const PerturbedFlow& q) { return {p.x - q.x, p.k - q.k}; }
inline PerturbedFlow plus(const PerturbedFlow& p, const PerturbedFlow& q) { return {p.x + q.x, p.k + q.k}; }

}  // namespace detail

// a [ns], b [nt] (non-negative, equal sums), cost row-major [ns, nt]. At most max_pivots pivots.
inline TransportSolution solve_transport(const double* a, const double* b, const double* cost, int64_t ns,
                                         int64_t nt, int64_t max_pivots) {
  using detail::PerturbedFlow;
  const int64_t num_nodes = ns + nt;
  const int64_t num_arcs = num_nodes - 1;
  double mass = 0.0;
  for (int64_t i = 0; i < ns; ++i) mass += a[i];
  double cost_scale = 0.0;
  for (int64_t e = 0; e < ns * nt; ++e) cost_scale = std::max(cost_scale, std::abs(cost[e]));
  // Flows are sums and differences of the masses: compare them up to their rounding.
  const detail::PerturbedOrder order(1e-13 * std::max(mass, 1e-300));
  // Optimality: no reduced cost below -1e-12 of the largest cost (POT/LEMON use a relative 2e-15 per
  // cell; here the potentials are rebuilt along tree paths, so allow their rounding).
  const double reduced_cost_tolerance = 1e-12 * std::max(cost_scale, 1e-300);

  std::vector<int64_t> arc_row(num_arcs), arc_col(num_arcs);
  std::vector<PerturbedFlow> flow(num_arcs);
  std::vector<std::vector<int64_t>> adjacent(num_nodes);
  int64_t arcs = 0;
  const auto add_arc = [&](int64_t i, int64_t j, PerturbedFlow x) {
    arc_row[arcs] = i;
    arc_col[arcs] = ns + j;
    flow[arcs] = x;
    adjacent[i].push_back(arcs);
    adjacent[ns + j].push_back(arcs);
    ++arcs;
  };

  // Row-minimum start on the perturbed masses: row by row, each row ships to its cheapest column that
  // still has demand until the row or that column is exhausted. Each step exhausts exactly one line (never
  // both before the last cell, by the perturbation), so it leaves ns + nt - 1 cells forming a tree; unlike
  // the north-west corner it reads the costs, which saves most of the pivots.
  {
    std::vector<PerturbedFlow> supply(ns), demand(nt);
    for (int64_t i = 0; i < ns; ++i) supply[i] = {a[i], 1};
    for (int64_t j = 0; j < nt; ++j) demand[j] = {b[j], j == nt - 1 ? ns : 0};
    std::vector<int64_t> open_columns(nt);
    for (int64_t j = 0; j < nt; ++j) open_columns[j] = j;
    for (int64_t i = 0; i < ns; ++i) {
      const double* row_cost = cost + i * nt;
      while (true) {
        size_t best = 0;
        for (size_t position = 1; position < open_columns.size(); ++position) {
          if (row_cost[open_columns[position]] < row_cost[open_columns[best]]) best = position;
        }
        const int64_t j = open_columns[best];
        const bool last_cell = i == ns - 1 && open_columns.size() == 1;
        if (last_cell) {
          add_arc(i, j, supply[i]);
          break;
        }
        const bool row_exhausted =
            open_columns.size() == 1 || (i < ns - 1 && order.less(supply[i], demand[j]));
        if (row_exhausted) {
          add_arc(i, j, supply[i]);
          demand[j] = detail::minus(demand[j], supply[i]);
          break;
        }
        add_arc(i, j, demand[j]);
        supply[i] = detail::minus(supply[i], demand[j]);
        open_columns.erase(open_columns.begin() + static_cast<std::ptrdiff_t>(best));
      }
    }
  }

  // The tree rooted at node 0: parent, the arc to it, depth, and the potentials.
  std::vector<int64_t> parent(num_nodes, -1), parent_arc(num_nodes, -1), depth(num_nodes, 0);
  std::vector<double> potential(num_nodes, 0.0);
  std::vector<int64_t> stack;
  const auto hang_subtree = [&](int64_t top) {  // (re)computes everything below `top` from `top`
    stack.assign(1, top);
    while (!stack.empty()) {
      const int64_t node = stack.back();
      stack.pop_back();
      for (const int64_t arc : adjacent[node]) {
        if (arc == parent_arc[node]) continue;
        const int64_t other = arc_row[arc] == node ? arc_col[arc] : arc_row[arc];
        parent[other] = node;
        parent_arc[other] = arc;
        depth[other] = depth[node] + 1;
        potential[other] = cost[arc_row[arc] * nt + (arc_col[arc] - ns)] - potential[node];
        stack.push_back(other);
      }
    }
  };
  hang_subtree(0);

  TransportSolution solution;
  const int64_t num_cells = ns * nt;
  const int64_t block = std::max<int64_t>(10, static_cast<int64_t>(std::sqrt(static_cast<double>(num_cells))));
  int64_t next_cell = 0;
  std::vector<int64_t> path_p, path_q, cycle;
  while (true) {
    // Block search: scan `block` cells from where the last search stopped; take the most negative
    // reduced cost of the first block that has one; a whole round without one means optimal.
    int64_t entering = -1;
    double best = -reduced_cost_tolerance;
    int64_t scanned = 0;
    for (int64_t count = 0; count < num_cells; ++count) {
      const int64_t cell = next_cell;
      next_cell = next_cell + 1 == num_cells ? 0 : next_cell + 1;
      const int64_t i = cell / nt;
      const int64_t j = cell - i * nt;
      const double reduced = cost[cell] - potential[i] - potential[ns + j];
      if (reduced < best) {
        best = reduced;
        entering = cell;
      }
      if (++scanned == block) {
        if (entering >= 0) break;
        scanned = 0;
      }
    }
    if (entering < 0) {
      solution.optimal = true;
      break;
    }
    if (solution.pivots == max_pivots) break;
    ++solution.pivots;

    // The cycle: the entering cell (p -> q), then the tree path from q back to p; along it the cells
    // alternately lose and gain flow, starting with a loss at q.
    const int64_t p = entering / nt;
    const int64_t q = ns + (entering - p * nt);
    path_p.clear();
    path_q.clear();
    int64_t u = p, v = q;
    while (depth[u] > depth[v]) { path_p.push_back(parent_arc[u]); u = parent[u]; }
    while (depth[v] > depth[u]) { path_q.push_back(parent_arc[v]); v = parent[v]; }
    while (u != v) {
      path_p.push_back(parent_arc[u]);
      u = parent[u];
      path_q.push_back(parent_arc[v]);
      v = parent[v];
    }
    cycle.assign(path_q.begin(), path_q.end());
    cycle.insert(cycle.end(), path_p.rbegin(), path_p.rend());
    // theta: the smallest flow among the losing cells (even positions); it leaves.
    int64_t leaving_position = 0;
    for (size_t position = 2; position < cycle.size(); position += 2) {
      if (order.less(flow[cycle[position]], flow[cycle[leaving_position]])) leaving_position = position;
    }
    const int64_t leaving = cycle[leaving_position];
    const PerturbedFlow theta = flow[leaving];
    for (size_t position = 0; position < cycle.size(); ++position) {
      const int64_t arc = cycle[position];
      flow[arc] = position % 2 == 0 ? detail::minus(flow[arc], theta) : detail::plus(flow[arc], theta);
    }

    // Tree update: the leaving cell cuts off the subtree below its deeper end; that subtree holds one
    // end of the entering cell (p if the leaving cell was on p's side of the cycle) and is hung from
    // the other end through the entering cell, which takes the leaving cell's slot.
    const bool on_p_side = leaving_position >= static_cast<int64_t>(path_q.size());
    const int64_t inside = on_p_side ? p : q;
    const int64_t outside = on_p_side ? q : p;
    const auto unlink = [&](int64_t node) {
      auto& list = adjacent[node];
      list.erase(std::find(list.begin(), list.end(), leaving));
    };
    unlink(arc_row[leaving]);
    unlink(arc_col[leaving]);
    arc_row[leaving] = p;
    arc_col[leaving] = q;
    flow[leaving] = theta;
    adjacent[p].push_back(leaving);
    adjacent[q].push_back(leaving);
    parent[inside] = outside;
    parent_arc[inside] = leaving;
    depth[inside] = depth[outside] + 1;
    potential[inside] = cost[entering] - potential[outside];
    hang_subtree(inside);
  }

  solution.rows.resize(num_arcs);
  solution.cols.resize(num_arcs);
  solution.flows.resize(num_arcs);
  for (int64_t arc = 0; arc < num_arcs; ++arc) {
    solution.rows[arc] = arc_row[arc];
    solution.cols[arc] = arc_col[arc] - ns;
    solution.flows[arc] = std::max(flow[arc].x, 0.0);
  }
  return solution;
}

}  // namespace modgap::ot
