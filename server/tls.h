// The server side of TLS, shared by every listener (HTTP/WebSocket, the binary TCP listener,
// the replication port of a cluster).
//
//   TlsSettings s{.cert_file = "cert.pem", .key_file = "key.pem"};   // TLS 1.2+, no client certs
//   s.client_ca_file = "ca.pem";                                    // mutual TLS
//   s.crl_file = "ca.crl.pem";                                      // revoked client certificates
//   s.client_users = {{"desk-7", "alice"}};                         // only these client CNs
//   auto contexts = std::make_shared<TlsContexts>(s);               // throws on a bad file
//   beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *contexts->current());
//   contexts->reload();                                             // on SIGHUP: files re-read
//
//   auto peer = make_peer_tls(s);   // needs client_ca_file: one context that accepts and dials
//   SSL_set1_host(ssl, "10.0.0.2"); // a dialing connection names the host it expects
//
// Policy (the same for every listener): TLS 1.2 or later (`min_version` "1.3": 1.3 only); TLS 1.2
// is limited to forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3
// suites are all of that kind); renegotiation and compression are off; the server's cipher order
// wins.
//
// With a client CA bundle the context requires a client certificate (verify_peer and
// verify_fail_if_no_peer_cert) that chains to one of the bundle's certificates; a client without
// one, or with one from another CA, fails the handshake. The bundle's subject names are also sent
// to clients as the list of acceptable CAs. With a CRL file, the client certificate itself (not
// its CAs) is checked against the CRLs, so a revoked one fails the handshake. With
// `client_users`, a client certificate whose subject has not exactly one common name, or whose
// CN is not a key of the map, fails the handshake; certificate_user() names the user a
// connection's certificate stands for, so a transport can insist that its requests act as that
// user.
//
// Peers (the replication port, docs/cluster.md): every node both accepts and dials, with one
// certificate and one CA bundle. make_peer_tls builds the same context as make_server_tls, mutual
// TLS included, except that it can also dial (TLS_method): a dialing connection then presents the
// certificate and verifies the accepting one's against the bundle; the caller must name the host
// it expects on each dialing SSL (SSL_set1_host), or any certificate of the CA would do. So a
// peer's certificate is used both ways: with an extendedKeyUsage it needs serverAuth and
// clientAuth.
//
// Reload: a context is immutable once made. TlsContexts builds a new one from the same settings
// (reading the files again) and swaps it in; connections made before keep theirs (an SSL object
// holds a reference to its SSL_CTX and everything a handshake needs lives in it), new ones get the
// new one. Session tickets of the old context do not resume on the new one, so a certificate
// revoked by a reloaded CRL cannot come back through resumption.
//
// Caveats: with a CRL file, every CA of the client bundle must have a current CRL in it: a client
// certificate from a CA without one, or a CRL past its nextUpdate, fails the handshake (fail
// closed; refresh the file and send SIGHUP). One context serves any number of connections and
// threads (OpenSSL's SSL_CTX is reference counted and safe to share once configured). The header
// only forward-declares Asio's and OpenSSL's types to keep compile times down.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

struct ssl_st;  // OpenSSL's SSL

namespace qx::server {

struct TlsSettings {
  std::string cert_file, key_file;  // PEM certificate chain and private key; both required
  std::string client_ca_file;       // PEM CA bundle: mutual TLS when set
  std::string crl_file;             // PEM CRL(s) for client certificates; needs client_ca_file
  std::string min_version = "1.2";  // "1.2" or "1.3"
  // Client certificate subject CN -> user name; needs client_ca_file. Empty: any CN is admitted.
  std::map<std::string, std::string> client_users;
};

// A configured server context. Throws std::runtime_error with a one-line reason (naming the file
// or the setting) when a file cannot be read or does not hold what it should, or a value is bad.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const TlsSettings& settings);

// make_server_tls's context, able to dial as well (see "Peers" above); throws as it does, and when
// settings.client_ca_file is empty.
std::shared_ptr<boost::asio::ssl::context> make_peer_tls(const TlsSettings& settings);

// The TLS context for each new connection; reload() rebuilds it from the same settings (the
// files re-read) and swaps it in; on failure it keeps the old one and throws. Thread-safe.
class TlsContexts {
 public:
  explicit TlsContexts(TlsSettings settings);  // throws as make_server_tls does
  [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> current() const;
  void reload();
  [[nodiscard]] const TlsSettings& settings() const { return settings_; }

 private:
  const TlsSettings settings_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // never null
};

// The subject CN of the verified peer certificate of an established connection, or nullopt (no
// certificate, not verified, or not exactly one CN).
std::optional<std::string> peer_common_name(ssl_st* ssl);

// The user a connection's client certificate maps to under settings.client_users (nullopt when
// there is no map or no verified certificate, or its CN is not in the map).
std::optional<std::string> certificate_user(const TlsSettings& settings, ssl_st* ssl);

}  // namespace qx::server
