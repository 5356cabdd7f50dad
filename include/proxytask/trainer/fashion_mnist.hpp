#pragma once
/// @file
/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) for the reference trainer: the loader of the
/// IDX files of Debian's package dataset-fashion-mnist, the fixed validation split taken from the
/// training set, the class-balanced seeded subsample of the "training data %" proxy knob, and
/// the 2x2 downsampling (28x28 -> 14x14) of the image-size knob.
///
/// Every random choice here is made with SplitMix64 and an explicit Fisher-Yates shuffle (never
/// <random>'s distributions), so a seed gives the same subsample on every platform.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/trainer/detail/idx.hpp>
#include <proxytask/trainer/detail/splitmix64.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::trainer {

/// The number of classes of Fashion-MNIST; labels are 0 .. 9.
inline constexpr std::size_t fashion_mnist_classes = 10;

/// The classes' names, by label.
inline constexpr std::array<std::string_view, fashion_mnist_classes> fashion_mnist_class_names = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Where Debian's package dataset-fashion-mnist installs the files.
inline constexpr std::string_view fashion_mnist_debian_dir = "/usr/share/datasets/fashion-mnist";

/// The environment variable that overrides fashion_mnist_debian_dir.
inline constexpr char const* fashion_mnist_dir_variable = "PROXYTASK_FASHION_MNIST_DIR";

/// Labelled images: image i is images[i * features, (i + 1) * features), pixels / 255 in [0, 1].
struct image_set {
  std::size_t features = 0;          ///< 784 (28x28) or 196 (14x14 after downsampling)
  std::vector<float> images;         ///< size() x features, row-major
  std::vector<std::uint8_t> labels;  ///< 0 .. 9
  std::size_t size() const noexcept { return labels.size(); }
};

/// The two sets of Fashion-MNIST: 60,000 training and 10,000 test images.
struct fashion_mnist {
  image_set train, test;
};

/// A training set split in two: what the trainer trains on, and what it measures accuracy on.
struct train_validation {
  image_set train, validation;
};

/// $PROXYTASK_FASHION_MNIST_DIR when it is set and not empty, else
/// /usr/share/datasets/fashion-mnist.
inline std::filesystem::path default_fashion_mnist_dir() {
  char const* const dir = std::getenv(fashion_mnist_dir_variable);  // NOLINT(concurrency-mt-unsafe)
  if (dir != nullptr && *dir != '\0') return dir;
  return std::filesystem::path(fashion_mnist_debian_dir);
}

/// Reads an IDX label file (gzip-compressed or not).
/// @returns the labels, or an error naming the file: errc::not_found, an I/O error, or
///          errc::malformed_file (corrupt gzip data, wrong magic number, truncated, extra bytes)
inline result<std::vector<std::uint8_t>> read_idx_labels(std::filesystem::path const& path) {
  auto const bytes = detail::read_gzip_file(path);
  if (!bytes) return bytes.error();
  return detail::parse_idx_labels(*bytes, path.string());
}

/// Reads an IDX image file (gzip-compressed or not).
/// @returns the images, or an error naming the file as read_idx_labels does
inline result<detail::idx_images> read_idx_images(std::filesystem::path const& path) {
  auto const bytes = detail::read_gzip_file(path);
  if (!bytes) return bytes.error();
  return detail::parse_idx_images(*bytes, path.string());
}

/// Reads an image file and its label file into an image_set (pixels scaled to [0, 1]).
/// @returns the set, or an error naming the file: those of read_idx_images / read_idx_labels,
///          errc::malformed_file when the counts differ or a label is above 9
inline result<image_set> read_idx_set(std::filesystem::path const& images_path,
                                      std::filesystem::path const& labels_path) {
  auto images = read_idx_images(images_path);
  if (!images) return images.error();
  auto labels = read_idx_labels(labels_path);
  if (!labels) return labels.error();
  if (images->count != labels->size())
    return make_error(errc::malformed_file, images_path.string() + " has " +
                                                std::to_string(images->count) + " images but " +
                                                labels_path.string() + " has " +
                                                std::to_string(labels->size()) + " labels");
  for (std::size_t i = 0; i < labels->size(); ++i)
    if ((*labels)[i] >= fashion_mnist_classes)
      return make_error(errc::malformed_file, labels_path.string() + ": label " +
                                                  std::to_string((*labels)[i]) + " at index " +
                                                  std::to_string(i) + " (expected 0 to 9)");
  image_set set;
  set.features = images->rows * images->cols;
  set.images.resize(images->pixels.size());
  std::transform(images->pixels.begin(), images->pixels.end(), set.images.begin(),
                 [](std::uint8_t p) { return static_cast<float>(p) / 255.0f; });
  set.labels = std::move(*labels);
  return set;
}

