// Runs a libFuzzer target's committed corpus as a regression test (ctest: fuzz_corpus_<target>): every file of
// the directories given is passed to LLVMFuzzerTestOneInput once, in a normal build (and under ASan/UBSan in
// `make sanitize`), without libFuzzer. A target aborts on a broken property, so a failing input fails the test.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Defined by the targets that count the inputs they took through whole (fuzz_support.h).
extern "C" size_t FuzzAcceptedInputs() __attribute__((weak));

int main(int argc, char** argv) {
  size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++inputs;
    }
  }
  std::printf("replayed %zu inputs\n", inputs);
  if (inputs == 0) return 1;  // an empty corpus proves nothing
  if (FuzzAcceptedInputs) {
    std::printf("%zu went through whole\n", FuzzAcceptedInputs());
    if (FuzzAcceptedInputs() == 0) return 1;  // seeds that only reach the first refusal leave the rest unfuzzed
  }
  return 0;
}
