// SHA-256, for environment digests (change detection of runtime definition, manifest and
// interpreter). Incremental: Update() any number of times, then HexDigest().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace packvisor::envs {

class Sha256 {
 public:
  Sha256();
  // Appends `data`; for structured input prefer UpdateField, which length-prefixes each part so
  // that ("ab","c") and ("a","bc") differ.
  void Update(std::string_view data);
  void UpdateField(std::string_view data);
  std::string HexDigest();  // finalizes; call once

 private:
  void Block(const unsigned char* block);
  uint32_t state_[8];
  unsigned char buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

std::string Sha256Hex(std::string_view data);

}  // namespace packvisor::envs
