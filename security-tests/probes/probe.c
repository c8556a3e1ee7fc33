// probe: runs named syscalls with harmless bad arguments and reports what happened.
//
//   probe CASE...
//
// For every case it prints "CASE reached" (flushed) before the attempt, then "CASE errno=N" or
// "CASE ok". The arguments are chosen so that, when the kernel really runs the call, it fails early
// with EBADF/EFAULT/EINVAL/ESRCH/ENOTTY (or succeeds harmlessly, or ENOSYS for the numbers that
// were never implemented); a seccomp denial shows up as the policy's errno
// (EPERM/ENOSYS/EAFNOSUPPORT) or as a SIGSYS death (int80_getpid, x32_getpid).
// A few informational cases (fds, cwd, root_inodes, proc_exe_write) print facts about the sandbox.
//
// Real attacks, with real payloads, for the tests that check their effect from outside:
//   tty_*            (B13) push bytes into a terminal with TIOCSTI / TIOCLINUX on fd 0/1/2 and
//                    on /dev/tty; the payload bytes are 0x01 (fd), 0x02 (high bits set),
//                    0x05 (/dev/tty) and 0x06 (/dev/tty, high bits), which packvisor's own
//                    output never holds raw.
//   xattack:LABEL:PID (A08) ptrace, process_vm_readv, /proc/PID/mem, pidfd_open + pidfd_getfd
//                    and kill(SIGKILL) against PID; one "LABEL.<attempt>" result per attempt.
//   speculation      (B22) tries to turn speculation back on, then prints the Speculation lines
//                    of /proc/self/status.
//
// Built static (-static) so that no dynamic loader adds syscalls of its own.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/tiocl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_KEY
#define AF_KEY 15
#endif
#ifndef AF_PACKET
#define AF_PACKET 17
#endif
#define NETLINK_AUDIT_PROTO 9
#define X32_SYSCALL_BIT 0x40000000UL

// An invalid socket type (>= SOCK_MAX, within SOCK_TYPE_MASK): the kernel rejects it with EINVAL
// right after the family range check, before it loads or asks anything of the family.
#define BAD_SOCK_TYPE 15

#define BAD ((void*)1)
#define NOPID 0x3fffffffL  // larger than pid_max can be: ESRCH

typedef long (*CaseFn)(void);

struct Case {
  const char* name;
  CaseFn fn;  // returns the raw syscall result (-1 with errno set on failure)
};

