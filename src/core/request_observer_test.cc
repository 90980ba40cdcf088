#include "core/request_observer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "core/inference_server.h"
#include "core/model_repository.h"
#include "core/testing/fake_backend.h"
#include "core/testing/memory_source.h"
#include "core/testing/wait.h"

namespace serving {
namespace {

// Writes down every notification it gets, as "Step:request id" (LeftQueue as "LeftQueue:count").
class Recorder final : public RequestObserver {
 public:
  class Version final : public VersionObserver {
   public:
    Version(Recorder* r, bool payload) : r_(r), payload_(payload) {}
    void Decoded(const InferRequest& q) override {
      EXPECT_GT(q.decode_time.count(), 0);
      r_->Note("Decoded", q.id);
    }
    void Queued(const InferRequest& q) override { r_->Note("Queued", q.id); }
    void LeftQueue(size_t count) override { r_->Note("LeftQueue", std::to_string(count)); }
    void Started(const InferRequest& q) override { r_->Note("Started", q.id); }
    void Executed(const ExecutionReport& e) override {
      EXPECT_LE(e.start, e.stacked);
      EXPECT_LE(e.stacked, e.executed);
      EXPECT_LE(e.executed, e.sliced);
      r_->Note("Executed", std::to_string(e.requests) + "/" + std::to_string(e.rows));
    }
    bool wants_payload() const override { return payload_; }
    void Payload(const InferRequest& q, const InferResponse* response) override {
      std::lock_guard<std::mutex> l(r_->mu);
      r_->payloads.push_back({q.inputs.empty() ? nullptr : q.inputs[0].data,
                              response && !response->outputs.empty()
                                  ? reinterpret_cast<const float*>(response->outputs[0].data)[1]
                                  : -1.0f});
    }
    void Succeeded(const InferRequest& q, const ExecutionReport& e, Clock::time_point now) override {
      EXPECT_GE(now, e.sliced);
      r_->Note("Succeeded", q.id + " in " + std::to_string(e.requests));
    }
    void Failed(const InferRequest& q, FailReason reason, Clock::time_point) override {
      r_->Note("Failed", q.id + " " + FailReasonName(reason));
    }
    void Encoded(Clock::duration) override { r_->Note("Encoded", ""); }

   private:
    Recorder* r_;
    bool payload_;
  };

  explicit Recorder(bool payload = false) : payload_(payload) {}
  std::shared_ptr<VersionObserver> ForVersion(const ModelSettings& model, int64_t version) override {
    auto v = std::make_shared<Version>(this, payload_);
    std::lock_guard<std::mutex> l(mu);
    versions[model.name + ":" + std::to_string(version)] = v.get();
    return v;
  }
  void Received(const InferRequest& q) override { Note("Received", q.id); }
  void Finished(const RequestOutcome& o, VersionObserver* own) override {
    {
      std::lock_guard<std::mutex> l(mu);
      EXPECT_EQ(own, o.model.empty() ? nullptr : versions[std::string(o.model) + ":" + std::to_string(o.version)]);
    }
    EXPECT_GE(o.finished, o.request.received);
    Note("Finished", o.request.id + " " + std::string(o.model) + " " + StatusCodeName(o.status.code()) +
                         (o.queued ? " queued" : ""));
  }
  void ControlStarted(std::string_view action, const std::string& model) override {
    Note("ControlStarted", std::string(action) + " " + model);
  }
  void ControlFinished(std::string_view action, const std::string& model, const Status& s) override {
    Note("ControlFinished", std::string(action) + " " + model + " " + StatusCodeName(s.code()));
  }

  void Note(const std::string& step, const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(step + ":" + what);
  }
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> l(mu);
    return std::exchange(events, {});
  }

  std::mutex mu;
  std::vector<std::string> events;
  std::map<std::string, VersionObserver*> versions;
  struct Seen {
    const std::byte* input;  // the first input's bytes, where the observer found them
    float output;            // the second output value (-1: no response)
  };
  std::vector<Seen> payloads;

