// The sandbox's root filesystem. The parent turns a SandboxSpec into a MountPlan (pure data, unit
// tested); the child, after pivot_root onto a fresh tmpfs, carries the plan out op by op. Host
// paths in the plan are prefixed with the old root ("/oldroot/usr"), where the host's tree sits
// until the child detaches it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

inline constexpr const char* kOldRoot = "/oldroot";
// Where the child mounts its new root tmpfs before pivot_root (inside its own mount namespace).
inline constexpr const char* kStagingRoot = "/tmp";

enum class MountOpKind {
  kMakeDir,    // mkdir target (mode)
  kBindDir,    // mkdir target, bind source (recursive), then apply attributes recursively
  kBindFile,   // create target file, bind source, then apply attributes
  kTmpfs,      // mount tmpfs at target with data, attributes
  kProc,       // mount a fresh proc at target
  kSymlink,    // symlink(source, target)
  kWriteFile,  // create target (mode) with content `source`
  kSetAttr,    // mount_setattr on target (recursive) without mounting anything
};

struct MountOp {
  MountOp(MountOpKind kind_, std::string source_, std::string target_, uint64_t attr_set_ = 0,
          uint64_t attr_clr_ = 0, std::string data_ = {}, mode_t mode_ = 0755, int source_fd_ = -1)
      : kind(kind_),
        source(std::move(source_)),
        target(std::move(target_)),
        attr_set(attr_set_),
        attr_clr(attr_clr_),
        data(std::move(data_)),
        mode(mode_),
        source_fd(source_fd_) {}

  MountOpKind kind;
  std::string source;  // bind source under kOldRoot, symlink target, or file content
  std::string target;  // path in the new root
  uint64_t attr_set = 0;
  uint64_t attr_clr = 0;
  std::string data;  // tmpfs options
  mode_t mode = 0755;
  // kBindDir only: a detached mount tree (open_tree(OPEN_TREE_CLONE)) made by the parent, moved
  // into place with move_mount instead of binding `source` by path.
  int source_fd = -1;

  std::string Describe() const;
};

// What the host looks like, gathered once by ProbeHostLayout(); a parameter so that plan building
// is a pure function.
struct HostLayout {
  struct Entry {
    enum Type { kDir, kFile, kSymlink };
    Entry(std::string path_, Type type_, std::string symlink_target_ = {})
        : path(std::move(path_)), type(type_), symlink_target(std::move(symlink_target_)) {}

    std::string path;  // absolute host path, e.g. "/lib64" or "/etc/ssl"
    Type type;
    std::string symlink_target;  // for kSymlink
    // Copied into the sandbox's root tmpfs instead of bound: kFile with `content`, or kDir
    // created empty (its copied children follow it in the list). Copies are much cheaper than a
    // bind mount each, and the root is read-only in the end either way.
    bool copied = false;
    std::string content;
  };
  std::vector<Entry> root_entries;  // /usr, /bin, /lib*, /sbin
  // The /etc entries the sandbox needs, where present: small files and small directories copied,
  // large directories (ssl, alternatives) bound read-only.
  std::vector<Entry> etc_entries;
  std::vector<std::string> devices;         // /dev nodes present on the host (null, zero, ...)
  std::vector<std::string> proc_read_only;  // /proc subtrees to cover read-only
  std::vector<Entry> extra_binds;           // spec.extra_ro_binds, typed
};

Result<HostLayout> ProbeHostLayout(const SandboxSpec& spec);

struct MountPlan {
  std::vector<MountOp> ops;
};

// The pack and env trees, cloned by the parent as root from paths it resolved without following
// any symlink (so host directories the sandbox ids cannot traverse still work, and nothing the
// sandbox could have written redirects them). -1: none.
struct DetachedTrees {
  int pack = -1;
  int env = -1;
};

// Parent side: clones the spec's pack and env directories into detached mount trees.
class DetachedTreeSet {
 public:
  static Result<DetachedTreeSet> Open(const SandboxSpec& spec);
  DetachedTrees fds() const { return {pack_.get(), env_.get()}; }

 private:
  unique_fd pack_;
  unique_fd env_;
};

MountPlan BuildMountPlan(const SandboxSpec& spec, const HostLayout& host,
                         const DetachedTrees& trees = {});

// The per-execution ops of BuildMountPlan (/pack and /env from `trees`, then spec.files), alone:
// what a prepared sandbox (sandbox/warm_pool.h) carries out at claim, its generic root having
// been built from BuildMountPlan of a spec without pack, env or files.
MountPlan BuildClaimMountPlan(const SandboxSpec& spec, const DetachedTrees& trees);

// The contents of the synthesized /etc/passwd and /etc/group.
std::string SyntheticPasswd(const IdMapping& ids);
std::string SyntheticGroup(const IdMapping& ids);

// Child side. Each returns 0 or an errno; *failed_op gets the index of the op that failed.
// Allocation-free: only system calls on strings the parent prepared.
int MakeMountsPrivate();
int MountStagingRoot(const char* tmpfs_options);
int PivotToStagingRoot();
int ApplyMountPlan(const MountPlan& plan, int* failed_op);
// One op given by its parts: a prepared sandbox receives the ops of its claim in a flat payload
// (sandbox/warm_pool.cc), not as MountOp objects. `source` has `source_size` bytes (file content
// need not be NUL-terminated); the others are NUL-terminated or null.
struct RawMountOp {
  MountOpKind kind;
  const char* source;
  size_t source_size;
  const char* target;
  uint64_t attr_set;
  uint64_t attr_clr;
  const char* data;
  mode_t mode;
  int source_fd;
};
int ApplyRawMountOp(const RawMountOp& op);
int DetachOldRoot();
int MakeRootReadOnly();

}  // namespace packvisor::sandbox
