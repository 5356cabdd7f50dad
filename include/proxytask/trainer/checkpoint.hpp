#pragma once
/// @file
/// Checkpoints of a training run, so that model selection can continue training a model and a
/// killed trial can resume: save_checkpoint writes every parameter, optimizer and EMA array with
/// write_file_atomically; load_checkpoint reads and validates one; resume_trainer rebuilds an
/// mlp_trainer that continues with the same bits as the uninterrupted run. The functions are
/// templates over the trainer's back-end: a GPU trainer (cuda/proxytask/trainer/mlp.cuh) copies
/// its arrays to the host and writes the same format, and resumes from a CPU run's file as a CPU
/// trainer resumes from its. This header includes no back-end: include
/// <proxytask/trainer/mlp.hpp> (CPU) or <proxytask/trainer/mlp.cuh> (CUDA) too.
///
/// The format (version 1), every number little-endian:
///
///   offset  what
///   0       magic "PXTCKPT\x01" (8 bytes)
///   8       u32 version (1)
///           u64 features, u64 classes, u32 hidden layers H, H x u64 widths,
///           u32 activation (0 relu, 1 tanh, 2 gelu), f64 dropout (IEEE bits)
///           u32 optimizer (0 SGD with momentum, 1 Adam)
///           u64 config hash (config_hash: every training_config field but total_steps)
///           i64 step
///           4 arrays, each u64 count then count x f32: parameters, moment1, moment2, ema
///           (moment2 is empty for SGD, ema when EMA is off)
///   end-8   u64 FNV-1a 64 of every byte before it

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/trainer/basic_mlp_trainer.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::trainer {

/// The checkpoint format's version this build reads and writes.
inline constexpr std::uint32_t checkpoint_version = 1;

/// What a checkpoint holds.
struct checkpoint {
  mlp_spec spec;
  std::size_t features = 0;
  std::size_t classes = 0;
  training_config::optimizer opt = training_config::optimizer::adam;
  std::uint64_t config_hash = 0;
  std::vector<float> parameters;
  trainer_state state;
};

namespace detail {

inline constexpr char checkpoint_magic[8] = {'P', 'X', 'T', 'C', 'K', 'P', 'T', '\x01'};

inline constexpr std::uint64_t fnv_offset = 14695981039346656037ull;
inline constexpr std::uint64_t fnv_prime = 1099511628211ull;

inline std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = fnv_offset) noexcept {
  for (char const c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= fnv_prime;
  }
  return h;
}

/// Appends little-endian numbers to a byte string.
class byte_writer {
 public:
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void floats(std::vector<float> const& v) {
    u64(v.size());
    if constexpr (std::endian::native == std::endian::little) {
      out_.append(reinterpret_cast<char const*>(v.data()), v.size() * sizeof(float));
    } else {
      for (float const f : v) u32(std::bit_cast<std::uint32_t>(f));
    }
  }
  void bytes(std::string_view b) { out_.append(b); }
  std::string& str() noexcept { return out_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

/// Reads little-endian numbers; every read checks the length and fails naming the file.
class byte_reader {
 public:
  byte_reader(std::string_view bytes, std::filesystem::path const& path)
      : bytes_(bytes), path_(path) {}

  result<std::uint32_t> u32(char const* what) {
    auto v = get(4, what);
    if (!v) return v.error();
    return static_cast<std::uint32_t>(*v);
  }
  result<std::uint64_t> u64(char const* what) { return get(8, what); }
  result<double> f64(char const* what) {
    auto v = get(8, what);
    if (!v) return v.error();
    return std::bit_cast<double>(*v);
  }
  result<std::vector<float>> floats(char const* what) {
    auto n = u64(what);
    if (!n) return n.error();
    if (*n > (bytes_.size() - at_) / sizeof(float))
      return fail(std::string(what) + " claims " + std::to_string(*n) +
                  " floats, more than the file holds (truncated or corrupt)");
    std::vector<float> v(static_cast<std::size_t>(*n));
    if constexpr (std::endian::native == std::endian::little) {
      if (!v.empty()) std::memcpy(v.data(), bytes_.data() + at_, v.size() * sizeof(float));
      at_ += v.size() * sizeof(float);
    } else {
      for (float& f : v) f = std::bit_cast<float>(static_cast<std::uint32_t>(*get(4, what)));
    }
    return v;
  }
  std::size_t position() const noexcept { return at_; }
  std::size_t remaining() const noexcept { return bytes_.size() - at_; }

  error fail(std::string const& what) const {
    return make_error(errc::malformed_file,
                      path_.string() + ": " + what + " (at byte " + std::to_string(at_) + ")");
  }

 private:
  result<std::uint64_t> get(int n, char const* what) {
    if (bytes_.size() - at_ < static_cast<std::size_t>(n))
      return fail(std::string("truncated: the file ends in ") + what);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[at_ + i])) << (8 * i);
    at_ += static_cast<std::size_t>(n);
    return v;
  }

  std::string_view bytes_;
  std::filesystem::path const& path_;
  std::size_t at_ = 0;
};

inline std::string widths_string(std::vector<std::size_t> const& w) {
  std::string s = "[";
  for (std::size_t i = 0; i < w.size(); ++i) s += (i ? ", " : "") + std::to_string(w[i]);
  return s + "]";
}

}  // namespace detail

