// The Fashion-MNIST loader (IDX files, gzip), the validation split, the subsample of the
// "training data %" knob and the 2x2 downsampling. Tests on the real files skip themselves when
// Debian's dataset-fashion-mnist is not installed.

#include <proxytask/trainer/fashion_mnist.hpp>

#include <support/temp_dir.hpp>

#include <gtest/gtest.h>
#include <zlib.h>

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pt = proxytask;
namespace tr = proxytask::trainer;
namespace fs = std::filesystem;

namespace {

// --- synthetic IDX files ------------------------------------------------------------------------

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string label_file(std::vector<std::uint8_t> const& labels, std::uint32_t magic = 2049,
                       std::optional<std::uint32_t> count = std::nullopt) {
  std::string s = be32(magic) + be32(count.value_or(static_cast<std::uint32_t>(labels.size())));
  s.append(labels.begin(), labels.end());
  return s;
}

std::string image_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                       std::vector<std::uint8_t> const& pixels, std::uint32_t magic = 2051) {
  std::string s = be32(magic) + be32(count) + be32(rows) + be32(cols);
  s.append(pixels.begin(), pixels.end());
  return s;
}

void write_gz(fs::path const& path, std::string const& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

void write_plain(fs::path const& path, std::string const& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<std::uint8_t> ramp(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37) % 256);
  return v;
}

// Writes a complete synthetic Fashion-MNIST directory of 28x28 images.
void write_fake_fashion_mnist(fs::path const& dir, std::uint32_t n_train, std::uint32_t n_test) {
  for (auto [prefix, n] : {std::pair{"train", n_train}, std::pair{"t10k", n_test}}) {
    std::vector<std::uint8_t> labels(n);
    for (std::uint32_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    write_gz(dir / (std::string(prefix) + "-images-idx3-ubyte.gz"),
             image_file(n, 28, 28, ramp(std::size_t{n} * 784)));
    write_gz(dir / (std::string(prefix) + "-labels-idx1-ubyte.gz"), label_file(labels));
  }
}

// --- synthetic image sets whose single pixel is the image's index
// ---------------------------------

// `per_class[c]` images of class c, interleaved; image i has one feature, the value i.
tr::image_set indexed_set(std::array<std::size_t, 10> const& per_class) {
  tr::image_set set;
  set.features = 1;
  std::array<std::size_t, 10> left = per_class;
  for (bool any = true; any;) {
    any = false;
    for (std::uint8_t c = 0; c < 10; ++c) {
      if (left[c] == 0) continue;
      --left[c];
      any = true;
      set.images.push_back(static_cast<float>(set.labels.size()));
      set.labels.push_back(c);
    }
  }
  return set;
}

std::vector<std::size_t> ids(tr::image_set const& set) {
  std::vector<std::size_t> out;
  for (float const v : set.images) out.push_back(static_cast<std::size_t>(v));
  return out;
}

std::array<std::size_t, 10> class_counts(tr::image_set const& set) {
  std::array<std::size_t, 10> counts{};
  for (std::uint8_t const l : set.labels) ++counts.at(l);
  return counts;
}

std::array<std::size_t, 10> all(std::size_t n) {
  std::array<std::size_t, 10> a;
  a.fill(n);
  return a;
}

// The real files, loaded once per test program (each ctest test is its own process).
tr::fashion_mnist const* real_data() {
  static std::optional<tr::fashion_mnist> const data = [] {
    std::optional<tr::fashion_mnist> d;
    if (!fs::is_directory(tr::default_fashion_mnist_dir())) return d;
    auto loaded = tr::load_fashion_mnist();
    EXPECT_TRUE(loaded) << loaded.error().message();
    if (loaded) d = std::move(*loaded);
    return d;
  }();
  return data ? &*data : nullptr;
}

#define REQUIRE_REAL_DATA()                                                          \
  auto const* const real = real_data();                                              \
  if (real == nullptr) {                                                             \
    GTEST_SKIP() << "Fashion-MNIST not found at " << tr::default_fashion_mnist_dir() \
                 << ": install the Debian package dataset-fashion-mnist or set "     \
                    "PROXYTASK_FASHION_MNIST_DIR";                                   \
  }                                                                                  \
  static_assert(true)

}  // namespace

