// SPDX-License-Identifier: MIT
// tape.hpp: reverse-mode autograd as bookkeeping. Each op appends a node (its output shape, its
// inputs, what it saved, a backward function) to a vector, so the vector is already in topological
// order and backward() is one reverse loop: no recursion, no shared_ptr graph. Values, gradients
// and saved data live in arenas that reset() clears but keeps, so a training step that has run
// once allocates nothing again. Every tensor on the tape is 2-D [rows, cols]; a vector is [1, n].
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "ops.hpp"
#include "tensor.hpp"

namespace purevlm {

// A handle to a node on a tape: an index, valid until the tape's next reset().
struct var {
  std::uint32_t id = 0;
};

template <std::floating_point T>
class basic_tape {
public:
  struct node;
  using backward_fn = void (*)(basic_tape&, const node&);
  struct node {
    backward_fn backward = nullptr;  // null for leaves
    std::size_t rows = 0, cols = 0;
    std::size_t value = 0, saved = 0, ints = 0, inputs = 0, n_inputs = 0;
    T* ext_value = nullptr;  // parameters live outside the tape: value and gradient
    T* ext_grad = nullptr;
    alignas(8) std::byte args[32] = {};  // the op's own sizes and constants: set_args(), args_of()
    bool needs_grad = false;  // a parameter is upstream; backward() skips the nodes that have none
  };

