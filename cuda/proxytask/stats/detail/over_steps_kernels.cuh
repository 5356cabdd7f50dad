#pragma once
// The kernels of the CUDA correlate_over_steps (detail/over_steps_cuda.inl runs them). They
// compute what the CPU back-end computes, as the same exact integers: each step's values are
// sorted once (CUB), its valid pairs get their positions and tie groups (rank_steps_kernel), and
// every coefficient, bootstrap replicate and jackknife value comes from integer rank sums by
// counting against that one sort. Floating-point sums go through the lanes of
// stats/bootstrap.hpp, in the CPU's order, so replicates, counts and moments are bit for bit the
// CPU's.

#include <proxytask/core/backend.cuh>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/merge_count.hpp>
#include <proxytask/stats/detail/permutations.hpp>
#include <proxytask/stats/detail/rank_math.hpp>
#include <proxytask/stats/philox.hpp>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>
#include <type_traits>

namespace proxytask::stats::detail::gpu {

using std::int64_t;
using std::uint32_t;
using std::uint64_t;

// ---------------------------------------------------------------------------------------------
// Sort keys: unsigned integers in the order of the values (as the CPU's order_key), NaN last.

template <class Real>
struct key_traits;

template <>
struct key_traits<float> {
  using type = uint32_t;
  static constexpr type missing = ~type{0};
  static __device__ type key(float v) {
    if (v != v) return missing;
    uint32_t const bits = __float_as_uint(v + 0.0f);  // -0.0 + 0.0 is +0.0
    return bits ^ (static_cast<uint32_t>(static_cast<std::int32_t>(bits) >> 31) | 0x80000000u);
  }
  static __device__ double value(type k) {
    return static_cast<double>(__uint_as_float(k & 0x80000000u ? k ^ 0x80000000u : ~k));
  }
};

template <>
struct key_traits<double> {
  using type = uint64_t;
  static constexpr type missing = ~type{0};
  static __device__ type key(double v) {
    if (v != v) return missing;
    auto const bits = static_cast<uint64_t>(__double_as_longlong(v + 0.0));
    return bits ^ (static_cast<uint64_t>(static_cast<int64_t>(bits) >> 63) | (uint64_t{1} << 63));
  }
  static __device__ double value(type k) {
    uint64_t const bits = k & (uint64_t{1} << 63) ? k ^ (uint64_t{1} << 63) : ~k;
    return __longlong_as_double(static_cast<long long>(bits));
  }
};

/// The traits of a key type: uint32_t keys are floats', uint64_t keys doubles'.
template <class Key>
using key_traits_of = key_traits<std::conditional_t<sizeof(Key) == 4, float, double>>;

/// The keys of a models x steps row-major matrix, transposed to one segment per step (step s,
/// model r at s * rows + r), with the model index as the sort's value. 32 x 32 tiles through
/// shared memory, so that both the reads and the writes are coalesced. Block (32, 8).
template <class Real>
PROXYTASK_KERNEL void load_keys_kernel(Real const* scores, uint32_t rows, uint32_t steps,
                                       typename key_traits<Real>::type* keys, uint32_t* models) {
  __shared__ typename key_traits<Real>::type tile[32][33];
  uint32_t const step0 = blockIdx.x * 32, row0 = blockIdx.y * 32;
  for (uint32_t i = threadIdx.y; i < 32; i += 8) {
    uint32_t const r = row0 + i, s = step0 + threadIdx.x;
    if (r < rows && s < steps)
      tile[i][threadIdx.x] = key_traits<Real>::key(scores[static_cast<uint64_t>(r) * steps + s]);
  }
  __syncthreads();
  for (uint32_t i = threadIdx.y; i < 32; i += 8) {
    uint32_t const s = step0 + i, r = row0 + threadIdx.x;
    if (r < rows && s < steps) {
      keys[static_cast<uint64_t>(s) * rows + r] = tile[threadIdx.x][i];
      models[static_cast<uint64_t>(s) * rows + r] = r;
    }
  }
}

/// offsets[s] = s * rows, for s <= steps (the segments of the steps' sort).
PROXYTASK_KERNEL void segment_offsets_kernel(uint32_t rows, uint32_t steps, int64_t* offsets) {
  uint32_t const s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s <= steps) offsets[s] = static_cast<int64_t>(s) * rows;
}

/// The reference's sorted order, once per call: for each sorted index j of a present value, the
/// run of equal values [first[j], last[j]); which models have a reference; how many do.
template <class Key>
PROXYTASK_KERNEL void reference_runs_kernel(Key const* keys, uint32_t const* models, uint32_t n,
                                            uint32_t* first, uint32_t* last,
                                            std::uint8_t* has_reference, uint32_t* present) {
  uint32_t const j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  Key const k = keys[j];
  Key constexpr missing = ~Key{0};
  if (k == missing) return;
  if (j + 1 == n || keys[j + 1] == missing) *present = j + 1;
  first[j] = j == 0 || keys[j - 1] != k ? j : first_not_less(keys, 0, j, k);
  last[j] = j + 1 == n || keys[j + 1] != k ? j + 1 : first_greater(keys, j + 1, n, k);
  has_reference[models[j]] = 1;
}

/// What one step's pass leaves for the others and the host: exact integers, plus the median.
struct step_stats {
  uint32_t valid = 0;              ///< pairs with both values
  uint32_t present = 0;            ///< proxy scores present
  double median = 0;               ///< upper median of the present proxy scores (NaN when none)
  int64_t aa = 0, ab = 0, bb = 0;  ///< sums of doubled ranks' products (not centred)
  int64_t score = 0;               ///< Kendall: concordant - discordant
  /// Per valid pair, (t - 1), (t - 1)(t - 2), (t - 1)(2t + 5) of its tie group of size t, summed:
  /// twice the tied pairs, and Kendall's sums over groups of t(t-1)(t-2) and t(t-1)(2t+5).
  int64_t x_ties2 = 0, x_t2 = 0, x_t5 = 0, y_ties2 = 0, y_t2 = 0, y_t5 = 0;

  PROXYTASK_HD spearman_sums spearman() const noexcept {
    spearman_sums s{ab, aa, bb};
    s.centre(valid);
    return s;
  }
  PROXYTASK_HD kendall_counts kendall() const noexcept {
    kendall_counts k;
    k.n = valid;
    k.total = k.n * (k.n - 1) / 2;
    k.score = score;
    k.x_ties = x_ties2 / 2;
    k.y_ties = y_ties2 / 2;
    k.x_t2 = static_cast<double>(x_t2);
    k.x_t5 = static_cast<double>(x_t5);
    k.y_t2 = static_cast<double>(y_t2);
    k.y_t5 = static_cast<double>(y_t5);
    return k;
  }
  PROXYTASK_HD double coefficient(correlation method) const noexcept {
    return method == correlation::spearman ? spearman().rho() : kendall().tau_b();
  }
};

/// The validity rule and a defined coefficient: whether a step gets replicates.
struct validity_rule {
  uint32_t rows = 0;
  uint32_t min_valid_pairs = 2;
  double min_valid_fraction = 0;
  correlation method = correlation::kendall_tau_b;

  PROXYTASK_HD bool enough_pairs(uint32_t valid) const noexcept {
    return valid >= min_valid_pairs &&
           !(static_cast<double>(valid) / static_cast<double>(rows) < min_valid_fraction);
  }
  PROXYTASK_HD bool has_replicates(step_stats const& s) const noexcept {
    if (!enough_pairs(s.valid)) return false;
    double const c = s.coefficient(method);
    return c == c;
  }
};

/// A step's nine sums, accumulated per thread: Spearman's sums of doubled ranks' products, and per
/// side, for every valid pair in a tie group of size m, (m - 1), (m - 1)(m - 2) and
/// (m - 1)(2m + 5) (step_stats' tie fields).
struct step_sums {
  int64_t aa = 0, ab = 0, bb = 0;
  int64_t x_ties2 = 0, x_t2 = 0, x_t5 = 0, y_ties2 = 0, y_t2 = 0, y_t5 = 0;

  __device__ void add_x_pair(int64_t m) {
    x_ties2 += m - 1;
    x_t2 += (m - 1) * (m - 2);
    x_t5 += (m - 1) * (2 * m + 5);
  }
  __device__ void add_y_pair(int64_t m) {
    y_ties2 += m - 1;
    y_t2 += (m - 1) * (m - 2);
    y_t5 += (m - 1) * (2 * m + 5);
  }
};

