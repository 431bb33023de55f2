// SHA-256 and HMAC-SHA256 digests (OpenSSL libcrypto), as lower-case hex.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace rb {

/// SHA-256 of the bytes, lower-case hex.
std::string sha256_hex(std::string_view data);
/// HMAC-SHA256 of the bytes under key, lower-case hex.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
/// SHA-256 of a file's contents. Throws rb::error(io) naming the file.
std::string sha256_file(const std::filesystem::path& file);
/// Random bytes as hex (2*n characters), for run ids.
std::string random_hex(std::size_t n);

}  // namespace rb
