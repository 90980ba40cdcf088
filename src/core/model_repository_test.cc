#include "core/model_repository.h"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "core/inference_server.h"
#include "core/testing/fake_backend.h"
#include "core/testing/memory_source.h"
#include "core/testing/wait.h"
#include "observability/metrics.h"
#include "observability/metrics_observer.h"

namespace serving {
namespace {

namespace fs = std::filesystem;

// The repository driven by an in-memory source: its version state machine, independent of any storage
// (the local directory's own behaviour is tested in sources/local_source_test.cc).
class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override { backends_.Register("fake", std::make_unique<testing::FakeBackend>(&gate_)); }

  testing::MemorySource::Model& ModelFiles(const std::string& model) { return files_->models[model]; }
  void WriteConfig(const std::string& model, const std::string& extra = "") {
    std::lock_guard<std::mutex> l(files_->mu);
    ModelFiles(model).files["config.pbtxt"] = "backend: \"fake\"\n" + extra;
  }
  void WriteVersion(const std::string& model, int v, const std::string& content = "ok") {
    std::lock_guard<std::mutex> l(files_->mu);
    ModelFiles(model).versions[v]["model.txt"] = content;
  }
  void RemoveModel(const std::string& model) {
    std::lock_guard<std::mutex> l(files_->mu);
    files_->models.erase(model);
  }
  void RemoveVersion(const std::string& model, int v) {
    std::lock_guard<std::mutex> l(files_->mu);
    ModelFiles(model).versions.erase(v);
  }
  std::unique_ptr<ModelRepository> Make(Metrics* metrics = nullptr, const RequestObservers* observers = nullptr) {
    return std::make_unique<ModelRepository>(std::make_unique<testing::MemorySource>(files_),
                                             ModelRepository::Options{std::chrono::milliseconds(0)}, &backends_,
                                             metrics, observers);
  }
  // A one-row request to model "m"; its input borrows x_, which lives as long as the test.
  InferRequest OneRow(const std::string& version = "") {
    InferRequest r;
    r.model = "m";
    r.version = version;
    r.inputs.push_back(Tensor::Borrowed("X", DataType::kFp32, {1, 2}, x_, sizeof(x_)));
    return r;
  }
  VersionState StateOf(ModelRepository& repo, const std::string& model, int64_t v) {
    for (const auto& m : repo.List())
      for (const auto& info : m.versions)
        if (m.name == model && info.version == v) return info.state;
    return VersionState::kUnavailable;
  }

