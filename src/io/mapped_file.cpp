#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/threads.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

// memcpy: the source may be only 1-byte aligned.
inline uint16_t load_u16(const std::byte* source, int64_t index) {
  uint16_t bits;
  std::memcpy(&bits, source + 2 * index, sizeof(bits));
  return bits;
}

// IEEE half -> float, exact; the same values as jagged::f16_to_f32 (tested exhaustively), but inline and
// branch-light so a conversion loop vectorises.
inline float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  const uint32_t mantissa = bits & 0x3ff;
  // Subnormals are mantissa * 2^-24, exact in float; normals and inf/nan rebias the exponent.
  const float subnormal = static_cast<float>(mantissa) * 0x1p-24f;
  const uint32_t rebiased = exponent == 31 ? 0x7f800000u | (mantissa << 13) : ((exponent + 112) << 23) | (mantissa << 13);
  const uint32_t magnitude = exponent == 0 ? std::bit_cast<uint32_t>(subnormal) : rebiased;
  return std::bit_cast<float>(sign | magnitude);
}

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(concat(path.string(), ": cannot open: ", std::strerror(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    const int error = errno;
    ::close(fd);
    throw FileError(concat(path.string(), ": not a regular file", error ? ": " : "", error ? std::strerror(error) : ""));
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(info.st_size);
  if (file->size_ > 0) {
    void* address = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      throw FileError(concat(path.string(), ": cannot map ", file->size_, " bytes: ", std::strerror(error)));
    }
    file->data_ = static_cast<const std::byte*>(address);
    file->mapped_ = true;
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return file;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(std::span<const std::byte> bytes, std::filesystem::path name) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = std::move(name);
  file->size_ = bytes.size();
  if (!bytes.empty()) {
    auto* copy = new std::byte[bytes.size()];
    std::memcpy(copy, bytes.data(), bytes.size());
    file->data_ = copy;
  }
  return file;
}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  if (mapped_) {
    ::munmap(const_cast<std::byte*>(data_), size_);
  } else {
    delete[] data_;
  }
}

Tensor f32_tensor_from_file(const std::shared_ptr<const MappedFile>& file, uint64_t offset, Shape shape,
                            DType stored) {
  const std::byte* source = file->bytes().data() + offset;
  const int64_t count = shape_numel(shape);
  if (stored == DType::f32) {
    // Borrowing needs an aligned float pointer: reading through a misaligned float* is undefined behaviour.
    if (reinterpret_cast<uintptr_t>(source) % alignof(float) == 0) {
      return Tensor::borrow(file, source, std::move(shape), DType::f32, file->mapped());
    }
    Tensor copy(std::move(shape), DType::f32);
    if (count > 0) std::memcpy(copy.raw_data(), source, static_cast<size_t>(count) * sizeof(float));
    return copy;
  }
  if (stored != DType::f16 && stored != DType::bf16) {
    throw InvalidArgument(concat("f32_tensor_from_file: cannot convert ", dtype_name(stored), " to f32"));
  }
  Tensor converted(std::move(shape), DType::f32);
  float* out = converted.data<float>();
  // Plain loops over whole chunks, with the conversions inlined so the compiler vectorises them.
  core::parallel_rows(count, 1 << 16, [&](int64_t begin, int64_t end) {
    if (stored == DType::bf16) {
      for (int64_t i = begin; i < end; ++i) out[i] = std::bit_cast<float>(uint32_t{load_u16(source, i)} << 16);
    } else {
      for (int64_t i = begin; i < end; ++i) out[i] = half_to_float(load_u16(source, i));
    }
  });
  return converted;
}

}  // namespace jagged::io