/// Sums every thread's step_sums over the block and, in thread 0, writes the step's stats (with
/// its counts and its median, which only thread 0's arguments need to hold).
template <int Block>
__device__ void store_step(typename cub::BlockReduce<int64_t, Block>::TempStorage& temp,
                           step_sums part, uint32_t valid, uint32_t present, double median,
                           step_stats& out) {
  int64_t sums[9] = {part.aa,   part.ab,      part.bb,   part.x_ties2, part.x_t2,
                     part.x_t5, part.y_ties2, part.y_t2, part.y_t5};
  for (int64_t& v : sums) {
    v = cub::BlockReduce<int64_t, Block>(temp).Sum(v);
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  out.valid = valid;
  out.present = present;
  out.median = median;
  out.aa = sums[0];
  out.ab = sums[1];
  out.bb = sums[2];
  out.x_ties2 = sums[3];
  out.x_t2 = sums[4];
  out.x_t5 = sums[5];
  out.y_ties2 = sums[6];
  out.y_t2 = sums[7];
  out.y_t5 = sums[8];
  out.score = 0;
}

/// Per step: arrays of `rows` entries at s * rows. Positions p are the step's valid pairs in
/// proxy-score order (ties in model order).
struct step_arrays {
  uint32_t* x_lo;  ///< per position: its proxy tie group is positions [x_lo, x_hi)
  uint32_t* x_hi;
  uint32_t* y_lo;  ///< per position: its reference tie group is y-order [y_lo, y_hi)
  uint32_t* y_hi;
  uint32_t* y_order;        ///< positions in reference order
  uint32_t* draw_position;  ///< the k-th valid pair in model order: its position
};

/// Everything rank_steps_kernel reads and writes.
template <class Key>
struct rank_args {
  Key const* keys;         ///< sorted, per step
  uint32_t const* models;  ///< in the keys' order, per step
  uint32_t rows;
  std::uint8_t const* has_reference;
  bool draw_table;  ///< whether to build arrays.draw_position (only replicates need it)
  uint32_t const* reference_models;  ///< in reference order
  uint32_t const* reference_first;
  uint32_t const* reference_last;
  uint32_t const* reference_present;
  uint32_t* scan;             ///< scratch, per step
  std::int32_t* position_of;  ///< per step and model: its position, -1 when not a valid pair
  step_arrays arrays;
  step_stats* stats;
};

/// One block per step: the positions of its valid pairs (a scan over the sorted proxy scores),
/// their tie groups on each side (runs of equal keys, mapped to positions by the scan), the
/// reference order restricted to them, the row-order draw table, and the plain sums.
template <class Key, int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block) rank_steps_kernel(rank_args<Key> a) {
  using scan_t = cub::BlockScan<uint32_t, Block>;
  using reduce_t = cub::BlockReduce<int64_t, Block>;
  __shared__ union {
    typename scan_t::TempStorage scan;
    typename reduce_t::TempStorage reduce;
  } temp;
  __shared__ uint32_t present_shared;
  Key constexpr missing = ~Key{0};
  uint32_t const n = a.rows, s = blockIdx.x, t = threadIdx.x;
  uint64_t const base = static_cast<uint64_t>(s) * n;
  Key const* key = a.keys + base;
  uint32_t const* model = a.models + base;
  uint32_t* scan = a.scan + base;
  std::int32_t* position_of = a.position_of + base;
  uint32_t* x_lo = a.arrays.x_lo + base;
  uint32_t* x_hi = a.arrays.x_hi + base;
  uint32_t* y_lo = a.arrays.y_lo + base;
  uint32_t* y_hi = a.arrays.y_hi + base;
  if (t == 0) present_shared = first_not_less(key, 0, n, missing);  // NaNs sort last
  __syncthreads();
  uint32_t const present = present_shared;

  // Positions: the valid pairs in proxy order.
  uint32_t carry = 0;
  for (uint32_t begin = 0; begin < n; begin += Block) {
    uint32_t const i = begin + t;
    uint32_t const m = i < n ? model[i] : 0;
    uint32_t const valid = i < present && a.has_reference[m] ? 1 : 0;
    uint32_t before = 0, total = 0;
    scan_t(temp.scan).ExclusiveSum(valid, before, total);
    if (i < n) {
      scan[i] = carry + before;
      position_of[m] = valid ? static_cast<std::int32_t>(carry + before) : -1;
    }
    carry += total;
    __syncthreads();
  }
  uint32_t const valid_pairs = carry;

  // Proxy tie groups: a run of equal keys [first, last) holds positions [scan(first), scan(last)).
  step_sums part;
  auto scan_at = [&](uint32_t i) { return i < n ? scan[i] : valid_pairs; };
  for (uint32_t i = t; i < present; i += Block) {
    if (!a.has_reference[model[i]]) continue;
    Key const k = key[i];
    uint32_t const first = i == 0 || key[i - 1] != k ? i : first_not_less(key, 0, i, k);
    uint32_t const last =
        i + 1 == present || key[i + 1] != k ? i + 1 : first_greater(key, i + 1, present, k);
    uint32_t const lo = scan_at(first), hi = scan_at(last), p = scan[i];
    x_lo[p] = lo;
    x_hi[p] = hi;
    int64_t const r = static_cast<int64_t>(lo) + hi + 1;
    part.aa += r * r;
    part.add_x_pair(hi - lo);
  }
  __syncthreads();

  // The reference order of the valid pairs, and their reference tie groups.
  uint32_t const reference_present = *a.reference_present;
  uint32_t* y_order = a.arrays.y_order + base;
  carry = 0;
  for (uint32_t begin = 0; begin < reference_present; begin += Block) {
    uint32_t const j = begin + t;
    std::int32_t const p = j < reference_present ? position_of[a.reference_models[j]] : -1;
    uint32_t before = 0, total = 0;
    scan_t(temp.scan).ExclusiveSum(p >= 0 ? 1u : 0u, before, total);
    if (j < reference_present) scan[j] = carry + before;
    if (p >= 0) y_order[carry + before] = static_cast<uint32_t>(p);
    carry += total;
    __syncthreads();
  }
  auto y_scan_at = [&](uint32_t j) { return j < reference_present ? scan[j] : valid_pairs; };
  for (uint32_t j = t; j < reference_present; j += Block) {
    std::int32_t const p = position_of[a.reference_models[j]];
    if (p < 0) continue;
    uint32_t const lo = y_scan_at(a.reference_first[j]), hi = y_scan_at(a.reference_last[j]);
    y_lo[p] = lo;
    y_hi[p] = hi;
    int64_t const r = static_cast<int64_t>(lo) + hi + 1;
    int64_t const x_rank = static_cast<int64_t>(x_lo[p]) + x_hi[p] + 1;
    part.ab += x_rank * r;
    part.bb += r * r;
    part.add_y_pair(hi - lo);
  }
  __syncthreads();

  // The draw table: the k-th valid pair in model order.
  uint32_t* draw_position = a.arrays.draw_position + base;
  carry = 0;
  for (uint32_t begin = 0; a.draw_table && begin < n; begin += Block) {
    uint32_t const r = begin + t;
    std::int32_t const p = r < n ? position_of[r] : -1;
    uint32_t before = 0, total = 0;
    scan_t(temp.scan).ExclusiveSum(p >= 0 ? 1u : 0u, before, total);
    if (p >= 0) draw_position[carry + before] = static_cast<uint32_t>(p);
    carry += total;
    __syncthreads();
  }

  double const median =
      t == 0 && present > 0 ? key_traits_of<Key>::value(key[present / 2]) : quiet_nan();
  store_step<Block>(temp.reduce, part, valid_pairs, present, median, a.stats[s]);
}

// ---------------------------------------------------------------------------------------------
// Steps of up to Block x Items models: one block sorts a step's column in shared memory
// (cub::BlockRadixSort, stable: ties in model order) and ranks it there, in one pass over its
// scores and without the segmented sort's and rank_steps_kernel's global round trips. Positions,
// counts and model indices fit in 16 bits.

/// The largest in-block step: 16,384 models (float keys); 8,192 for double keys.
template <class Key>
inline constexpr uint32_t in_block_capacity = sizeof(Key) == 4 ? 16384 : 8192;

/// A model that is not a valid pair of the step.
inline constexpr std::uint16_t no_position = 0xFFFF;

/// The shared memory of the in-block kernels (dynamic: over 48 KiB in the largest tier).
template <class Key, int Block, int Items>
struct in_block_storage {
  static constexpr int capacity = Block * Items;
  /// Sized so that the largest float tier fits an A100's 163 KiB per block: 4-bit digits (5-bit
  /// ones take 2,240 bytes more for the 1024 x 16 tier's ranking, 8 KB more for 256 x 8) and
  /// warp-scan block scans (raking ones take 4 KB more), so that the union is the sort's.
  using sort_t = cub::BlockRadixSort<Key, Block, Items, std::uint16_t>;
  using scan_t = cub::BlockScan<uint32_t, Block, cub::BLOCK_SCAN_WARP_SCANS>;
  using reduce_t = cub::BlockReduce<int64_t, Block>;
  using range_t = cub::BlockReduce<Key, Block>;
  union {
    typename sort_t::TempStorage sort;
    typename range_t::TempStorage range;
    struct {
      std::uint16_t scan[capacity];         ///< exclusive counts of valid pairs (x, then y order)
      std::uint16_t position_of[capacity];  ///< per model: its position, or no_position
      typename scan_t::TempStorage block_scan;
      typename reduce_t::TempStorage reduce;
    } rank;
  } temp;
  Key key[capacity];  ///< the sorted keys
  /// The models in key order; after the positions are known, per position its doubled x rank
  /// (at most 2 capacity + 1 < 2^16).
  std::uint16_t model[capacity];
};

