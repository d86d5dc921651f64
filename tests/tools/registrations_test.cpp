// cmake/registrations.cmake collects `void register_NAME(config::Registry& registry)` and
// `void register_modules_NAME(nn::ModuleRegistry& modules)` definitions: a function that takes
// a registry but misses the pattern (a typo in the prefix or the parameter) stops the build
// instead of leaving its types silently out.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Collected {
  int status;
  std::string output;
};

// Runs the script on one source with `text`; returns its exit status, its output and, in
// `generated`, the file it wrote.
Collected collect(const std::string& text, const std::string& kind, std::string* generated = nullptr) {
  const fs::path dir =
      fs::path(::testing::TempDir()) /
      ("registrations_" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  fs::create_directories(dir);
  std::ofstream(dir / "type.cpp") << text;
  const fs::path out = dir / "registered.cpp";
  fs::remove(out);
  const std::string command = "cmake -DSOURCES=" + (dir / "type.cpp").string() +
                              " -DOUTPUT=" + out.string() + " -DKIND=" + kind +
                              " -P " BLOCKS_SOURCE_DIR "/cmake/registrations.cmake 2>&1";
  Collected run{0, ""};
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe)) run.output += buffer;
  run.status = pclose(pipe);
  // CMake wraps its messages: fold every run of white space into one space.
  std::string folded;
  for (char c : run.output)
    if (!std::isspace(static_cast<unsigned char>(c)))
      folded += c;
    else if (!folded.empty() && folded.back() != ' ')
      folded += ' ';
  run.output = folded;
  if (generated && fs::exists(out)) {
    std::ifstream in(out);
    generated->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return run;
}

TEST(Registrations, CollectsEveryRegistrationFunction) {
  std::string generated;
  const Collected run = collect(
      "void register_beta(config::Registry& registry) {}\n"
      "void register_alpha(config::Registry& registry) {}\n",
      "types", &generated);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(generated.find("  register_alpha(registry);\n  register_beta(registry);\n"),
            std::string::npos)
      << generated;
}

TEST(Registrations, AMisspeltPrefixStopsTheBuild) {
  const Collected run = collect("void regster_attention(config::Registry& registry) {}\n", "types");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("'void regster_attention(config::Registry& registry) {}' takes the "
                            "registry but is not a registration function: write it as 'void "
                            "register_NAME(config::Registry& registry)'"),
            std::string::npos)
      << run.output;
}

TEST(Registrations, AnotherParameterNameStopsTheBuild) {
  const Collected run = collect("void register_modules_mamba(nn::ModuleRegistry& m) {}\n", "modules");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("write it as 'void register_modules_NAME(nn::ModuleRegistry& "
                            "modules)'"),
            std::string::npos)
      << run.output;
}

TEST(Registrations, ADuplicateStopsTheBuild) {
  const Collected run = collect(
      "void register_moe(config::Registry& registry) {}\n"
      "void register_moe(config::Registry& registry) {}\n",
      "types");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("register_moe is defined twice"), std::string::npos) << run.output;
}

}  // namespace