// --- the random numbers --------------------------------------------------------------------------

TEST(SplitMix64, MatchesTheReferenceImplementation) {
  // Vigna's splitmix64.c seeded with 1234567.
  tr::detail::splitmix64 rng(1234567);
  EXPECT_EQ(rng(), 6457827717110365317ULL);
  EXPECT_EQ(rng(), 3203168211198807973ULL);
  EXPECT_EQ(rng(), 9817491932198370423ULL);
  EXPECT_EQ(rng(), 4593380528125082431ULL);
  EXPECT_EQ(rng(), 16408922859458223821ULL);
}

TEST(SplitMix64, DrawsEveryValueBelowTheBound) {
  tr::detail::splitmix64 rng(7);
  std::array<int, 7> seen{};
  for (int i = 0; i < 7000; ++i) ++seen.at(rng.below(7));
  for (int const n : seen) EXPECT_GT(n, 800);
  EXPECT_THROW(rng.below(0), pt::logic_error);
}

// --- IDX files -----------------------------------------------------------------------------------

TEST(IdxFiles, ReadsGzipLabelAndImageFiles) {
  pt::testing::temp_dir dir;
  std::vector<std::uint8_t> const labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3};
  auto const pixels = ramp(11 * 2 * 3);
  write_gz(dir.path() / "img.gz", image_file(11, 2, 3, pixels));
  write_gz(dir.path() / "lab.gz", label_file(labels));

  auto const images = tr::read_idx_images(dir.path() / "img.gz");
  ASSERT_TRUE(images) << images.error().message();
  EXPECT_EQ(images->count, 11u);
  EXPECT_EQ(images->rows, 2u);
  EXPECT_EQ(images->cols, 3u);
  EXPECT_EQ(images->pixels, pixels);

  auto const set = tr::read_idx_set(dir.path() / "img.gz", dir.path() / "lab.gz");
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->features, 6u);
  EXPECT_EQ(set->size(), 11u);
  EXPECT_EQ(set->labels, labels);
  ASSERT_EQ(set->images.size(), pixels.size());
  for (std::size_t i = 0; i < pixels.size(); ++i)
    EXPECT_FLOAT_EQ(set->images[i], static_cast<float>(pixels[i]) / 255.0f) << i;
}

TEST(IdxFiles, ReadsUncompressedFilesToo) {
  pt::testing::temp_dir dir;
  write_plain(dir.path() / "lab", label_file({4, 2}));
  auto const labels = tr::read_idx_labels(dir.path() / "lab");
  ASSERT_TRUE(labels) << labels.error().message();
  EXPECT_EQ(*labels, (std::vector<std::uint8_t>{4, 2}));
}

TEST(IdxFiles, RejectsABadMagicNumberNamingTheFile) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "lab.gz";
  write_gz(path, label_file({1, 2, 3}, 2051));
  auto const labels = tr::read_idx_labels(path);
  ASSERT_FALSE(labels);
  EXPECT_EQ(labels.error().code, pt::errc::malformed_file);
  EXPECT_NE(labels.error().context.find(path.string()), std::string::npos);
  EXPECT_NE(labels.error().context.find("magic number"), std::string::npos);
  EXPECT_NE(labels.error().context.find("an image file"), std::string::npos)
      << labels.error().message();

  write_gz(path, image_file(1, 1, 1, {0}, 0x12345678));
  auto const images = tr::read_idx_images(path);
  ASSERT_FALSE(images);
  EXPECT_EQ(images.error().code, pt::errc::malformed_file);
  EXPECT_NE(images.error().context.find("expected 2051"), std::string::npos);
  EXPECT_NE(images.error().context.find(std::to_string(0x12345678)), std::string::npos)
      << images.error().message();
}