static long c_mount(void) { return syscall(SYS_mount, BAD, BAD, BAD, 0UL, BAD); }
static long c_umount2(void) { return syscall(SYS_umount2, BAD, 0xffff0000UL); }
static long c_pivot_root(void) { return syscall(SYS_pivot_root, BAD, BAD); }
static long c_chroot(void) { return syscall(SYS_chroot, BAD); }
static long c_fsopen(void) { return syscall(SYS_fsopen, BAD, 0xffffffffUL); }
static long c_fsconfig(void) { return syscall(SYS_fsconfig, -1, 0xffffUL, BAD, BAD, 0); }
static long c_fsmount(void) { return syscall(SYS_fsmount, -1, 0xffffffffUL, 0xffffffffUL); }
static long c_fspick(void) { return syscall(SYS_fspick, -1, BAD, 0xffffffffUL); }
static long c_open_tree(void) { return syscall(SYS_open_tree, -1, BAD, 0xffffffffUL); }
static long c_move_mount(void) { return syscall(SYS_move_mount, -1, BAD, -1, BAD, 0xffffffffUL); }
static long c_mount_setattr(void) {
  return syscall(SYS_mount_setattr, -1, BAD, 0xffffffffUL, BAD, 0);
}
static long c_setns(void) { return syscall(SYS_setns, -1, 0); }
// KEYCTL_DESCRIBE (6) of key 0, which never exists.
static long c_keyctl(void) { return syscall(SYS_keyctl, 6, 0, BAD, 1, 0); }
static long c_add_key(void) { return syscall(SYS_add_key, BAD, BAD, BAD, 1, 0); }
static long c_request_key(void) { return syscall(SYS_request_key, BAD, BAD, BAD, 0); }
static long c_bpf(void) { return syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, BAD, 0); }
static long c_perf_event_open(void) { return syscall(SYS_perf_event_open, BAD, 0, -1, -1, 0); }
static long c_userfaultfd(void) { return syscall(SYS_userfaultfd, 0xffffffffUL); }
static long c_ptrace(void) { return syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, NOPID, 0, 0); }
static long c_process_vm_readv(void) {
  return syscall(SYS_process_vm_readv, NOPID, BAD, 1, BAD, 1, 1);
}
static long c_process_vm_writev(void) {
  return syscall(SYS_process_vm_writev, NOPID, BAD, 1, BAD, 1, 1);
}
static long c_pidfd_getfd(void) { return syscall(SYS_pidfd_getfd, -1, -1, 0); }
static long c_kcmp(void) { return syscall(SYS_kcmp, NOPID, NOPID, 0, 0, 0); }
static long c_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, BAD, 0xffffffffUL); }
static long c_kexec_file_load(void) {
  return syscall(SYS_kexec_file_load, -1, -1, 0, BAD, 0xffffffffUL);
}
static long c_init_module(void) { return syscall(SYS_init_module, BAD, 0, BAD); }
static long c_finit_module(void) { return syscall(SYS_finit_module, -1, BAD, 0xffffffffUL); }
static long c_delete_module(void) { return syscall(SYS_delete_module, BAD, 0); }
static long c_create_module(void) { return syscall(SYS_create_module, BAD, 0); }
// Wrong magic numbers: the kernel refuses them with EINVAL (after the capability check).
static long c_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, BAD); }
static long c_swapon(void) { return syscall(SYS_swapon, BAD, 0); }
static long c_swapoff(void) { return syscall(SYS_swapoff, BAD); }
static long c_acct(void) { return syscall(SYS_acct, BAD); }
static long c_syslog(void) { return syscall(SYS_syslog, 1000, BAD, 1); }
static long c_settimeofday(void) { return syscall(SYS_settimeofday, BAD, BAD); }
static long c_clock_settime(void) { return syscall(SYS_clock_settime, CLOCK_REALTIME, BAD); }
static long c_adjtimex(void) { return syscall(SYS_adjtimex, BAD); }
static long c_clock_adjtime(void) { return syscall(SYS_clock_adjtime, CLOCK_REALTIME, BAD); }
static long c_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, BAD, 0); }
static long c_name_to_handle_at(void) {
  return syscall(SYS_name_to_handle_at, -1, BAD, BAD, BAD, 0xffffffffUL);
}
static long c_quotactl(void) { return syscall(SYS_quotactl, 0xffffffffUL, BAD, 0, BAD); }
#ifdef SYS_quotactl_fd
static long c_quotactl_fd(void) { return syscall(SYS_quotactl_fd, -1, 0xffffffffUL, 0, BAD); }
#endif
static long c_lookup_dcookie(void) { return syscall(SYS_lookup_dcookie, 0, BAD, 0); }
static long c_nfsservctl(void) { return syscall(SYS_nfsservctl, 0, BAD, BAD); }
static long c_uselib(void) { return syscall(SYS_uselib, BAD); }
static long c_sysctl(void) { return syscall(SYS__sysctl, BAD); }
static long c_get_kernel_syms(void) { return syscall(SYS_get_kernel_syms, BAD); }
static long c_query_module(void) { return syscall(SYS_query_module, BAD, 0, BAD, 0, BAD); }
// Inside the sandbox only: on a host terminal a successful vhangup would hang it up.
static long c_vhangup(void) { return syscall(SYS_vhangup); }
static long c_iopl(void) { return syscall(SYS_iopl, 4); }  // level > 3: EINVAL
static long c_ioperm(void) { return syscall(SYS_ioperm, 0xfffffff0UL, 0x100UL, 1); }
static long c_fanotify_init(void) { return syscall(SYS_fanotify_init, 0xffffffffUL, 0xffffffffUL); }
static long c_sethostname(void) { return syscall(SYS_sethostname, BAD, 4096); }
static long c_setdomainname(void) { return syscall(SYS_setdomainname, BAD, 4096); }
static long c_io_uring_setup(void) { return syscall(SYS_io_uring_setup, 1, BAD); }
static long c_io_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, BAD, 0); }
static long c_io_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, BAD, 0); }