  std::shared_ptr<testing::MemorySource::Files> files_ = std::make_shared<testing::MemorySource::Files>();
  float x_[2] = {1, 2};
  testing::Gate gate_;
  BackendRegistry backends_;
};

TEST_F(RepositoryTest, LoadsTheLatestVersionByDefault) {
  WriteConfig("m");
  WriteVersion("m", 1);
  WriteVersion("m", 3);
  auto repo = Make();
  repo->Poll();
  auto v = repo->Get("m", "");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ((*v)->version(), 3);
  EXPECT_EQ(repo->Get("m", "1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Get("m", "abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(repo->Get("nope", "").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(repo->AllReady());
}

TEST_F(RepositoryTest, AllAndSpecificPolicies) {
  WriteConfig("all", "version_policy { all {} }\n");
  WriteConfig("some", "version_policy { specific { versions: [1, 3] } }\n");
  for (int v : {1, 2, 3}) {
    WriteVersion("all", v);
    WriteVersion("some", v);
  }
  auto repo = Make();
  repo->Poll();
  for (const char* v : {"1", "2", "3"}) EXPECT_TRUE(repo->Get("all", v).ok()) << v;
  EXPECT_TRUE(repo->Get("some", "1").ok());
  EXPECT_FALSE(repo->Get("some", "2").ok());
  EXPECT_TRUE(repo->Get("some", "3").ok());
}

TEST_F(RepositoryTest, AFailedNewVersionLeavesThePreviousServing) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  WriteVersion("m", 2, "bad");
  repo->Poll();
  EXPECT_EQ(StateOf(*repo, "m", 2), VersionState::kFailed);
  auto v = repo->Get("m", "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->version(), 1);
  EXPECT_EQ(repo->Get("m", "2").status().code(), StatusCode::kUnavailable);
  // Fixed files are picked up on the next poll.
  WriteVersion("m", 2, "fixed");
  repo->Poll();
  EXPECT_EQ((*repo->Get("m", ""))->version(), 2);
  EXPECT_EQ(StateOf(*repo, "m", 1), VersionState::kUnavailable);
}

TEST_F(RepositoryTest, ABrokenConfigKeepsTheLoadedVersion) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  WriteConfig("m", "not { valid");
  repo->Poll();
  EXPECT_TRUE(repo->Get("m", "").ok());
  EXPECT_FALSE(repo->List()[0].error.empty());
}

TEST_F(RepositoryTest, AConfigThatCannotBeCheckedIsKeptAndSoAreTheVerdictsOnVersions) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  WriteVersion("m", 2, "bad");
  repo->Poll();
  ASSERT_EQ(StateOf(*repo, "m", 2), VersionState::kFailed);
  const int materialized = files_->materialized;
  // The store answers the listing and not the config's HEAD (a connection cut in between): not a rejected
  // config, and the failed version, unchanged, is not fetched again when the store is back.
  files_->files_unreachable = true;
  repo->Poll();
  EXPECT_TRUE(repo->List()[0].error.empty()) << repo->List()[0].error;
  EXPECT_EQ((*repo->Get("m", ""))->version(), 1);
  files_->files_unreachable = false;
  repo->Poll();
  EXPECT_EQ(files_->materialized, materialized);
  EXPECT_EQ(StateOf(*repo, "m", 2), VersionState::kFailed);
}

TEST_F(RepositoryTest, RemovedModelsDisappear) {
  WriteConfig("a");
  WriteVersion("a", 1);
  WriteConfig("b");
  WriteVersion("b", 1);
  auto repo = Make();
  repo->Poll();
  RemoveModel("b");
  repo->Poll();
  EXPECT_EQ(repo->Get("b", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->List().size(), 1u);
}

TEST_F(RepositoryTest, AFailedListingUnloadsNothing) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  ASSERT_TRUE(repo->Get("m", "").ok());
  // The listing fails (as it does when the process is out of descriptors or storage is unreachable):
  // nothing is known to be gone.
  files_->listing_fails = true;
  repo->Poll();
  EXPECT_TRUE(repo->Get("m", "").ok());
  EXPECT_TRUE(repo->AllReady());
}

TEST_F(RepositoryTest, PollsBackOffWhileTheListingFailsAndRecoverAtOnce) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo =
      std::make_unique<ModelRepository>(std::make_unique<testing::MemorySource>(files_),
                                        ModelRepository::Options{std::chrono::milliseconds(2000)}, &backends_, nullptr);
  repo->Poll();
  EXPECT_EQ(repo->NextPollDelay(), std::chrono::milliseconds(2000));
  files_->listing_fails = true;
  std::vector<int64_t> delays;
  for (int i = 0; i < 7; ++i) {
    repo->Poll();
    delays.push_back(repo->NextPollDelay().count());
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{4000, 8000, 16000, 32000, 60000, 60000, 60000}));
  EXPECT_TRUE(repo->Get("m", "").ok()) << "a version was unloaded while the store was unreachable";
  files_->listing_fails = false;
  repo->Poll();
  EXPECT_EQ(repo->NextPollDelay(), std::chrono::milliseconds(2000));
}

TEST_F(RepositoryTest, SkipsInvalidModelNames) {
  WriteConfig("good");
  WriteVersion("good", 1);
  WriteConfig("bad name");
  WriteVersion("bad name", 1);
  WriteConfig("..");
  auto repo = Make();
  repo->Poll();
  ASSERT_EQ(repo->List().size(), 1u);
  EXPECT_EQ(repo->List()[0].name, "good");
}

TEST_F(RepositoryTest, VersionsAreMaterialisedOnceAndReleasedWhenTheyLeave) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  repo->Poll();  // nothing changed: nothing materialised again
  EXPECT_EQ(files_->materialized, 1);
  WriteVersion("m", 2);
  repo->Poll();  // version 2 replaces 1 (latest policy)
  EXPECT_EQ(files_->materialized, 2);
  EXPECT_EQ(files_->released, (std::vector<std::pair<std::string, int64_t>>{{"m", 1}}));
  WriteVersion("m", 2, "changed");
  repo->Poll();  // reloaded in place: not released, the source replaces its copy
  EXPECT_EQ(files_->materialized, 3);
  EXPECT_EQ(files_->released.size(), 1u);
  EXPECT_TRUE(repo->Unload("m").ok());
  EXPECT_EQ(files_->released.back(), (std::pair<std::string, int64_t>{"m", 2}));
  EXPECT_EQ(repo->Load("absent").code(), StatusCode::kNotFound);
}

