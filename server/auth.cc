#include "server/auth.h"

#include <fcntl.h>
#include <jwt.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

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

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

namespace {

std::string random_hex(std::size_t bytes) {
  std::string bin(bytes, '\0');
  randombytes_buf(bin.data(), bin.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                 bin.size());
  hex.pop_back();
  return hex;
}

// A whole number under `key` of a users-file entry, or `fallback` when absent.
std::uint64_t uint_of(const nlohmann::json& j, const char* key, std::uint64_t fallback) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number_unsigned()) throw std::runtime_error(std::string("bad '") + key + "'");
  return j[key].get<std::uint64_t>();
}

// The hash verified for unknown users, so that a login costs the same whether the name exists:
// one per process, made by the first Auth (an argon2id hash takes a tenth of a second; tools and
// tests that make many Auth objects pay it once).
const std::string& dummy_hash() {
  static const std::string hash = Auth::hash_password(random_hex(16));
  return hash;
}

}  // namespace

Auth::Auth(std::filesystem::path users_file, std::string jwt_secret, std::int64_t token_ttl_s,
           bool demo_mode)
    : file_(std::move(users_file)),
      secret_(std::move(jwt_secret)),
      ttl_s_(token_ttl_s),
      demo_mode_(demo_mode) {
  init_sodium();
  dummy_hash_ = dummy_hash();
  if (!std::filesystem::exists(file_)) return;
  std::ifstream in(file_);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("users") || !j["users"].is_array()) {
    throw std::runtime_error("cannot read users file " + file_.string());
  }
  try {
    next_id_ = uint_of(j, "next_id", 1);
    std::vector<std::string> unnumbered;  // files written before users had ids
    for (const auto& u : j["users"]) {
      const auto name = u.at("name").get<std::string>();
      auto role = parse_role(u.at("role").get<std::string>());
      if (!role || !valid_name(name)) throw std::runtime_error("bad user '" + name + "'");
      User user{
          uint_of(u, "id", 0),         u.at("hash").get<std::string>(), *role,
          uint_of(u, "generation", 0), u.value("disabled", false),      u.value("demo", false)};
      if (user.id == 0) unnumbered.push_back(name);
      next_id_ = std::max(next_id_, user.id + 1);
      users_[name] = user;
    }
    for (const auto& name : unnumbered) users_[name].id = next_id_++;
    if (j.contains("revoked")) {
      for (const auto& r : j["revoked"]) {
        revoked_[r.at("jti").get<std::string>()] = r.at("exp").get<std::int64_t>();
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read users file " + file_.string() + ": " + e.what());
  }
}

void Auth::save_locked() const {
  nlohmann::json users = nlohmann::json::array();
  for (const auto& [name, u] : users_) {
    users.push_back({{"name", name},
                     {"id", u.id},
                     {"role", to_string(u.role)},
                     {"hash", u.hash},
                     {"generation", u.generation},
                     {"disabled", u.disabled},
                     {"demo", u.demo}});
  }
  nlohmann::json revoked = nlohmann::json::array();
  for (const auto& [jti, exp] : revoked_) revoked.push_back({{"jti", jti}, {"exp", exp}});
  const std::filesystem::path tmp = file_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"next_id", next_id_}, {"users", users}, {"revoked", revoked}}.dump(1)
        << '\n';
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::permissions(
      tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
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

bool Auth::add_user_hashed(const std::string& name, const std::string& hash, Role role, bool demo) {
  if (!valid_name(name)) throw std::runtime_error("invalid user name");
  std::lock_guard lock(mu_);
  if (users_.count(name) != 0) return false;
  users_[name] = User{next_id_++, hash, role, 0, false, demo};
  save_locked();
  return true;
}

void Auth::put_user_hashed(const std::string& name, const std::string& hash, Role role) {
  if (!valid_name(name)) throw std::runtime_error("invalid user name");
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) {
    users_[name] = User{next_id_++, hash, role, 0, false, false};
  } else {
    it->second = User{it->second.id, hash, role, it->second.generation + 1, false, false};
    revision_.fetch_add(1);
  }
  save_locked();
}

