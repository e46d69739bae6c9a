#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "jagged/error.h"

namespace jagged::io {

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

Tensor stored_tensor_from_file(const std::shared_ptr<const MappedFile>& file, uint64_t offset, Shape shape,
                               DType stored) {
  if (stored != DType::f32 && !is_half_dtype(stored)) {
    throw InvalidArgument(concat("stored_tensor_from_file: cannot read ", dtype_name(stored), " values"));
  }
  const std::byte* source = file->bytes().data() + offset;
  // Borrowing needs an aligned element pointer: reading through a misaligned one is undefined behaviour.
  if (reinterpret_cast<uintptr_t>(source) % dtype_size(stored) == 0) {
    return Tensor::borrow(file, source, std::move(shape), stored, file->mapped());
  }
  Tensor copy(std::move(shape), stored);
  if (copy.nbytes() > 0) std::memcpy(copy.raw_data(), source, copy.nbytes());
  return copy;
}

Tensor f32_tensor_from_file(const std::shared_ptr<const MappedFile>& file, uint64_t offset, Shape shape,
                            DType stored) {
  Tensor values = stored_tensor_from_file(file, offset, std::move(shape), stored);
  if (stored == DType::f32) return values;
  Tensor widened = values.to_f32();
  values.release_file_pages();
  return widened;
}

}  // namespace jagged::io