// Docker's blocked set (issue 15, catalog B73-B93): each with arguments the kernel refuses early
// (EINVAL/EFAULT/ESRCH/EBADF) or, for the numbers that never had an implementation, ENOSYS.
// The kernel returns modify_ldt's result as an unsigned int (a 64-bit -EINVAL arrives as
// 0xffffffea), so its errors are decoded here; seccomp's EPERM arrives as a normal -1/errno.
static long c_modify_ldt(void) {
  long ret = syscall(SYS_modify_ldt, 1 /* write */, BAD, 0UL);  // bytecount 0: EINVAL
  if (ret > 0xfffff000L && ret <= 0xffffffffL) {
    errno = (int)(0x100000000L - ret);
    return -1;
  }
  return ret;
}
static long c_mbind(void) { return syscall(SYS_mbind, BAD, 4096UL, 0, 0UL, 0UL, 0xffffffffUL); }
static long c_set_mempolicy(void) { return syscall(SYS_set_mempolicy, 0xffffUL, 0UL, 0UL); }
static long c_get_mempolicy(void) {
  return syscall(SYS_get_mempolicy, BAD, 0UL, 0UL, 0UL, 0xffffffffUL);
}
static long c_migrate_pages(void) { return syscall(SYS_migrate_pages, NOPID, 1UL, BAD, BAD); }
static long c_move_pages(void) {
  return syscall(SYS_move_pages, NOPID, 1UL, BAD, 0UL, BAD, 0xffffffffUL);
}
static long c_set_mempolicy_home_node(void) {
  return syscall(SYS_set_mempolicy_home_node, 0UL, 0UL, 0UL, 0xffffUL);
}
static long c_pkey_mprotect(void) { return syscall(SYS_pkey_mprotect, BAD, 4096UL, 0UL, -1L); }
static long c_pkey_alloc(void) { return syscall(SYS_pkey_alloc, 0xffffffffUL, 0UL); }
static long c_pkey_free(void) { return syscall(SYS_pkey_free, -1L); }
static long c_process_madvise(void) {
  return syscall(SYS_process_madvise, -1, BAD, 1UL, 0, 0xffffUL);
}
static long c_sysfs(void) { return syscall(SYS_sysfs, 99, 0UL, 0UL); }
static long c_ustat(void) { return syscall(SYS_ustat, 0UL, BAD); }
static long c_getpmsg(void) { return syscall(SYS_getpmsg, -1, BAD, BAD, BAD, BAD); }
static long c_putpmsg(void) { return syscall(SYS_putpmsg, -1, BAD, BAD, 0, 0); }
static long c_afs_syscall(void) { return syscall(SYS_afs_syscall, 0, 0, 0, 0, 0); }
static long c_tuxcall(void) { return syscall(SYS_tuxcall, 0, 0, 0); }
static long c_security(void) { return syscall(SYS_security, 0, 0, 0); }
static long c_vserver(void) { return syscall(SYS_vserver, 0, 0, 0); }
// unshare without a namespace flag: harmless, and now denied like every unshare.
static long c_unshare_files(void) { return syscall(SYS_unshare, CLONE_FILES); }
// Makes the parent the tracer: harmless for the probe, which neither execs nor gets a signal.
static long c_ptrace_traceme(void) { return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }
// Executable data: every later readable mapping would also be executable.
static long c_personality_read_implies_exec(void) {
  return syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC);
}
// Calls numbered above the policy's highest reviewed one (kHighestReviewedSyscall, 450), by
// number: the build's headers may predate them. The kernel runs them when unfiltered.
static long c_cachestat(void) { return syscall(451, -1, BAD, BAD, 0); }
static long c_fchmodat2(void) { return syscall(452, -1, BAD, 0, 0); }
static long c_mseal(void) { return syscall(462, BAD, 4096UL, 0UL); }