bool Auth::has_user(const std::string& name) const {
  std::lock_guard lock(mu_);
  return users_.count(name) != 0;
}

bool Auth::is_demo_user(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  return it != users_.end() && it->second.demo;
}

bool Auth::check_password(const std::string& name, const std::string& password) const {
  std::string hash;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(name);
    known = it != users_.end();
    hash = known ? it->second.hash : dummy_hash_;
  }
  const bool ok = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
  return known && ok;
}

LoginResult Auth::login(const std::string& name, const std::string& password) const {
  User u;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(name);
    known = it != users_.end();
    if (known) u = it->second;
  }
  // The same argon2id work for every name, known or not.
  const std::string& hash = known ? u.hash : dummy_hash_;
  const bool ok = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
  LoginResult out;
  if (!known || !ok) return out;
  if (u.disabled) {
    out.status = LoginStatus::kDisabled;
    return out;
  }
  if (u.demo && !demo_mode_) {
    out.status = LoginStatus::kDemoUser;
    return out;
  }
  jwt_t* jwt = nullptr;
  if (jwt_new(&jwt) != 0) return out;
  const std::int64_t now = now_s();
  const std::string jti = random_hex(16);
  int rc = jwt_add_grant(jwt, "sub", name.c_str());
  rc |= jwt_add_grant(jwt, "role", to_string(u.role));
  rc |= jwt_add_grant(jwt, "jti", jti.c_str());
  rc |= jwt_add_grant_int(jwt, "uid", static_cast<long>(u.id));
  rc |= jwt_add_grant_int(jwt, "gen", static_cast<long>(u.generation));
  rc |= jwt_add_grant_int(jwt, "iat", static_cast<long>(now));
  rc |= jwt_add_grant_int(jwt, "exp", static_cast<long>(now + ttl_s_));
  rc |= jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                    static_cast<int>(secret_.size()));
  char* text = rc == 0 ? jwt_encode_str(jwt) : nullptr;
  jwt_free(jwt);
  if (text == nullptr) return out;
  out.token = text;
  std::free(text);
  out.status = LoginStatus::kOk;
  out.principal = Principal{name, u.role, u.id, jti, now + ttl_s_};
  return out;
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
  const char* jti = jwt_get_grant(jwt, "jti");
  const long exp = jwt_get_grant_int(jwt, "exp");
  const long uid = jwt_get_grant_int(jwt, "uid");
  const long gen = jwt_get_grant_int(jwt, "gen");
  if (jwt_get_alg(jwt) == JWT_ALG_HS256 && sub != nullptr && role != nullptr && jti != nullptr &&
      exp > now_s() && uid > 0 && gen >= 0) {
    if (auto r = parse_role(role))
      out = Principal{sub, *r, static_cast<std::uint64_t>(uid), jti, exp};
  }
  jwt_free(jwt);
  if (!out) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = users_.find(out->user);
  if (it == users_.end()) return std::nullopt;
  const User& u = it->second;
  if (u.id != out->uid || u.role != out->role || u.generation != static_cast<std::uint64_t>(gen) ||
      u.disabled || (u.demo && !demo_mode_) || revoked_.count(out->jti) != 0) {
    return std::nullopt;
  }
  return out;
}

void Auth::prune_revoked_locked(std::int64_t now) {
  std::erase_if(revoked_, [now](const auto& kv) { return kv.second <= now; });
}

void Auth::logout(const Principal& p) {
  std::lock_guard lock(mu_);
  prune_revoked_locked(now_s());
  revoked_[p.jti] = p.expires_s;
  revision_.fetch_add(1);
  save_locked();
}

bool Auth::set_password_hashed(const std::string& name, const std::string& hash) {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return false;
  it->second.hash = hash;
  it->second.generation += 1;
  it->second.demo = false;  // its password is no longer the published one
  revision_.fetch_add(1);
  save_locked();
  return true;
}

bool Auth::set_disabled(const std::string& name, bool disabled) {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return false;
  it->second.disabled = disabled;
  it->second.generation += 1;
  revision_.fetch_add(1);
  save_locked();
  return true;
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