namespace detail {

/// How to get the files, appended to every "not found" of load_fashion_mnist.
inline constexpr std::string_view fashion_mnist_install_hint =
    "; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    "or set PROXYTASK_FASHION_MNIST_DIR to a directory holding train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz";

/// dir/name.gz, or dir/name when only the uncompressed file is there.
inline std::filesystem::path idx_file(std::filesystem::path const& dir, std::string_view name) {
  std::filesystem::path const gz = dir / (std::string(name) + ".gz");
  std::filesystem::path const plain = dir / std::string(name);
  std::error_code ec;
  if (!std::filesystem::exists(gz, ec) && std::filesystem::exists(plain, ec)) return plain;
  return gz;
}

/// One of the two sets: the IDX pair `prefix`-images-idx3-ubyte / `prefix`-labels-idx1-ubyte.
inline result<image_set> load_fashion_mnist_set(std::filesystem::path const& dir,
                                                std::string_view prefix) {
  std::string const p(prefix);
  auto const images_path = idx_file(dir, p + "-images-idx3-ubyte");
  auto set = read_idx_set(images_path, idx_file(dir, p + "-labels-idx1-ubyte"));
  if (!set) {
    error e = set.error();
    if (e.code == errc::not_found) e.context += fashion_mnist_install_hint;
    return e;
  }
  if (set->features != 28 * 28)
    return make_error(errc::malformed_file,
                      images_path.string() + ": expected 28x28 Fashion-MNIST images, found " +
                          std::to_string(set->features) + " pixels per image");
  return set;
}

/// The indices of each class, in ascending order.
/// @pre every label < fashion_mnist_classes
inline std::array<std::vector<std::size_t>, fashion_mnist_classes> indices_by_class(
    image_set const& set) {
  std::array<std::vector<std::size_t>, fashion_mnist_classes> by_class;
  for (std::size_t i = 0; i < set.size(); ++i) {
    PROXYTASK_EXPECTS(set.labels[i] < fashion_mnist_classes, "image_set label above 9");
    by_class[set.labels[i]].push_back(i);
  }
  return by_class;
}

/// The images at `indices`, in that order.
inline image_set gather(image_set const& set, std::span<std::size_t const> indices) {
  image_set out;
  out.features = set.features;
  out.images.resize(indices.size() * set.features);
  out.labels.resize(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    std::size_t const i = indices[k];
    std::copy_n(set.images.begin() + static_cast<std::ptrdiff_t>(i * set.features), set.features,
                out.images.begin() + static_cast<std::ptrdiff_t>(k * set.features));
    out.labels[k] = set.labels[i];
  }
  return out;
}

/// The seed of the validation split: a constant, so the split never depends on a trial's seed.
inline constexpr std::uint64_t validation_split_seed = 0x7a11'da7e'f00d'5eedULL;

/// Keeps subsample's stream apart from other uses of the same seed (the search space's).
inline constexpr std::uint64_t subsample_stream = 0x5ab5'a3b1'e000'0001ULL;

}  // namespace detail

/// Loads Fashion-MNIST's training and test sets from `dir` (each file gzip-compressed, as Debian
/// ships them, or uncompressed without the .gz).
/// @param[in] dir the directory of the four IDX files; by default $PROXYTASK_FASHION_MNIST_DIR
///                or /usr/share/datasets/fashion-mnist
/// @returns the sets, or an error naming the file and what is wrong: errc::not_found (its
///          message says to install the Debian package dataset-fashion-mnist or to set
///          PROXYTASK_FASHION_MNIST_DIR), an I/O error, or errc::malformed_file (corrupt gzip,
///          wrong magic number, truncated, counts that differ, labels above 9, images not 28x28)
inline result<fashion_mnist> load_fashion_mnist(
    std::filesystem::path const& dir = default_fashion_mnist_dir()) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return make_error(errc::not_found, dir.string() + ": no Fashion-MNIST directory" +
                                           std::string(detail::fashion_mnist_install_hint));
  auto train = detail::load_fashion_mnist_set(dir, "train");
  if (!train) return train.error();
  auto test = detail::load_fashion_mnist_set(dir, "t10k");
  if (!test) return test.error();
  return fashion_mnist{std::move(*train), std::move(*test)};
}

