#include "server/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ssl/context.hpp>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "core/assert.h"

namespace qx::server {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites with forward secrecy and an AEAD cipher, strongest first for each key type.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

// The admitted client CNs live in the SSL_CTX's ex_data, freed with the SSL_CTX itself (when the
// last connection made with it is gone), so a handshake in flight during a reload still sees
// them. Asio's set_verify_callback would not do: its context frees the callback with the Asio
// object, not with the SSL_CTX.
using CommonNames = std::set<std::string, std::less<>>;

void free_common_names(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<CommonNames*>(ptr);
}

int common_names_index() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_common_names);
  QX_ASSERT(index >= 0);
  return index;
}

// The subject's CN when it has exactly one, as UTF-8 without NUL bytes.
std::optional<std::string> common_name(X509* cert) {
  if (cert == nullptr) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) return std::nullopt;
  unsigned char* utf8 = nullptr;
  const int len =
      ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
  if (len < 0) return std::nullopt;
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  if (cn.empty() || cn.find('\0') != std::string::npos) return std::nullopt;
  return cn;
}

// At depth 0 (the client's own certificate) the CN must be one of the admitted ones.
int verify_client_cn(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1 || X509_STORE_CTX_get_error_depth(store) != 0) return preverified;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* names = ssl == nullptr ? nullptr
                                     : static_cast<const CommonNames*>(SSL_CTX_get_ex_data(
                                           SSL_get_SSL_CTX(ssl), common_names_index()));
  if (names == nullptr) return 1;  // no map configured
  const auto cn = common_name(X509_STORE_CTX_get_current_cert(store));
  if (cn && names->contains(*cn)) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// The error queue's newest reason, for messages; clears the queue.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void load_crls(SSL_CTX* ctx, const std::string& file) {
  std::FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) throw std::runtime_error("TLS CRL " + file + ": cannot open the file");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int loaded = 0;
  while (X509_CRL* crl = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr)) {
    const int ok = X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    if (ok != 1) {
      std::fclose(f);
      throw std::runtime_error("TLS CRL " + file + ": " + openssl_reason());
    }
    ++loaded;
  }
  std::fclose(f);
  // The loop ends at the end of the file (PEM_R_NO_START_LINE) or at something that is not a CRL.
  const unsigned long last = ERR_peek_last_error();
  ERR_clear_error();
  if (loaded == 0) throw std::runtime_error("TLS CRL " + file + ": no CRL in the file");
  if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    throw std::runtime_error("TLS CRL " + file + ": a block is not a valid CRL");
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
}

void check_settings(const TlsSettings& s) {
  if (s.cert_file.empty() || s.key_file.empty()) {
    throw std::runtime_error(s.client_ca_file.empty()
                                 ? "TLS needs both a certificate and a key"
                                 : "a client CA (mutual TLS) needs a TLS certificate and key");
  }
  if (s.min_version != "1.2" && s.min_version != "1.3") {
    throw std::runtime_error("tls_min_version must be \"1.2\" or \"1.3\", got '" + s.min_version +
                             "'");
  }
  if (!s.crl_file.empty() && s.client_ca_file.empty()) {
    throw std::runtime_error("tls_crl needs tls_client_ca (mutual TLS)");
  }
  if (!s.client_users.empty() && s.client_ca_file.empty()) {
    throw std::runtime_error("tls_client_users needs tls_client_ca (mutual TLS)");
  }
  for (const auto& [cn, user] : s.client_users) {
    if (cn.empty() || user.empty()) {
      throw std::runtime_error("tls_client_users: a common name or a user name is empty");
    }
  }
}

void set_policy(ssl::context& ctx, const TlsSettings& s) {
  SSL_CTX* h = ctx.native_handle();
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use | ssl::context::no_compression);
  SSL_CTX_set_options(h, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  const int min = s.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(h, min) != 1 ||
      SSL_CTX_set_cipher_list(h, kTls12Ciphers) != 1) {
    throw std::runtime_error("TLS policy: " + openssl_reason());
  }
  // Sessions resumed with a client certificate need an id context; any constant will do.
  static constexpr unsigned char kSessionContext[] = "qx-serve";
  SSL_CTX_set_session_id_context(h, kSessionContext, sizeof kSessionContext - 1);
}

void set_client_verification(ssl::context& ctx, const TlsSettings& s) {
  boost::system::error_code ec;
  ctx.load_verify_file(s.client_ca_file, ec);
  if (ec) throw std::runtime_error("TLS client CA " + s.client_ca_file + ": " + ec.message());
  // The names of the acceptable CAs, sent in the CertificateRequest so that a client holding
  // several certificates picks one this server can verify. OpenSSL takes ownership of the list.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca_file.c_str());
  if (names == nullptr) {
    throw std::runtime_error("TLS client CA " + s.client_ca_file + ": no certificate in the file");
  }
  SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
  if (!s.crl_file.empty()) load_crls(ctx.native_handle(), s.crl_file);
  int (*callback)(int, X509_STORE_CTX*) = nullptr;
  if (!s.client_users.empty()) {
    auto cns = std::make_unique<CommonNames>();
    for (const auto& [cn, user] : s.client_users) cns->insert(cn);
    if (SSL_CTX_set_ex_data(ctx.native_handle(), common_names_index(), cns.get()) != 1) {
      throw std::runtime_error("TLS client users: " + openssl_reason());
    }
    cns.release();  // owned by the SSL_CTX now (free_common_names)
    callback = &verify_client_cn;
  }
  SSL_CTX_set_verify(ctx.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     callback);
}

std::shared_ptr<ssl::context> make_tls(const TlsSettings& s, ssl::context::method method) {
  check_settings(s);
  auto ctx = std::make_shared<ssl::context>(method);
  set_policy(*ctx, s);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(s.cert_file, ec);
  if (ec) throw std::runtime_error("TLS certificate " + s.cert_file + ": " + ec.message());
  ctx->use_private_key_file(s.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS key " + s.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TLS key " + s.key_file + " does not match certificate " +
                             s.cert_file);
  }
  if (!s.client_ca_file.empty()) set_client_verification(*ctx, s);
  return ctx;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_tls(const TlsSettings& s) {
  return make_tls(s, ssl::context::tls_server);
}

std::shared_ptr<ssl::context> make_peer_tls(const TlsSettings& s) {
  if (s.client_ca_file.empty()) throw std::runtime_error("peer TLS needs a CA bundle");
  // TLS_method, not TLS_server_method: one context both accepts and dials.
  return make_tls(s, ssl::context::tls);
}

TlsContexts::TlsContexts(TlsSettings settings)
    : settings_(std::move(settings)), current_(make_server_tls(settings_)) {}

std::shared_ptr<ssl::context> TlsContexts::current() const {
  std::lock_guard lock(mu_);
  QX_ASSERT(current_ != nullptr);
  return current_;
}

void TlsContexts::reload() {
  auto next = make_server_tls(settings_);  // outside the lock: reads files
  QX_ASSERT(next != nullptr);
  std::lock_guard lock(mu_);
  current_.swap(next);
  // `next` (the old context) is released after the lock; connections keep their SSL_CTX.
}

std::optional<std::string> peer_common_name(SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  return common_name(SSL_get0_peer_certificate(ssl));
}

std::optional<std::string> certificate_user(const TlsSettings& settings, SSL* ssl) {
  if (settings.client_users.empty()) return std::nullopt;
  const auto cn = peer_common_name(ssl);
  if (!cn) return std::nullopt;
  const auto it = settings.client_users.find(*cn);
  if (it == settings.client_users.end()) return std::nullopt;
  return it->second;
}

}  // namespace qx::server
