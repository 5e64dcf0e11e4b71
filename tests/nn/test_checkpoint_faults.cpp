// Checkpoint saves under faults: the process SIGKILLed while a checkpoint is
// being written, and the disk filling up during a save (RLIMIT_FSIZE). Either
// way the previous checkpoint still loads, whole, and a failed save names the
// file. Each fault happens in a forked child, so the test process keeps its
// own limits and its life.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"

namespace qkv {
namespace {

// 1024 x 4096 weights: 16 MiB a save, so a save takes long enough to be hit.
constexpr int64_t kIn = 4096, kOut = 1024;

std::unique_ptr<Linear> make_model() {
  Generator g(1);
  return std::make_unique<Linear>(LinearOptions{kIn, kOut, /*bias=*/false}, g);
}

// Every weight set to `version`, recorded in the metadata too.
void save_version(Linear& m, int version, const std::string& path) {
  Tensor w = m.weight.value();
  std::fill(w.begin(), w.end(), float(version));
  save_checkpoint(path, m, nullptr, {{"version", std::to_string(version)}});
}

// Loads path and returns its version; fails the test unless every weight holds it.
int load_version(const std::string& path) {
  auto m = make_model();
  const auto meta = load_checkpoint(path, *m);
  const int version = std::stoi(meta.at("version"));
  const Tensor w = m->weight.value();
  CHECK(std::all_of(w.begin(), w.end(), [&](float v) { return v == float(version); }));
  return version;
}

// Files in dir whose names hold ".tmp.": what an interrupted save leaves.
std::vector<std::string> stray_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      out.push_back(e.path().string());
  }
  return out;
}

off_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST_SUITE("nn/checkpoint_faults") {
  TEST_CASE("a save killed by SIGKILL leaves the previous checkpoint loadable") {
    test::TempDir dir;
    const std::string path = dir / "model.safetensors";
    auto m = make_model();
    save_version(*m, 1, path);
    const off_t full = file_size(path);
    int killed_mid_write = 0;
    for (int round = 0; round < 10; ++round) {
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {  // saves new versions until killed
        for (int v = 2;; ++v) save_version(*m, v, path);
      }
      // Kill it as soon as a temporary file is part-written.
      const std::string tmp = path + ".tmp." + std::to_string(child);
      for (int spin = 0; spin < 2'000'000; ++spin) {
        const off_t n = file_size(tmp);
        if (n > 0 && n < full) break;
      }
      ::kill(child, SIGKILL);
      int status = 0;
      REQUIRE(::waitpid(child, &status, 0) == child);
      REQUIRE(WIFSIGNALED(status));
      const off_t left = file_size(tmp);
      killed_mid_write += left >= 0 && left < full;
      INFO("round ", round);
      CHECK(load_version(path) >= 1);  // whole, of one version, never torn
      std::filesystem::remove(tmp);
    }
    // The test means something only if some kill landed inside a write.
    INFO("kills that left a part-written temporary file: ", killed_mid_write, " of 10");
    CHECK(killed_mid_write >= 1);
  }

  TEST_CASE("a save that fills the disk (RLIMIT_FSIZE) fails naming the file, the old one intact") {
    test::TempDir dir;
    const std::string path = dir / "model.safetensors";
    auto m = make_model();
    save_version(*m, 1, path);
    int pipe_fd[2];
    REQUIRE(::pipe(pipe_fd) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(pipe_fd[0]);
      ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
      rlimit lim{};
      ::getrlimit(RLIMIT_FSIZE, &lim);
      lim.rlim_cur = 1 << 20;  // 1 MiB: the save needs 16
      ::setrlimit(RLIMIT_FSIZE, &lim);
      std::string msg = "no error";
      try {
        save_version(*m, 2, path);
      } catch (const Error& e) {
        msg = e.what();
      }
      const ssize_t w = ::write(pipe_fd[1], msg.data(), msg.size());
      ::_exit(w == ssize_t(msg.size()) ? 0 : 1);
    }
    ::close(pipe_fd[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = ::read(pipe_fd[0], buf, sizeof buf)) > 0;) msg.append(buf, size_t(n));
    ::close(pipe_fd[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    INFO("error: ", msg);
    CHECK(msg.find("cannot write '" + path + ".tmp.") != std::string::npos);  // names the file
    CHECK(msg.find("File too large") != std::string::npos);
    CHECK(load_version(path) == 1);
    CHECK(stray_files(dir.path).empty());  // the failed save cleaned up after itself
  }
}

}  // namespace
}  // namespace qkv