  // ---- building the graph ----
  // A constant input, copied into the arena.
  var input(std::span<const T> data, std::size_t rows, std::size_t cols) {
    if (data.size() != rows * cols)
      throw error("tape input: " + std::to_string(data.size()) + " values do not fill shape " +
                  detail::shape_string(std::array{rows, cols}));
    var v = make(rows, cols, {}, nullptr);
    std::copy(data.begin(), data.end(), value(v).begin());
    return v;
  }
  // A constant read in place, not copied: `data` must outlive the tape's use of it and stay put
  // (a KV cache that was reserved). It takes no room in the arenas (inference reads every weight
  // this way); a gradient that reaches it is discarded.
  var view(std::span<const T> data, std::size_t rows, std::size_t cols) {
    if (data.size() != rows * cols)
      throw error("tape view: " + std::to_string(data.size()) + " values do not fill shape " +
                  detail::shape_string(std::array{rows, cols}));
    node& n = fresh_node();
    n.rows = rows; n.cols = cols; n.value = no_slot;
    n.ext_value = const_cast<T*>(data.data());  // never written: a leaf, read by ops
    return var{std::uint32_t(nodes_.size() - 1)};
  }
  // A 1-D or 2-D tensor as a constant input ([n] becomes [1, n]).
  var input(const basic_tensor<T>& x) {
    if (x.rank() == 0 || x.rank() > 2) throw error("tape input: tensor of shape " + x.shape_string() + " is not 1-D or 2-D");
    return x.rank() == 1 ? input(x.span(), 1, x.dim(0)) : input(x.span(), x.dim(0), x.dim(1));
  }
  // A parameter: the tape reads `value` in place and backward() ACCUMULATES into `grad`.
  var parameter(std::span<T> value, std::span<T> grad, std::size_t rows, std::size_t cols) {
    if (value.size() != rows * cols || grad.size() != rows * cols)
      throw error("tape parameter: storage of " + std::to_string(value.size()) + " does not fit " +
                  detail::shape_string(std::array{rows, cols}));
    node& n = fresh_node();
    n.rows = rows; n.cols = cols; n.ext_value = value.data(); n.ext_grad = grad.data(); n.needs_grad = true;
    return var{std::uint32_t(nodes_.size() - 1)};
  }
  // Entry i of a parameter store; its gradient goes to the same offsets of `grads`, which is the
  // store's own gradient buffer or a worker's buffer of the same length. With `grads` empty it is
  // a constant read in place (inference: nothing is differentiated, the store is not written).
  var parameter(const basic_parameters<T>& ps, std::size_t i, std::span<T> grads) {
    const auto& e = ps.at(i);
    if (grads.empty()) return view(ps.value(i), e.rows, e.cols);
    if (grads.size() != ps.count())
      throw error("tape parameter " + e.name + ": gradient buffer of " + std::to_string(grads.size()) +
                  " for a store of " + std::to_string(ps.count()));
    // ops only read a parameter's value: the pointer is non-const for parameter()'s sake alone
    return parameter(std::span<T>(const_cast<T*>(ps.value(i).data()), e.size()), grads.subspan(e.offset, e.size()), e.rows, e.cols);
  }
  var parameter(basic_parameters<T>& ps, std::size_t i) { return parameter(ps, i, ps.grads()); }
  // A new node for an op: output [rows, cols], its inputs, and the function that backpropagates it.
  var make(std::size_t rows, std::size_t cols, std::initializer_list<var> in, backward_fn back) {
    return make(rows, cols, std::span<const var>(in.begin(), in.size()), back);
  }
  var make(std::size_t rows, std::size_t cols, std::span<const var> in, backward_fn back) {
    const std::size_t at = take(values_, values_used_, rows * cols), inputs = ints_.size();
    bool needs = false;
    for (var v : in) needs = needs || nodes_[v.id].needs_grad;
    if (needs)  // only backward() reads a node's inputs, and it skips the nodes without a gradient
      for (var v : in) ints_.push_back(std::int32_t(v.id));
    node& n = fresh_node();
    n.backward = back; n.rows = rows; n.cols = cols;
    n.value = at; n.inputs = inputs; n.n_inputs = needs ? in.size() : 0; n.needs_grad = needs;
    return var{std::uint32_t(nodes_.size() - 1)};
  }
  // Scratch an op keeps for its backward (a softmax, an RMS scale), attached to node v.
  std::span<T> save(var v, std::size_t count) {
    nodes_[v.id].saved = take(saved_, saved_used_, count);
    return saved(nodes_[v.id], count);
  }
  // Working memory a kernel needs only while it runs (a transposed weight, attention's score
  // tiles): one buffer shared by every op, forward and backward, valid until the next call.
  std::span<T> scratch(std::size_t count) {
    if (scratch_.size() < count) scratch_.resize(count);
    return {scratch_.data(), count};
  }
  // An op's own sizes and constants (heads, an offset, an epsilon) as a small struct of its own,
  // kept on its node for its backward, which reads them back with args_of<A>(node).
  template <class A>
  void set_args(var v, const A& a) {
    static_assert(std::is_trivially_copyable_v<A> && sizeof(A) <= sizeof(node::args));
    std::memcpy(nodes_[v.id].args, &a, sizeof a);
  }
  // Integers an op keeps (token ids, targets), attached to node v.
  std::span<const std::int32_t> save_ints(var v, std::span<const std::int32_t> data) {
    nodes_[v.id].ints = ints_.size();
    ints_.insert(ints_.end(), data.begin(), data.end());
    return ints(nodes_[v.id], data.size());
  }

  // ---- reading it ----
  const node& at(var v) const { return nodes_[v.id]; }
  std::size_t rows(var v) const { return nodes_[v.id].rows; }
  std::size_t cols(var v) const { return nodes_[v.id].cols; }
  std::size_t size(var v) const { return rows(v) * cols(v); }
  bool needs_grad(var v) const { return nodes_[v.id].needs_grad; }
  // v's gradient buffer, or an empty span when no parameter is upstream of v (a kernel skips it)
  std::span<T> grad_if_needed(var v) { return needs_grad(v) ? grad(v) : std::span<T>{}; }
  std::span<T> value(var v) { return value(nodes_[v.id]); }
  std::span<T> grad(var v) { return grad(nodes_[v.id]); }
  std::span<T> value(const node& n) {
    return {n.ext_value ? n.ext_value : values_.data() + n.value, n.rows * n.cols};
  }
  std::span<T> grad(const node& n) {
    if (n.ext_grad) return {n.ext_grad, n.rows * n.cols};
    if (n.value == no_slot) {  // a view's: written, never read (backward() sizes it first)
      if (discard_.size() < n.rows * n.cols) discard_.resize(n.rows * n.cols);
      return {discard_.data(), n.rows * n.cols};
    }
    if (grads_.size() < values_.size()) grads_.resize(values_.size());
    return {grads_.data() + n.value, n.rows * n.cols};
  }
  std::span<T> saved(const node& n, std::size_t count) { return {saved_.data() + n.saved, count}; }
  std::span<const std::int32_t> ints(const node& n, std::size_t count) const {
    return {ints_.data() + n.ints, count};
  }
  var input_of(const node& n, std::size_t k) const { return var{std::uint32_t(ints_[n.inputs + k])}; }
  std::string shape_of(var v) const { return detail::shape_string(std::array{rows(v), cols(v)}); }

