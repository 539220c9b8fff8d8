// BlockingClient (the client of the S3 store and of wharfctl) against peers that stall.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <future>

#include "shared/http/blocking_client.h"
#include "tests/support/raw_peer.h"

namespace blocking_client_test {

using namespace wharf;
using namespace wharf::test;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST_CASE("blocking client: a peer that stops taking the body fails the request after the timeout", "[http][client]") {
  // A store that is full (radosgw with a full OSD) reads the head and then no more bytes.
  std::promise<void> release;
  auto released = release.get_future().share();
  RawPeer stuck([released](int fd) {
    readRequestHead(fd);
    released.wait_for(std::chrono::seconds(30));
  });
  BlockingClient client("127.0.0.1", stuck.port(), 300);
  std::string body(64 << 20, 'x');  // more than both sockets' buffers hold
  auto start = Clock::now();
  auto r = client.request("PUT", "/bucket/part", {}, body);
  double took = secondsSince(start);
  release.set_value();
  REQUIRE_FALSE(r.isOk());
  CHECK(r.status().code() == Code::kTimeout);
  // One timeout of no progress, not a wait for the kernel or a retry.
  CHECK(took < 5.0);
  CHECK_FALSE(client.connected());
}

TEST_CASE("blocking client: a kept-alive connection that never answers times out once, without a retry",
          "[http][client]") {
  std::promise<void> release;
  auto released = release.get_future().share();
  RawPeer peer([released](int fd) {
    readRequestHead(fd);
    std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
    readRequestHead(fd);  // the second request: no answer
    released.wait_for(std::chrono::seconds(30));
  });
  BlockingClient client("127.0.0.1", peer.port(), 1000);
  auto first = client.request("GET", "/one");
  REQUIRE(first.isOk());
  CHECK(first->body == "ok");
  auto start = Clock::now();
  auto second = client.request("GET", "/two");
  double took = secondsSince(start);
  release.set_value();
  REQUIRE_FALSE(second.isOk());
  CHECK(second.status().code() == Code::kTimeout);
  // A retry on a fresh connection would wait a second timeout (the peer, busy with the
  // first connection, would not even accept it).
  CHECK(took < 1.8);
}

TEST_CASE("blocking client: a kept-alive connection the peer closed is retried once on a fresh one", "[http][client]") {
  std::atomic<int> connections{0};
  RawPeer peer([&connections](int fd) {
    ++connections;
    readRequestHead(fd);
    std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
    // and closes: the client's next request on this connection finds it gone
  });
  BlockingClient client("127.0.0.1", peer.port(), 2000);
  REQUIRE(client.request("GET", "/one").isOk());
  auto second = client.request("GET", "/two");
  REQUIRE(second.isOk());
  CHECK(second->body == "ok");
  CHECK(connections.load() == 2);
}

}  // namespace blocking_client_test
