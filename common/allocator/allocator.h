#pragma once

#include <string>

namespace vigil {

/// What MemoryAllocator() says when mimalloc does not serve the process.
inline constexpr char kSystemMalloc[] = "system malloc";

/// The malloc that serves this process: "mimalloc <version>" when the build links mimalloc
/// (VIGIL_ALLOCATOR=mimalloc, docs/verifier.md#memory-allocator) and it really serves malloc and
/// operator new, else "system malloc". A process that was linked against mimalloc but whose malloc
/// resolves elsewhere (a link order that lets libc's win) says "system malloc", so a test can
/// catch it.
std::string MemoryAllocator();

}  // namespace vigil