  // ---- running it backwards ----
  // d(loss)/d(every node that a parameter feeds); parameter gradients are accumulated into their
  // external storage. Nodes computed from constants alone (the image's patches) are skipped.
  void backward(var loss) {
    if (size(loss) != 1) throw error("backward: loss must be a scalar, got " + shape_of(loss));
    // node gradients are zeroed here, not as nodes are made: a forward-only tape never pays for them
    if (grads_.size() < values_.size()) grads_.resize(values_.size());
    std::fill(grads_.begin(), grads_.begin() + std::ptrdiff_t(values_used_), T(0));
    for (const node& n : nodes_)  // sized before any op writes to it: spans into it stay valid
      if (n.value == no_slot && discard_.size() < n.rows * n.cols) discard_.resize(n.rows * n.cols);
    grad(loss)[0] += T(1);
    for (std::size_t i = nodes_.size(); i-- > 0;)
      if (nodes_[i].backward && nodes_[i].needs_grad) nodes_[i].backward(*this, nodes_[i]);
  }
  // Forget the graph, keep the memory.
  void reset() {
    nodes_.clear();
    ints_.clear();
    values_used_ = saved_used_ = 0;
  }
  // Bytes reserved by the arenas: constant from the second identical step on.
  std::size_t capacity_bytes() const {
    std::size_t values = 0;
    for (const auto* a : {&values_, &grads_, &saved_, &scratch_, &discard_}) values += a->capacity();
    return nodes_.capacity() * sizeof(node) + values * sizeof(T) + ints_.capacity() * sizeof(std::int32_t);
  }

