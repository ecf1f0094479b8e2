// The server side of TLS, shared by every listener (HTTP/WebSocket, the binary TCP listener).
//
//   auto ctx = make_server_tls("cert.pem", "key.pem", "");         // TLS 1.2+, no client certs
//   auto ctx = make_server_tls("cert.pem", "key.pem", "ca.pem");   // mutual TLS
//   beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *ctx);
//
// With a client CA bundle the context requires a client certificate (verify_peer and
// verify_fail_if_no_peer_cert) that chains to one of the bundle's certificates; a client without
// one, or with one from another CA, fails the handshake. The bundle's subject names are also sent
// to clients as the list of acceptable CAs. TLS 1.0 and 1.1 are off.
//
// One context serves any number of connections and threads (OpenSSL's SSL_CTX is reference
// counted and safe to share once configured), so the function returns a shared_ptr that every
// listener can hold. The header only forward-declares Asio's context to keep compile times down.
#pragma once

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace qx::server {

// Throws std::runtime_error with a one-line reason (naming the file) when a file cannot be read
// or does not hold what it should; `client_ca_file` empty means no client certificates.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert_file,
                                                           const std::string& key_file,
                                                           const std::string& client_ca_file);

}  // namespace qx::server
