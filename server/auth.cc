#include "server/auth.h"

#include <fcntl.h>
#include <jwt.h>
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace qx::server {

namespace {

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void fsync_path(const std::filesystem::path& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd < 0) throw std::runtime_error("cannot open " + p.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("fsync failed on " + p.string());
}

}  // namespace

const char* to_string(Role r) {
  switch (r) {
    case Role::kAdmin: return "admin";
    case Role::kTrader: return "trader";
    case Role::kViewer: return "viewer";
    case Role::kAuditor: return "auditor";
  }
  return "invalid";
}

std::optional<Role> parse_role(const std::string& s) {
  for (Role r : {Role::kAdmin, Role::kTrader, Role::kViewer, Role::kAuditor}) {
    if (s == to_string(r)) return r;
  }
  return std::nullopt;
}

Auth::Auth(std::filesystem::path users_file, std::string jwt_secret, std::int64_t token_ttl_s)
    : file_(std::move(users_file)), secret_(std::move(jwt_secret)), ttl_s_(token_ttl_s) {
  init_sodium();
  if (!std::filesystem::exists(file_)) return;
  std::ifstream in(file_);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("users") || !j["users"].is_array()) {
    throw std::runtime_error("cannot read users file " + file_.string());
  }
  for (const auto& u : j["users"]) {
    auto role = parse_role(u.at("role").get<std::string>());
    if (!role) throw std::runtime_error("bad role in " + file_.string());
    users_[u.at("name").get<std::string>()] = User{u.at("hash").get<std::string>(), *role};
  }
}

void Auth::save_locked() const {
  nlohmann::json users = nlohmann::json::array();
  for (const auto& [name, u] : users_) {
    users.push_back({{"name", name}, {"role", to_string(u.role)}, {"hash", u.hash}});
  }
  const std::filesystem::path tmp = file_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"users", users}}.dump(1) << '\n';
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fsync_path(tmp, O_RDONLY);
  std::filesystem::rename(tmp, file_);
  fsync_path(file_.parent_path().empty() ? "." : file_.parent_path(), O_RDONLY | O_DIRECTORY);
}

std::string Auth::hash_password(const std::string& password) {
  init_sodium();
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("argon2id hashing failed (out of memory?)");
  }
  return hash;
}

bool Auth::add_user(const std::string& name, const std::string& password, Role role) {
  return add_user_hashed(name, hash_password(password), role);
}

bool Auth::add_user_hashed(const std::string& name, const std::string& hash, Role role) {
  std::lock_guard lock(mu_);
  if (users_.count(name) != 0) return false;
  users_[name] = User{hash, role};
  save_locked();
  return true;
}

void Auth::put_user_hashed(const std::string& name, const std::string& hash, Role role) {
  std::lock_guard lock(mu_);
  users_[name] = User{hash, role};
  save_locked();
}

bool Auth::has_user(const std::string& name) const {
  std::lock_guard lock(mu_);
  return users_.count(name) != 0;
}

std::optional<std::string> Auth::login(const std::string& name, const std::string& password) const {
  User u;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(name);
    if (it == users_.end()) return std::nullopt;
    u = it->second;
  }
  if (crypto_pwhash_str_verify(u.hash.c_str(), password.data(), password.size()) != 0) {
    return std::nullopt;
  }
  jwt_t* jwt = nullptr;
  if (jwt_new(&jwt) != 0) return std::nullopt;
  const std::int64_t now = now_s();
  int rc = jwt_add_grant(jwt, "sub", name.c_str());
  rc |= jwt_add_grant(jwt, "role", to_string(u.role));
  rc |= jwt_add_grant_int(jwt, "iat", static_cast<long>(now));
  rc |= jwt_add_grant_int(jwt, "exp", static_cast<long>(now + ttl_s_));
  rc |= jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                    static_cast<int>(secret_.size()));
  char* text = rc == 0 ? jwt_encode_str(jwt) : nullptr;
  jwt_free(jwt);
  if (text == nullptr) return std::nullopt;
  std::string token(text);
  std::free(text);
  return token;
}

std::optional<Principal> Auth::verify(const std::string& token) const {
  if (token.empty() || token.size() > 4096) return std::nullopt;
  jwt_t* jwt = nullptr;
  if (jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                 static_cast<int>(secret_.size())) != 0) {
    return std::nullopt;
  }
  std::optional<Principal> out;
  const char* sub = jwt_get_grant(jwt, "sub");
  const char* role = jwt_get_grant(jwt, "role");
  const long exp = jwt_get_grant_int(jwt, "exp");
  if (jwt_get_alg(jwt) == JWT_ALG_HS256 && sub != nullptr && role != nullptr && exp > now_s()) {
    if (auto r = parse_role(role)) out = Principal{sub, *r};
  }
  jwt_free(jwt);
  if (out) {
    std::lock_guard lock(mu_);
    auto it = users_.find(out->user);
    if (it == users_.end() || it->second.role != out->role) return std::nullopt;
  }
  return out;
}

std::string random_secret() {
  init_sodium();
  unsigned char key[32];
  randombytes_buf(key, sizeof key);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, key, sizeof key);
  return hex;
}

}  // namespace qx::server
