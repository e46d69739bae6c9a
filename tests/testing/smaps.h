// Reading the kernel's account of this process's mappings (/proc/self/smaps) in tests.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace jagged::testing {

// The text after `field` (e.g. "Rss:", "VmFlags:") in the smaps entry of the mapping holding `address`; empty
// when no mapping holds it or the entry lacks the field.
inline std::string smaps_field(const void* address, const std::string& field) {
  std::ifstream smaps("/proc/self/smaps");
  const auto target = reinterpret_cast<uintptr_t>(address);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > line.find(' ')) {
      inside = target >= begin && target < end;
    } else if (inside && line.rfind(field, 0) == 0) {
      return line.substr(field.size());
    }
  }
  return "";
}

}  // namespace jagged::testing
