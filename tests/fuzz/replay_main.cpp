// Runs the fuzz target over files without libFuzzer: `proxytask_fuzz_replay <file or dir>...`
// feeds every regular file (directories: every file in them, sorted) to LLVMFuzzerTestOneInput
// once. A broken invariant aborts (the target's check()), so the test fuzz.corpus_replay fails;
// the _sanitized build also fails on any ASan / UBSan report. Reading no file at all is an error
// too, so that a wrong corpus path cannot pass silently.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path const arg = argv[i];
    if (fs::is_directory(arg)) {
      for (auto const& entry : fs::directory_iterator(arg))
        if (entry.is_regular_file()) files.push_back(entry.path());
    } else if (fs::is_regular_file(arg)) {
      files.push_back(arg);
    } else {
      std::cerr << "no such file or directory: " << arg << "\n";
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "usage: " << argv[0] << " <corpus file or directory>... (found no file)\n";
    return 2;
  }
  for (fs::path const& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::string const bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.good() && !in.eof()) {
      std::cerr << "cannot read " << path << "\n";
      return 2;
    }
    // A copy of exactly the file's size, so that ASan catches a read past its end.
    std::vector<std::uint8_t> const data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::cout << "replayed " << files.size() << " inputs\n";
  return 0;
}
