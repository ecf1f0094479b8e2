// Tests of the server's TLS policy (server/tls.h) through in-memory handshakes: certificates, keys
// and CRLs are made here with OpenSSL (P-256 keys, fast), written to a temporary directory as PEM,
// and each handshake runs between a client SSL and a server SSL joined by a BIO pair, so the
// tests need no sockets and no threads.
#include "server/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ssl/context.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace qx::server {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

Key new_key() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("EVP_EC_gen failed");
  return k;
}

void add_ext(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr || X509_add_ext(x, ext, -1) != 1) throw std::runtime_error("extension");
  X509_EXTENSION_free(ext);
}

// A certificate for CN=cn with `key`, signed by (issuer, issuer_key), or self-signed (a CA).
Cert make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
               long serial) {
  Cert x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  const bool ca = issuer == nullptr;
  X509_set_issuer_name(x.get(), ca ? name : X509_get_subject_name(issuer));
  add_ext(x.get(), ca ? x.get() : issuer, NID_basic_constraints,
          ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (!ca) add_ext(x.get(), issuer, NID_subject_alt_name, "IP:127.0.0.1");
  if (X509_sign(x.get(), ca ? key : issuer_key, EVP_sha256()) == 0) {
    throw std::runtime_error("X509_sign");
  }
  return x;
}

struct Pki {
  fs::path dir;
  Key ca_key, other_ca_key, server_key, server2_key, desk1_key, desk2_key, stranger_key;
  Cert ca, other_ca, server, server2, desk1, desk2, stranger;
};

void write_cert(const fs::path& file, X509* x, bool append = false) {
  BIO* b = BIO_new_file(file.c_str(), append ? "a" : "w");
  ASSERT_NE(b, nullptr);
  PEM_write_bio_X509(b, x);
  BIO_free(b);
}

void write_key(const fs::path& file, EVP_PKEY* k) {
  BIO* b = BIO_new_file(file.c_str(), "w");
  ASSERT_NE(b, nullptr);
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  BIO_free(b);
}

// A CRL of `ca` revoking `serials`, valid from an hour ago for `valid_s` seconds.
void write_crl(const fs::path& file, X509* ca, EVP_PKEY* ca_key, const std::vector<long>& serials,
               long valid_s = 86400) {
  std::unique_ptr<X509_CRL, Free> crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca));
  const std::time_t now = std::time(nullptr);
  ASN1_TIME* last = ASN1_TIME_adj(nullptr, now, 0, -3600);
  ASN1_TIME* next = ASN1_TIME_adj(nullptr, now, 0, valid_s - 3600);
  X509_CRL_set1_lastUpdate(crl.get(), last);
  X509_CRL_set1_nextUpdate(crl.get(), next);
  for (long serial : serials) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, serial);
    X509_REVOKED_set_serialNumber(r, sn);
    X509_REVOKED_set_revocationDate(r, last);
    X509_CRL_add0_revoked(crl.get(), r);
    ASN1_INTEGER_free(sn);
  }
  X509_CRL_sort(crl.get());
  ASSERT_NE(X509_CRL_sign(crl.get(), ca_key, EVP_sha256()), 0);
  ASN1_TIME_free(last);
  ASN1_TIME_free(next);
  BIO* b = BIO_new_file(file.c_str(), "w");
  ASSERT_NE(b, nullptr);
  PEM_write_bio_X509_CRL(b, crl.get());
  BIO_free(b);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    p.dir = fs::temp_directory_path() /
            ("qx_tls_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(p.dir);
    fs::create_directories(p.dir);
    p.ca_key = new_key();
    p.ca = make_cert("test-ca", p.ca_key.get(), nullptr, nullptr, 1);
    p.other_ca_key = new_key();
    p.other_ca = make_cert("other-ca", p.other_ca_key.get(), nullptr, nullptr, 1);
    auto leaf = [&](Key& k, Cert& c, const char* cn, long serial, bool other = false) {
      k = new_key();
      c = make_cert(cn, k.get(), other ? p.other_ca.get() : p.ca.get(),
                    other ? p.other_ca_key.get() : p.ca_key.get(), serial);
    };
    leaf(p.server_key, p.server, "server", 10);
    leaf(p.server2_key, p.server2, "server-2", 11);
    leaf(p.desk1_key, p.desk1, "desk-1", 20);
    leaf(p.desk2_key, p.desk2, "desk-2", 21);
    leaf(p.stranger_key, p.stranger, "desk-1", 30, true);  // the right CN from the wrong CA
    write_cert(file("ca.pem"), p.ca.get());
    write_cert(file("server.pem"), p.server.get());
    write_key(file("server.key"), p.server_key.get());
    settings.cert_file = file("server.pem");
    settings.key_file = file("server.key");
  }
  void TearDown() override { fs::remove_all(p.dir); }

  std::string file(const char* name) const { return (p.dir / name).string(); }

  void mtls() { settings.client_ca_file = file("ca.pem"); }

  Pki p;
  TlsSettings settings;
};