// The namespace cases can really create a process or namespace if the filter lets them through:
// a child exits at once and the parent reaps it.
static long ReapChild(long ret) {
  if (ret == 0) syscall(SYS_exit_group, 0);
  if (ret > 0) {
    int saved = errno;
    waitpid((pid_t)ret, NULL, __WALL);
    errno = saved;
    return 0;
  }
  return ret;
}
static long c_clone3_newuser(void) {
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  return ReapChild(syscall(SYS_clone3, &args, sizeof(args)));
}
static long c_clone_newuser(void) {
  return ReapChild(syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0));
}
static long c_unshare_newuser(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long c_unshare_newns(void) { return syscall(SYS_unshare, CLONE_NEWNS); }
static long c_personality_linux32(void) { return syscall(SYS_personality, PER_LINUX32); }
static long c_personality_query(void) { return syscall(SYS_personality, 0xffffffffUL); }
static long c_mknod_chr(void) { return syscall(SYS_mknod, BAD, S_IFCHR | 0600, makedev(1, 3)); }
static long c_mknod_blk(void) { return syscall(SYS_mknod, BAD, S_IFBLK | 0600, makedev(7, 0)); }
static long c_mknodat_chr(void) {
  return syscall(SYS_mknodat, AT_FDCWD, BAD, S_IFCHR | 0600, makedev(1, 3));
}
static long c_ioctl_tiocsti(void) { return syscall(SYS_ioctl, 0, TIOCSTI, BAD); }
// CVE-2019-10063: the kernel only looks at the low 32 bits of the request.
static long c_ioctl_tiocsti_highbits(void) {
  return syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | (1UL << 32), BAD);
}
static long c_ioctl_tiocsti_fdm1(void) { return syscall(SYS_ioctl, -1, TIOCSTI, BAD); }
static long c_ioctl_tioclinux(void) { return syscall(SYS_ioctl, 0, TIOCLINUX, BAD); }
static long Sock(unsigned long family, int protocol) {
  long fd = syscall(SYS_socket, family, BAD_SOCK_TYPE, protocol);
  if (fd >= 0) close((int)fd);
  return fd < 0 ? fd : 0;
}
static long c_socket_packet(void) { return Sock(AF_PACKET, 0); }
static long c_socket_vsock(void) { return Sock(AF_VSOCK, 0); }
static long c_socket_alg(void) { return Sock(AF_ALG, 0); }
static long c_socket_netlink_audit(void) { return Sock(AF_NETLINK, NETLINK_AUDIT_PROTO); }
static long c_socket_key(void) { return Sock(AF_KEY, 2 /* PF_KEY_V2 */); }
// AF_INET with bit 32 set: the kernel truncates the family to int and would see AF_INET.
static long c_socket_highbits(void) { return Sock((1UL << 32) | AF_INET, 0); }
static long c_socket_packet_highbits(void) { return Sock((1UL << 32) | AF_PACKET, 0); }
static long SockPair(unsigned long family) {
  int sv[2] = {-1, -1};
  long ret = syscall(SYS_socketpair, family, BAD_SOCK_TYPE, 0, sv);
  if (ret == 0) {
    close(sv[0]);
    close(sv[1]);
  }
  return ret;
}
static long c_socketpair_vsock(void) { return SockPair(AF_VSOCK); }
static long c_socketpair_highbits(void) { return SockPair((1UL << 32) | AF_UNIX); }

// i386 ABI from a 64-bit process: getpid is 20 there.
static long c_int80_getpid(void) {
  long ret = 20;
  __asm__ volatile("int $0x80" : "+a"(ret) : : "memory", "rcx", "r11");
  if (ret < 0 && ret > -4096) {
    errno = (int)-ret;
    return -1;
  }
  return ret >= 0 ? 0 : ret;
}
static long c_x32_getpid(void) {
  long ret = syscall(X32_SYSCALL_BIT | SYS_getpid);
  return ret < 0 ? ret : 0;
}

// --- informational cases -----------------------------------------------------------------------

