// Bearer tokens for the fuzz targets: signed with the secret their in-process servers use, so that
// a target can present any claims it likes behind a valid signature.
//
//   auto t = qx::fuzz::sign_token(R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"alice",...})");
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace qx::fuzz {

inline constexpr std::string_view kSecret = "fuzz-secret-fuzz-secret-fuzz-secret-0123";

inline std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char ch : bytes) {
    acc = (acc << 8) | static_cast<std::uint8_t>(ch);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

// header.claims.signature, HS256 with kSecret, the way the server signs its tokens.
inline std::string sign_token(std::string_view header, std::string_view claims) {
  const std::string body = base64url(header) + "." + base64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return body + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace qx::fuzz
