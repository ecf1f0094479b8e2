#include "server/tls.h"

#include <openssl/ssl.h>

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace qx::server {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_server_tls(const std::string& cert_file,
                                              const std::string& key_file,
                                              const std::string& client_ca_file) {
  if (cert_file.empty() || key_file.empty()) {
    throw std::runtime_error(client_ca_file.empty()
                                 ? "TLS needs both a certificate and a key"
                                 : "a client CA (mutual TLS) needs a TLS certificate and key");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw std::runtime_error("TLS certificate " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS key " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    throw std::runtime_error("TLS key " + key_file + " does not match certificate " + cert_file);
  }
  if (client_ca_file.empty()) return ctx;

  ctx->load_verify_file(client_ca_file, ec);
  if (ec) throw std::runtime_error("TLS client CA " + client_ca_file + ": " + ec.message());
  // The names of the acceptable CAs, sent in the CertificateRequest so that a client holding
  // several certificates picks one this server can verify. OpenSSL takes ownership of the list.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
  if (names == nullptr) {
    throw std::runtime_error("TLS client CA " + client_ca_file + ": no certificate in the file");
  }
  SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

}  // namespace qx::server