// Prints "fds N -> TARGET" for each open fd except the directory stream's own.
static long c_fds(void) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == NULL) return -1;
  int own = dirfd(dir);
  struct dirent* entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    int fd = atoi(entry->d_name);
    if (fd == own) continue;
    char path[64], target[4096];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    target[n < 0 ? 0 : n] = '\0';
    printf("fds %d -> %s\n", fd, target);
  }
  closedir(dir);
  return 0;
}

static long c_cwd(void) {
  char target[4096];
  ssize_t n = readlink("/proc/self/cwd", target, sizeof(target) - 1);
  if (n < 0) return -1;
  target[n] = '\0';
  printf("cwd %s\n", target);
  return 0;
}

static long c_root_inodes(void) {
  struct stat root, parent, dotdot3;
  if (stat("/", &root) != 0 || stat("/..", &parent) != 0 || stat("/../../..", &dotdot3) != 0) {
    return -1;
  }
  printf("root_inodes / %lu:%lu /.. %lu:%lu /../../.. %lu:%lu\n", (unsigned long)root.st_dev,
         (unsigned long)root.st_ino, (unsigned long)parent.st_dev, (unsigned long)parent.st_ino,
         (unsigned long)dotdot3.st_dev, (unsigned long)dotdot3.st_ino);
  return 0;
}

// Tries to open /proc/PID/exe of every visible process for writing, directly and through an
// O_PATH descriptor reopened via /proc/self/fd (runc CVE-2019-5736). One line per attempt.
static long c_proc_exe_write(void) {
  DIR* dir = opendir("/proc");
  if (dir == NULL) return -1;
  struct dirent* entry;
  long opened = 0;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char path[300];
    snprintf(path, sizeof(path), "/proc/%s/exe", entry->d_name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    printf("proc_exe_write %s direct %s\n", path, fd >= 0 ? "OPENED" : strerror(errno));
    if (fd >= 0) {
      ++opened;
      close(fd);
    }
    int opath = open(path, O_PATH | O_CLOEXEC);
    if (opath < 0) {
      printf("proc_exe_write %s o_path %s\n", path, strerror(errno));
      continue;
    }
    char via[64];
    snprintf(via, sizeof(via), "/proc/self/fd/%d", opath);
    fd = open(via, O_WRONLY | O_CLOEXEC);
    printf("proc_exe_write %s reopen %s\n", path, fd >= 0 ? "OPENED" : strerror(errno));
    if (fd >= 0) {
      ++opened;
      close(fd);
    }
    close(opath);
  }
  closedir(dir);
  printf("proc_exe_write opened=%ld\n", opened);
  return 0;
}

// --- B13: terminal injection with real bytes ---------------------------------------------------

#define TIOCSTI_HIGHBITS ((0x123UL << 32) | (unsigned long)TIOCSTI)

static long Sti(int fd, unsigned long request, char byte) {
  return syscall(SYS_ioctl, fd, request, &byte);
}
static long c_tty_tiocsti_fd0(void) { return Sti(0, TIOCSTI, 0x01); }
static long c_tty_tiocsti_fd1(void) { return Sti(1, TIOCSTI, 0x01); }
static long c_tty_tiocsti_fd2(void) { return Sti(2, TIOCSTI, 0x01); }
static long c_tty_tiocsti_highbits_fd0(void) { return Sti(0, TIOCSTI_HIGHBITS, 0x02); }
static long c_tty_tiocsti_highbits_fd1(void) { return Sti(1, TIOCSTI_HIGHBITS, 0x02); }
static long c_tty_tiocsti_highbits_fd2(void) { return Sti(2, TIOCSTI_HIGHBITS, 0x02); }
// Opens /dev/tty (printing "tty_devtty open ok|errno=N") and pushes a byte into it; when the open
// fails, that failure is the attempt's result.
static long DevTtySti(unsigned long request, char byte) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    printf("tty_devtty open errno=%d\n", err);
    errno = err;
    return -1;
  }
  printf("tty_devtty open ok\n");
  long ret = Sti(fd, request, byte);
  int err = errno;
  close(fd);
  errno = err;
  return ret;
}
static long c_tty_devtty_tiocsti(void) { return DevTtySti(TIOCSTI, 0x05); }
static long c_tty_devtty_tiocsti_highbits(void) { return DevTtySti(TIOCSTI_HIGHBITS, 0x06); }
// TIOCLINUX "paste selection": what injects on a virtual console.
static long Tioclinux(int fd) {
  char subcode = TIOCL_PASTESEL;
  return syscall(SYS_ioctl, fd, TIOCLINUX, &subcode);
}
static long c_tty_tioclinux_fd0(void) { return Tioclinux(0); }
static long c_tty_tioclinux_fd1(void) { return Tioclinux(1); }
static long c_tty_tioclinux_fd2(void) { return Tioclinux(2); }

