#include "common/allocator/allocator.h"

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"

#ifdef VIGIL_ALLOCATOR_MIMALLOC
#include <mimalloc.h>
#endif

namespace vigil {

std::string MemoryAllocator() {
#ifdef VIGIL_ALLOCATOR_MIMALLOC
  // Both entry points the code allocates through: malloc (C libraries: gRPC core, OpenSSL,
  // SQLite) and operator new (protobuf, the standard library).
  void* from_malloc = std::malloc(64);
  auto from_new = std::make_unique<char[]>(64);
  const bool ours = mi_is_in_heap_region(from_malloc) && mi_is_in_heap_region(from_new.get());
  std::free(from_malloc);
  if (ours) {
    const int v = mi_version();
    return absl::StrCat("mimalloc ", v / 100, ".", (v / 10) % 10, ".", v % 10);
  }
#endif
  return kSystemMalloc;
}

}  // namespace vigil