  // Throws purevlm::error "op: what (a is [..], b is [..])" unless ok.
  void require(bool ok, const char* op, const char* what, std::initializer_list<var> vs) const {
    if (ok) return;
    std::string msg = op;
    msg += ": ";
    msg += what;
    msg += " (shapes";
    for (var v : vs) msg += ' ' + shape_of(v);
    throw error(msg + ")");
  }

private:
  // A new node, copied from a blank one: value-initialising it instead made GCC zero its 120
  // bytes with `rep stos`, whose start-up cost was 8% of a whole image-to-word inference.
  node& fresh_node() {
    static constexpr node blank{};
    nodes_.push_back(blank);
    return nodes_.back();
  }
  std::vector<node> nodes_;
  // Arenas only grow; reset() rewinds the used counts. Every forward kernel writes its whole
  // output, so values need no zeroing when a slot is reused.
  static std::size_t take(detail::aligned_vector<T>& arena, std::size_t& used, std::size_t count) {
    const std::size_t at = used;
    used += count;
    if (arena.size() < used) arena.resize(std::max(used, 2 * arena.size()));
    return at;
  }
  detail::aligned_vector<T> values_, grads_, saved_, scratch_, discard_;
  static constexpr std::size_t no_slot = std::size_t(-1);  // a view's value offset: it has none
  std::size_t values_used_ = 0, saved_used_ = 0;
  std::vector<std::int32_t> ints_;  // node inputs, token ids, targets
};

using tape = basic_tape<float>;

// The struct set_args() kept on node n.
template <class A, class Node>
A args_of(const Node& n) {
  A a;
  std::memcpy(&a, n.args, sizeof a);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Tape ops for the primitives of ops.hpp: check shapes, record, run the forward kernel.
// Each backward reads its inputs back from the node and calls the matching _backward kernel.
// ---------------------------------------------------------------------------------------------

// y[N,O] = x[N,I] · w[O,I]ᵀ
template <std::floating_point T>
var matmul(basic_tape<T>& t, var x, var w) {
  t.require(t.cols(x) == t.cols(w), "matmul", "x[N,I] · w[O,I]ᵀ needs equal I", {x, w});
  const std::size_t N = t.rows(x), I = t.cols(x), O = t.rows(w);
  var y = t.make(N, O, {x, w}, [](basic_tape<T>& t, const auto& n) {
    var x = t.input_of(n, 0), w = t.input_of(n, 1);
    const std::size_t I = t.cols(x);
    matmul_backward<T>(t.grad_if_needed(x), t.grad_if_needed(w), t.grad(n), t.value(x), t.value(w), n.rows, I, n.cols);
  });
  matmul_forward<T>(t.value(y), t.value(x), t.value(w), N, I, O, t.scratch(matmul_scratch_size(I, O)));
  return y;
}

template <std::floating_point T>
var add(basic_tape<T>& t, var a, var b) {
  t.require(t.rows(a) == t.rows(b) && t.cols(a) == t.cols(b), "add", "shapes must match", {a, b});
  var y = t.make(t.rows(a), t.cols(a), {a, b}, [](basic_tape<T>& t, const auto& n) {
    add_backward<T>(t.grad(t.input_of(n, 0)), t.grad(t.input_of(n, 1)), t.grad(n));
  });
  add_forward<T>(t.value(y), t.value(a), t.value(b));
  return y;
}

// Hadamard product a ⊙ b
template <std::floating_point T>
var mul(basic_tape<T>& t, var a, var b) {
  t.require(t.rows(a) == t.rows(b) && t.cols(a) == t.cols(b), "mul", "shapes must match", {a, b});
  var y = t.make(t.rows(a), t.cols(a), {a, b}, [](basic_tape<T>& t, const auto& n) {
    var a = t.input_of(n, 0), b = t.input_of(n, 1);
    mul_backward<T>(t.grad(a), t.grad(b), t.grad(n), t.value(a), t.value(b));
  });
  mul_forward<T>(t.value(y), t.value(a), t.value(b));
  return y;
}

template <std::floating_point T>
var scale(basic_tape<T>& t, var a, T c) {
  var y = t.make(t.rows(a), t.cols(a), {a}, [](basic_tape<T>& t, const auto& n) {
    scale_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), args_of<T>(n));
  });
  t.set_args(y, c);
  scale_forward<T>(t.value(y), t.value(a), c);
  return y;
}

template <std::floating_point T>
var relu(basic_tape<T>& t, var a) {
  var y = t.make(t.rows(a), t.cols(a), {a}, [](basic_tape<T>& t, const auto& n) {
    relu_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), t.value(n));
  });
  relu_forward<T>(t.value(y), t.value(a));
  return y;
}

template <std::floating_point T>
var clamp(basic_tape<T>& t, var a, T lo, T hi) {
  struct range { T lo, hi; };
  var y = t.make(t.rows(a), t.cols(a), {a}, [](basic_tape<T>& t, const auto& n) {
    var a = t.input_of(n, 0);
    const auto [lo, hi] = args_of<range>(n);
    clamp_backward<T>(t.grad(a), t.grad(n), t.value(a), lo, hi);
  });
  t.set_args(y, range{lo, hi});
  clamp_forward<T>(t.value(y), t.value(a), lo, hi);
  return y;
}

// Σ of all elements, a scalar [1,1]
template <std::floating_point T>
var sum(basic_tape<T>& t, var a) {
  var y = t.make(1, 1, {a}, [](basic_tape<T>& t, const auto& n) {
    sum_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n));
  });
  sum_forward<T>(t.value(y), t.value(a));
  return y;
}
template <std::floating_point T>
var mean(basic_tape<T>& t, var a) { return scale(t, sum(t, a), T(1) / T(t.size(a))); }
// a·b over all elements, a scalar
template <std::floating_point T>
var dot(basic_tape<T>& t, var a, var b) { return sum(t, mul(t, a, b)); }

