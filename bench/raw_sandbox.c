// The floor for `packvisor exec -- /bin/true`: the least a clone-to-exec sandbox of the same
// shape does, with nothing packvisor adds (no configuration, no host probe, no cgroup, no
// verification, no /etc, no rlimits). Used by bench/exec_bench.sh as a reference row only.
//
//   raw_sandbox POLICY.bpf HOST_ID /bin/true     (root)
//
// clone3 with user, mount, pid, ipc, uts, cgroup and network namespaces (inside id 1000 mapped to
// HOST_ID, as packvisor does); the child makes / private, builds a tmpfs root with /usr bound
// read-only, the /bin, /lib, /lib64 symlinks, /proc, a /dev holding null, and /tmp, pivots,
// detaches the old root, sets the hostname, drops every capability, sets no_new_privs, loads the
// BPF file (packvisor's own policy, written by bench/make_bpf) and forks the command as PID 2;
// PID 1 waits for it and exits with its status.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sock_filter filter[4096];
static struct sock_fprog program;
static int go_ahead[2];

static void Die(const char* what) {
  perror(what);
  _exit(125);
}

static void Check(int result, const char* what) {
  if (result != 0) Die(what);
}

static void WriteFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) Die(path);
  close(fd);
}

static int Child(char** argv) {
  char byte;
  close(go_ahead[1]);
  if (read(go_ahead[0], &byte, 1) != 1) Die("go-ahead");
  Check(syscall(SYS_setresgid, 1000, 1000, 1000), "setresgid");
  Check(syscall(SYS_setresuid, 1000, 1000, 1000), "setresuid");
  Check(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make-rprivate");
  Check(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m"), "tmpfs");
  Check(chdir("/tmp"), "chdir");
  Check(mkdir("oldroot", 0700), "mkdir oldroot");
  Check(syscall(SYS_pivot_root, ".", "oldroot"), "pivot_root");
  Check(chdir("/"), "chdir /");
  Check(mkdir("/usr", 0755), "mkdir /usr");
  Check(mount("/oldroot/usr", "/usr", NULL, MS_BIND | MS_REC, NULL), "bind /usr");
  Check(mount(NULL, "/usr", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL),
        "remount /usr");
  Check(symlink("usr/bin", "/bin") | symlink("usr/lib", "/lib") | symlink("usr/lib64", "/lib64"),
        "symlinks");
  Check(mkdir("/proc", 0555), "mkdir /proc");
  Check(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "proc");
  Check(mkdir("/dev", 0755), "mkdir /dev");
  Check(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"), "/dev");
  int null_fd = open("/dev/null", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (null_fd < 0) Die("/dev/null");
  close(null_fd);
  Check(mount("/oldroot/dev/null", "/dev/null", NULL, MS_BIND, NULL), "bind /dev/null");
  Check(mkdir("/tmp", 01777), "mkdir /tmp");
  Check(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m"), "/tmp");
  Check(umount2("/oldroot", MNT_DETACH), "detach old root");
  Check(rmdir("/oldroot"), "rmdir oldroot");
  Check(sethostname("raw", 3), "sethostname");
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct none[2] = {{0}};
  Check(syscall(SYS_capset, &header, none), "capset");
  Check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
  Check(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program), "seccomp");
  pid_t action = fork();
  if (action < 0) Die("fork");
  if (action == 0) {
    char* envp[] = {"PATH=/usr/bin:/bin", NULL};
    execve(argv[0], argv, envp);
    _exit(127);
  }
  int status;
  if (waitpid(action, &status, 0) != action) Die("waitpid");
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: raw_sandbox POLICY.bpf HOST_ID COMMAND [ARGS...]\n");
    return 125;
  }
  int policy = open(argv[1], O_RDONLY | O_CLOEXEC);
  ssize_t size = policy < 0 ? -1 : read(policy, filter, sizeof(filter));
  if (size <= 0 || size % sizeof(struct sock_filter) != 0) Die(argv[1]);
  program.len = (unsigned short)(size / sizeof(struct sock_filter));
  program.filter = filter;
  unsigned long host_id = strtoul(argv[2], NULL, 10);
  Check(pipe2(go_ahead, O_CLOEXEC), "pipe2");
  // The namespace's creator must hold the mapped id, or the child's files get no owner (EOVERFLOW).
  Check(syscall(SYS_setresgid, -1, host_id, -1) | syscall(SYS_setresuid, -1, host_id, -1),
        "become host id");
  struct clone_args args = {0};
  args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
               CLONE_NEWCGROUP | CLONE_NEWNET;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) Child(argv + 3);
  if (pid < 0) Die("clone3");
  Check(syscall(SYS_setresuid, -1, 0, -1) | syscall(SYS_setresgid, -1, 0, -1), "back to root");
  close(go_ahead[0]);
  char path[64], map[64];
  snprintf(map, sizeof(map), "1000 %lu 1\n", host_id);
  snprintf(path, sizeof(path), "/proc/%ld/setgroups", pid);
  WriteFile(path, "deny");
  snprintf(path, sizeof(path), "/proc/%ld/uid_map", pid);
  WriteFile(path, map);
  snprintf(path, sizeof(path), "/proc/%ld/gid_map", pid);
  WriteFile(path, map);
  if (write(go_ahead[1], "x", 1) != 1) Die("go-ahead");
  int status;
  if (waitpid((pid_t)pid, &status, 0) != pid) Die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
