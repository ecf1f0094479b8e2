// Authentication: users with argon2id password hashes and roles, and HS256 JSON Web Tokens.
//
//   Auth auth(data_dir / "users.json", secret, 3600, /*demo=*/false);
//   auth.add_user("alice", "pw", Role::kTrader);        // hashed with crypto_pwhash_str
//   LoginResult r = auth.login("alice", "pw");           // a token, or why not
//   std::optional<Principal> who = auth.verify(token);  // signature, claims, revocation, expiry
//
// Identities are exact. A user name is 1 to 31 bytes of ASCII letters, digits, '_', '.' and '-',
// starting with a letter or a digit (valid_name): no control bytes, no NUL, no spaces, nothing a
// terminal, a C string or Unicode could make look like another name. Each user has a numeric id
// that is never reused; a token carries the name, the id, the role, the user's token generation
// and a random token id (jti), and verify() checks every one of them against the users file, so
// a token can never be borrowed by another user of a similar name.
//
// Revocation: logout() revokes one token (its jti, kept until the token would have expired);
// set_password() and set_disabled() bump the user's generation, which revokes every token the
// user holds. revision() grows on every revocation, so that open sessions know when to re-check
// their token (the listeners do within a second).
//
// Login costs the same whether or not the user exists: an unknown user, a disabled one and a demo
// user outside --demo are checked against a dummy hash of the same cost before they are refused.
// Demo users (created by --demo, whose passwords are printed and public) are refused as soon as
// the data directory is served without --demo.
//
// Credentials are not engine state: the engine knows users by name (CreateUser is journaled) but
// passwords, roles and revocations live in `users.json` beside the journal, rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) on every change.
//
// Caveats: login and hash_password deliberately cost ~0.1 s of CPU and 64 MiB (argon2id,
// libsodium's interactive limits); call them off the I/O thread (server/gateway.h bounds how many
// wait). Every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace qx::server {

enum class Role : std::uint8_t { kAdmin = 1, kTrader = 2, kViewer = 3, kAuditor = 4 };
const char* to_string(Role r);
std::optional<Role> parse_role(const std::string& s);

inline constexpr std::size_t kNameBytesMax = 31;
// The documented character set of user, account and instrument names (see above).
[[nodiscard]] bool valid_name(std::string_view name);

struct Principal {
  std::string user;
  Role role{};
  std::uint64_t uid = 0;       // the user's id in the users file
  std::string jti;             // the token's id
  std::int64_t expires_s = 0;  // the token's expiry (unix seconds)
};

enum class LoginStatus : std::uint8_t {
  kOk = 1,
  kBadCredentials = 2,  // unknown user or wrong password (indistinguishable on purpose)
  kDisabled = 3,        // the user is disabled; the password was right
  kDemoUser = 4,        // a --demo user on a server started without --demo
};

struct LoginResult {
  LoginStatus status = LoginStatus::kBadCredentials;
  std::string token;  // when kOk
  Principal principal;
};

class Auth {
 public:
  // Loads the users file when it exists; throws std::runtime_error when it cannot be read.
  // `demo_mode`: whether demo users may log in (qx serve --demo).
  Auth(std::filesystem::path users_file, std::string jwt_secret, std::int64_t token_ttl_s,
       bool demo_mode);

  // False when the user exists already; throws on I/O failure or an invalid name.
  bool add_user(const std::string& name, const std::string& password, Role role);
  bool add_user_hashed(const std::string& name, const std::string& hash, Role role,
                       bool demo = false);
  // Adds or replaces a user's credentials (a replaced user keeps its id, and its tokens die).
  void put_user_hashed(const std::string& name, const std::string& hash, Role role);
  // An argon2id hash string (crypto_pwhash_str); slow by design.
  static std::string hash_password(const std::string& password);
  [[nodiscard]] bool has_user(const std::string& name) const;
  // A user created by --demo whose published password was never changed.
  [[nodiscard]] bool is_demo_user(const std::string& name) const;
  // Slow by design (one argon2id verification whatever the outcome).
  [[nodiscard]] LoginResult login(const std::string& name, const std::string& password) const;
  // Checks `password` against the user's hash (slow), for a password change.
  [[nodiscard]] bool check_password(const std::string& name, const std::string& password) const;
  // The token's principal when its signature (HS256 only), claims, user, generation, revocation
  // and expiry all check out.
  [[nodiscard]] std::optional<Principal> verify(const std::string& token) const;

  // Revocation; each returns false for an unknown user.
  void logout(const Principal& p);
  bool set_password_hashed(const std::string& name, const std::string& hash);
  bool set_disabled(const std::string& name, bool disabled);
  [[nodiscard]] std::uint64_t revision() const { return revision_.load(); }

 private:
  struct User {
    std::uint64_t id = 0;
    std::string hash;
    Role role{};
    std::uint64_t generation = 0;
    bool disabled = false;
    bool demo = false;
  };
  void save_locked() const;
  void prune_revoked_locked(std::int64_t now_s);

  std::filesystem::path file_;
  std::string secret_;
  std::int64_t ttl_s_;
  bool demo_mode_;
  std::string dummy_hash_;  // verified for unknown users, so that they cost the same
  mutable std::mutex mu_;
  std::map<std::string, User> users_;
  std::map<std::string, std::int64_t> revoked_;  // jti -> expiry (unix seconds)
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> revision_{0};
};

// A random 32-byte secret as hex (libsodium's CSPRNG), for --demo.
std::string random_secret();

}  // namespace qx::server