enum class Outcome { kOk, kServerRefused, kClientFailed, kStalled };

struct Handshake {
  std::unique_ptr<SSL, Free> client, server;
  Outcome outcome = Outcome::kStalled;
  std::string server_error;
};

void drive(Handshake& h);

struct ClientOptions {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  int max_version = 0;            // 0: any
  const char* ciphers = nullptr;  // TLS 1.2 cipher list
};

// One handshake in memory between a client with `o` and a server SSL from `server_ctx`.
Handshake handshake(boost::asio::ssl::context& server_ctx, X509* ca, const ClientOptions& o) {
  std::unique_ptr<SSL_CTX, Free> cctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(cctx.get(), 0);  // let the client offer what the server must refuse
  SSL_CTX_set_min_proto_version(cctx.get(), TLS1_VERSION);
  if (o.max_version != 0) SSL_CTX_set_max_proto_version(cctx.get(), o.max_version);
  if (o.ciphers != nullptr) SSL_CTX_set_cipher_list(cctx.get(), o.ciphers);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), ca);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
  if (o.cert != nullptr) {
    SSL_CTX_use_certificate(cctx.get(), o.cert);
    SSL_CTX_use_PrivateKey(cctx.get(), o.key);
  }
  Handshake h;
  h.client.reset(SSL_new(cctx.get()));
  h.server.reset(SSL_new(server_ctx.native_handle()));
  drive(h);
  return h;
}

// Runs the handshake of h.client and h.server to its end, joined by a BIO pair.
void drive(Handshake& h) {
  BIO *a = nullptr, *b = nullptr;
  BIO_new_bio_pair(&a, 0, &b, 0);
  SSL_set_bio(h.client.get(), a, a);
  SSL_set_bio(h.server.get(), b, b);
  SSL_set_connect_state(h.client.get());
  SSL_set_accept_state(h.server.get());
  bool client_done = false, server_done = false;
  for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
    if (!client_done) {
      const int rc = SSL_do_handshake(h.client.get());
      const int err = SSL_get_error(h.client.get(), rc);
      client_done = rc == 1;
      if (!client_done && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        h.outcome = Outcome::kClientFailed;
        break;  // the server would only read the client's alert next
      }
    }
    if (!server_done) {
      const int rc = SSL_do_handshake(h.server.get());
      const int err = SSL_get_error(h.server.get(), rc);
      server_done = rc == 1;
      if (!server_done && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        char buf[256];
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
        h.server_error = buf;
        h.outcome = Outcome::kServerRefused;
        break;
      }
    }
  }
  ERR_clear_error();
  if (client_done && server_done) h.outcome = Outcome::kOk;
}

// Two peers (make_peer_tls contexts): `dialer` connects to `acceptor` expecting `host`, as the
// replication driver does.
Handshake peer_handshake(boost::asio::ssl::context& dialer, boost::asio::ssl::context& acceptor,
                         const char* host) {
  Handshake h;
  h.client.reset(SSL_new(dialer.native_handle()));
  h.server.reset(SSL_new(acceptor.native_handle()));
  EXPECT_EQ(SSL_set1_host(h.client.get(), host), 1);
  drive(h);
  return h;
}

TEST_F(TlsTest, PlainTlsServesAnyClientAndMapsNoUser) {
  auto ctx = make_server_tls(settings);
  auto h = handshake(*ctx, p.ca.get(), {});
  ASSERT_EQ(h.outcome, Outcome::kOk) << h.server_error;
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_3_VERSION);
  EXPECT_EQ(peer_common_name(h.server.get()), std::nullopt);
  EXPECT_EQ(certificate_user(settings, h.server.get()), std::nullopt);
}