/// A hash of everything in a config that shapes the training trajectory: every field but
/// total_steps (model selection may continue a run with a longer schedule).
inline std::uint64_t config_hash(training_config const& c) noexcept {
  detail::byte_writer w;
  w.u64(c.batch_size);
  w.f64(c.learning_rate);
  w.u32(static_cast<std::uint32_t>(c.opt));
  w.f64(c.momentum);
  w.f64(c.adam_beta1);
  w.f64(c.adam_beta2);
  w.f64(c.adam_epsilon);
  w.f64(c.weight_decay);
  w.f64(c.clip_norm);
  w.f64(c.ema_decay);
  w.f64(c.warmup_fraction);
  w.u64(c.seed);
  return detail::fnv1a(w.str());
}

namespace detail {

/// The bytes of a checkpoint of a trainer's host arrays (the format above).
template <class Trainer>
std::string checkpoint_bytes_of(Trainer const& t, std::span<float const> params,
                                trainer_state const& state) {
  detail::byte_writer w;
  w.bytes(std::string_view(detail::checkpoint_magic, sizeof detail::checkpoint_magic));
  w.u32(checkpoint_version);
  w.u64(t.layout().features());
  w.u64(t.layout().classes());
  w.u32(static_cast<std::uint32_t>(t.spec().hidden.size()));
  for (std::size_t const h : t.spec().hidden) w.u64(h);
  w.u32(static_cast<std::uint32_t>(t.spec().act));
  w.f64(t.spec().dropout);
  w.u32(static_cast<std::uint32_t>(t.config().opt));
  w.u64(config_hash(t.config()));
  w.u64(static_cast<std::uint64_t>(state.step));
  w.floats(std::vector<float>(params.begin(), params.end()));
  w.floats(state.moment1);
  w.floats(state.moment2);
  w.floats(state.ema);
  w.u64(detail::fnv1a(w.str()));
  return std::move(w.str());
}

}  // namespace detail

/// The bytes of a checkpoint of a CPU trainer `t` (the format above).
template <class Backend>
requires backend_context<Backend>::host_memory std::string checkpoint_bytes(
    basic_mlp_trainer<Backend> const& t) {
  return detail::checkpoint_bytes_of(t, t.parameters(), t.state());
}

/// The bytes of a checkpoint of `t` on any back-end (a GPU copies its arrays to the host).
/// @returns the bytes, or the back-end's error (t.status())
template <class Backend>
result<std::string> try_checkpoint_bytes(basic_mlp_trainer<Backend> const& t) {
  if constexpr (backend_context<Backend>::host_memory) {
    return checkpoint_bytes(t);
  } else {
    auto const s = t.snapshot();
    if (!s) return s.error();
    return detail::checkpoint_bytes_of(t, s->parameters, s->state);
  }
}