// The largest float tier runs on an A100 too (its ranking's static shared memory is far below
// the 1 KiB left).
static_assert(sizeof(in_block_storage<uint32_t, 1024, 16>) <= 163 * 1024 - 1024);

/// The number of bits of v (0 for 0).
template <class Key>
__device__ int bit_width(Key v) {
  if constexpr (sizeof(Key) == 4)
    return 32 - __clz(static_cast<int>(v));
  else
    return 64 - __clzll(static_cast<long long>(v));
}

/// Sorts the keys of `Items` values per thread (thread t holds models t Items ...) in shared
/// memory: afterwards st.key and st.model hold them in key order, and the return value is the
/// number of present (non-NaN) values. The sort passes over only the bits the step's range needs,
/// as the CPU's radix sort does: keys less the smallest present one, NaN (missing) one above the
/// largest; scores of one kind (accuracies) span a few exponents.
template <class Key, int Block, int Items>
__device__ uint32_t sort_in_block(in_block_storage<Key, Block, Items>& st, Key (&keys)[Items],
                                  std::uint16_t (&models)[Items]) {
  using storage_t = in_block_storage<Key, Block, Items>;
  Key constexpr missing = ~Key{0};
  __shared__ Key range_low, range_span;
  Key low = missing, high = 0;
  for (int j = 0; j < Items; ++j) {
    if (keys[j] == missing) continue;
    low = keys[j] < low ? keys[j] : low;
    high = keys[j] > high ? keys[j] : high;
  }
  low = typename storage_t::range_t(st.temp.range).Reduce(low, [](Key a, Key b) {
    return a < b ? a : b;
  });
  __syncthreads();
  high = typename storage_t::range_t(st.temp.range).Reduce(high, [](Key a, Key b) {
    return a < b ? b : a;
  });
  if (threadIdx.x == 0) {
    range_low = low <= high ? low : 0;          // no present key: nothing to subtract
    range_span = low <= high ? high - low : 0;  // < missing: a present key is never ~0
  }
  __syncthreads();
  Key const base = range_low, nan_key = range_span + 1;
  for (Key& k : keys) k = k == missing ? nan_key : k - base;
  int const end_bit = bit_width(nan_key);
  typename storage_t::sort_t(st.temp.sort).Sort(keys, models, 0, end_bit);
  __syncthreads();  // the sort's storage is reused below
  for (Key& k : keys) k = k == nan_key ? missing : k + base;
  uint32_t present = 0;
  for (int j = 0; j < Items; ++j) {
    st.key[threadIdx.x * Items + j] = keys[j];
    st.model[threadIdx.x * Items + j] = models[j];
    present += static_cast<uint32_t>(__syncthreads_count(keys[j] != missing));
  }
  return present;
}

/// The run of equal keys around sorted index i: [first, last).
template <class Key>
__device__ void run_of(Key const* key, uint32_t capacity, uint32_t i, uint32_t& first,
                       uint32_t& last) {
  Key const k = key[i];
  first = i == 0 || key[i - 1] != k ? i : first_not_less(key, 0, i, k);
  last = i + 1 == capacity || key[i + 1] != k ? i + 1 : first_greater(key, i + 1, capacity, k);
}

/// The reference, sorted and grouped in one block (as reference_runs_kernel after a CUB sort):
/// models in reference order, each present value's run [first, last), which models have a
/// reference, and how many.
template <class Real, int Block, int Items>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    reference_in_block_kernel(Real const* reference, uint32_t rows, uint32_t* models,
                              uint32_t* first, uint32_t* last, std::uint8_t* has_reference,
                              uint32_t* present) {
  using key_t = typename key_traits<Real>::type;
  using storage_t = in_block_storage<key_t, Block, Items>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  auto& st = *reinterpret_cast<storage_t*>(shared_bytes);
  key_t constexpr missing = ~key_t{0};
  key_t keys[Items];
  std::uint16_t ids[Items];
  for (int j = 0; j < Items; ++j) {
    uint32_t const i = threadIdx.x * Items + j;
    keys[j] = i < rows ? key_traits<Real>::key(reference[i]) : missing;
    ids[j] = static_cast<std::uint16_t>(i);
  }
  uint32_t const count = sort_in_block(st, keys, ids);
  __syncthreads();
  if (threadIdx.x == 0) *present = count;
  for (int j = 0; j < Items; ++j) {
    uint32_t const i = threadIdx.x * Items + j;
    if (ids[j] < rows) has_reference[ids[j]] = keys[j] != missing;
    if (i >= count) continue;
    models[i] = ids[j];
    uint32_t lo = 0, hi = 0;
    run_of(st.key, storage_t::capacity, i, lo, hi);
    first[i] = lo;
    last[i] = hi;
  }
}

/// rank_steps_kernel for steps of up to Block x Items models, from the scores themselves (models
/// x steps, row-major): the same positions, groups, arrays (when a.draw_table or
/// `arrays_wanted`) and sums.
template <class Real, int Block, int Items>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    rank_in_block_kernel(Real const* scores, uint32_t steps,
                         rank_args<typename key_traits<Real>::type> a, bool arrays_wanted) {
  using key_t = typename key_traits<Real>::type;
  using storage_t = in_block_storage<key_t, Block, Items>;
  using scan_t = typename storage_t::scan_t;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  auto& st = *reinterpret_cast<storage_t*>(shared_bytes);
  key_t constexpr missing = ~key_t{0};
  constexpr uint32_t capacity = storage_t::capacity;
  uint32_t const n = a.rows, s = blockIdx.x, t = threadIdx.x;
  uint64_t const base = static_cast<uint64_t>(s) * n;
  bool const arrays = arrays_wanted || a.draw_table;

  key_t keys[Items];
  std::uint16_t models[Items];
  for (int j = 0; j < Items; ++j) {
    uint32_t const i = t * Items + j;
    keys[j] = i < n ? key_traits<Real>::key(scores[static_cast<uint64_t>(i) * steps + s]) : missing;
    models[j] = static_cast<std::uint16_t>(i);
  }
  uint32_t const present = sort_in_block(st, keys, models);

  // Positions: the valid pairs in proxy order.
  uint32_t valid[Items], position[Items], valid_pairs = 0;
  for (int j = 0; j < Items; ++j) valid[j] = keys[j] != missing && a.has_reference[models[j]];
  scan_t(st.temp.rank.block_scan).ExclusiveSum(valid, position, valid_pairs);
  for (int j = 0; j < Items; ++j) {
    st.temp.rank.scan[t * Items + j] = static_cast<std::uint16_t>(position[j]);
    if (models[j] < n)
      st.temp.rank.position_of[models[j]] =
          valid[j] ? static_cast<std::uint16_t>(position[j]) : no_position;
  }
  __syncthreads();

  // Proxy tie groups: a run of equal keys [first, last) holds positions [scan(first), scan(last)).
  auto scan_at = [&](uint32_t i) {
    return i < capacity ? static_cast<uint32_t>(st.temp.rank.scan[i]) : valid_pairs;
  };
  step_sums part;
  for (int j = 0; j < Items; ++j) {
    if (!valid[j]) continue;
    uint32_t first = 0, last = 0;
    run_of(st.key, capacity, t * Items + j, first, last);
    uint32_t const lo = scan_at(first), hi = scan_at(last), p = position[j];
    int64_t const r = static_cast<int64_t>(lo) + hi + 1;
    st.model[p] = static_cast<std::uint16_t>(r);  // the models are no longer needed
    if (arrays) {
      a.arrays.x_lo[base + p] = lo;
      a.arrays.x_hi[base + p] = hi;
    }
    part.aa += r * r;
    part.add_x_pair(hi - lo);
  }
  __syncthreads();

  // The reference order of the valid pairs, and their reference tie groups.
  uint32_t const reference_present = *a.reference_present;
  uint32_t y_position[Items], y_valid[Items], y_index[Items], total = 0;
  for (int j = 0; j < Items; ++j) {
    uint32_t const k = t * Items + j;
    std::uint16_t const p =
        k < reference_present ? st.temp.rank.position_of[a.reference_models[k]] : no_position;
    y_position[j] = p;
    y_valid[j] = p != no_position;
  }
  scan_t(st.temp.rank.block_scan).ExclusiveSum(y_valid, y_index, total);
  for (int j = 0; j < Items; ++j) {
    st.temp.rank.scan[t * Items + j] = static_cast<std::uint16_t>(y_index[j]);
    if (arrays && y_valid[j]) a.arrays.y_order[base + y_index[j]] = y_position[j];
  }
  __syncthreads();
  for (int j = 0; j < Items; ++j) {
    if (!y_valid[j]) continue;
    uint32_t const k = t * Items + j, p = y_position[j];
    uint32_t const lo = scan_at(a.reference_first[k]), hi = scan_at(a.reference_last[k]);
    int64_t const r = static_cast<int64_t>(lo) + hi + 1;
    int64_t const x_rank = st.model[p];
    if (arrays) {
      a.arrays.y_lo[base + p] = lo;
      a.arrays.y_hi[base + p] = hi;
    }
    part.ab += x_rank * r;
    part.bb += r * r;
    part.add_y_pair(hi - lo);
  }
  __syncthreads();

  // The draw table: the k-th valid pair in model order.
  if (a.draw_table) {
    uint32_t drawn[Items], index[Items], count = 0;
    for (int j = 0; j < Items; ++j) {
      uint32_t const r = t * Items + j;
      std::uint16_t const p = r < n ? st.temp.rank.position_of[r] : no_position;
      position[j] = p;
      drawn[j] = p != no_position;
    }
    scan_t(st.temp.rank.block_scan).ExclusiveSum(drawn, index, count);
    for (int j = 0; j < Items; ++j)
      if (drawn[j]) a.arrays.draw_position[base + index[j]] = position[j];
    __syncthreads();
  }

  double const median =
      t == 0 && present > 0 ? key_traits<Real>::value(st.key[present / 2]) : quiet_nan();
  store_step<Block>(st.temp.rank.reduce, part, valid_pairs, present, median, a.stats[s]);
}

