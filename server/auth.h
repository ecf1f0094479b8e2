// Authentication: users with argon2id password hashes and roles, and HS256 JSON Web Tokens.
//
//   Auth auth(data_dir / "users.json", secret);
//   auth.add_user("alice", "pw", Role::kTrader);        // hashed with crypto_pwhash_str
//   std::optional<std::string> token = auth.login("alice", "pw");
//   std::optional<Principal> who = auth.verify(token);    // signature, algorithm and expiry
//
// Credentials are not engine state: the engine knows users by name (CreateUser is journaled) but
// passwords and roles live in `users.json` beside the journal, rewritten atomically (temporary
// file, fsync, rename, fsync of the directory) on every change.
//
// Caveats: login deliberately costs ~0.1 s of CPU and 64 MiB (argon2id, libsodium's interactive
// limits); call it off the I/O thread. Every method is thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace qx::server {

enum class Role : std::uint8_t { kAdmin = 1, kTrader = 2, kViewer = 3, kAuditor = 4 };
const char* to_string(Role r);
std::optional<Role> parse_role(const std::string& s);

struct Principal {
  std::string user;
  Role role{};
};

class Auth {
 public:
  // Loads the users file when it exists; throws std::runtime_error when it cannot be read.
  Auth(std::filesystem::path users_file, std::string jwt_secret, std::int64_t token_ttl_s);

  // False when the user exists already; throws on I/O failure.
  bool add_user(const std::string& name, const std::string& password, Role role);
  bool add_user_hashed(const std::string& name, const std::string& hash, Role role);
  // Adds or replaces a user's credentials.
  void put_user_hashed(const std::string& name, const std::string& hash, Role role);
  // An argon2id hash string (crypto_pwhash_str); slow by design.
  static std::string hash_password(const std::string& password);
  [[nodiscard]] bool has_user(const std::string& name) const;
  // A signed token, or nullopt for an unknown user or a wrong password.
  [[nodiscard]] std::optional<std::string> login(const std::string& name,
                                                 const std::string& password) const;
  // The token's subject and role when its signature (HS256 only) and expiry check out.
  [[nodiscard]] std::optional<Principal> verify(const std::string& token) const;

 private:
  struct User {
    std::string hash;
    Role role{};
  };
  void save_locked() const;

  std::filesystem::path file_;
  std::string secret_;
  std::int64_t ttl_s_;
  mutable std::mutex mu_;
  std::map<std::string, User> users_;
};

// A random 32-byte secret as hex (libsodium's CSPRNG), for --demo.
std::string random_secret();

}  // namespace qx::server