// --- A08: cross-process attacks on one pid --------------------------------------------------

static void Report(const char* label, const char* attempt, long ret) {
  if (ret < 0) {
    printf("%s.%s errno=%d\n", label, attempt, errno);
  } else {
    printf("%s.%s ok\n", label, attempt);
  }
  fflush(stdout);
}

static void Reached(const char* label, const char* attempt) {
  printf("%s.%s reached\n", label, attempt);
  fflush(stdout);
}

// The first mapping of `pid` when its maps are readable, else a typical text address.
static unsigned long SomeAddress(long pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
  FILE* maps = fopen(path, "re");
  unsigned long start = 0x400000;
  if (maps != NULL) {
    if (fscanf(maps, "%lx", &start) != 1) start = 0x400000;
    fclose(maps);
  }
  return start;
}

static void CrossAttack(const char* label, long pid) {
  long ret;
  if (pid == (long)getpid()) {
    printf("%s self\n", label);  // the guess names this very process: nothing to learn
    return;
  }
  Reached(label, "ptrace_attach");
  ret = syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0);
  Report(label, "ptrace_attach", ret);
  if (ret == 0) {
    waitpid((pid_t)pid, NULL, __WALL);
    syscall(SYS_ptrace, PTRACE_DETACH, pid, 0, 0);
  }
  Reached(label, "ptrace_seize");
  ret = syscall(SYS_ptrace, PTRACE_SEIZE, pid, 0, 0);
  Report(label, "ptrace_seize", ret);
  if (ret == 0) {
    syscall(SYS_ptrace, PTRACE_INTERRUPT, pid, 0, 0);
    waitpid((pid_t)pid, NULL, __WALL);
    syscall(SYS_ptrace, PTRACE_DETACH, pid, 0, 0);
  }
  char buf[8];
  struct iovec local = {buf, sizeof(buf)};
  struct iovec remote = {(void*)SomeAddress(pid), sizeof(buf)};
  Reached(label, "process_vm_readv");
  Report(label, "process_vm_readv", syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/mem", pid);
  Reached(label, "proc_mem");
  ret = open(path, O_RDONLY | O_CLOEXEC);
  Report(label, "proc_mem", ret);
  if (ret >= 0) close((int)ret);
  Reached(label, "pidfd_open");
  long pidfd = syscall(SYS_pidfd_open, pid, 0);
  Report(label, "pidfd_open", pidfd);
  // Without a pidfd the call still runs with -1: a filter that let it through answers EBADF.
  Reached(label, "pidfd_getfd");
  ret = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
  Report(label, "pidfd_getfd", ret);
  if (ret >= 0) close((int)ret);
  if (pidfd >= 0) close((int)pidfd);
  Reached(label, "kill");
  Report(label, "kill", kill((pid_t)pid, SIGKILL));
}

// "xattack:LABEL:PID"; returns 0 when `arg` is not of that form.
static int RunCrossAttack(const char* arg) {
  const char prefix[] = "xattack:";
  if (strncmp(arg, prefix, sizeof(prefix) - 1) != 0) return 0;
  char label[64];
  const char* rest = arg + sizeof(prefix) - 1;
  const char* colon = strchr(rest, ':');
  if (colon == NULL || colon == rest || (size_t)(colon - rest) >= sizeof(label)) return 0;
  memcpy(label, rest, (size_t)(colon - rest));
  label[colon - rest] = '\0';
  CrossAttack(label, strtol(colon + 1, NULL, 10));
  return 1;
}

// --- B22: speculation ----------------------------------------------------------------------------