TEST(IdxFiles, RejectsTruncatedHeadersAndData) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "f.gz";
  auto const expect_malformed = [&](auto const& r, std::string const& what) {
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, pt::errc::malformed_file) << what;
    EXPECT_NE(r.error().context.find(path.string()), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().context.find(what), std::string::npos) << r.error().message();
  };
  write_gz(path, be32(2049) + "ab");
  expect_malformed(tr::read_idx_labels(path), "truncated IDX header");
  write_gz(path, be32(2051) + be32(1) + be32(28));
  expect_malformed(tr::read_idx_images(path), "truncated IDX header");
  write_gz(path, "");
  expect_malformed(tr::read_idx_labels(path), "truncated IDX header");
  // The header announces more than the file holds.
  write_gz(path, label_file({1, 2, 3, 4}, 2049, 5));
  expect_malformed(tr::read_idx_labels(path),
                   "truncated: the header says 5 labels, the file has 4");
  write_gz(path, image_file(3, 28, 28, ramp(2 * 784 + 100)));
  expect_malformed(tr::read_idx_images(path), "truncated: the header says 3 images of 28x28");
  // Dimensions whose product overflows 64 bits are "truncated" too, not a crash.
  write_gz(path, image_file(0xffffffffu, 0xffffffffu, 0xffffffffu, {1, 2, 3}));
  expect_malformed(tr::read_idx_images(path), "truncated");
  write_gz(path, image_file(1, 0, 28, {}));
  expect_malformed(tr::read_idx_images(path), "bad IDX dimensions");
}

TEST(IdxFiles, RejectsBytesAfterTheAnnouncedData) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "f.gz";
  write_gz(path, label_file({1, 2, 3, 4}, 2049, 3));
  auto const labels = tr::read_idx_labels(path);
  ASSERT_FALSE(labels);
  EXPECT_NE(labels.error().context.find("1 bytes after the 3 labels"), std::string::npos)
      << labels.error().message();
  write_gz(path, image_file(1, 2, 2, {1, 2, 3, 4, 5}));
  auto const images = tr::read_idx_images(path);
  ASSERT_FALSE(images);
  EXPECT_NE(images.error().context.find("1 bytes after the 1 images of 2x2"), std::string::npos)
      << images.error().message();
}

TEST(IdxFiles, RejectsATruncatedGzipStream) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "f.gz";
  write_gz(path, image_file(50, 28, 28, ramp(50 * 784)));
  auto const size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  auto const images = tr::read_idx_images(path);
  ASSERT_FALSE(images);
  EXPECT_EQ(images.error().code, pt::errc::malformed_file);
  EXPECT_NE(images.error().context.find(path.string()), std::string::npos);
  EXPECT_NE(images.error().context.find("truncated gzip data"), std::string::npos)
      << images.error().message();
}

TEST(IdxFiles, RejectsACorruptGzipStream) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "f.gz";
  write_gz(path, label_file(ramp(5000)));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(bytes.size(), 30u);
  for (std::size_t i = 12; i < bytes.size() - 8; i += 3) bytes[i] = static_cast<char>(~bytes[i]);
  write_plain(path, bytes);
  auto const labels = tr::read_idx_labels(path);
  ASSERT_FALSE(labels);
  EXPECT_EQ(labels.error().code, pt::errc::malformed_file);
  EXPECT_NE(labels.error().context.find(path.string() + ": bad gzip data"), std::string::npos)
      << labels.error().message();
}

