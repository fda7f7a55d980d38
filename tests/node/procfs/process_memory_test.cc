#include "node/procfs/process_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

TEST(ProcessMemoryTest, TheInternalShmDeviceIsAMemfdsDevice) {
  int fd = memfd_create("probe", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  EXPECT_EQ(InternalShmDevice(), static_cast<uint64_t>(st.st_dev));
}

struct AnonymousCase {
  const char* perms;
  uint32_t major, minor;
  uint64_t inode;
  const char* path;
  bool anonymous;
};

class AnonymousMemoryTest : public ::testing::TestWithParam<AnonymousCase> {};

TEST_P(AnonymousMemoryTest, TellsAnonymousMemoryFromFiles) {
  const AnonymousCase& c = GetParam();
  procfs::Mapping m;
  m.permissions = c.perms;
  m.dev_major = c.major;
  m.dev_minor = c.minor;
  m.inode = c.inode;
  m.path = c.path;
  EXPECT_EQ(IsAnonymousMemory(m, makedev(0, 1)), c.anonymous) << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Mappings, AnonymousMemoryTest,
    ::testing::Values(
        // No inode: anonymous, except the kernel's own pages.
        AnonymousCase{"rwxp", 0, 0, 0, "", true}, AnonymousCase{"rwxp", 0, 0, 0, "[heap]", true},
        AnonymousCase{"r-xp", 0, 0, 0, "[anon:jit]", true},
        AnonymousCase{"r-xp", 0, 0, 0, "[vdso]", false},
        AnonymousCase{"--xp", 0, 0, 0, "[vsyscall]", false},
        // Inodes of the kernel's shared-memory mount (device 0:1 here), whatever the name.
        AnonymousCase{"rwxs", 0, 1, 1053, "/dev/zero (deleted)", true},
        AnonymousCase{"r-xs", 0, 1, 1054, "/memfd:jit (deleted)", true},
        AnonymousCase{"rwxs", 0, 1, 7, "/SYSV0000002a (deleted)", true},
        AnonymousCase{"rwxs", 0, 1, 8, "/renamed by nobody", true},
        // hugetlb memfds and shared memory live elsewhere; their names give them away.
        AnonymousCase{"r-xs", 0, 15, 9, "/memfd:huge (deleted)", true},
        AnonymousCase{"rwxs", 0, 15, 9, "/anon_hugepage (deleted)", true},
        // Files: on disk, on tmpfs, deleted.
        AnonymousCase{"r-xp", 254, 0, 247134, "/usr/bin/cat", false},
        AnonymousCase{"r-xs", 0, 26, 12, "/dev/shm/jit", false},
        AnonymousCase{"r-xp", 254, 0, 99, "/tmp/ffiXyz (deleted)", false}));

TEST(ProcessMemoryTest, WithoutTheShmDeviceTheNamesDecide) {
  procfs::Mapping m;
  m.permissions = "r-xs";
  m.inode = 1054;
  m.path = "/memfd:jit (deleted)";
  EXPECT_TRUE(IsAnonymousMemory(m, 0));
  m.path = "/usr/lib/libjit.so";
  EXPECT_FALSE(IsAnonymousMemory(m, 0));
}

// A reader without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (vigil-node run's main process)
// may read the map_files links but not open them: the files are hashed through their paths.
TEST(ProcessMemoryTest, HashesThroughThePathWhenMapFilesLinksCannotBeOpened) {
  auto dir = testing::TestTempDir::Create("map-files");
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::vector<procfs::Mapping> executable;
  ASSERT_TRUE(procfs::ForEachMapping("/proc/self/maps", [&](procfs::Mapping&& m) {
                if (m.executable() && !m.anonymous() && m.path.front() == '/') {
                  executable.push_back(std::move(m));
                }
              }).ok());
  ASSERT_FALSE(executable.empty());
  // Links that read as a path but open nothing, as map_files does for such a reader.
  for (const procfs::Mapping& m : executable) {
    std::filesystem::create_symlink(dir->path() + "/unreachable" + m.path,
                                    absl::StrFormat("%s/%x-%x", dir->path(), m.start, m.end));
  }
  MemorySource src;
  src.dir = "/proc/self";
  src.map_files_dir = dir->path();
  src.may_be_locked = false;
  FileHashCache hashes;
  v1::MemoryState mem;
  std::vector<absl::Status> problems;
  ReadExecutableMemory(src, &hashes, &mem, &problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_GT(mem.executable_files_size(), 0);
  for (const v1::MappedFile& f : mem.executable_files()) {
    EXPECT_EQ(f.sha256().size(), 64u) << f.path();
  }
}

}  // namespace
}  // namespace vigil::node
