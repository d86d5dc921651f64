// Tokenizer throughput against the Python references in the same run (benchmarks/
// tokenizer_peer.py: OpenAI's encoder.py algorithm with python3-regex, and Google's
// sentencepiece library through python3-sentencepiece) on the same 1.5 MB of English text
// (the fortunes package), with the same files: a byte-level BPE tokenizer.json with Llama 3's
// pre-tokenizer and a SentencePiece BPE tokenizer.model, both made by the peer. The ids must
// equal the peer's before any rate is printed.
//   ./build/benchmarks/tokenizer_bench [--threads T]
// Prints MB/s of each side (best of 3, each from a freshly loaded tokenizer: encoder.py's and
// blocks' caches of merged pieces start empty) and their ratios; with --threads T > 1 also
// blocks' rate encoding T slices of the text on T threads (a tokenizer is shared, as `blockc
// prepare` does).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/peer.h"
#include "framework/io/files.h"
#include "framework/text/tokenizer.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of 3 MB/s of `path`'s tokenizer on `text`, each run from a fresh load; false when the
// ids differ from `expected`.
bool measure(const std::string& path, const std::string& text, const std::string& expected,
             double* rate) {
  double best = 1e30;
  std::vector<int64_t> ids;
  for (int run = 0; run < 3; ++run) {
    const auto tokenizer = blocks::text::load_tokenizer(path);
    const auto start = std::chrono::steady_clock::now();
    ids = tokenizer->encode(text);
    best = std::min(best, seconds_since(start));
  }
  std::istringstream in(expected);
  std::vector<int64_t> want;
  for (int64_t id; in >> id;) want.push_back(id);
  if (ids != want) {
    size_t at = 0;
    while (at < std::min(ids.size(), want.size()) && ids[at] == want[at]) ++at;
    std::fprintf(stderr, "%s: %zu ids, the peer %zu; first difference at id %zu\n", path.c_str(),
                 ids.size(), want.size(), at);
    return false;
  }
  *rate = static_cast<double>(text.size()) / 1e6 / best;
  return true;
}

// blocks' rate on `threads` slices of `text` at once (cut at newlines), one shared tokenizer.
double threaded(const std::string& path, const std::string& text, int threads) {
  const auto tokenizer = blocks::text::load_tokenizer(path);
  std::vector<std::string> slices;
  size_t begin = 0;
  for (int t = 0; t < threads; ++t) {
    size_t end = t + 1 == threads ? text.size() : text.find('\n', text.size() * (t + 1) / threads);
    if (end == std::string::npos) end = text.size();
    slices.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (const auto& slice : slices) workers.emplace_back([&] { tokenizer->encode(slice); });
  for (auto& w : workers) w.join();
  return static_cast<double>(text.size()) / 1e6 / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("blocks-tokenizer-bench-" + std::to_string(::getpid()));
  const std::string line = bench::run_peer(
      "/usr/bin/python3 " BLOCKS_SOURCE_DIR "/benchmarks/tokenizer_peer.py " + dir.string());
  if (line.empty()) {
    std::fprintf(stderr,
                 "tokenizer_peer.py failed (python3-regex, python3-sentencepiece and "
                 "the fortunes package are needed)\n");
    return 1;
  }
  const auto peer = nlohmann::json::parse(line);
  const std::string text = blocks::io::read_file((dir / "corpus.txt").string());
  double bpe = 0, sp = 0;
  const bool same = measure((dir / "bpe").string(), text,
                            blocks::io::read_file((dir / "bpe" / "ids.txt").string()), &bpe) &&
                    measure((dir / "sp").string(), text,
                            blocks::io::read_file((dir / "sp" / "ids.txt").string()), &sp);
  if (!same) return 1;
  std::printf("text: %.2f MB (fortunes), ids equal to the peers'\n", text.size() / 1e6);
  std::printf(
      "byte-level BPE (Llama 3 pre-tokenizer): blocks %.2f MB/s, encoder.py %.2f MB/s, "
      "ratio %.2f\n",
      bpe, peer["bpe_mb_s"].get<double>(), bpe / peer["bpe_mb_s"].get<double>());
  std::printf("SentencePiece BPE: blocks %.2f MB/s, sentencepiece %.2f MB/s, ratio %.2f\n", sp,
              peer["sp_mb_s"].get<double>(), sp / peer["sp_mb_s"].get<double>());
  if (threads > 1)
    std::printf("on %d threads: byte-level BPE %.2f MB/s, SentencePiece %.2f MB/s\n", threads,
                threaded((dir / "bpe").string(), text, threads),
                threaded((dir / "sp").string(), text, threads));
  std::filesystem::remove_all(dir);
  return 0;
}