TEST(IdxFiles, RejectsCountsThatDifferAndLabelsAboveNine) {
  pt::testing::temp_dir dir;
  write_gz(dir.path() / "img.gz", image_file(3, 2, 2, ramp(12)));
  write_gz(dir.path() / "lab.gz", label_file({1, 2}));
  auto const mismatch = tr::read_idx_set(dir.path() / "img.gz", dir.path() / "lab.gz");
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, pt::errc::malformed_file);
  EXPECT_NE(mismatch.error().context.find("img.gz has 3 images but"), std::string::npos);
  EXPECT_NE(mismatch.error().context.find("lab.gz has 2 labels"), std::string::npos)
      << mismatch.error().message();

  write_gz(dir.path() / "lab.gz", label_file({1, 12, 2}));
  auto const bad_label = tr::read_idx_set(dir.path() / "img.gz", dir.path() / "lab.gz");
  ASSERT_FALSE(bad_label);
  EXPECT_NE(bad_label.error().context.find("label 12 at index 1"), std::string::npos)
      << bad_label.error().message();
}

TEST(IdxFiles, ReportsAMissingFileAsNotFound) {
  pt::testing::temp_dir dir;
  auto const labels = tr::read_idx_labels(dir.path() / "nope.gz");
  ASSERT_FALSE(labels);
  EXPECT_EQ(labels.error().code, pt::errc::not_found);
  EXPECT_NE(labels.error().context.find("nope.gz"), std::string::npos);
}

// --- load_fashion_mnist
// ----------------------------------------------------------------------------

TEST(LoadFashionMnist, NamesTheDebianPackageWhenTheDirectoryIsMissing) {
  pt::testing::temp_dir dir;
  auto const data = tr::load_fashion_mnist(dir.path() / "absent");
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().code, pt::errc::not_found);
  EXPECT_NE(data.error().context.find((dir.path() / "absent").string()), std::string::npos);
  EXPECT_NE(data.error().context.find("dataset-fashion-mnist"), std::string::npos);
  EXPECT_NE(data.error().context.find("PROXYTASK_FASHION_MNIST_DIR"), std::string::npos)
      << data.error().message();
}

TEST(LoadFashionMnist, NamesTheMissingFileAndTheDebianPackage) {
  pt::testing::temp_dir dir;
  write_fake_fashion_mnist(dir.path(), 20, 10);
  fs::remove(dir.path() / "t10k-labels-idx1-ubyte.gz");
  auto const data = tr::load_fashion_mnist(dir.path());
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().code, pt::errc::not_found);
  EXPECT_NE(data.error().context.find("t10k-labels-idx1-ubyte.gz: no such file"),
            std::string::npos);
  EXPECT_NE(data.error().context.find("install the Debian package dataset-fashion-mnist"),
            std::string::npos)
      << data.error().message();
}

TEST(LoadFashionMnist, LoadsADirectoryOfIdxFiles) {
  pt::testing::temp_dir dir;
  write_fake_fashion_mnist(dir.path(), 20, 10);
  auto const data = tr::load_fashion_mnist(dir.path());
  ASSERT_TRUE(data) << data.error().message();
  EXPECT_EQ(data->train.size(), 20u);
  EXPECT_EQ(data->test.size(), 10u);
  EXPECT_EQ(data->train.features, 784u);
  EXPECT_EQ(data->train.images.size(), 20u * 784u);
  EXPECT_EQ(data->test.labels[3], 3);
}

TEST(LoadFashionMnist, RejectsImagesThatAreNot28By28) {
  pt::testing::temp_dir dir;
  write_fake_fashion_mnist(dir.path(), 20, 10);
  write_gz(dir.path() / "train-images-idx3-ubyte.gz", image_file(20, 14, 14, ramp(20 * 196)));
  auto const data = tr::load_fashion_mnist(dir.path());
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().code, pt::errc::malformed_file);
  EXPECT_NE(data.error().context.find("expected 28x28"), std::string::npos)
      << data.error().message();
}

