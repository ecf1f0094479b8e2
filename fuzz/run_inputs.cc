// A main for fuzz targets outside a libFuzzer build: runs LLVMFuzzerTestOneInput once on every
// file named on the command line, or in a folder named there, in name order. ctest runs each
// target this way over its seed corpus and its regressions (fuzz/CMakeLists.txt), under the
// sanitizers of the build, so that an input that once crashed stays fixed in every build.
//
//   qx_fuzz_codec fuzz/corpus/codec fuzz/regressions/codec
//
// A folder that does not exist is skipped (a target without regressions); no input at all is an
// error, so that a misnamed corpus cannot pass by running nothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

std::vector<std::filesystem::path> inputs(int argc, char** argv) {
  std::vector<std::filesystem::path> out;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(p)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      out.insert(out.end(), files.begin(), files.end());
    } else if (std::filesystem::is_regular_file(p)) {
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  const auto files = inputs(argc, argv);
  if (files.empty()) {
    std::fprintf(stderr, "run_inputs: no input files in the paths given\n");
    return 2;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    if (!in.eof() && in.fail()) {
      std::fprintf(stderr, "run_inputs: cannot read %s\n", f.c_str());
      return 2;
    }
    std::fprintf(stderr, "run_inputs: %s (%zu bytes)\n", f.c_str(), bytes.size());
    // A heap copy of exactly the input's size, so that ASan sees a read past its end.
    auto owned = std::make_unique<std::uint8_t[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), owned.get());
    LLVMFuzzerTestOneInput(owned.get(), bytes.size());
  }
  std::fprintf(stderr, "run_inputs: %zu inputs ran\n", files.size());
  return 0;
}
