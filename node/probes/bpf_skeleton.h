#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vigil::node {

/// The absl::Status for a failed libbpf call that returned `-err` or set errno to `err`.
inline absl::Status LibbpfError(absl::string_view what, int err) {
  if (err < 0) err = -err;
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case ENOMEM:
    case E2BIG:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

/// Owns a bpftool-generated skeleton `T` (bpftool >= 7.1 gives every skeleton static C++
/// members open/load/attach/destroy/elf_bytes). Open, then set tunables through `rodata`
/// and map sizes, then Load, then Attach; the destructor destroys whatever exists
/// (programs, maps, links the skeleton owns).
template <typename T>
class BpfSkeleton {
 public:
  /// Opens the embedded BPF object (parses it, nothing reaches the kernel yet).
  static absl::StatusOr<BpfSkeleton> Open(const bpf_object_open_opts* opts = nullptr) {
    errno = 0;
    T* skel = T::open(opts);
    if (skel == nullptr) return LibbpfError("opening BPF skeleton", errno ? errno : EINVAL);
    return BpfSkeleton(skel);
  }

  /// Creates the maps and loads (verifies) every program whose autoload is on.
  absl::Status Load() {
    if (int err = T::load(skel_); err != 0) return LibbpfError("loading BPF object", err);
    return absl::OkStatus();
  }

  /// Attaches every loaded program to the hook its section names; links stay owned by the
  /// skeleton.
  absl::Status Attach() {
    if (int err = T::attach(skel_); err != 0) return LibbpfError("attaching BPF programs", err);
    return absl::OkStatus();
  }

  /// The BPF object file (ELF) embedded in the skeleton, exactly as bpftool embedded it.
  static std::string_view ElfBytes() {
    size_t size = 0;
    const void* data = T::elf_bytes(&size);
    return std::string_view(static_cast<const char*>(data), size);
  }

  BpfSkeleton(BpfSkeleton&& other) noexcept : skel_(std::exchange(other.skel_, nullptr)) {}
  BpfSkeleton& operator=(BpfSkeleton&& other) noexcept {
    if (this != &other) {
      Reset();
      skel_ = std::exchange(other.skel_, nullptr);
    }
    return *this;
  }
  BpfSkeleton(const BpfSkeleton&) = delete;
  BpfSkeleton& operator=(const BpfSkeleton&) = delete;
  ~BpfSkeleton() { Reset(); }

  T* get() const { return skel_; }
  T* operator->() const { return skel_; }

 private:
  explicit BpfSkeleton(T* skel) : skel_(skel) {}
  void Reset() {
    if (skel_ != nullptr) T::destroy(skel_);
    skel_ = nullptr;
  }

  T* skel_ = nullptr;
};

}  // namespace vigil::node