TEST(LoadFashionMnist, DefaultDirectoryFollowsTheEnvironment) {
  char const* const old = std::getenv("PROXYTASK_FASHION_MNIST_DIR");
  std::optional<std::string> const saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("PROXYTASK_FASHION_MNIST_DIR", "/somewhere/else", 1);
  EXPECT_EQ(tr::default_fashion_mnist_dir(), fs::path("/somewhere/else"));
  ::setenv("PROXYTASK_FASHION_MNIST_DIR", "", 1);
  EXPECT_EQ(tr::default_fashion_mnist_dir(), fs::path("/usr/share/datasets/fashion-mnist"));
  ::unsetenv("PROXYTASK_FASHION_MNIST_DIR");
  EXPECT_EQ(tr::default_fashion_mnist_dir(), fs::path("/usr/share/datasets/fashion-mnist"));
  if (saved) ::setenv("PROXYTASK_FASHION_MNIST_DIR", saved->c_str(), 1);
}

// --- the real files
// --------------------------------------------------------------------------------

TEST(FashionMnistFiles, HoldSixtyThousandPlusTenThousandBalancedImages) {
  REQUIRE_REAL_DATA();
  EXPECT_EQ(real->train.size(), 60000u);
  EXPECT_EQ(real->test.size(), 10000u);
  EXPECT_EQ(real->train.features, 784u);
  EXPECT_EQ(real->test.features, 784u);
  EXPECT_EQ(real->train.images.size(), 60000u * 784u);
  EXPECT_EQ(real->test.images.size(), 10000u * 784u);
  EXPECT_EQ(class_counts(real->train), all(6000));
  EXPECT_EQ(class_counts(real->test), all(1000));
}

TEST(FashionMnistFiles, PixelsSpanZeroToOneInSteps) {
  REQUIRE_REAL_DATA();
  for (auto const* set : {&real->train, &real->test}) {
    auto const [lo, hi] = std::minmax_element(set->images.begin(), set->images.end());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, 1.0f);
  }
  // Every pixel is a byte / 255.
  for (std::size_t i = 0; i < real->test.images.size(); i += 97) {
    float const byte = real->test.images[i] * 255.0f;
    EXPECT_NEAR(byte, std::round(byte), 1e-3) << i;
  }
}

TEST(FashionMnistFiles, FirstImagesMatchTheirKnownChecksums) {
  REQUIRE_REAL_DATA();
  // Computed once with Python's gzip module from the Debian package's files: the first training
  // image is an ankle boot (label 9) whose bytes sum to 76,247 (FNV-1a 143542503853003576); the
  // first test image is an ankle boot too, bytes summing to 33,456.
  auto const bytes = [](tr::image_set const& set, std::size_t i) {
    std::vector<std::uint8_t> out;
    for (std::size_t k = 0; k < set.features; ++k)
      out.push_back(static_cast<std::uint8_t>(std::lround(set.images[i * set.features + k] * 255)));
    return out;
  };
  auto const first = bytes(real->train, 0);
  std::uint64_t fnv = 0xcbf29ce484222325ULL;
  for (std::uint8_t const b : first) fnv = (fnv ^ b) * 0x100000001b3ULL;
  EXPECT_EQ(real->train.labels[0], 9);
  EXPECT_EQ(std::accumulate(first.begin(), first.end(), 0), 76247);
  EXPECT_EQ(fnv, 143542503853003576ULL);
  auto const test_first = bytes(real->test, 0);
  EXPECT_EQ(real->test.labels[0], 9);
  EXPECT_EQ(std::accumulate(test_first.begin(), test_first.end(), 0), 33456);
}

TEST(FashionMnistFiles, SplitIntoFiftyThousandAndABalancedTenThousand) {
  REQUIRE_REAL_DATA();
  auto const split = tr::split_validation(real->train);
  EXPECT_EQ(split.train.size(), 50000u);
  EXPECT_EQ(split.validation.size(), 10000u);
  EXPECT_EQ(split.train.images.size(), 50000u * 784u);
  EXPECT_EQ(class_counts(split.validation), all(1000));
  EXPECT_EQ(class_counts(split.train), all(5000));
  auto const again = tr::split_validation(real->train);
  EXPECT_EQ(again.validation.labels, split.validation.labels);
  EXPECT_TRUE(again.validation.images == split.validation.images);
  EXPECT_TRUE(again.train.images == split.train.images);
}