/// Writes a checkpoint of `t` to `path` atomically (a reader sees the old file or the new one).
/// @returns write_file_atomically's error, naming the path; a GPU's error copying the arrays
template <class Backend>
result<void> save_checkpoint(std::filesystem::path const& path,
                             basic_mlp_trainer<Backend> const& t) {
  auto const bytes = try_checkpoint_bytes(t);
  if (!bytes) return bytes.error();
  return write_file_atomically(path, *bytes);
}

/// Parses checkpoint bytes (load_checkpoint without the read; `path` names them in errors).
/// @returns the checkpoint, or errc::malformed_file naming the path and what is wrong: bad magic
///          (not a checkpoint), another version, truncated, checksum mismatch (corrupt), an
///          impossible shape, arrays whose sizes do not match the shape, trailing bytes
inline result<checkpoint> parse_checkpoint(std::string_view bytes,
                                           std::filesystem::path const& path) {
  detail::byte_reader r(bytes, path);
  if (bytes.size() < sizeof detail::checkpoint_magic ||
      std::memcmp(bytes.data(), detail::checkpoint_magic, sizeof detail::checkpoint_magic) != 0)
    return r.fail("not a proxytask trainer checkpoint (bad magic)");
  if (bytes.size() < sizeof detail::checkpoint_magic + 4 + 8)
    return r.fail("truncated: " + std::to_string(bytes.size()) + " bytes");
  // The checksum first: a corrupt file is reported as corrupt, not by the first odd field.
  std::string_view const body = bytes.substr(0, bytes.size() - 8);
  detail::byte_reader tail(bytes.substr(bytes.size() - 8), path);
  std::uint64_t const stored = *tail.u64("the checksum");

  detail::byte_reader b(body, path);
  (void)b.u64("the magic");
  auto const version = b.u32("the version");
  if (!version) return version.error();
  if (*version != checkpoint_version)
    return b.fail("checkpoint version " + std::to_string(*version) + ", this build reads version " +
                  std::to_string(checkpoint_version));
  if (detail::fnv1a(body) != stored)
    return b.fail("checksum mismatch: the file is corrupt or truncated");

  checkpoint c;
  auto const features = b.u64("the input width");
  if (!features) return features.error();
  auto const classes = b.u64("the number of classes");
  if (!classes) return classes.error();
  auto const depth = b.u32("the number of hidden layers");
  if (!depth) return depth.error();
  if (*features < 1 || *features > (1u << 24) || *classes < 2 || *classes > 256 || *depth < 1 ||
      *depth > max_hidden_layers)
    return b.fail("an impossible shape: " + std::to_string(*features) + " inputs, " +
                  std::to_string(*classes) + " classes, " + std::to_string(*depth) +
                  " hidden layers");
  c.features = static_cast<std::size_t>(*features);
  c.classes = static_cast<std::size_t>(*classes);
  for (std::uint32_t l = 0; l < *depth; ++l) {
    auto const w = b.u64("a hidden width");
    if (!w) return w.error();
    if (*w < 1 || *w > max_hidden_width)
      return b.fail("hidden width " + std::to_string(*w) + " outside 1.." +
                    std::to_string(max_hidden_width));
    c.spec.hidden.push_back(static_cast<std::size_t>(*w));
  }
  auto const act = b.u32("the activation");
  if (!act) return act.error();
  if (*act > static_cast<std::uint32_t>(activation::gelu))
    return b.fail("unknown activation " + std::to_string(*act));
  c.spec.act = static_cast<activation>(*act);
  auto const dropout = b.f64("the dropout rate");
  if (!dropout) return dropout.error();
  if (!(*dropout >= 0.0 && *dropout < 1.0))
    return b.fail("dropout " + std::to_string(*dropout) + " outside [0, 1)");
  c.spec.dropout = *dropout;
  auto const opt = b.u32("the optimizer");
  if (!opt) return opt.error();
  if (*opt > static_cast<std::uint32_t>(training_config::optimizer::adam))
    return b.fail("unknown optimizer " + std::to_string(*opt));
  c.opt = static_cast<training_config::optimizer>(*opt);
  auto const hash = b.u64("the config hash");
  if (!hash) return hash.error();
  c.config_hash = *hash;
  auto const step = b.u64("the step");
  if (!step) return step.error();
  if (*step > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return b.fail("a negative step");
  c.state.step = static_cast<std::int64_t>(*step);

  std::size_t const n = mlp_layout(c.features, c.spec.hidden, c.classes).parameter_count();
  bool const adam = c.opt == training_config::optimizer::adam;
  struct array_spec {
    std::vector<float>* into;
    char const* name;
    bool required;
    bool allowed;
  };
  array_spec const arrays[] = {{&c.parameters, "the parameters", true, true},
                               {&c.state.moment1, "the first moments", true, true},
                               {&c.state.moment2, "the second moments", adam, adam},
                               {&c.state.ema, "the EMA", false, true}};
  for (auto const& a : arrays) {
    auto v = b.floats(a.name);
    if (!v) return v.error();
    bool const ok = v->size() == n ? a.allowed : (v->empty() && !a.required);
    if (!ok)
      return b.fail(std::string(a.name) + " hold " + std::to_string(v->size()) +
                    " floats; the shape " + detail::widths_string(c.spec.hidden) + " has " +
                    std::to_string(n) + " parameters");
    *a.into = std::move(*v);
  }
  if (b.remaining() != 0)
    return b.fail(std::to_string(b.remaining()) + " bytes after the last array");
  return c;
}

/// Reads and validates a checkpoint.
/// @returns the checkpoint; read_file's errors (errc::not_found, errno codes), or
///          parse_checkpoint's errc::malformed_file, each naming the file
inline result<checkpoint> load_checkpoint(std::filesystem::path const& path) {
  auto const bytes = read_file(path);
  if (!bytes) return bytes.error();
  return parse_checkpoint(*bytes, path);
}

/// Loads a checkpoint and rebuilds the trainer it was saved from, for the expected model and
/// config, on the back-end `policy` (the CPU by default); training on with the same batches
/// gives the same bits as the uninterrupted run (on the CPU; a GPU continues within float
/// rounding of it).
/// @param[in] path     the checkpoint
/// @param[in] spec     the model the caller expects
/// @param[in] features the input width
/// @param[in] config   the config to continue with (total_steps may differ from the saved run's:
///                     model selection continuing training; nothing else may)
/// @param[in] classes  the number of classes
/// @param[in] policy   the back-end (backend::cpu, backend::cuda.on(stream))
/// @returns the trainer at the saved step; load_checkpoint's errors; errc::invalid_argument
///          naming the file when its model, shape or config differs from the expected one; the
///          back-end's error (no device, out of memory)
template <class Backend = backend::cpu_t>
result<basic_mlp_trainer<Backend>> resume_trainer(std::filesystem::path const& path,
                                                  mlp_spec const& spec, std::size_t features,
                                                  training_config const& config,
                                                  std::size_t classes = 10, Backend policy = {}) {
  auto c = load_checkpoint(path);
  if (!c) return c.error();
  auto mismatch = [&](std::string const& what) {
    return make_error(errc::invalid_argument, path.string() + ": " + what);
  };
  if (c->features != features || c->classes != classes || c->spec.hidden != spec.hidden)
    return mismatch("the checkpoint is of a " + std::to_string(c->features) + "-" +
                    detail::widths_string(c->spec.hidden) + "-" + std::to_string(c->classes) +
                    " model, expected " + std::to_string(features) + "-" +
                    detail::widths_string(spec.hidden) + "-" + std::to_string(classes));
  if (c->spec != spec)
    return mismatch("the checkpoint's activation or dropout differs from the model's");
  if (c->opt != config.opt || c->config_hash != config_hash(config))
    return mismatch(
        "the checkpoint was trained with another config (optimizer, learning rate, "
        "seed, ...)");
  bool const ema = config.ema_decay > 0.0;
  if (c->state.ema.empty() == ema)
    return mismatch("the checkpoint's EMA does not match the config's ema_decay");
  auto t = basic_mlp_trainer<Backend>::create(spec, features, config, classes, policy);
  if (!t) return t.error();
  t->restore(std::move(c->parameters), std::move(c->state));
  if (auto const s = t->status(); !s) return s.error();
  return std::move(*t);
}

}  // namespace proxytask::trainer