/// A bottom-up merge sort of keys[0, n) by the whole block, a level at a time: at each level
/// thread t merges the t-th of Block equal ranges of outputs (merge_outputs, which reports every
/// key placed to `visit`), then the block synchronises. `spare` has room for n keys. Returns the
/// buffer that holds the sorted keys (keys or spare). O(n log n / Block + log^2 n) per thread.
template <int Block, class Key, class Visit>
__device__ Key* merge_levels(Key* keys, Key* spare, uint32_t n, Visit visit) {
  output_range const mine = output_range_of(n, Block, threadIdx.x);
  for (uint32_t width = 1; width < n; width *= 2) {
    merge_outputs(keys, spare, n, width, mine.begin, mine.end, visit);
    __syncthreads();
    Key* const swap = keys;
    keys = spare;
    spare = swap;
  }
  return keys;
}

/// Kendall's (pairs tied on both sides) - 2 (discordant pairs) of the n xy_keys in a (positions in
/// x order), by the two merge sorts of stats/detail/merge_count.hpp; b has room for n more keys,
/// and both are overwritten. The whole block calls it; it returns this thread's part of the
/// quantity (their sum over the block is it), from which the score is
/// total - x_ties - y_ties + it.
template <int Block, class Key>
__device__ int64_t kendall_merge_part(Key* a, Key* b, uint32_t n) {
  uint32_t const t = threadIdx.x;
  // 1. Sort by (x group, y group): each x tie group in y order.
  Key* const sorted = merge_levels<Block>(a, b, n, just_sort{});
  Key* const spare = sorted == a ? b : a;
  int64_t part = 0;
  for (uint32_t i = t; i < n; i += Block) part += equal_keys_before(sorted, i);
  __syncthreads();  // every read of the sorted keys is done: now keep their y groups only
  for (uint32_t i = t; i < n; i += Block) sorted[i] = y_of_key(sorted[i]);
  __syncthreads();
  // 2. The strict inversions of the y groups in that order: the discordant pairs.
  uint64_t discordant = 0;
  merge_levels<Block>(sorted, spare, n, inversion_counter{&discordant});
  return part - 2 * static_cast<int64_t>(discordant);
}

/// Kendall's concordant - discordant of each step (kendall_merge_part): one block per step, its
/// 2 n keys in dynamic shared memory, or in `scratch` (2 rows keys per step) when they do not fit
/// there. Key is uint32_t while the groups fit 16 bits (rows < 65,536), else uint64_t.
/// O(n log n / Block + log^2 n).
template <class Key, int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    kendall_merge_kernel(uint32_t rows, step_arrays arrays, step_stats* stats, Key* scratch) {
  using reduce_t = cub::BlockReduce<int64_t, Block>;
  __shared__ typename reduce_t::TempStorage temp;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  uint64_t const base = static_cast<uint64_t>(s) * rows;
  uint32_t const n = stats[s].valid;
  Key* const a = scratch != nullptr ? scratch + 2 * base : reinterpret_cast<Key*>(shared_bytes);
  for (uint32_t p = t; p < n; p += Block)
    a[p] = xy_key<Key>(arrays.x_lo[base + p], arrays.y_lo[base + p]);
  __syncthreads();
  int64_t const part = reduce_t(temp).Sum(kendall_merge_part<Block>(a, a + rows, n));
  if (t != 0) return;
  step_stats& st = stats[s];
  int64_t const total = static_cast<int64_t>(n) * (n - 1) / 2;
  st.score = total - st.x_ties2 / 2 - st.y_ties2 / 2 + part;
}

// ---------------------------------------------------------------------------------------------
// Bootstrap replicates: a coefficient from weights (how often each position is drawn; replicate
// r of step s draws Philox(seed, s, r), one count per draw).

struct replicate_args {
  uint32_t rows;
  step_arrays arrays;
  step_stats const* stats;
  validity_rule rule;
  uint32_t count;  ///< replicates per step
  uint64_t seed;
  double* out;        ///< count per step, at s * count
  uint32_t* scratch;  ///< global scratch of the block path (replicate_scratch_words per block)
};

/// The scratch of one block of block_replicates_kernel, in 32-bit words: the weights and their two
/// prefix sums (rows + 1 each), then, for Kendall, two arrays of rows keys of key_bytes each
/// (8-byte aligned).
PROXYTASK_HD constexpr uint64_t replicate_scratch_words(uint32_t rows, uint32_t key_bytes) {
  uint64_t const sums = 3 * (uint64_t{rows} + 1);
  return sums + sums % 2 + 2 * uint64_t{rows} * key_bytes / 4;
}

/// Per-thread arrays in shared memory: element i of thread t at base[i * Block + t], so that the
/// lanes of a warp hit distinct banks whatever index each one uses (the random increments of a
/// resample's counts); local memory would take a cache line per lane.
template <class T, int Block>
struct thread_column {
  T* base;
  __device__ T& operator[](uint32_t i) const { return base[i * Block]; }
};

/// The coefficient of weights w over n positions (draws in all), from exclusive prefix sums W
/// over positions and V over the reference order (both with n + 1 entries): a tie group holding
/// positions [lo, hi) has doubled rank W[lo] + W[hi] + 1 (2 below + m + 1, as on the CPU).
/// Sequential: one thread per replicate.
template <class Weights>
__device__ double weighted_coefficient(correlation method, uint32_t n, int64_t draws,
                                       uint32_t const* x_lo, uint32_t const* x_hi,
                                       uint32_t const* y_lo, uint32_t const* y_hi,
                                       uint32_t const* y_order, Weights w, Weights W, Weights V) {
  W[0] = 0;
  for (uint32_t p = 0; p < n; ++p) W[p + 1] = W[p] + w[p];
  V[0] = 0;
  for (uint32_t j = 0; j < n; ++j) V[j + 1] = V[j] + w[y_order[j]];
  if (method == correlation::spearman) {
    spearman_sums sums;
    for (uint32_t p = 0; p < n; ++p) {
      int64_t const c = w[p];
      if (c == 0) continue;
      int64_t const a = static_cast<int64_t>(W[x_lo[p]]) + W[x_hi[p]] + 1;
      int64_t const b = static_cast<int64_t>(V[y_lo[p]]) + V[y_hi[p]] + 1;
      sums.aa += c * a * a;
      sums.ab += c * a * b;
      sums.bb += c * b * b;
    }
    sums.centre(draws);
    return sums.rho();
  }
  kendall_counts k;
  k.total = draws * (draws - 1) / 2;
  for (uint32_t p = 0; p < n; ++p) {
    if (x_lo[p] == p) {
      int64_t const m = static_cast<int64_t>(W[x_hi[p]]) - W[p];
      k.x_ties += m * (m - 1) / 2;
    }
    int64_t const c = w[p];
    if (c == 0) continue;
    int64_t toward = 0;
    for (uint32_t q = x_hi[p]; q < n; ++q)
      toward += static_cast<int64_t>(w[q]) * ((y_lo[q] > y_lo[p]) - (y_lo[q] < y_lo[p]));
    k.score += c * toward;
  }
  for (uint32_t j = 0; j < n; ++j) {
    uint32_t const p = y_order[j];
    if (y_lo[p] == j) {
      int64_t const m = static_cast<int64_t>(V[y_hi[p]]) - V[j];
      k.y_ties += m * (m - 1) / 2;
    }
  }
  return k.tau_b();
}