TEST_F(TlsTest, OldProtocolsAndSuitesWithoutForwardSecrecyAreRefused) {
  auto ctx = make_server_tls(settings);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {.max_version = TLS1_1_VERSION}).outcome,
            Outcome::kServerRefused);
  // RSA key exchange (no forward secrecy), CBC (not AEAD), ECDHE with CBC: all refused in 1.2.
  for (const char* suite : {"AES128-GCM-SHA256", "AES256-SHA", "ECDHE-ECDSA-AES128-SHA"}) {
    EXPECT_EQ(
        handshake(*ctx, p.ca.get(), {.max_version = TLS1_2_VERSION, .ciphers = suite}).outcome,
        Outcome::kServerRefused)
        << suite;
  }
  for (const char* suite : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    auto h = handshake(*ctx, p.ca.get(), {.max_version = TLS1_2_VERSION, .ciphers = suite});
    ASSERT_EQ(h.outcome, Outcome::kOk) << suite << ": " << h.server_error;
    EXPECT_EQ(SSL_version(h.server.get()), TLS1_2_VERSION);
    EXPECT_EQ(SSL_get_secure_renegotiation_support(h.server.get()), 1);
  }
  EXPECT_NE(SSL_CTX_get_options(ctx->native_handle()) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(SSL_CTX_get_options(ctx->native_handle()) & SSL_OP_NO_COMPRESSION, 0u);
}

TEST_F(TlsTest, MinVersionThirteenRefusesTwelve) {
  settings.min_version = "1.3";
  auto ctx = make_server_tls(settings);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {.max_version = TLS1_2_VERSION}).outcome,
            Outcome::kServerRefused);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {}).outcome, Outcome::kOk);
}

TEST_F(TlsTest, MutualTlsNamesThePeerAndRefusesOtherCas) {
  mtls();
  auto ctx = make_server_tls(settings);
  auto h = handshake(*ctx, p.ca.get(), {.cert = p.desk1.get(), .key = p.desk1_key.get()});
  ASSERT_EQ(h.outcome, Outcome::kOk) << h.server_error;
  EXPECT_EQ(peer_common_name(h.server.get()), "desk-1");
  EXPECT_EQ(certificate_user(settings, h.server.get()), std::nullopt);  // no map
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {}).outcome, Outcome::kServerRefused);
  EXPECT_EQ(
      handshake(*ctx, p.ca.get(), {.cert = p.stranger.get(), .key = p.stranger_key.get()}).outcome,
      Outcome::kServerRefused);
}

TEST_F(TlsTest, ClientUsersAdmitOnlyMappedCommonNames) {
  mtls();
  settings.client_users = {{"desk-1", "alice"}};
  auto ctx = make_server_tls(settings);
  auto h = handshake(*ctx, p.ca.get(), {.cert = p.desk1.get(), .key = p.desk1_key.get()});
  ASSERT_EQ(h.outcome, Outcome::kOk) << h.server_error;
  EXPECT_EQ(certificate_user(settings, h.server.get()), "alice");
  auto refused = handshake(*ctx, p.ca.get(), {.cert = p.desk2.get(), .key = p.desk2_key.get()});
  EXPECT_EQ(refused.outcome, Outcome::kServerRefused);
  EXPECT_NE(refused.server_error.find("certificate verify failed"), std::string::npos)
      << refused.server_error;
}

TEST_F(TlsTest, ARevokedClientCertificateFailsAndOthersPass) {
  mtls();
  write_crl(p.dir / "crl.pem", p.ca.get(), p.ca_key.get(), {21});  // desk-2
  settings.crl_file = file("crl.pem");
  auto ctx = make_server_tls(settings);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {.cert = p.desk1.get(), .key = p.desk1_key.get()}).outcome,
            Outcome::kOk);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {.cert = p.desk2.get(), .key = p.desk2_key.get()}).outcome,
            Outcome::kServerRefused);
}

TEST_F(TlsTest, AnExpiredCrlFailsClosed) {
  mtls();
  write_crl(p.dir / "crl.pem", p.ca.get(), p.ca_key.get(), {}, 1800);  // nextUpdate 30 min ago
  settings.crl_file = file("crl.pem");
  auto ctx = make_server_tls(settings);
  EXPECT_EQ(handshake(*ctx, p.ca.get(), {.cert = p.desk1.get(), .key = p.desk1_key.get()}).outcome,
            Outcome::kServerRefused);
}

TEST_F(TlsTest, ReloadSwapsTheCertificateAndKeepsTheOldOneOnFailure) {
  TlsContexts contexts(settings);
  auto before = contexts.current();
  auto h = handshake(*before, p.ca.get(), {});
  ASSERT_EQ(h.outcome, Outcome::kOk);
  EXPECT_EQ(X509_cmp(SSL_get0_peer_certificate(h.client.get()), p.server.get()), 0);

  write_cert(file("server.pem"), p.server2.get());
  write_key(file("server.key"), p.server2_key.get());
  contexts.reload();
  auto after = contexts.current();
  EXPECT_NE(after, before);
  auto h2 = handshake(*after, p.ca.get(), {});
  ASSERT_EQ(h2.outcome, Outcome::kOk);
  EXPECT_EQ(X509_cmp(SSL_get0_peer_certificate(h2.client.get()), p.server2.get()), 0);
  // The connection made before still works on its context: it can exchange data.
  ASSERT_EQ(SSL_write(h.client.get(), "ping", 4), 4);
  char buf[8];
  EXPECT_EQ(SSL_read(h.server.get(), buf, sizeof buf), 4);

  // A key that does not match: the reload throws and the working context stays.
  write_key(file("server.key"), p.desk1_key.get());
  EXPECT_THROW(contexts.reload(), std::runtime_error);
  EXPECT_EQ(contexts.current(), after);
}

