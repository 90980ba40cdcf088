#include "sources/download_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace serving {
namespace {

namespace fs = std::filesystem;

void Touch(const fs::path& path, const std::string& content = "") { std::ofstream(path) << content; }

class DownloadDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = fs::temp_directory_path() / ("download-dir-test-" + std::to_string(getpid()));
    fs::remove_all(cache_);
  }
  void TearDown() override { fs::remove_all(cache_); }
  fs::path cache_;
};

TEST_F(DownloadDirTest, EachOpenHasItsOwnDirectoryRemovedWhenItCloses) {
  auto a = DownloadDir::Open(cache_, "s3-");
  auto b = DownloadDir::Open(cache_, "s3-");
  ASSERT_TRUE(a.ok() && b.ok());
  const fs::path pa = (*a)->path(), pb = (*b)->path();
  EXPECT_NE(pa, pb);
  EXPECT_EQ(pa.parent_path(), cache_);
  std::ofstream(pa / "model.onnx") << "x";
  a->reset();
  EXPECT_FALSE(fs::exists(pa));
  EXPECT_TRUE(fs::exists(pb));  // another live one is left alone
}

TEST_F(DownloadDirTest, ADirectoryNoProcessHoldsIsRemovedAtTheNextOpen) {
  // What a server killed before it cleaned up leaves: its directory and lock file, the lock released by its death.
  const fs::path dead = cache_ / "s3-dead01";
  fs::create_directories(dead / "m" / "1");
  Touch(dead / ".lock");
  Touch(dead / "m" / "1" / "model.onnx", "stale");
  // Not ours (another prefix) and one being made (no lock file yet): left alone.
  fs::create_directories(cache_ / "other-dir");
  Touch(cache_ / "other-dir" / ".lock");
  fs::create_directories(cache_ / "s3-making");
  auto live = DownloadDir::Open(cache_, "s3-");
  ASSERT_TRUE(live.ok());
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(cache_ / "other-dir"));
  EXPECT_TRUE(fs::exists(cache_ / "s3-making"));
  EXPECT_TRUE(fs::exists((*live)->path()));
}

TEST_F(DownloadDirTest, ACacheDirectoryThatCannotBeMadeIsAnError) {
  std::ofstream(fs::temp_directory_path() / ("download-dir-file-" + std::to_string(getpid()))) << "x";
  auto d =
      DownloadDir::Open(fs::temp_directory_path() / ("download-dir-file-" + std::to_string(getpid())) / "sub", "s3-");
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("cannot create"), std::string::npos) << d.status().message();
  fs::remove(fs::temp_directory_path() / ("download-dir-file-" + std::to_string(getpid())));
}

}  // namespace
}  // namespace serving
