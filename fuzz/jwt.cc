// Fuzz target: the bearer tokens a client presents (server/auth.h, Auth::verify), on every
// transport's login path.
//
// Byte 0 picks the shape. Even: the rest is the token text as sent. Odd: the rest is a header
// JSON and a claims JSON separated by the first newline, which this target encodes and signs with
// the server's own secret (HS256), so that inputs reach the claim checks behind the signature
// (types of sub/uid/gen/exp, unknown users, another user's id, a wrong generation or role). A
// token that verifies must name a user that exists with the role and id it has in the users file
// and an expiry in the future; nothing may crash.
//
//   scripts/fuzz.sh jwt
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_input.h"
#include "fuzz/tokens.h"
#include "server/auth.h"

namespace {

// One users file for the process: alice (trader) and root (admin).
qx::server::Auth& auth() {
  static const std::unique_ptr<qx::server::Auth> a = [] {
    const auto dir = qx::fuzz::scratch_dir("jwt");
    auto made = std::make_unique<qx::server::Auth>(dir / "users.json",
                                                   std::string(qx::fuzz::kSecret), 3600, false);
    const std::string hash = qx::server::Auth::hash_password("fuzz-password");
    (void)made->add_user_hashed("alice", hash, qx::server::Role::kTrader);
    (void)made->add_user_hashed("root", hash, qx::server::Role::kAdmin);
    return made;
  }();
  return *a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  const bool signed_by_us = (in.byte() & 1) != 0;
  const std::string_view rest = in.rest_text();
  std::string token;
  if (signed_by_us) {
    const auto nl = rest.find('\n');
    token = qx::fuzz::sign_token(rest.substr(0, nl),
                                 nl == std::string_view::npos ? "" : rest.substr(nl + 1));
  } else {
    token = std::string(rest);
  }
  const auto p = auth().verify(token);
  if (!p) return 0;
  QX_FUZZ_CHECK(p->user == "alice" || p->user == "root", "a verified token names a known user");
  QX_FUZZ_CHECK(
      p->role == (p->user == "alice" ? qx::server::Role::kTrader : qx::server::Role::kAdmin),
      "a verified token carries its user's role");
  QX_FUZZ_CHECK(p->uid == (p->user == "alice" ? 1u : 2u), "a verified token carries its user's id");
  QX_FUZZ_CHECK(p->expires_s > std::time(nullptr), "a verified token has not expired");
  return 0;
}