static long c_speculation(void) {
  const struct {
    const char* name;
    unsigned long which;
  } kinds[] = {{"ssb", PR_SPEC_STORE_BYPASS}, {"ib", PR_SPEC_INDIRECT_BRANCH}};
  for (size_t i = 0; i < 2; ++i) {
    printf("speculation get_%s %d\n", kinds[i].name,
           prctl(PR_GET_SPECULATION_CTRL, kinds[i].which, 0, 0, 0));
    errno = 0;
    int ret = prctl(PR_SET_SPECULATION_CTRL, kinds[i].which, PR_SPEC_ENABLE, 0, 0);
    printf("speculation enable_%s %s%d\n", kinds[i].name,
           ret == 0 ? "ok " : "errno=", ret == 0 ? 0 : errno);
  }
  FILE* status = fopen("/proc/self/status", "re");
  if (status == NULL) return -1;
  char line[256];
  while (fgets(line, sizeof(line), status) != NULL) {
    if (strncmp(line, "Speculation", 11) == 0) printf("speculation %s", line);
  }
  fclose(status);
  return 0;
}

static const struct Case kCases[] = {
    {"mount", c_mount},
    {"umount2", c_umount2},
    {"pivot_root", c_pivot_root},
    {"chroot", c_chroot},
    {"fsopen", c_fsopen},
    {"fsconfig", c_fsconfig},
    {"fsmount", c_fsmount},
    {"fspick", c_fspick},
    {"open_tree", c_open_tree},
    {"move_mount", c_move_mount},
    {"mount_setattr", c_mount_setattr},
    {"setns", c_setns},
    {"keyctl", c_keyctl},
    {"add_key", c_add_key},
    {"request_key", c_request_key},
    {"bpf", c_bpf},
    {"perf_event_open", c_perf_event_open},
    {"userfaultfd", c_userfaultfd},
    {"ptrace", c_ptrace},
    {"process_vm_readv", c_process_vm_readv},
    {"process_vm_writev", c_process_vm_writev},
    {"pidfd_getfd", c_pidfd_getfd},
    {"kcmp", c_kcmp},
    {"kexec_load", c_kexec_load},
    {"kexec_file_load", c_kexec_file_load},
    {"init_module", c_init_module},
    {"finit_module", c_finit_module},
    {"delete_module", c_delete_module},
    {"create_module", c_create_module},
    {"reboot", c_reboot},
    {"swapon", c_swapon},
    {"swapoff", c_swapoff},
    {"acct", c_acct},
    {"syslog", c_syslog},
    {"settimeofday", c_settimeofday},
    {"clock_settime", c_clock_settime},
    {"adjtimex", c_adjtimex},
    {"clock_adjtime", c_clock_adjtime},
    {"open_by_handle_at", c_open_by_handle_at},
    {"name_to_handle_at", c_name_to_handle_at},
    {"quotactl", c_quotactl},
#ifdef SYS_quotactl_fd
    {"quotactl_fd", c_quotactl_fd},
#endif
    {"lookup_dcookie", c_lookup_dcookie},
    {"nfsservctl", c_nfsservctl},
    {"uselib", c_uselib},
    {"_sysctl", c_sysctl},
    {"get_kernel_syms", c_get_kernel_syms},
    {"query_module", c_query_module},
    {"vhangup", c_vhangup},
    {"iopl", c_iopl},
    {"ioperm", c_ioperm},
    {"fanotify_init", c_fanotify_init},
    {"sethostname", c_sethostname},
    {"setdomainname", c_setdomainname},
    {"io_uring_setup", c_io_uring_setup},
    {"io_uring_enter", c_io_uring_enter},
    {"io_uring_register", c_io_uring_register},
    {"modify_ldt", c_modify_ldt},
    {"mbind", c_mbind},
    {"set_mempolicy", c_set_mempolicy},
    {"get_mempolicy", c_get_mempolicy},
    {"migrate_pages", c_migrate_pages},
    {"move_pages", c_move_pages},
    {"set_mempolicy_home_node", c_set_mempolicy_home_node},
    {"pkey_mprotect", c_pkey_mprotect},
    {"pkey_alloc", c_pkey_alloc},
    {"pkey_free", c_pkey_free},
    {"process_madvise", c_process_madvise},
    {"sysfs", c_sysfs},
    {"ustat", c_ustat},
    {"getpmsg", c_getpmsg},
    {"putpmsg", c_putpmsg},
    {"afs_syscall", c_afs_syscall},
    {"tuxcall", c_tuxcall},
    {"security", c_security},
    {"vserver", c_vserver},
    {"unshare_files", c_unshare_files},
    {"ptrace_traceme", c_ptrace_traceme},
    {"personality_read_implies_exec", c_personality_read_implies_exec},
    {"cachestat", c_cachestat},
    {"fchmodat2", c_fchmodat2},
    {"mseal", c_mseal},
    {"clone3_newuser", c_clone3_newuser},
    {"clone_newuser", c_clone_newuser},
    {"unshare_newuser", c_unshare_newuser},
    {"unshare_newns", c_unshare_newns},
    {"personality_linux32", c_personality_linux32},
    {"personality_query", c_personality_query},
    {"mknod_chr", c_mknod_chr},
    {"mknod_blk", c_mknod_blk},
    {"mknodat_chr", c_mknodat_chr},
    {"ioctl_tiocsti", c_ioctl_tiocsti},
    {"ioctl_tiocsti_highbits", c_ioctl_tiocsti_highbits},
    {"ioctl_tiocsti_fdm1", c_ioctl_tiocsti_fdm1},
    {"ioctl_tioclinux", c_ioctl_tioclinux},
    {"socket_packet", c_socket_packet},
    {"socket_vsock", c_socket_vsock},
    {"socket_alg", c_socket_alg},
    {"socket_netlink_audit", c_socket_netlink_audit},
    {"socket_key", c_socket_key},
    {"socket_highbits", c_socket_highbits},
    {"socket_packet_highbits", c_socket_packet_highbits},
    {"socketpair_vsock", c_socketpair_vsock},
    {"socketpair_highbits", c_socketpair_highbits},
    {"int80_getpid", c_int80_getpid},
    {"x32_getpid", c_x32_getpid},
    {"fds", c_fds},
    {"cwd", c_cwd},
    {"root_inodes", c_root_inodes},
    {"proc_exe_write", c_proc_exe_write},
    {"tty_tiocsti_fd0", c_tty_tiocsti_fd0},
    {"tty_tiocsti_fd1", c_tty_tiocsti_fd1},
    {"tty_tiocsti_fd2", c_tty_tiocsti_fd2},
    {"tty_tiocsti_highbits_fd0", c_tty_tiocsti_highbits_fd0},
    {"tty_tiocsti_highbits_fd1", c_tty_tiocsti_highbits_fd1},
    {"tty_tiocsti_highbits_fd2", c_tty_tiocsti_highbits_fd2},
    {"tty_devtty_tiocsti", c_tty_devtty_tiocsti},
    {"tty_devtty_tiocsti_highbits", c_tty_devtty_tiocsti_highbits},
    {"tty_tioclinux_fd0", c_tty_tioclinux_fd0},
    {"tty_tioclinux_fd1", c_tty_tioclinux_fd1},
    {"tty_tioclinux_fd2", c_tty_tioclinux_fd2},
    {"speculation", c_speculation},
};

static const struct Case* Find(const char* name) {
  for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); ++i) {
    if (strcmp(kCases[i].name, name) == 0) return &kCases[i];
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe CASE...\n       probe --list\n");
    return 2;
  }
  if (strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); ++i) puts(kCases[i].name);
    return 0;
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    if (RunCrossAttack(argv[i])) continue;
    const struct Case* c = Find(argv[i]);
    if (c == NULL) {
      printf("%s unknown\n", argv[i]);
      fflush(stdout);
      status = 2;
      continue;
    }
    printf("%s reached\n", c->name);
    fflush(stdout);
    errno = 0;
    long ret = c->fn();
    if (ret < 0) {
      printf("%s errno=%d\n", c->name, errno);
    } else {
      printf("%s ok\n", c->name);
    }
    fflush(stdout);
  }
  return status;
}