/// At most this many pairs: one thread per replicate, the step's arrays in shared memory.
inline constexpr uint32_t small_step_pairs = 32;

/// Replicates of steps with at most small_step_pairs pairs: thread blockIdx.y * Block + threadIdx.x
/// of step blockIdx.x computes that replicate (and every gridDim.y * Block-th after it), with its
/// weights and prefix sums in shared memory (thread_column; counts and sums fit 16 bits).
template <int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block) small_replicates_kernel(replicate_args a) {
  constexpr uint32_t cap = small_step_pairs;
  __shared__ uint32_t x_lo[cap], x_hi[cap], y_lo[cap], y_hi[cap], y_order[cap], draw[cap];
  __shared__ std::uint16_t counts[cap][Block], below_x[cap + 1][Block], below_y[cap + 1][Block];
  uint32_t const s = blockIdx.x;
  step_stats const stats = a.stats[s];
  if (!a.rule.has_replicates(stats)) return;  // the whole block: no barrier is skipped by some
  uint32_t const n = stats.valid;
  uint64_t const base = static_cast<uint64_t>(s) * a.rows;
  for (uint32_t p = threadIdx.x; p < n; p += Block) {
    x_lo[p] = a.arrays.x_lo[base + p];
    x_hi[p] = a.arrays.x_hi[base + p];
    y_lo[p] = a.arrays.y_lo[base + p];
    y_hi[p] = a.arrays.y_hi[base + p];
    y_order[p] = a.arrays.y_order[base + p];
    draw[p] = a.arrays.draw_position[base + p];
  }
  __syncthreads();
  thread_column<std::uint16_t, Block> const w{&counts[0][threadIdx.x]}, W{&below_x[0][threadIdx.x]},
      V{&below_y[0][threadIdx.x]};
  for (uint32_t r = blockIdx.y * Block + threadIdx.x; r < a.count; r += gridDim.y * Block) {
    for (uint32_t p = 0; p < n; ++p) w[p] = 0;
    philox_stream const stream(a.seed, s, r, draw_purpose::bootstrap);
    for (uint32_t i = 0, b = 0; i < n; ++b) {
      auto const words = stream.block(b);
      for (uint32_t j = 0; j < 4 && i < n; ++j, ++i) ++w[draw[uniform_index(words.v[j], n)]];
    }
    a.out[static_cast<uint64_t>(s) * a.count + r] =
        weighted_coefficient(a.rule.method, n, n, x_lo, x_hi, y_lo, y_hi, y_order, w, W, V);
  }
}

// ---------------------------------------------------------------------------------------------
// Permutation tests: what the CPU's permutation_test counts. Steps of at most small_step_pairs
// pairs: one thread per pairing (permutation_kernel); larger ones: one block per pairing
// (block_permutations_kernel).

struct permutation_args {
  uint32_t rows;
  step_arrays arrays;
  step_stats const* stats;
  validity_rule rule;
  uint32_t permutations;  ///< Monte Carlo pairings per step (above exact_permutation_pairs)
  uint64_t seed;
  unsigned long long* counts;  ///< per step: at least, at most the observed statistic (zeroed)
  uint32_t* scratch;  ///< global scratch of the block path (permutation_scratch_words per block)
};

/// Thread blockIdx.y * Block + threadIdx.x of step blockIdx.x tests pairing r (and every
/// gridDim.y * Block-th after it): permutation r of all n! (n <= exact_permutation_pairs), else
/// the Fisher-Yates shuffle of Philox(seed, step, r, permutation); the counts are summed per warp
/// and added to the step's.
template <int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block) permutation_kernel(permutation_args a) {
  __shared__ permutation_step<small_step_pairs> step;
  __shared__ std::uint8_t orders[small_step_pairs][Block], y_ofs[small_step_pairs][Block];
  __shared__ int64_t observed_shared;
  uint32_t const s = blockIdx.x;
  step_stats const stats = a.stats[s];
  uint32_t const n = stats.valid;
  bool const exact = n <= exact_permutation_pairs;
  uint32_t const count = exact ? factorial(n) : a.permutations;
  // The whole block leaves (no barrier is skipped by some): no test, or no pairing left for it
  // (the grid is sized for the largest count, n! of exact steps).
  if (!a.rule.has_replicates(stats) || blockIdx.y * Block >= count) return;
  uint64_t const base = static_cast<uint64_t>(s) * a.rows;
  for (uint32_t i = threadIdx.x; i < n; i += Block) {
    step.x_rank[i] = a.arrays.x_lo[base + i] + a.arrays.x_hi[base + i] + 1;
    step.x_hi[i] = a.arrays.x_hi[base + i];
    uint32_t const p = a.arrays.draw_position[base + i];
    step.draw[i] = p;
    step.y_group[i] = a.arrays.y_lo[base + p];
    step.y_rank[i] = a.arrays.y_lo[base + p] + a.arrays.y_hi[base + p] + 1;
  }
  __syncthreads();
  thread_column<std::uint8_t, Block> const order{&orders[0][threadIdx.x]},
      y_of{&y_ofs[0][threadIdx.x]};
  correlation const method = a.rule.method;
  if (threadIdx.x == 0) {  // the observed pairing: model k with its own y
    for (uint32_t k = 0; k < n; ++k) order[k] = static_cast<std::uint8_t>(k);
    observed_shared = permutation_statistic(step, method, n, order, y_of);
  }
  __syncthreads();
  int64_t const observed = observed_shared;
  uint32_t at_least = 0, at_most = 0;
  for (uint32_t r = blockIdx.y * Block + threadIdx.x; r < count; r += gridDim.y * Block) {
    if (exact) {
      nth_order(order, n, r);
    } else {
      philox_stream draw(a.seed, s, r, draw_purpose::permutation);
      shuffled_order(order, n, draw);
    }
    int64_t const t = permutation_statistic(step, method, n, order, y_of);
    at_least += t >= observed;
    at_most += t <= observed;
  }
  unsigned const all = 0xffffffffu;
  at_least = __reduce_add_sync(all, at_least);
  at_most = __reduce_add_sync(all, at_most);
  if (threadIdx.x % 32 == 0 && at_least + at_most > 0) {
    atomicAdd(&a.counts[2 * s], static_cast<unsigned long long>(at_least));
    atomicAdd(&a.counts[2 * s + 1], static_cast<unsigned long long>(at_most));
  }
}

/// The scratch of one block of block_permutations_kernel, in 32-bit words: the pairing, per pair
/// in model order its x and y values, the shuffle's swap targets (rows each), its reservations
/// (rows 64-bit words: four arrays of 32-bit words keep them 8-byte aligned), then, for Kendall,
/// two arrays of rows keys of key_bytes each.
PROXYTASK_HD constexpr uint64_t permutation_scratch_words(uint32_t rows, uint32_t key_bytes) {
  return 4 * uint64_t{rows} + 2 * uint64_t{rows} + 2 * uint64_t{rows} * key_bytes / 4;
}

/// shuffled_order(order, n, draw) by the whole block, in rounds of reservations
/// (stats/detail/permutations.hpp): the same permutation, in about 2.8 log2(n) rounds of
/// n / Block positions per thread instead of n swaps by one thread. `target` and `reserved` have
/// room for n entries.
template <int Block>
__device__ void shuffle_in_block(uint32_t* order, uint32_t* target, unsigned long long* reserved,
                                 uint32_t n, philox_stream const& draw) {
  uint32_t const t = threadIdx.x;
  for (uint32_t b = t; b < swap_target_blocks(n); b += Block)
    swap_targets_of_block(target, n, draw, b);
  for (uint32_t i = t; i < n; i += Block) {
    order[i] = i;
    reserved[i] = 0;  // below every round's priorities
  }
  if (t == 0 && n > 0) target[0] = swap_done;
  __syncthreads();
  auto const reserve = [reserved](uint32_t position, uint64_t priority) {
    atomicMax(&reserved[position], static_cast<unsigned long long>(priority));
  };
  for (uint32_t round = 1;; ++round) {
    for (uint32_t i = t; i < n; i += Block) reserve_swap(target, round, i, reserve);
    __syncthreads();
    bool pending = false;
    for (uint32_t i = t; i < n; i += Block)
      pending |= run_reserved_swap(order, target, reserved, round, i);
    if (__syncthreads_or(pending) == 0) return;
  }
}

