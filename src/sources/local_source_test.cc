#include "sources/local_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/model_config.h"

namespace serving {
namespace {

namespace fs = std::filesystem;

class LocalSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("local_source_" + std::to_string(getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::remove_all(Outside());
    fs::create_directories(root_);
  }
  void TearDown() override {
    fs::remove_all(root_);
    fs::remove_all(Outside());
  }
  fs::path Outside() const { return root_.string() + "_outside"; }
  void Write(const fs::path& relative, const std::string& content) {
    fs::create_directories((root_ / relative).parent_path());
    std::ofstream(root_ / relative) << content;
  }

  fs::path root_;
};

TEST_F(LocalSourceTest, ListsModelDirectoriesInsideTheRepositoryOnly) {
  Write("good/config.pbtxt", "");
  Write("a_file", "");
  fs::create_directories(Outside() / "1");
  fs::create_directory_symlink(Outside(), root_ / "escape");
  fs::create_directory_symlink(root_ / "good", root_ / "alias");  // a symlink inside is followed
  LocalDirectorySource source(root_);
  auto names = source.ListModels();
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"alias", "good"}));
  EXPECT_EQ(source.ListVersions("escape").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source.ListVersions("../" + Outside().filename().string()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source.ListVersions("absent").status().code(), StatusCode::kNotFound);
}

TEST_F(LocalSourceTest, AnUnreadableRepositoryIsAnErrorNotAnEmptyList) {
  LocalDirectorySource source(root_ / "absent");
  EXPECT_FALSE(source.ListModels().ok());
}

TEST_F(LocalSourceTest, AVersionFingerprintChangesWithAnyOfItsFiles) {
  Write("m/1/model.onnx", "a");
  Write("m/1/weights/external.bin", "w");
  Write("m/2/model.onnx", "b");
  Write("m/not_a_version/model.onnx", "x");
  Write("m/0/model.onnx", "x");
  LocalDirectorySource source(root_);
  auto first = source.ListVersions("m");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ(*source.ListVersions("m"), *first);  // stable while nothing changes
  Write("m/1/weights/external.bin", "ww");       // a data file beside the model file
  auto second = source.ListVersions("m");
  EXPECT_NE(second->at(1), first->at(1));
  EXPECT_EQ(second->at(2), first->at(2));
}

TEST_F(LocalSourceTest, AVersionWithAFileOutsideTheRepositoryIsNotListed) {
  Write("m/1/model.onnx", "a");
  fs::create_directories(Outside());
  std::ofstream(Outside() / "model.onnx") << "secret";
  fs::create_directories(root_ / "m" / "2");
  fs::create_symlink(Outside() / "model.onnx", root_ / "m" / "2" / "model.onnx");
  LocalDirectorySource source(root_);
  auto versions = source.ListVersions("m");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->count(1), 1u);
  EXPECT_EQ(versions->count(2), 0u);
  EXPECT_EQ(source.Materialize("m", 1).value(), root_ / "m" / "1");  // read in place
  EXPECT_FALSE(source.Materialize("m", 3).ok());
}

TEST_F(LocalSourceTest, ModelFilesAreReadWithinTheirLimit) {
  Write("m/config.pbtxt", "max_batch_size: 8\n");
  Write("m/labels.txt", "a\nb\n");
  LocalDirectorySource source(root_);
  EXPECT_EQ(source.ReadFile("m", "labels.txt", 100).value(), "a\nb\n");
  EXPECT_NE(source.FileFingerprint("m", "config.pbtxt").value(), "");
  EXPECT_EQ(source.FileFingerprint("m", "absent").value(), "");
  EXPECT_EQ(source.ReadFile("m", "absent", 100).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source.ReadFile("m", "../m/labels.txt", 100).status().code(), StatusCode::kNotFound);
  // A huge config is refused before it is read (sparse: costs no disk).
  fs::resize_file(root_ / "m" / "config.pbtxt", kMaxConfigBytes + 1);
  auto huge = source.ReadFile("m", "config.pbtxt", kMaxConfigBytes);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("larger than 16 MiB"), std::string::npos) << huge.status().message();
}

}  // namespace
}  // namespace serving