TEST(FashionMnistFiles, DownsampleTo14By14) {
  REQUIRE_REAL_DATA();
  auto const small = tr::downsample_2x(real->test);
  EXPECT_EQ(small.features, 196u);
  EXPECT_EQ(small.size(), 10000u);
  EXPECT_EQ(small.labels, real->test.labels);
  auto const& in = real->test.images;
  EXPECT_FLOAT_EQ(small.images[196 + 14 * 7 + 5],
                  (in[784 + 28 * 14 + 10] + in[784 + 28 * 14 + 11] + in[784 + 28 * 15 + 10] +
                   in[784 + 28 * 15 + 11]) /
                      4);
}

// --- split_validation
// ------------------------------------------------------------------------------

TEST(SplitValidation, IsDisjointCoversTheSetAndKeepsTheOrder) {
  auto const set = indexed_set(all(50));
  auto const split = tr::split_validation(set, 100);
  EXPECT_EQ(split.validation.size(), 100u);
  EXPECT_EQ(split.train.size(), 400u);
  EXPECT_EQ(class_counts(split.validation), all(10));
  EXPECT_EQ(class_counts(split.train), all(40));
  auto const v = ids(split.validation);
  auto const t = ids(split.train);
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  std::set<std::size_t> every(v.begin(), v.end());
  every.insert(t.begin(), t.end());
  EXPECT_EQ(every.size(), 500u);  // disjoint, and together every image
  for (std::size_t k = 0; k < v.size(); ++k)
    EXPECT_EQ(split.validation.labels[k], set.labels[v[k]]);
  // Not simply the first images of each class.
  EXPECT_GT(v.back(), 100u);
}

TEST(SplitValidation, IsTheSameOnEveryCall) {
  auto const set = indexed_set({30, 31, 32, 33, 34, 35, 36, 37, 38, 39});
  auto const a = tr::split_validation(set, 200);
  auto const b = tr::split_validation(set, 200);
  EXPECT_EQ(ids(a.validation), ids(b.validation));
  EXPECT_EQ(ids(a.train), ids(b.train));
  EXPECT_EQ(class_counts(a.validation), all(20));
}

TEST(SplitValidation, RejectsSizesItCannotBalance) {
  auto const set = indexed_set(all(5));
  EXPECT_THROW(tr::split_validation(set, 15), pt::logic_error);
  EXPECT_THROW(tr::split_validation(set, 60), pt::logic_error);
  EXPECT_NO_THROW(tr::split_validation(set, 50));
}

// --- subsample
// -------------------------------------------------------------------------------------

TEST(Subsample, TakesThePercentOfEachClassRounded) {
  auto const set = indexed_set({200, 10, 13, 15, 1, 40, 99, 100, 101, 7});
  auto const sub = tr::subsample(set, 10, 42);
  std::array<std::size_t, 10> const expected = {20, 1, 1, 2, 1, 4, 10, 10, 10, 1};
  EXPECT_EQ(class_counts(sub), expected);
  EXPECT_EQ(sub.features, 1u);
  EXPECT_EQ(sub.images.size(), sub.size());
  for (std::size_t k = 0; k < sub.size(); ++k) EXPECT_EQ(sub.labels[k], set.labels[ids(sub)[k]]);
  // A tiny percent still keeps one image of each class.
  EXPECT_EQ(class_counts(tr::subsample(set, 0.01, 42)), all(1));
}

TEST(Subsample, IsDeterministicForASeedAndDiffersBetweenSeeds) {
  auto const set = indexed_set(all(100));
  auto const a = ids(tr::subsample(set, 25, 7));
  EXPECT_EQ(ids(tr::subsample(set, 25, 7)), a);
  auto const b = ids(tr::subsample(set, 25, 8));
  EXPECT_NE(b, a);
  std::set<std::size_t> const sa(a.begin(), a.end()), sb(b.begin(), b.end());
  EXPECT_NE(sa, sb);  // other images, not only another order
}