/// Permutation tests of larger steps: one block per pairing at a time (blockIdx.y, then every
/// gridDim.y-th), its arrays in the block's scratch (shared memory when it fits, else a.scratch).
/// The block draws the pairing as the CPU does (Fisher-Yates on the same Philox words, its swaps
/// in rounds: shuffle_in_block; thread 0 takes the exact test's nth_order), and computes its
/// statistic: Spearman's sum of doubled ranks' products by one reduction, Kendall's concordant -
/// discordant by the merge sorts of the pairing's xy keys (kendall_merge_part). Thread 0 counts,
/// and adds to the step's counts at the end.
template <int Block, class Key>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    block_permutations_kernel(permutation_args a, bool scratch_in_shared) {
  using reduce_t = cub::BlockReduce<int64_t, Block>;
  __shared__ typename reduce_t::TempStorage temp;
  extern __shared__ __align__(16) uint32_t dynamic_shared[];  // 8-byte words follow the values
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  step_stats const stats = a.stats[s];
  uint32_t const n = stats.valid;
  bool const exact = n <= exact_permutation_pairs;
  uint32_t const count = exact ? factorial(n) : a.permutations;
  // The whole block leaves (no barrier is skipped by some): no test, or no pairing left for it.
  if (!a.rule.has_replicates(stats) || blockIdx.y >= count) return;
  bool const kendall = a.rule.method == correlation::kendall_tau_b;
  uint64_t const words = permutation_scratch_words(a.rows, kendall ? sizeof(Key) : 0);
  uint32_t* const order =
      scratch_in_shared ? dynamic_shared
                        : a.scratch + (static_cast<uint64_t>(blockIdx.y) * gridDim.x + s) * words;
  // Per pair in model order (the CPU's pairing order): Spearman's doubled ranks, Kendall's groups.
  uint32_t* const x_of = order + a.rows;
  uint32_t* const y_of = x_of + a.rows;
  uint32_t* const target = y_of + a.rows;  // the shuffle's
  auto* const reserved = reinterpret_cast<unsigned long long*>(target + a.rows);
  Key* const keys = reinterpret_cast<Key*>(reserved + a.rows);
  uint64_t const base = static_cast<uint64_t>(s) * a.rows;
  for (uint32_t k = t; k < n; k += Block) {
    uint32_t const p = a.arrays.draw_position[base + k];
    uint32_t const x_lo = a.arrays.x_lo[base + p], y_lo = a.arrays.y_lo[base + p];
    x_of[k] = kendall ? x_lo : x_lo + a.arrays.x_hi[base + p] + 1;
    y_of[k] = kendall ? y_lo : y_lo + a.arrays.y_hi[base + p] + 1;
    order[k] = k;  // the observed pairing: every pair with its own y
  }
  __syncthreads();
  // Kendall's statistic less the merge sorts' part: total - x ties - y ties, the same for every
  // pairing (a pairing permutes the y values, not their ties).
  int64_t const untied = static_cast<int64_t>(n) * (n - 1) / 2 -
                         static_cast<int64_t>(stats.x_ties2 / 2) -
                         static_cast<int64_t>(stats.y_ties2 / 2);
  // The statistic of the pairing in `order` (pair k gets the y of pair order[k]); the whole block
  // calls it, thread 0 gets the value.
  auto const statistic = [&]() {
    int64_t part = 0;
    if (!kendall) {
      for (uint32_t k = t; k < n; k += Block)
        part += static_cast<int64_t>(x_of[k]) * y_of[order[k]];
    } else {
      // The keys' order does not matter: the merge sorts sort them.
      for (uint32_t k = t; k < n; k += Block) keys[k] = xy_key<Key>(x_of[k], y_of[order[k]]);
      __syncthreads();
      part = kendall_merge_part<Block>(keys, keys + a.rows, n);
    }
    int64_t const sum = reduce_t(temp).Sum(part);
    return kendall ? untied + sum : sum;
  };
  int64_t const observed = statistic();
  uint32_t at_least = 0, at_most = 0;
  for (uint32_t r = blockIdx.y; r < count; r += gridDim.y) {
    __syncthreads();  // every thread is done with the last pairing and the reduction's storage
    if (!exact)
      shuffle_in_block<Block>(order, target, reserved, n,
                              philox_stream(a.seed, s, r, draw_purpose::permutation));
    else if (t == 0)
      nth_order(order, n, r);
    __syncthreads();
    int64_t const v = statistic();
    at_least += v >= observed;
    at_most += v <= observed;
  }
  if (t == 0) {
    atomicAdd(&a.counts[2 * s], static_cast<unsigned long long>(at_least));
    atomicAdd(&a.counts[2 * s + 1], static_cast<unsigned long long>(at_most));
  }
}

/// Spearman's three rank sums, or Kendall's score and two tie counts, summed in one reduction.
struct three_sums {
  int64_t first = 0, second = 0, third = 0;
  __device__ three_sums operator+(three_sums const& o) const {
    return {first + o.first, second + o.second, third + o.third};
  }
};