 private:
  bool payload_;
};

class ObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backends_.Register("fake", std::make_unique<testing::FakeBackend>(&gate_));
    observers_.Add(&recorder_);
  }
  void Serve(const std::string& config = "", bool explicit_control = false) {
    server_.reset();
    {
      std::lock_guard<std::mutex> l(files_->mu);
      files_->models["m"].files["config.pbtxt"] = "backend: \"fake\"\n" + config;
      files_->models["m"].versions[1]["model.txt"] = "ok";
    }
    repo_ = std::make_unique<ModelRepository>(std::make_unique<testing::MemorySource>(files_),
                                              ModelRepository::Options{std::chrono::milliseconds(0)}, &backends_,
                                              nullptr, &observers_);
    repo_->Poll();
    server_ =
        std::make_unique<InferenceServer>(InferenceServer::Options{"", explicit_control}, repo_.get(), &observers_);
  }
  InferRequest Row(const std::string& id, const std::string& model = "m") {
    InferRequest r;
    r.id = id;
    r.model = model;
    r.inputs.push_back(Tensor::Borrowed("X", DataType::kFp32, {1, 2}, x_, sizeof(x_)));
    return r;
  }
  // Runs one request to its end; returns its status.
  Status Run(InferRequest request, const RequestDecoder& decoder = {}) {
    std::promise<Status> done;
    ResponseEncoder encoder{[](const InferResponse&) {},
                            [&](const StatusOr<InferResponse>& r) { done.set_value(r.status()); }};
    server_->Infer(std::move(request), decoder, std::move(encoder));
    Status s = done.get_future().get();
    EXPECT_TRUE(server_->WaitIdle(Clock::now() + std::chrono::seconds(10)));
    return s;
  }

  testing::Gate gate_;
  BackendRegistry backends_;
  std::shared_ptr<testing::MemorySource::Files> files_ = std::make_shared<testing::MemorySource::Files>();
  Recorder recorder_;
  RequestObservers observers_;
  std::unique_ptr<ModelRepository> repo_;
  std::unique_ptr<InferenceServer> server_;
  float x_[2] = {1.5f, -2.0f};
};

using Events = std::vector<std::string>;

// Counts the queue from Queued and LeftQueue, as inference_queue_depth does, and keeps the largest count.
class DepthCounter final : public RequestObserver {
 public:
  class Version final : public VersionObserver {
   public:
    explicit Version(DepthCounter* c) : c_(c) {}
    void Queued(const InferRequest&) override {
      const int now = ++c_->depth;
      int seen = c_->max.load();
      while (now > seen && !c_->max.compare_exchange_weak(seen, now)) {
      }
    }
    void LeftQueue(size_t count) override { c_->depth -= static_cast<int>(count); }

   private:
    DepthCounter* c_;
  };
  std::shared_ptr<VersionObserver> ForVersion(const ModelSettings&, int64_t) override {
    return std::make_shared<Version>(this);
  }
  std::atomic<int> depth{0};
  std::atomic<int> max{0};
};

TEST_F(ObserverTest, EveryStepOfASuccessfulRequestInOrder) {
  Serve();
  ASSERT_TRUE(Run(Row("a")).ok());
  // The first request of a version goes through a worker (the model is not timed yet): queued, then taken.
  EXPECT_EQ(recorder_.Take(), (Events{"Received:a", "Decoded:a", "Queued:a", "LeftQueue:1", "Started:a", "Executed:1/1",
                                      "Succeeded:a in 1", "Encoded:", "Finished:a m OK queued"}));
  // Once timed as cheap, a request finding the queue empty runs on the caller's thread: never queued. (The
  // budget is widened: under emulation or a sanitizer the fake model may take longer than the default.)
  auto version = repo_->Get("m", "");
  ASSERT_TRUE(version.ok());
  (*version)->scheduler().set_inline_budget(std::chrono::seconds(1));
  // The worker frees its instance just after the reply it sent: wait for that, or "b" finds it busy and queues.
  ASSERT_TRUE(testing::WaitUntil([&] { return (*version)->scheduler().busy_instances() == 0; }));
  ASSERT_TRUE(Run(Row("b")).ok());
  EXPECT_EQ(recorder_.Take(), (Events{"Received:b", "Decoded:b", "Started:b", "Executed:1/1", "Succeeded:b in 1",
                                      "Encoded:", "Finished:b m OK queued"}));
}

TEST_F(ObserverTest, AQueueDepthCountedFromTheNotificationsNeverPassesTheBound) {
  // The queue full most of the time, workers taking from it while callers add: a worker's LeftQueue must not
  // lag behind the next caller's Queued (it did: inference_queue_depth read 1025 of 1024 under overload).
  DepthCounter depth;
  observers_.Add(&depth);
  Serve(
      "max_batch_size: 1\ndynamic_batching { default_queue_policy { max_queue_size: 2 } }\n"
      "instance_group [ { count: 2 } ]\n");
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  callers.reserve(6);
  for (int t = 0; t < 6; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        ResponseEncoder encoder{[](const InferResponse&) {}, [&](const StatusOr<InferResponse>&) { ++answered; }};
        server_->Infer(Row(std::to_string(t * 1000 + i)), {}, std::move(encoder));
      }
    });
  for (auto& c : callers) c.join();
  ASSERT_TRUE(testing::WaitUntil([&] { return answered.load() == 2400; }));
  // A worker is still in the server after its last answer: the server goes only once it is idle.
  ASSERT_TRUE(server_->WaitIdle(Clock::now() + std::chrono::seconds(10)));
  EXPECT_LE(depth.max.load(), 2);
  EXPECT_EQ(depth.depth.load(), 0);
  (void)recorder_.Take();
}

