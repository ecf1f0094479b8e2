// Fails if core/ uses what the determinism contract forbids (DESIGN.md section 6): clocks,
// randomness, threads, I/O streams, floating point, unordered containers, std::hash, or any
// third-party header (any <a/b> include). It reads every non-test source file of core/ and checks
// each line, ignoring comments and string literals.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// Strips // and /* */ comments and the contents of string and character literals.
std::string code_only(const std::string& text) {
  std::string out;
  enum { kCode, kLine, kBlock, kString, kChar } st = kCode;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    char n = i + 1 < text.size() ? text[i + 1] : '\0';
    switch (st) {
      case kCode:
        if (c == '/' && n == '/') {
          st = kLine;
          ++i;
          continue;
        }
        if (c == '/' && n == '*') {
          st = kBlock;
          ++i;
          continue;
        }
        if (c == '"') {
          st = kString;
          out += c;
          continue;
        }
        if (c == '\'' && !(i > 0 && std::isxdigit(static_cast<unsigned char>(text[i - 1])))) {
          st = kChar;
          out += c;
          continue;
        }
        out += c;
        break;
      case kLine:
        if (c == '\n') {
          st = kCode;
          out += c;
        }
        break;
      case kBlock:
        if (c == '*' && n == '/') {
          st = kCode;
          ++i;
        }
        if (c == '\n') out += c;
        break;
      case kString:
        if (c == '\\') {
          ++i;
          continue;
        }
        if (c == '"') {
          st = kCode;
          out += c;
        }
        break;
      case kChar:
        if (c == '\\') {
          ++i;
          continue;
        }
        if (c == '\'') {
          st = kCode;
          out += c;
        }
        break;
    }
  }
  return out;
}

bool is_ident(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// True when `word` occurs in `line` as a whole identifier (or identifier prefix ending in ':').
bool has_word(const std::string& line, const std::string& word) {
  for (std::size_t at = line.find(word); at != std::string::npos; at = line.find(word, at + 1)) {
    bool left_ok = at == 0 || !is_ident(line[at - 1]);
    std::size_t end = at + word.size();
    bool right_ok = end >= line.size() || !is_ident(line[end]) || word.back() == '_';
    if (left_ok && right_ok) return true;
  }
  return false;
}

// The header named by an #include line ("<chrono>" or "\"core/x.h\""), or "" if not one.
std::string included(const std::string& line) {
  std::size_t i = line.find_first_not_of(" \t");
  if (i == std::string::npos || line[i] != '#') return "";
  i = line.find_first_not_of(" \t", i + 1);
  if (i == std::string::npos || line.compare(i, 7, "include") != 0) return "";
  i = line.find_first_of("<\"", i + 7);
  if (i == std::string::npos) return "";
  std::size_t j = line.find_first_of(">\"", i + 1);
  return j == std::string::npos ? "" : line.substr(i, j - i + 1);
}

std::vector<std::string> violations(const std::string& name, const std::string& text) {
  static const std::vector<std::pair<const char*, std::vector<std::string>>> banned_headers = {
      {"clock", {"<chrono>", "<ctime>", "<time.h>", "<sys/time.h>"}},
      {"randomness", {"<random>"}},
      {"threads",
       {"<thread>", "<mutex>", "<atomic>", "<future>", "<condition_variable>", "<shared_mutex>",
        "<semaphore>", "<barrier>", "<latch>", "<stop_token>"}},
      {"I/O streams", {"<iostream>", "<fstream>", "<sstream>", "<istream>", "<ostream>"}},
      {"unordered container", {"<unordered_map>", "<unordered_set>"}},
  };
  static const std::vector<std::pair<const char*, std::vector<std::string>>> banned_words = {
      {"floating point", {"float", "double"}},
      {"randomness", {"rand", "srand", "random_device"}},
      {"unordered container", {"unordered_map", "unordered_set", "unordered_multimap"}},
      {"std::hash", {"hash"}},
  };
  std::vector<std::string> out;
  std::istringstream raw_lines(text);
  std::istringstream code_lines(code_only(text));
  std::string raw, code;
  for (int no = 1; std::getline(raw_lines, raw) && std::getline(code_lines, code); ++no) {
    auto report = [&](const char* what) {
      out.push_back(name + ":" + std::to_string(no) + ": " + what + ": " + raw);
    };
    std::string inc = included(code.empty() ? "" : raw);
    if (!inc.empty()) {
      if (inc[0] == '"' && inc.compare(0, 6, "\"core/") != 0) report("include outside core");
      if (inc[0] == '<' && inc.find('/') != std::string::npos) report("third-party header");
      for (const auto& [what, headers] : banned_headers) {
        for (const std::string& h : headers) {
          if (inc == h) report(what);
        }
      }
      continue;
    }
    for (const auto& [what, words] : banned_words) {
      for (const std::string& w : words) {
        bool hit = w == "hash" ? code.find("std::hash") != std::string::npos : has_word(code, w);
        if (hit) report(what);
      }
    }
  }
  return out;
}

TEST(CorePurity, CheckerCatchesEachForbiddenThing) {
  for (const char* bad : {"#include <chrono>", "double x = 1;", "std::unordered_map<int, int> m;",
                          "#include <thread>", "#include <iostream>", "#include <random>",
                          "#include <boost/asio.hpp>", "std::size_t h = std::hash<int>{}(1);",
                          "#include \"replay/codec.h\""}) {
    EXPECT_FALSE(violations("probe.cc", bad).empty()) << bad;
  }
  EXPECT_TRUE(violations("probe.cc", "// a double in a comment\nint x = 1;").empty());
  EXPECT_TRUE(violations("probe.cc", "const char* s = \"float\";").empty());
}

TEST(CorePurity, CoreSourcesUseNothingForbidden) {
  fs::path core = fs::path(QX_SOURCE_DIR) / "core";
  std::size_t files = 0;
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(core)) {
    std::string name = entry.path().filename().string();
    bool source = name.ends_with(".h") || name.ends_with(".cc");
    bool test_only = name.ends_with("_test.cc") || name == "test_support.h";
    if (!source || test_only) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto v = violations(name, text.str());
    found.insert(found.end(), v.begin(), v.end());
    files += 1;
  }
  EXPECT_GE(files, 10u);  // the engine's sources were really read
  for (const std::string& v : found) ADD_FAILURE() << v;
}

}  // namespace
