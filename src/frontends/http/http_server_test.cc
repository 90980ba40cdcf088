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
  int Start() {
    HttpServer::Options options;
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
  server_.Route("/a", [](const HttpRequest&, const std::shared_ptr<HttpReply>& r) { r->Send(200, "first"); });
  // The second answers at once; the first answers later from another thread: order must still hold.
  server_.Route("/slow", [](const HttpRequest&, const std::shared_ptr<HttpReply>& r) {
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
  server_.Route("/hold", [&](const HttpRequest& req, std::shared_ptr<HttpReply> r) {
    cancelled = req.cancelled;
    held.set_value(std::move(r));
  });
  Client c(Start());
  c.Send(Get("/hold"));
  auto reply = held.get_future().get();
  ASSERT_TRUE(cancelled);
  EXPECT_FALSE(cancelled->load());
  c.Close();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!cancelled->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(cancelled->load()) << "the connection's close did not reach the request";
  reply->Send(200, "nobody reads this");  // dropped, no crash
  reply.reset();
}

TEST_F(HttpServerTest, StopWritesTheRepliesHandedOverBeforeIt) {
  // A large reply handed to the loop just before Stop() must reach the client whole: Stop() waits on a
  // barrier in each loop instead of hoping a pause was long enough.
  const std::string big(8 << 20, 'x');
  std::promise<void> replied;
  server_.Route("/big", [&](const HttpRequest&, const std::shared_ptr<HttpReply>& r) {
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

}  // namespace
}  // namespace serving::frontends