// Per-row x / sqrt(mean(x²) + eps)
template <std::floating_point T>
var rmsnorm(basic_tape<T>& t, var x, T eps = T(1e-5)) {
  var y = t.make(t.rows(x), t.cols(x), {x}, [](basic_tape<T>& t, const auto& n) {
    rmsnorm_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), t.value(n), t.saved(n, n.rows), n.rows, n.cols);
  });
  auto rstd = t.save(y, t.rows(x));
  rmsnorm_forward<T>(t.value(y), rstd, t.value(x), t.rows(x), t.cols(x), eps);
  return y;
}

// Per-row x / (‖x‖ + eps)
template <std::floating_point T>
var l2norm(basic_tape<T>& t, var x, T eps = T(1e-8)) {
  var y = t.make(t.rows(x), t.cols(x), {x}, [](basic_tape<T>& t, const auto& n) {
    var x = t.input_of(n, 0);
    l2norm_backward<T>(t.grad(x), t.grad(n), t.value(x), t.saved(n, n.rows), n.rows, n.cols, args_of<T>(n));
  });
  t.set_args(y, eps);
  auto norm = t.save(y, t.rows(x));
  l2norm_forward<T>(t.value(y), norm, t.value(x), t.rows(x), t.cols(x), eps);
  return y;
}

template <std::floating_point T>
var softmax(basic_tape<T>& t, var x) {
  var y = t.make(t.rows(x), t.cols(x), {x}, [](basic_tape<T>& t, const auto& n) {
    softmax_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), t.value(n), n.rows, n.cols);
  });
  softmax_forward<T>(t.value(y), t.value(x), t.rows(x), t.cols(x));
  return y;
}

// Mean cross-entropy of logits[N,V] against targets[N] (each in [0,V)); a scalar.
template <std::floating_point T>
var cross_entropy(basic_tape<T>& t, var logits, std::span<const std::int32_t> targets) {
  const std::size_t N = t.rows(logits), V = t.cols(logits);
  if (targets.size() != N)
    throw error("cross_entropy: " + std::to_string(targets.size()) + " targets for logits " + t.shape_of(logits));
  for (std::size_t i = 0; i < N; ++i)
    if (targets[i] < 0 || std::size_t(targets[i]) >= V)
      throw error("cross_entropy: target " + std::to_string(targets[i]) + " at row " + std::to_string(i) +
                  " is outside the vocabulary of " + std::to_string(V));
  var y = t.make(1, 1, {logits}, [](basic_tape<T>& t, const auto& n) {
    var l = t.input_of(n, 0);
    cross_entropy_backward<T>(t.grad(l), t.grad(n), t.saved(n, t.size(l)), t.ints(n, t.rows(l)), t.rows(l), t.cols(l));
  });
  auto probs = t.save(y, N * V);
  auto tg = t.save_ints(y, targets);
  cross_entropy_forward<T>(t.value(y), probs, t.value(logits), tg, N, V);
  return y;
}

// Rows of table[V,C] picked by ids: [ids.size(), C]
template <std::floating_point T>
var embedding(basic_tape<T>& t, var table, std::span<const std::int32_t> ids) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || std::size_t(ids[i]) >= t.rows(table))
      throw error("embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                  " is outside table " + t.shape_of(table));
  var y = t.make(ids.size(), t.cols(table), {table}, [](basic_tape<T>& t, const auto& n) {
    embedding_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), t.ints(n, n.rows), n.cols);
  });
  auto kept = t.save_ints(y, ids);
  embedding_forward<T>(t.value(y), t.value(table), kept, t.cols(table));
  return y;
}