TEST_F(ObserverTest, ABatchIsOneExecutionSharedByItsRequests) {
  Serve("max_batch_size: 8\ndynamic_batching { }\n");
  gate_.Close();
  std::vector<std::promise<Status>> promises(3);
  for (int i = 0; i < 3; ++i) {
    server_->Infer(Row(std::to_string(i)),
                   [&, i](const StatusOr<InferResponse>& r) { promises[i].set_value(r.status()); });
    if (i == 0) {
      ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));  // 0 holds the instance
    }
  }
  gate_.Open();
  for (auto& p : promises) EXPECT_TRUE(p.get_future().get().ok());
  ASSERT_TRUE(server_->WaitIdle(Clock::now() + std::chrono::seconds(10)));
  const Events events = recorder_.Take();
  EXPECT_EQ(std::count(events.begin(), events.end(), "Executed:1/1"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "Executed:2/2"), 1) << "1 and 2 were not one execution";
  EXPECT_EQ(std::count(events.begin(), events.end(), "Succeeded:1 in 2"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "Succeeded:2 in 2"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "Finished:2 m OK queued"), 1);
}

TEST_F(ObserverTest, ARefusedRequestIsReportedOnceWithWhatItReached) {
  Serve("max_batch_size: 8\ndynamic_batching { default_queue_policy { max_queue_size: 1 } }\n");
  EXPECT_EQ(Run(Row("nobody", "missing")).code(), StatusCode::kNotFound);
  EXPECT_EQ(recorder_.Take(), (Events{"Received:nobody", "Finished:nobody  NOT_FOUND"}));

  RequestDecoder bad{nullptr, [](const ModelView&, InferRequest&) { return InvalidArgument("bad rows"); }};
  EXPECT_EQ(Run(Row("bad"), bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(recorder_.Take(), (Events{"Received:bad", "Failed:bad OTHER", "Finished:bad m INVALID_ARGUMENT"}));

  gate_.Close();
  std::promise<Status> first, second;
  server_->Infer(Row("held"), [&](const StatusOr<InferResponse>& r) { first.set_value(r.status()); });
  ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; }));
  server_->Infer(Row("waits"), [&](const StatusOr<InferResponse>& r) { second.set_value(r.status()); });
  recorder_.Take();
  std::promise<Status> third;
  server_->Infer(Row("full"), [&](const StatusOr<InferResponse>& r) { third.set_value(r.status()); });
  EXPECT_EQ(third.get_future().get().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(recorder_.Take(), (Events{"Received:full", "Decoded:full", "Failed:full REJECTED",
                                      "Finished:full m RESOURCE_EXHAUSTED queued"}));
  gate_.Open();
  EXPECT_TRUE(first.get_future().get().ok());
  EXPECT_TRUE(second.get_future().get().ok());
  ASSERT_TRUE(server_->WaitIdle(Clock::now() + std::chrono::seconds(10)));
}

TEST_F(ObserverTest, PayloadsGoOnlyToObserversThatAskAndAreNotCopied) {
  Recorder wants_payload(/*payload=*/true);
  observers_.Add(&wants_payload);
  Serve();
  ASSERT_TRUE(Run(Row("a")).ok());
  ASSERT_TRUE(Run(Row("b")).ok());
  EXPECT_TRUE(recorder_.payloads.empty()) << "an observer that did not ask got the payload";
  ASSERT_EQ(wants_payload.payloads.size(), 2u);
  for (const auto& seen : wants_payload.payloads) {
    EXPECT_EQ(seen.input, reinterpret_cast<const std::byte*>(x_)) << "the input was copied for the observer";
    EXPECT_EQ(seen.output, -4.0f);  // the model's Y = 2 * X
  }
  // Both observers saw every step, in the order they were added.
  EXPECT_EQ(wants_payload.Take(), recorder_.Take());
}

TEST_F(ObserverTest, ModelControlIsReportedRefusedOrDone) {
  Serve();
  std::promise<Status> refused;
  server_->LoadModel("m", [&](const Status& s) { refused.set_value(s); });
  EXPECT_EQ(refused.get_future().get().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(recorder_.Take(), (Events{"ControlStarted:load m", "ControlFinished:load m FAILED_PRECONDITION"}));

  Serve("", /*explicit_control=*/true);
  recorder_.Take();
  std::promise<Status> done;
  server_->UnloadModel("m", [&](const Status& s) { done.set_value(s); });
  EXPECT_TRUE(done.get_future().get().ok());
  EXPECT_EQ(recorder_.Take(), (Events{"ControlStarted:unload m", "ControlFinished:unload m OK"}));
}

}  // namespace
}  // namespace serving