TEST_F(RepositoryTest, InFlightRequestsFinishOnTheVersionTheyStartedOn) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);

  gate_.Close();
  std::promise<StatusOr<InferResponse>> done;
  server.Infer(OneRow(), [&](StatusOr<InferResponse> result) { done.set_value(std::move(result)); });
  ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));

  // Version 2 replaces version 1 while the request is executing on version 1.
  WriteVersion("m", 2);
  repo->Poll();
  EXPECT_EQ((*repo->Get("m", ""))->version(), 2);
  gate_.Open();
  auto result = done.get_future().get();
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->version, 1);
  EXPECT_EQ(ElementAsDouble(result->outputs[0], 1), 4.0);
  EXPECT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(5)));
  repo->Poll();  // reaps version 1 now that nobody holds it
}

TEST_F(RepositoryTest, ARequestRunsOnTheVersionItsDecodeStepSaw) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  // While the request is being decoded against version 1, version 2 replaces it and version 1's files go.
  RequestDecoder decoder;
  int64_t decoded_against = 0;
  decoder.decode = [&](const ModelView& model, InferRequest&) {
    decoded_against = model.version;
    WriteVersion("m", 2);
    repo->Poll();
    RemoveVersion("m", 1);
    repo->Poll();
    return Status::Ok();
  };
  InferRequest request = OneRow();
  request.version.clear();
  std::promise<StatusOr<InferResponse>> done;
  server.Infer(std::move(request), decoder, [&](StatusOr<InferResponse> result) { done.set_value(std::move(result)); });
  auto result = done.get_future().get();
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(decoded_against, 1);
  EXPECT_EQ(result->version, 1);
  EXPECT_EQ(repo->Get("m", "1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(5)));
}

TEST_F(RepositoryTest, AFailedParseOrDecodeIsAnsweredWithItsStatus) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  bool decoded = false;
  RequestDecoder bad_parse{[](InferRequest&) { return InvalidArgument("bad body"); },
                           [&](const ModelView&, InferRequest&) {
                             decoded = true;
                             return Status::Ok();
                           }};
  Status status;
  server.Infer(OneRow(), bad_parse, [&](const StatusOr<InferResponse>& r) { status = r.status(); });
  EXPECT_EQ(status.message(), "bad body");
  EXPECT_FALSE(decoded) << "decode ran after parse failed";
  RequestDecoder bad_decode{nullptr, [](const ModelView&, InferRequest&) { return InvalidArgument("bad rows"); }};
  server.Infer(OneRow(), bad_decode, [&](const StatusOr<InferResponse>& r) { status = r.status(); });
  EXPECT_EQ(status.message(), "bad rows");
  EXPECT_EQ(server.inflight(), 0);
}

TEST_F(RepositoryTest, ARequestWhoseClientLeftWhileQueuedIsCancelledWithoutRunning) {
  WriteConfig("m");  // one instance
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  gate_.Close();
  std::promise<Status> first, second;
  server.Infer(OneRow(), [&](const StatusOr<InferResponse>& r) { first.set_value(r.status()); });
  ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));  // the first occupies the instance
  auto gone = std::make_shared<std::atomic<bool>>(false);
  InferRequest queued = OneRow();
  queued.cancelled = gone;
  server.Infer(std::move(queued), [&](const StatusOr<InferResponse>& r) { second.set_value(r.status()); });
  gone->store(true);  // the client leaves while its request waits
  gate_.Open();
  EXPECT_TRUE(first.get_future().get().ok());
  const Status s = second.get_future().get();
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  ASSERT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(5)));
}

TEST_F(RepositoryTest, AFullQueueIsResourceExhausted) {
  WriteConfig("m", "dynamic_batching { default_queue_policy { max_queue_size: 1 } }\n");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  gate_.Close();
  std::vector<Status> results(3);
  std::atomic<int> finished{0};
  for (int i = 0; i < 3; ++i) {
    server.Infer(OneRow(), [&, i](const StatusOr<InferResponse>& res) {
      results[i] = res.status();
      ++finished;
    });
    if (i == 0) {
      ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));  // first one executing, queue empty
    }
  }
  // One executing, one queued, the third rejected at once.
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(results[2].code(), StatusCode::kResourceExhausted);
  gate_.Open();
  ASSERT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(5)));
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
}