namespace detail {
// a and b laid side by side in N row blocks: out block n = [a block n, b block n]. Joining
// columns uses N = rows; stacking rows is the same with N = 1 (row-major: one flat block each).
template <std::floating_point T>
var join(basic_tape<T>& t, var a, var b, std::size_t rows, std::size_t cols, std::size_t N) {
  var y = t.make(rows, cols, {a, b}, [](basic_tape<T>& t, const auto& n) {
    var a = t.input_of(n, 0), b = t.input_of(n, 1);
    const std::size_t N = args_of<std::size_t>(n), Ca = t.size(a) / N;
    concat_backward<T>(t.grad(a), t.grad(n), N, n.rows * n.cols / N, Ca, 0);
    concat_backward<T>(t.grad(b), t.grad(n), N, n.rows * n.cols / N, t.size(b) / N, Ca);
  });
  t.set_args(y, N);
  concat_forward<T>(t.value(y), t.value(a), N, rows * cols / N, t.size(a) / N, 0);
  concat_forward<T>(t.value(y), t.value(b), N, rows * cols / N, t.size(b) / N, t.size(a) / N);
  return y;
}
// Block n of the output is the Cout values at `offset` of x's block n, for N blocks: a column
// slice uses N = rows; a row range is the same with N = 1.
struct cut_args {
  std::size_t blocks, offset;
};
template <std::floating_point T>
var cut(basic_tape<T>& t, var x, std::size_t rows, std::size_t cols, std::size_t N, std::size_t offset) {
  var y = t.make(rows, cols, {x}, [](basic_tape<T>& t, const auto& n) {
    var x = t.input_of(n, 0);
    const auto [N, offset] = args_of<cut_args>(n);
    slice_backward<T>(t.grad(x), t.grad(n), N, t.size(x) / N, n.rows * n.cols / N, offset);
  });
  t.set_args(y, cut_args{N, offset});
  slice_forward<T>(t.value(y), t.value(x), N, t.size(x) / N, rows * cols / N, offset);
  return y;
}
}  // namespace detail

// Columns side by side: [N, Ca] ++ [N, Cb] -> [N, Ca+Cb]
template <std::floating_point T>
var concat(basic_tape<T>& t, var a, var b) {
  t.require(t.rows(a) == t.rows(b), "concat", "row counts must match", {a, b});
  return detail::join(t, a, b, t.rows(a), t.cols(a) + t.cols(b), t.rows(a));
}
// Rows one under the other: [Na, C] over [Nb, C] -> [Na+Nb, C]
template <std::floating_point T>
var stack(basic_tape<T>& t, var a, var b) {
  t.require(t.cols(a) == t.cols(b), "stack", "column counts must match", {a, b});
  return detail::join(t, a, b, t.rows(a) + t.rows(b), t.cols(a), 1);
}
// Columns [offset, offset+C) of x[N, Cin]
template <std::floating_point T>
var slice_cols(basic_tape<T>& t, var x, std::size_t offset, std::size_t C) {
  if (offset > t.cols(x) || C > t.cols(x) - offset)  // written so that no sum can wrap
    throw error("slice_cols: columns [" + std::to_string(offset) + "," + std::to_string(offset + C) +
                ") are outside " + t.shape_of(x));
  return detail::cut(t, x, t.rows(x), C, t.rows(x), offset);
}
// Rows [first, first+count) of x[N, C]
template <std::floating_point T>
var slice_rows(basic_tape<T>& t, var x, std::size_t first, std::size_t count) {
  if (first > t.rows(x) || count > t.rows(x) - first)  // written so that no sum can wrap
    throw error("slice_rows: rows [" + std::to_string(first) + "," + std::to_string(first + count) +
                ") are outside " + t.shape_of(x));
  return detail::cut(t, x, count, t.cols(x), 1, first * t.cols(x));
}
// The same values as [rows, cols] (row-major, so nothing moves)
template <std::floating_point T>
var reshape(basic_tape<T>& t, var x, std::size_t rows, std::size_t cols) {
  if (rows * cols != t.size(x))
    throw error("reshape: " + t.shape_of(x) + " cannot become " + detail::shape_string(std::array{rows, cols}));
  var y = t.make(rows, cols, {x}, [](basic_tape<T>& t, const auto& n) {
    scale_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), T(1));
  });
  std::ranges::copy(t.value(x), t.value(y).begin());
  return y;
}
// One row [1, C] repeated N times: [N, C]
template <std::floating_point T>
var repeat_rows(basic_tape<T>& t, var a, std::size_t N) {
  if (t.rows(a) != 1) throw error("repeat_rows: expects one row, got " + t.shape_of(a));
  var y = t.make(N, t.cols(a), {a}, [](basic_tape<T>& t, const auto& n) {
    repeat_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), n.rows, n.cols);
  });
  repeat_forward<T>(t.value(y), t.value(a), N, t.cols(a));
  return y;
}

}  // namespace purevlm