TEST_F(TlsTest, PeersAuthenticateEachOtherBothWaysAndTheDialerChecksTheHost) {
  mtls();
  write_cert(file("server2.pem"), p.server2.get());
  write_key(file("server2.key"), p.server2_key.get());
  write_cert(file("stranger.pem"), p.stranger.get());
  write_key(file("stranger.key"), p.stranger_key.get());
  auto one = make_peer_tls(settings);
  TlsSettings s2 = settings;
  s2.cert_file = file("server2.pem");
  s2.key_file = file("server2.key");
  auto two = make_peer_tls(s2);
  for (auto [dialer, acceptor] :
       {std::pair{one.get(), two.get()}, std::pair{two.get(), one.get()}}) {
    auto h = peer_handshake(*dialer, *acceptor, "127.0.0.1");
    ASSERT_EQ(h.outcome, Outcome::kOk) << h.server_error;
    EXPECT_GE(SSL_version(h.server.get()), TLS1_2_VERSION);
    // Each side verified the other's certificate.
    EXPECT_EQ(SSL_get_verify_result(h.client.get()), X509_V_OK);
    EXPECT_EQ(peer_common_name(h.server.get()), dialer == one.get() ? "server" : "server-2");
  }
  // The certificate names 127.0.0.1 only: a dialer expecting another host refuses it.
  EXPECT_EQ(peer_handshake(*one, *two, "127.0.0.2").outcome, Outcome::kClientFailed);
  EXPECT_EQ(peer_handshake(*one, *two, "node-2.example").outcome, Outcome::kClientFailed);
  // A peer whose certificate another CA signed is refused whichever side it is on.
  TlsSettings s3 = settings;
  s3.cert_file = file("stranger.pem");
  s3.key_file = file("stranger.key");
  auto stranger = make_peer_tls(s3);
  EXPECT_EQ(peer_handshake(*stranger, *one, "127.0.0.1").outcome, Outcome::kServerRefused);
  EXPECT_EQ(peer_handshake(*one, *stranger, "127.0.0.1").outcome, Outcome::kClientFailed);
  // A dialer without a certificate is refused, as by make_server_tls with a client CA.
  auto anonymous = handshake(*one, p.ca.get(), {});
  EXPECT_EQ(anonymous.outcome, Outcome::kServerRefused);
  // Peers always authenticate each other: no CA bundle, no context.
  TlsSettings no_ca = settings;
  no_ca.client_ca_file.clear();
  EXPECT_THROW((void)make_peer_tls(no_ca), std::runtime_error);
}

TEST_F(TlsTest, BadFilesAndValuesAreOneLineErrorsNamingThem) {
  auto expect_error = [&](const TlsSettings& s, const std::string& needle) {
    try {
      (void)make_server_tls(s);
      ADD_FAILURE() << "no error; wanted " << needle;
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(needle), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  };
  std::ofstream(file("junk.pem")) << "not PEM\n";
  TlsSettings s = settings;
  s.cert_file = file("missing.pem");
  expect_error(s, "missing.pem");
  s = settings;
  s.key_file = file("junk.pem");
  expect_error(s, "junk.pem");
  s = settings;
  s.min_version = "1.1";
  expect_error(s, "tls_min_version");
  s = settings;
  s.crl_file = file("junk.pem");
  expect_error(s, "tls_crl needs tls_client_ca");
  s = settings;
  s.client_users = {{"desk-1", "alice"}};
  expect_error(s, "tls_client_users needs tls_client_ca");
  s = settings;
  s.client_ca_file = file("ca.pem");
  s.crl_file = file("junk.pem");
  expect_error(s, "TLS CRL " + file("junk.pem"));
  s.crl_file = file("ca.pem");  // a certificate, not a CRL
  expect_error(s, "no CRL");
  s.crl_file = file("missing.crl");
  expect_error(s, "missing.crl");
  s.crl_file.clear();
  s.client_ca_file = file("junk.pem");
  expect_error(s, "TLS client CA " + file("junk.pem"));
  EXPECT_THROW(TlsContexts{s}, std::runtime_error);
}

}  // namespace
}  // namespace qx::server