TEST_F(RepositoryTest, CloseWaitsForRequestsInFlightThenAdmitsNoMore) {
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  gate_.Close();
  std::promise<Status> first;
  server.Infer(OneRow(), [&](const StatusOr<InferResponse>& res) { first.set_value(res.status()); });
  ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));

  // Close() waits for the executing request; meanwhile new requests are still admitted and served.
  auto closed = std::async(std::launch::async, [&] { return server.Close(Clock::now() + std::chrono::seconds(10)); });
  EXPECT_EQ(closed.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  std::promise<Status> second;
  server.Infer(OneRow(), [&](const StatusOr<InferResponse>& res) { second.set_value(res.status()); });
  gate_.Open();
  EXPECT_TRUE(first.get_future().get().ok());
  EXPECT_TRUE(second.get_future().get().ok());
  ASSERT_TRUE(closed.get());

  // After Close() returned nothing starts: the answer is UNAVAILABLE, given at once.
  Status late;
  server.Infer(OneRow(), [&](const StatusOr<InferResponse>& res) { late = res.status(); });
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
  EXPECT_EQ(late.message(), "the server is shutting down");
  EXPECT_EQ(server.inflight(), 0);
}

// The output conversion histogram holds the frontend's encoding and nothing of its transport; every finished
// request is counted once under its protocol and code, whether its counter was cached or looked up.
TEST_F(RepositoryTest, TheOutputConversionTimesTheEncodingAloneAndEveryRequestIsCounted) {
  WriteConfig("m");
  WriteVersion("m", 1);
  Metrics metrics("test");
  MetricsObserver observer(metrics);
  RequestObservers observers;
  observers.Add(&observer);
  auto made = Make(&metrics, &observers);
  ModelRepository& repo = *made;
  repo.Poll();
  InferenceServer server({}, &repo, &observers);
  for (const char* protocol : {"grpc-v2", "grpc-v2", "elsewhere"}) {
    InferRequest request = OneRow();
    request.protocol = protocol;
    ResponseEncoder encoder;
    encoder.encode = [](const InferResponse&) { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
    encoder.send = [](const StatusOr<InferResponse>& result) {
      EXPECT_TRUE(result.ok()) << result.status().message();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    };
    server.Infer(std::move(request), RequestDecoder{}, std::move(encoder));
    ASSERT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(10)));
  }
  double encoding = -1;
  std::map<std::string, double> requests;  // protocol -> count
  for (const auto& family : metrics.registry()->Collect()) {
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : metric.label) labels[l.name] = l.value;
      if (family.name == "inference_conversion_duration_seconds" && labels["direction"] == "output")
        encoding = metric.histogram.sample_sum;
      if (family.name == "inference_requests_total" && labels["model"] == "m" && labels["code"] == "OK")
        requests[labels["protocol"]] += metric.counter.value;
    }
  }
  EXPECT_GE(encoding, 0.06);
  EXPECT_LT(encoding, 0.2) << "the histogram counted the transport's send";
  EXPECT_EQ(requests["grpc-v2"], 2);
  EXPECT_EQ(requests["elsewhere"], 1);
}

TEST_F(RepositoryTest, AnIdleServerHoldsNoVersion) {
  // Once WaitIdle() says no request is in flight, no worker may still hold a model version: the
  // repository may be destroyed next, and a worker dropping a version's last reference would destroy the
  // scheduler it runs on (a self-join: std::system_error, abort).
  WriteConfig("m");
  WriteVersion("m", 1);
  auto repo = Make();
  repo->Poll();
  InferenceServer server({}, repo.get(), nullptr);
  auto version = repo->Get("m", "");
  ASSERT_TRUE(version.ok());
  for (int i = 0; i < 300; ++i) {
    server.Infer(OneRow(), [](const StatusOr<InferResponse>&) {});
    ASSERT_TRUE(server.WaitIdle(Clock::now() + std::chrono::seconds(5)));
    ASSERT_EQ(version->use_count(), 2) << "iteration " << i << ": a worker still holds the version";
  }
}

}  // namespace
}  // namespace serving
