// HttpServer on a loopback port with a plain socket client: pipelining, replies from other threads, a
// client that leaves before its reply, and the flush barrier of Stop().
#include "frontends/http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

namespace serving::frontends {
namespace {

using namespace std::chrono_literals;

class Client {
 public:
  explicit Client(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Client() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  void Send(const std::string& bytes) { ASSERT_EQ(write(fd_, bytes.data(), bytes.size()), ssize_t(bytes.size())); }
  // Everything the server sends until it closes the connection (or 10 s pass).
  std::string ReadAll() {
    std::string out;
    char buf[1 << 16];
    for (ssize_t n; (n = read(fd_, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_;
};

std::string Get(const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
}

class HttpServerTest : public ::testing::Test {
 protected:
  int Start(const auth::Authorizer* authorizer = nullptr) {
    HttpServer::Options options;
    options.authorizer = authorizer;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    auto port = server_.Start(options);
    EXPECT_TRUE(port.ok()) << port.status().message();
    return port.ok() ? *port : 0;
  }
  HttpServer server_;
};

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  server_.Route({"GET", "/a", auth::Category::kMetadata},
                [](const HttpRequest&, const std::shared_ptr<HttpReply>& r) { r->Send(200, "first"); });
  // The second answers at once; the first answers later from another thread: order must still hold.
  server_.Route({"GET", "/slow", auth::Category::kMetadata},
                [](const HttpRequest&, const std::shared_ptr<HttpReply>& r) {
                  std::thread([r] {
                    std::this_thread::sleep_for(50ms);
                    r->Send(200, "slow");
                  }).detach();
                });
  Client c(Start());
  c.Send(Get("/slow") + Get("/a") + Get("/a", /*close=*/true));
  const std::string got = c.ReadAll();
  const size_t slow = got.find("slow"), first = got.find("first"), second = got.rfind("first");
  ASSERT_NE(slow, std::string::npos) << got;
  ASSERT_NE(first, std::string::npos) << got;
  EXPECT_LT(slow, first);
  EXPECT_LT(first, second);
}

TEST_F(HttpServerTest, AClientGoneBeforeItsReplyIsSeenAndItsLateReplyDropped) {
  std::promise<std::shared_ptr<HttpReply>> held;
  std::shared_ptr<const std::atomic<bool>> cancelled;
  server_.Route({"GET", "/hold", auth::Category::kMetadata}, [&](const HttpRequest& req, std::shared_ptr<HttpReply> r) {
    cancelled = req.cancelled;
    held.set_value(std::move(r));
  });
  server_.Route(
      {"GET", "/next", auth::Category::kMetadata},
      [](const HttpRequest&, const std::shared_ptr<HttpReply>& r) { r->Send(200, "the next client's reply"); });
  const int port = Start();
  Client c(port);
  c.Send(Get("/hold"));
  auto reply = held.get_future().get();
  ASSERT_TRUE(cancelled);
  EXPECT_FALSE(cancelled->load());
  c.Close();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!cancelled->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(cancelled->load()) << "the connection's close did not reach the request";
  reply->Send(200, "nobody reads this");  // dropped: no crash, and it reaches no other connection
  reply.reset();
  Client next(port);  // the same (single) loop serves the next client, with its own reply only
  next.Send(Get("/next", true));
  const std::string got = next.ReadAll();
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_NE(got.find("the next client's reply"), std::string::npos) << got;
  EXPECT_EQ(got.find("nobody reads this"), std::string::npos) << got;
}

TEST_F(HttpServerTest, StopWritesTheRepliesHandedOverBeforeIt) {
  // A large reply handed to the loop just before Stop() must reach the client whole: Stop() waits on a
  // barrier in each loop instead of hoping a pause was long enough.
  const std::string big(8 << 20, 'x');
  std::promise<void> replied;
  server_.Route({"GET", "/big", auth::Category::kMetadata},
                [&](const HttpRequest&, const std::shared_ptr<HttpReply>& r) {
                  std::thread([&, r] {
                    r->Send(200, big);
                    replied.set_value();
                  }).detach();
                });
  Client c(Start());
  c.Send(Get("/big", /*close=*/true));
  replied.get_future().wait();
  auto read = std::async(std::launch::async, [&] { return c.ReadAll(); });  // a client reading at its pace
  server_.Stop();
  const std::string got = read.get();
  ASSERT_GE(got.size(), big.size());
  EXPECT_EQ(got.substr(got.size() - big.size()), big);
}

// The route table: a literal segment outranks a parameter, parameters reach the handler, a path matched by
// other methods is 405 with Allow, an unknown one 404, each in the error format of its prefix.
TEST_F(HttpServerTest, TheRouterPicksTheMostSpecificRouteAndNamesItsParameters) {
  auto echo = [](const char* what) {
    return [what](const HttpRequest& req, const std::shared_ptr<HttpReply>& r) {
      r->Send(200, std::string(what) + ":" + req.Param("model") + ":" + req.Param("version"));
    };
  };
  server_.Route({"GET", "/v2/models/{model}", auth::Category::kMetadata}, echo("model"));
  server_.Route({"GET", "/v2/models/stats", auth::Category::kStatistics}, echo("stats"));
  server_.Route({"GET", "/v2/models/{model}/versions/{version}", auth::Category::kMetadata}, echo("version"));
  server_.Route({"POST", "/v2/models/{model}/infer", auth::Category::kInference}, echo("infer"));
  server_.ErrorFormat("/v2", [](const Status& s) { return "v2 error: " + s.message(); });
  Client c(Start());
  c.Send(Get("/v2/models/stats") + Get("/v2/models/digits") + Get("/v2//models/digits/versions/3/") +
         Get("/v2/models/digits/infer") + Get("/v2/nothing") + Get("/v1/nothing", /*close=*/true));
  const std::string got = c.ReadAll();
  for (const char* part : {"stats::", "model:digits:", "version:digits:3", "405 Method Not Allowed", "Allow: POST",
                           "v2 error: GET '/v2/models/digits/infer': method not allowed, use POST",
                           "v2 error: no route for GET '/v2/nothing'", "404 Not Found",
                           R"({"code":5,"message":"no route for GET '/v1/nothing'","details":[]})"})
    EXPECT_NE(got.find(part), std::string::npos) << part << " not in\n" << got;
  const std::vector<HttpRoute> routes = server_.routes();
  ASSERT_EQ(routes.size(), 4u);
  EXPECT_EQ(routes[1].pattern, "/v2/models/stats");
  EXPECT_EQ(routes[1].category, auth::Category::kStatistics);
}

class NoMetrics : public SecurityMetrics {
 public:
  void CountAuthFailure(std::string_view, std::string_view) override { ++failures; }
  void CountSecretReload(std::string_view, bool) override {}
  std::atomic<int> failures{0};
};

TEST_F(HttpServerTest, ARequestTheAuthorizerRefusesNeverReachesItsHandler) {
  auth::Authorizer::Options o;
  ASSERT_TRUE(o.restricted.Add(auth::Transport::kHttp, "inference:key=open-sesame").ok());
  NoMetrics metrics;
  auto authorizer = auth::Authorizer::Create(std::move(o), &metrics);
  ASSERT_TRUE(authorizer.ok());
  std::atomic<int> ran{0};
  server_.Route({"POST", "/infer", auth::Category::kInference},
                [&](const HttpRequest&, const std::shared_ptr<HttpReply>& r) {
                  ++ran;
                  r->Send(200, "ran");
                });
  Client c(Start(authorizer->get()));
  c.Send(
      "POST /infer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "POST /infer HTTP/1.1\r\nHost: x\r\nkey: open-sesame\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  const std::string got = c.ReadAll();
  EXPECT_NE(got.find("403 Forbidden"), std::string::npos) << got;
  EXPECT_NE(got.find("This API is restricted, expecting header 'key'"), std::string::npos) << got;
  EXPECT_NE(got.find("ran"), std::string::npos) << got;
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(metrics.failures.load(), 1);
}

}  // namespace
}  // namespace serving::frontends