/// Splits a training set into training and validation images: validation_size / 10 images of
/// each class go to validation. The split is fixed: the same for every call on the same data and
/// independent of any seed (a constant-seeded SplitMix64 shuffle of each class). Both parts keep
/// the images' original order. The proxies measure accuracy on this split; the final evaluation
/// uses the separate test set.
/// @param[in] train           the training set (labels 0 .. 9)
/// @param[in] validation_size the number of validation images, a multiple of 10
/// @returns train minus the validation images, and the validation images
/// @throws logic_error when validation_size is not a multiple of 10, a class has fewer images
///         than validation_size / 10, or a label is above 9
inline train_validation split_validation(image_set const& train,
                                         std::size_t validation_size = 10000) {
  PROXYTASK_EXPECTS(validation_size % fashion_mnist_classes == 0,
                    "split_validation: the validation size must be a multiple of 10");
  std::size_t const per_class = validation_size / fashion_mnist_classes;
  auto by_class = detail::indices_by_class(train);
  std::vector<unsigned char> in_validation(train.size(), 0);
  detail::splitmix64 rng(detail::validation_split_seed);
  for (auto& indices : by_class) {
    PROXYTASK_EXPECTS(indices.size() >= per_class,
                      "split_validation: a class has fewer images than validation_size / 10");
    detail::shuffle(std::span<std::size_t>(indices), rng);
    for (std::size_t k = 0; k < per_class; ++k) in_validation[indices[k]] = 1;
  }
  std::vector<std::size_t> kept, held_out;
  kept.reserve(train.size() - validation_size);
  held_out.reserve(validation_size);
  for (std::size_t i = 0; i < train.size(); ++i) (in_validation[i] ? held_out : kept).push_back(i);
  return train_validation{detail::gather(train, kept), detail::gather(train, held_out)};
}

/// The "training data %" proxy knob: `percent` of each class's images (rounded to nearest, at
/// least one of each class present), in a seeded random order. For one seed, a smaller percent
/// takes a subset of a larger one's images; 100 gives a permutation of the whole set.
/// Deterministic on every platform (SplitMix64 and Fisher-Yates).
/// @param[in] set     the images to draw from (labels 0 .. 9)
/// @param[in] percent in (0, 100]
/// @param[in] seed    the trial's data seed
/// @throws logic_error when percent is outside (0, 100] or a label is above 9
inline image_set subsample(image_set const& set, double percent, std::uint64_t seed) {
  PROXYTASK_EXPECTS(std::isfinite(percent) && percent > 0 && percent <= 100,
                    "subsample: percent must be in (0, 100]");
  auto by_class = detail::indices_by_class(set);
  detail::splitmix64 rng(seed ^ detail::subsample_stream);
  std::vector<std::size_t> chosen;
  for (auto& indices : by_class) {
    if (indices.empty()) continue;
    // Every class is shuffled whole (the same draws for every percent), so that the first k of
    // a class are the same images whatever the percent.
    detail::shuffle(std::span<std::size_t>(indices), rng);
    double const wanted = std::round(static_cast<double>(indices.size()) * percent / 100.0);
    std::size_t const k =
        std::clamp<std::size_t>(static_cast<std::size_t>(wanted), 1, indices.size());
    chosen.insert(chosen.end(), indices.begin(), indices.begin() + static_cast<std::ptrdiff_t>(k));
  }
  detail::shuffle(std::span<std::size_t>(chosen), rng);
  return detail::gather(set, chosen);
}

/// The image-size proxy knob: each side halved by 2x2 means (28x28 -> 14x14).
/// @param[in] set square images with an even side
/// @returns the downsampled images, same labels and order
/// @throws logic_error when the images are not square with an even side
inline image_set downsample_2x(image_set const& set) {
  auto const side =
      static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(set.features))));
  PROXYTASK_EXPECTS(side > 0 && side * side == set.features && side % 2 == 0,
                    "downsample_2x: the images must be square with an even side");
  PROXYTASK_EXPECTS(set.images.size() == set.size() * set.features,
                    "downsample_2x: images.size() must be size() * features");
  std::size_t const half = side / 2;
  image_set out;
  out.features = half * half;
  out.labels = set.labels;
  out.images.resize(set.size() * out.features);
  for (std::size_t n = 0; n < set.size(); ++n) {
    float const* const in = set.images.data() + n * set.features;
    float* const o = out.images.data() + n * out.features;
    for (std::size_t r = 0; r < half; ++r)
      for (std::size_t c = 0; c < half; ++c) {
        float const* const p = in + 2 * r * side + 2 * c;
        o[r * half + c] = (p[0] + p[1] + p[side] + p[side + 1]) * 0.25f;
      }
  }
  return out;
}

}  // namespace proxytask::trainer