/// Replicates of larger steps: one block per replicate at a time (blockIdx.y, then every
/// gridDim.y-th), the weights and both prefix sums in the block's scratch (shared memory when it
/// fits, else a_.scratch); the prefix sums are block scans of Items positions per thread, the
/// rank sums one block reduction.
template <int Block, class Key, int Items = 4>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    block_replicates_kernel(replicate_args a, bool scratch_in_shared) {
  using scan_t = cub::BlockScan<uint32_t, Block>;
  using reduce_t = cub::BlockReduce<three_sums, Block>;
  __shared__ union {
    struct {
      typename scan_t::TempStorage x, y;
    } scan;
    typename reduce_t::TempStorage reduce;
  } temp;
  extern __shared__ __align__(16) uint32_t dynamic_shared[];  // 8-byte keys follow the sums
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  step_stats const stats = a.stats[s];
  if (!a.rule.has_replicates(stats)) return;
  uint32_t const n = stats.valid;
  uint64_t const base = static_cast<uint64_t>(s) * a.rows;
  uint32_t const* x_lo = a.arrays.x_lo + base;
  uint32_t const* x_hi = a.arrays.x_hi + base;
  uint32_t const* y_lo = a.arrays.y_lo + base;
  uint32_t const* y_hi = a.arrays.y_hi + base;
  uint32_t const* y_order = a.arrays.y_order + base;
  uint32_t const* draw = a.arrays.draw_position + base;
  bool const kendall = a.rule.method == correlation::kendall_tau_b;
  uint64_t const words = replicate_scratch_words(a.rows, kendall ? sizeof(Key) : 0);
  uint32_t* w = scratch_in_shared
                    ? dynamic_shared
                    : a.scratch + (static_cast<uint64_t>(blockIdx.y) * gridDim.x + s) * words;
  uint32_t* W = w + (a.rows + 1);
  uint32_t* V = W + (a.rows + 1);
  // Kendall: the resample's draws as xy keys, in x order (kendall_merge_part).
  Key* const keys = reinterpret_cast<Key*>(w + replicate_scratch_words(a.rows, 0));

  int64_t const draws = n;
  for (uint32_t r = blockIdx.y; r < a.count; r += gridDim.y) {
    for (uint32_t p = t; p < n; p += Block) w[p] = 0;
    __syncthreads();
    philox_stream const stream(a.seed, s, r, draw_purpose::bootstrap);
    for (uint32_t b = t; 4 * b < n; b += Block) {
      auto const words = stream.block(b);
      for (uint32_t j = 0; j < 4 && 4 * b + j < n; ++j)
        atomicAdd(&w[draw[uniform_index(words.v[j], n)]], 1u);
    }
    __syncthreads();
    // W: exclusive prefix sums of the weights over positions; V: over the reference order.
    uint32_t carry_w = 0, carry_v = 0;
    for (uint32_t begin = 0; begin < n; begin += Block * Items) {
      uint32_t in_x[Items], in_y[Items], out_x[Items], out_y[Items], total_x = 0, total_y = 0;
      for (int k = 0; k < Items; ++k) {
        uint32_t const i = begin + t * Items + k;
        in_x[k] = i < n ? w[i] : 0u;
        in_y[k] = i < n ? w[y_order[i]] : 0u;
      }
      scan_t(temp.scan.x).ExclusiveSum(in_x, out_x, total_x);
      scan_t(temp.scan.y).ExclusiveSum(in_y, out_y, total_y);
      for (int k = 0; k < Items; ++k) {
        uint32_t const i = begin + t * Items + k;
        if (i < n) {
          W[i] = carry_w + out_x[k];
          V[i] = carry_v + out_y[k];
        }
      }
      carry_w += total_x;
      carry_v += total_y;
      __syncthreads();
    }
    if (t == 0) {
      W[n] = carry_w;
      V[n] = carry_v;
    }
    __syncthreads();
    // Spearman: aa, ab, bb; Kendall: both tied - 2 discordant (kendall_merge_part), x ties, y ties
    three_sums sums;
    for (uint32_t p = t; p < n; p += Block) {
      int64_t const c = w[p];
      if (!kendall) {
        if (c == 0) continue;
        int64_t const x = static_cast<int64_t>(W[x_lo[p]]) + W[x_hi[p]] + 1;
        int64_t const y = static_cast<int64_t>(V[y_lo[p]]) + V[y_hi[p]] + 1;
        sums.first += c * x * x;
        sums.second += c * x * y;
        sums.third += c * y * y;
        continue;
      }
      if (x_lo[p] == p) {
        int64_t const m = static_cast<int64_t>(W[x_hi[p]]) - W[p];
        sums.second += m * (m - 1) / 2;
      }
      uint32_t const j = p;  // the same index, read in reference order
      if (y_lo[y_order[j]] == j) {
        int64_t const m = static_cast<int64_t>(V[y_hi[y_order[j]]]) - V[j];
        sums.third += m * (m - 1) / 2;
      }
      // Position p's draws, each a copy of its key (copies are tied on both sides).
      Key const key = xy_key<Key>(x_lo[p], y_lo[p]);
      for (uint32_t k = 0; k < c; ++k) keys[W[p] + k] = key;
    }
    if (kendall) {
      __syncthreads();
      sums.first = kendall_merge_part<Block>(keys, keys + a.rows, static_cast<uint32_t>(draws));
    }
    sums = reduce_t(temp.reduce).Sum(sums);
    if (t == 0) {
      double coefficient;
      if (!kendall) {
        spearman_sums rank_sums{sums.second, sums.first, sums.third};
        rank_sums.centre(draws);
        coefficient = rank_sums.rho();
      } else {
        kendall_counts k;
        k.total = draws * (draws - 1) / 2;
        k.x_ties = sums.second;
        k.y_ties = sums.third;
        k.score = k.total - k.x_ties - k.y_ties + sums.first;
        coefficient = k.tau_b();
      }
      a.out[static_cast<uint64_t>(s) * a.count + r] = coefficient;
    }
    __syncthreads();  // the weights and the reduction's storage are reused by the next replicate
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries

/// The counts of stats/bootstrap.hpp's replicate_counts, as a device-copyable struct.
struct replicate_tally {
  uint32_t defined = 0, undefined = 0, below_hat = 0, at_or_below_hat = 0, at_or_below_zero = 0,
           at_or_below_c = 0;
  double sum = 0, squares = 0;
};

/// The counts of one step's `count` bootstrap replicates against theta (the coefficient), 0 and
/// c, and the two lane sums of count_replicates (lane l of the sum is the warp's lane l): a whole
/// warp calls it; every lane gets the tally.
__device__ inline replicate_tally tally_of(double const* v, uint32_t count, double theta,
                                           double c) {
  uint32_t const lane = threadIdx.x % 32;
  uint32_t defined = 0, below = 0, at_or_below = 0, zero = 0, at_c = 0;
  double sum = 0.0;
  for (uint32_t i = lane; i < count; i += 32) {
    double const x = v[i];
    if (x != x) continue;
    ++defined;
    below += x < theta;
    at_or_below += x <= theta;
    zero += x <= 0.0;
    at_c += x <= c;
    sum = add_rn(sum, x);
  }
  unsigned const all = 0xffffffffu;
  for (int stride = sum_lanes / 2; stride > 0; stride /= 2)
    sum = add_rn(sum, __shfl_down_sync(all, sum, stride));
  defined = __reduce_add_sync(all, defined);
  sum = __shfl_sync(all, sum, 0);
  double squares = 0.0;
  if (defined > 0) {
    double const mean = sum / static_cast<double>(defined);
    for (uint32_t i = lane; i < count; i += 32) {
      double const x = v[i];
      if (x == x) squares = add_rn(squares, squared_deviation(x, mean));
    }
  }
  for (int stride = sum_lanes / 2; stride > 0; stride /= 2)
    squares = add_rn(squares, __shfl_down_sync(all, squares, stride));
  replicate_tally o;
  o.defined = defined;
  o.undefined = count - defined;
  o.below_hat = __reduce_add_sync(all, below);
  o.at_or_below_hat = __reduce_add_sync(all, at_or_below);
  o.at_or_below_zero = __reduce_add_sync(all, zero);
  o.at_or_below_c = __reduce_add_sync(all, at_c);
  o.sum = defined > 0 ? sum : 0.0;
  o.squares = __shfl_sync(all, squares, 0);
  return o;
}

/// One warp per step: tally_of its bootstrap replicates.
PROXYTASK_KERNEL void __launch_bounds__(32)
    tally_kernel(double const* replicates, uint32_t count, step_stats const* stats,
                 validity_rule rule, double c, replicate_tally* out) {
  uint32_t const s = blockIdx.x;
  step_stats const st = stats[s];
  if (!rule.has_replicates(st)) return;
  replicate_tally const t = tally_of(replicates + static_cast<uint64_t>(s) * count, count,
                                     st.coefficient(rule.method), c);
  if (threadIdx.x == 0) out[s] = t;
}

// ---------------------------------------------------------------------------------------------
// BCa's jackknife: the coefficient without each pair, from the shared formulas of
// stats/detail/rank_math.hpp (spearman_without, kendall_without) and dominance counts by merge
// sorts (stats/detail/merge_count.hpp): O(n log n) work per step instead of n replicates.

/// The global scratch of one step of jackknife_kernel, in 64-bit words: xy keys and their spare,
/// the dominance sort's keys and spare (rows each), its two counts (rows 32-bit words each), and
/// two prefix sums (rows + 1 each).
PROXYTASK_HD constexpr uint64_t jackknife_scratch_words(uint32_t rows) {
  return 5 * uint64_t{rows} + 2 * (uint64_t{rows} + 1);
}

/// Exclusive prefix sums of value(i) for i < n into out[0, n], by block scans.
template <int Block, class Value>
__device__ void block_prefix_sums(uint32_t n, Value value, int64_t* out,
                                  typename cub::BlockScan<int64_t, Block>::TempStorage& temp) {
  int64_t carry = 0;
  for (uint32_t begin = 0; begin < n; begin += Block) {
    uint32_t const i = begin + threadIdx.x;
    int64_t before = 0, total = 0;
    cub::BlockScan<int64_t, Block>(temp).ExclusiveSum(i < n ? value(i) : int64_t{0}, before, total);
    if (i < n) out[i] = carry + before;
    carry += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) out[n] = carry;
}

/// One block per step: the step's n jackknife values, by position, at out + s * rows (NaN for
/// all when n < 3, as on the CPU).
template <int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    jackknife_kernel(uint32_t rows, step_arrays arrays, step_stats const* stats, validity_rule rule,
                     uint64_t* scratch, double* out) {
  __shared__ typename cub::BlockScan<int64_t, Block>::TempStorage temp;
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  step_stats const st = stats[s];
  if (!rule.has_replicates(st)) return;
  uint32_t const n = st.valid;
  uint64_t const base = static_cast<uint64_t>(s) * rows;
  double* const values = out + base;
  if (n < 3) {
    for (uint32_t p = t; p < n; p += Block) values[p] = quiet_nan();
    return;
  }
  uint32_t const* x_lo = arrays.x_lo + base;
  uint32_t const* x_hi = arrays.x_hi + base;
  uint32_t const* y_lo = arrays.y_lo + base;
  uint32_t const* y_hi = arrays.y_hi + base;
  uint32_t const* y_order = arrays.y_order + base;
  uint64_t* const xy = scratch + s * jackknife_scratch_words(rows);
  uint64_t* const keys = xy + 2 * uint64_t{rows};
  auto* const greater = reinterpret_cast<uint32_t*>(keys + 2 * uint64_t{rows});
  uint32_t* const at_least = greater + rows;
  auto* const b_before = reinterpret_cast<int64_t*>(at_least + rows);  // over positions
  int64_t* const a_before = b_before + rows + 1;                       // over the y order

  // The xy keys, sorted.
  for (uint32_t p = t; p < n; p += Block) xy[p] = xy_key<uint64_t>(x_lo[p], y_lo[p]);
  __syncthreads();
  uint64_t const* const sorted = merge_levels<Block>(xy, xy + rows, n, just_sort{});
  // The dominance sort of their y groups, each element counting the later ones at least as high,
  // then less those of its own y group: the later ones above it.
  for (uint32_t i = t; i < n; i += Block) {
    keys[i] = y_index_key(y_of_key(sorted[i]), i);
    at_least[i] = 0;
  }
  __syncthreads();
  uint64_t const* const by_y = merge_levels<Block>(keys, keys + rows, n, later_at_least{at_least});
  for (uint32_t q = t; q < n; q += Block) {
    auto const i = static_cast<uint32_t>(by_y[q]);
    greater[i] = at_least[i] - later_in_y_group(by_y, n, q);
  }
  // The other side's doubled ranks summed: of y over positions, of x over the y order.
  block_prefix_sums<Block>(
      n, [&](uint32_t p) { return int64_t{y_lo[p]} + y_hi[p] + 1; }, b_before, temp);
  block_prefix_sums<Block>(
      n,
      [&](uint32_t j) {
        uint32_t const p = y_order[j];
        return int64_t{x_lo[p]} + x_hi[p] + 1;
      },
      a_before, temp);
  __syncthreads();
  spearman_sums const total{st.ab, st.aa, st.bb};
  kendall_counts const all = st.kendall();
  for (uint32_t p = t; p < n; p += Block) {
    jackknife_pair const j = jackknife_pair_of(sorted, n, x_lo[p], x_hi[p], y_lo[p], y_hi[p],
                                               greater, at_least, b_before, a_before);
    values[p] = rule.method == correlation::spearman ? spearman_without(j, n, total)
                                                     : kendall_without(j, n, all);
  }
}

/// One thread per step: the jackknife moments of BCa's acceleration (the CPU's own function).
PROXYTASK_KERNEL void jackknife_moments_kernel(double const* jackknife, uint32_t rows,
                                               uint32_t steps, step_stats const* stats,
                                               validity_rule rule, jackknife_moments* out) {
  uint32_t const s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= steps || !rule.has_replicates(stats[s])) return;
  out[s] = moments_of_jackknife(jackknife + static_cast<uint64_t>(s) * rows, stats[s].valid);
}

/// Order statistics wanted per step: up to 4 ranks among the defined replicates (no_rank: none).
inline constexpr uint32_t no_rank = ~uint32_t{0};

/// Where the select kernel's ranks come from.
struct selection {
  uint32_t const* ranks = nullptr;  ///< per step 4 ranks from the host (BCa), or
  /// nullptr: the percentile interval's, from the tallies and the fixed levels below (the
  /// positions stats/bootstrap.hpp's quantile_position computes: h = (defined - 1) q).
  replicate_tally const* tallies = nullptr;
  step_stats const* stats = nullptr;
  validity_rule rule{};
  double q_low = 0, q_high = 0;

  __device__ void ranks_of(uint32_t s, uint32_t (&rank)[4]) const {
    for (uint32_t& r : rank) r = no_rank;
    if (ranks != nullptr) {
      for (int i = 0; i < 4; ++i) rank[i] = ranks[s * 4 + i];
      return;
    }
    if (rule.has_replicates(stats[s])) percentile_ranks(tallies[s].defined, rank);
  }

  /// The ranks of the percentile interval's order statistics among `defined` replicates.
  __device__ void percentile_ranks(uint32_t defined, uint32_t (&rank)[4]) const {
    for (uint32_t& r : rank) r = no_rank;
    if (defined == 0) return;
    double const levels[2] = {q_low, q_high};
    for (int i = 0; i < 2; ++i) {
      double const h = static_cast<double>(defined - 1) * levels[i];
      auto const r = static_cast<uint32_t>(floor(h));
      rank[2 * i] = r;
      if (r + 1 < defined && h > static_cast<double>(r)) rank[2 * i + 1] = r + 1;
    }
  }
};

/// One block per step: the order statistics of the step's defined replicates at the ranks of
/// `select` (up to 4), by radix selection on their order keys (8 passes of 8 bits; exact values,
/// as the CPU's selection gives).
template <int Block>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    select_kernel(double const* replicates, uint32_t count, selection select, double* out) {
  __shared__ uint32_t histogram[4][256];
  __shared__ uint64_t prefix[4];
  __shared__ uint32_t remaining[4];
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  double const* v = replicates + static_cast<uint64_t>(s) * count;
  uint32_t rank[4];
  select.ranks_of(s, rank);
  if (rank[0] == no_rank && rank[2] == no_rank) {  // the whole block: no interval
    if (t < 4) out[s * 4 + t] = quiet_nan();
    return;
  }
  if (t < 4) {
    prefix[t] = 0;
    remaining[t] = rank[t];
  }
  for (int pass = 0; pass < 8; ++pass) {
    int const shift = 56 - 8 * pass;
    uint64_t const high = pass == 0 ? 0 : ~uint64_t{0} << (64 - 8 * pass);
    for (uint32_t i = t; i < 4 * 256; i += Block) histogram[i / 256][i % 256] = 0;
    __syncthreads();
    for (uint32_t i = t; i < count; i += Block) {
      double const x = v[i];
      if (x != x) continue;
      uint64_t const key = key_traits<double>::key(x);
      for (int q = 0; q < 4; ++q)
        if (rank[q] != no_rank && (key & high) == prefix[q])
          atomicAdd(&histogram[q][(key >> shift) & 255], 1u);
    }
    __syncthreads();
    if (t < 4 && rank[t] != no_rank) {
      uint32_t left = remaining[t];
      uint32_t digit = 0;
      for (; digit < 255 && left >= histogram[t][digit]; ++digit) left -= histogram[t][digit];
      prefix[t] |= static_cast<uint64_t>(digit) << shift;
      remaining[t] = left;
    }
    __syncthreads();
  }
  if (t < 4)
    out[s * 4 + t] = rank[t] == no_rank ? quiet_nan() : key_traits<double>::value(prefix[t]);
}

/// The shared memory of summarize_in_block_kernel: the sort's, then the sorted keys.
template <int Block, int Items>
union summary_storage {
  typename cub::BlockRadixSort<uint64_t, Block, Items>::TempStorage sort;
  uint64_t sorted[Block * Items];
};

/// The bootstrap's summary of steps of at most Block x Items resamples, in one block per step
/// and one pass over the replicates: warp 0 tallies them (tally_of), the block sorts their order
/// keys in shared memory (NaN last), and thread 0 reads the order statistics at the percentile
/// interval's ranks into `out`. With `sorted_back` (BCa, whose ranks come from the host later),
/// the sorted values also replace the step's replicates, for gather_sorted_kernel. It replaces
/// tally_kernel and select_kernel's eight histogram passes, whose atomics collide when few
/// distinct values fill 10,000 replicates.
template <int Block, int Items>
PROXYTASK_KERNEL void __launch_bounds__(Block)
    summarize_in_block_kernel(double* replicates, uint32_t count, selection select, double c,
                              bool sorted_back, replicate_tally* tallies, double* out) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  auto& st = *reinterpret_cast<summary_storage<Block, Items>*>(shared_bytes);
  __shared__ replicate_tally tally;
  uint32_t const s = blockIdx.x, t = threadIdx.x;
  step_stats const stats = select.stats[s];
  if (!select.rule.has_replicates(stats)) {  // the whole block
    if (t < 4) out[s * 4 + t] = quiet_nan();
    return;
  }
  double* const v = replicates + static_cast<uint64_t>(s) * count;
  if (t < 32) {
    replicate_tally const k = tally_of(v, count, stats.coefficient(select.rule.method), c);
    if (t == 0) tally = k;
  }
  uint64_t keys[Items];
  for (int j = 0; j < Items; ++j) {
    uint32_t const i = t * Items + j;
    keys[j] = i < count ? key_traits<double>::key(v[i]) : key_traits<double>::missing;
  }
  // The sort's barriers also order warp 0's reads of the replicates before the writes below.
  cub::BlockRadixSort<uint64_t, Block, Items>(st.sort).Sort(keys);
  __syncthreads();  // the sort's storage becomes the sorted keys
  for (int j = 0; j < Items; ++j) {
    uint32_t const i = t * Items + j;
    st.sorted[i] = keys[j];
    if (sorted_back && i < count) v[i] = key_traits<double>::value(keys[j]);
  }
  __syncthreads();
  if (t != 0) return;
  tallies[s] = tally;
  uint32_t rank[4];
  select.percentile_ranks(tally.defined, rank);
  for (int q = 0; q < 4; ++q)
    out[s * 4 + q] =
        rank[q] == no_rank ? quiet_nan() : key_traits<double>::value(st.sorted[rank[q]]);
}

/// The order statistics at the host's ranks (4 per step, no_rank: none) from replicates that
/// summarize_in_block_kernel sorted back: one thread each.
PROXYTASK_KERNEL void gather_sorted_kernel(double const* sorted, uint32_t count,
                                           uint32_t const* ranks, uint32_t steps, double* out) {
  uint32_t const i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 4 * steps) return;
  uint32_t const r = ranks[i];
  out[i] = r == no_rank ? quiet_nan() : sorted[static_cast<uint64_t>(i / 4) * count + r];
}

}  // namespace proxytask::stats::detail::gpu