TEST(Subsample, IsShuffledAcrossClasses) {
  auto const set = indexed_set(all(100));
  auto const sub = tr::subsample(set, 50, 3);
  auto const v = ids(sub);
  EXPECT_FALSE(std::is_sorted(v.begin(), v.end()));
  // Not grouped by class: the first 50 labels hold most classes.
  std::set<std::uint8_t> const first(sub.labels.begin(), sub.labels.begin() + 50);
  EXPECT_GE(first.size(), 8u);
}

TEST(Subsample, AtOneHundredPercentIsAPermutation) {
  auto const set = indexed_set({50, 51, 52, 53, 54, 55, 56, 57, 58, 59});
  auto const sub = tr::subsample(set, 100, 11);
  auto v = ids(sub);
  ASSERT_EQ(v.size(), set.size());
  std::vector<std::size_t> identity(set.size());
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(v, identity);
  std::sort(v.begin(), v.end());
  EXPECT_EQ(v, identity);
}

TEST(Subsample, SmallerPercentsTakeSubsetsOfLargerOnes) {
  auto const set = indexed_set(all(80));
  auto const small = ids(tr::subsample(set, 10, 5));
  auto const large = ids(tr::subsample(set, 40, 5));
  std::set<std::size_t> const l(large.begin(), large.end());
  for (std::size_t const i : small) EXPECT_TRUE(l.count(i)) << i;
}

TEST(Subsample, IsPinnedAcrossPlatforms) {
  // SplitMix64 and Fisher-Yates only: these ids are the same everywhere. Recorded once.
  auto const set = indexed_set(all(20));
  auto const v = ids(tr::subsample(set, 10, 2024));
  ASSERT_EQ(v.size(), 20u);
  std::vector<std::size_t> const first(v.begin(), v.begin() + 8);
  EXPECT_EQ(first, (std::vector<std::size_t>{178, 123, 164, 94, 190, 65, 171, 77}));
}

TEST(Subsample, RejectsPercentsOutsideZeroToOneHundred) {
  auto const set = indexed_set(all(10));
  EXPECT_THROW(tr::subsample(set, 0, 1), pt::logic_error);
  EXPECT_THROW(tr::subsample(set, -5, 1), pt::logic_error);
  EXPECT_THROW(tr::subsample(set, 100.5, 1), pt::logic_error);
  EXPECT_THROW(tr::subsample(set, std::nan(""), 1), pt::logic_error);
}

// --- downsample_2x
// ---------------------------------------------------------------------------------

TEST(Downsample2x, AveragesEachTwoByTwoBlock) {
  tr::image_set set;
  set.features = 16;
  set.labels = {3, 7};
  for (int n = 0; n < 2; ++n)
    for (int p = 0; p < 16; ++p) set.images.push_back(static_cast<float>(p + 100 * n) / 256.0f);
  auto const small = tr::downsample_2x(set);
  EXPECT_EQ(small.features, 4u);
  EXPECT_EQ(small.labels, set.labels);
  // 4x4 image of values 0..15 (row-major): blocks {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
  std::vector<float> const expected = {2.5f / 256,   4.5f / 256,   10.5f / 256,  12.5f / 256,
                                       102.5f / 256, 104.5f / 256, 110.5f / 256, 112.5f / 256};
  ASSERT_EQ(small.images.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_FLOAT_EQ(small.images[i], expected[i]) << i;
}

TEST(Downsample2x, RejectsImagesThatAreNotSquareWithAnEvenSide) {
  tr::image_set odd;
  odd.features = 9;
  odd.labels = {0};
  odd.images.assign(9, 0.5f);
  EXPECT_THROW(tr::downsample_2x(odd), pt::logic_error);
  tr::image_set oblong;
  oblong.features = 8;
  oblong.labels = {0};
  oblong.images.assign(8, 0.5f);
  EXPECT_THROW(tr::downsample_2x(oblong), pt::logic_error);
}
