#pragma once
/// @file
/// Reading gzip-compressed IDX files (the MNIST / Fashion-MNIST format of LeCun et al.): a
/// big-endian header of a magic number (0x00000801 = 2049 for a vector of unsigned bytes, the
/// labels; 0x00000803 = 2051 for a 3-d array of unsigned bytes, the images) and the dimensions,
/// then the bytes.

#include <proxytask/core/error.hpp>

#include <zlib.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::trainer::detail {

/// The magic numbers of the two kinds of IDX file.
inline constexpr std::uint32_t idx_labels_magic = 2049;  // 0x00000801: ubyte, 1 dimension
inline constexpr std::uint32_t idx_images_magic = 2051;  // 0x00000803: ubyte, 3 dimensions

/// The unsigned 32-bit big-endian integer at `p`.
inline std::uint32_t read_be32(char const* p) noexcept {
  auto const b = [p](int i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

/// The whole decompressed contents of a gzip file (a file that is not gzip-compressed is read
/// as it is, as zlib's gzread does).
/// @returns the bytes; errc::not_found when the file does not exist; the errno code when it
///          cannot be opened; errc::malformed_file when the compressed data is truncated or
///          corrupt. Each message names the file.
inline result<std::string> read_gzip_file(std::filesystem::path const& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return make_error(errc::not_found, path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    return make_error(std::make_error_code(std::errc::is_a_directory),
                      path.string() + ": cannot read: is a directory");
  errno = 0;
  gzFile const file = ::gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    int const err = errno != 0 ? errno : ENOMEM;
    return make_error(std::error_code(err, std::generic_category()),
                      path.string() + ": cannot open: " + std::strerror(err));
  }
  struct closer {
    gzFile f;
    ~closer() { ::gzclose(f); }
  } const guard{file};
  ::gzbuffer(file, 1u << 17);

  std::string contents;
  std::vector<char> buffer(1u << 20);
  for (;;) {
    int const n = ::gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n == 0) break;
    if (n < 0) {
      int code = Z_OK;
      char const* const what = ::gzerror(file, &code);
      if (code == Z_ERRNO) {
        int const err = errno != 0 ? errno : EIO;
        return make_error(std::error_code(err, std::generic_category()),
                          path.string() + ": cannot read: " + std::strerror(err));
      }
      return make_error(errc::malformed_file, path.string() + ": bad gzip data after " +
                                                  std::to_string(contents.size()) +
                                                  " bytes: " + (what ? what : "zlib error"));
    }
    contents.append(buffer.data(), static_cast<std::size_t>(n));
  }
  // gzread ends a truncated stream like a complete one (it allows reading a file still being
  // written); only gzerror's Z_BUF_ERROR tells them apart.
  int code = Z_OK;
  char const* const what = ::gzerror(file, &code);
  if (code != Z_OK)
    return make_error(
        errc::malformed_file,
        path.string() +
            (code == Z_BUF_ERROR ? ": truncated gzip data after " : ": bad gzip data after ") +
            std::to_string(contents.size()) + " bytes: " + (what ? what : "zlib error"));
  return contents;
}

/// "a label file" / "an image file" / "not an IDX file", for a magic number.
inline std::string idx_kind(std::uint32_t magic) {
  if (magic == idx_labels_magic) return "a label file (magic 2049)";
  if (magic == idx_images_magic) return "an image file (magic 2051)";
  return "magic number " + std::to_string(magic) + ", not an IDX ubyte file";
}

/// The labels of an IDX label file's decompressed bytes.
/// @param[in] bytes  the file's contents
/// @param[in] source the file's name, for messages
/// @returns the labels, or errc::malformed_file naming the source and what is wrong (short
///          header, wrong magic number, fewer or more bytes than the header's count)
inline result<std::vector<std::uint8_t>> parse_idx_labels(std::string_view bytes,
                                                          std::string const& source) {
  constexpr std::size_t header = 8;
  if (bytes.size() < header)
    return make_error(errc::malformed_file, source + ": truncated IDX header (" +
                                                std::to_string(bytes.size()) +
                                                " bytes, a label file's is 8)");
  std::uint32_t const magic = read_be32(bytes.data());
  if (magic != idx_labels_magic)
    return make_error(
        errc::malformed_file,
        source + ": bad IDX magic number: expected 2049 (a label file), found " + idx_kind(magic));
  std::size_t const count = read_be32(bytes.data() + 4);
  std::size_t const payload = bytes.size() - header;
  if (payload < count)
    return make_error(errc::malformed_file, source + ": truncated: the header says " +
                                                std::to_string(count) + " labels, the file has " +
                                                std::to_string(payload));
  if (payload > count)
    return make_error(errc::malformed_file, source + ": " + std::to_string(payload - count) +
                                                " bytes after the " + std::to_string(count) +
                                                " labels the header announces");
  auto const* const first = reinterpret_cast<std::uint8_t const*>(bytes.data() + header);
  return std::vector<std::uint8_t>(first, first + count);
}

/// A decoded IDX image file: `count` images of rows x cols bytes, row-major, one after another.
struct idx_images {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> pixels;  ///< count * rows * cols bytes
};

/// The images of an IDX image file's decompressed bytes.
/// @param[in] bytes  the file's contents
/// @param[in] source the file's name, for messages
/// @returns the images, or errc::malformed_file naming the source and what is wrong (short
///          header, wrong magic number, a zero dimension, fewer or more bytes than the header's
///          dimensions give)
inline result<idx_images> parse_idx_images(std::string_view bytes, std::string const& source) {
  constexpr std::size_t header = 16;
  if (bytes.size() < header)
    return make_error(errc::malformed_file, source + ": truncated IDX header (" +
                                                std::to_string(bytes.size()) +
                                                " bytes, an image file's is 16)");
  std::uint32_t const magic = read_be32(bytes.data());
  if (magic != idx_images_magic)
    return make_error(
        errc::malformed_file,
        source + ": bad IDX magic number: expected 2051 (an image file), found " + idx_kind(magic));
  idx_images out;
  out.count = read_be32(bytes.data() + 4);
  out.rows = read_be32(bytes.data() + 8);
  out.cols = read_be32(bytes.data() + 12);
  std::string const shape = std::to_string(out.count) + " images of " + std::to_string(out.rows) +
                            "x" + std::to_string(out.cols);
  if (out.rows == 0 || out.cols == 0)
    return make_error(errc::malformed_file, source + ": bad IDX dimensions: " + shape);
  std::size_t const payload = bytes.size() - header;
  std::size_t const per_image = out.rows * out.cols;  // both < 2^32: no overflow in 64 bits
  if (out.count > std::numeric_limits<std::size_t>::max() / per_image ||
      payload < out.count * per_image)
    return make_error(errc::malformed_file,
                      source + ": truncated: the header says " + shape + ", the file has " +
                          std::to_string(payload) + " bytes of pixels (" +
                          std::to_string(payload / per_image) + " whole images)");
  std::size_t const expected = out.count * per_image;
  if (payload > expected)
    return make_error(errc::malformed_file, source + ": " + std::to_string(payload - expected) +
                                                " bytes after the " + shape +
                                                " the header announces");
  auto const* const first = reinterpret_cast<std::uint8_t const*>(bytes.data() + header);
  out.pixels.assign(first, first + expected);
  return out;
}

}  // namespace proxytask::trainer::detail
