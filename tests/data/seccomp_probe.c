/* The seccomp probe of tests/test_seccomp_containers.py: calls each system call the
 * default profile must refuse (and a few it must allow) and prints NAME=ok or
 * NAME=<errno name>, one a line.  Built static by the test, run inside containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <linux/io_uring.h>

static void report(const char *name, long rc, int err) {
    printf("%s=%s\n", name, rc >= 0 ? "ok" : strerrorname_np(err));
}
#define CHECK(name, call) do { errno = 0; long rc_ = (long)(call); report(name, rc_, errno); } while (0)

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n < 0 ? -1 : 0;
}

/* in a child: unshare a user (and mount) namespace; the child's exit code is the errno */
static void in_child(const char *name, int mount_too) {
    pid_t pid = fork();
    if (pid == 0) {
        uid_t uid = getuid(); gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | (mount_too ? CLONE_NEWNS : 0)) < 0) _exit(errno);
        if (mount_too) {
            char map[64];
            snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
            if (write_file("/proc/self/uid_map", map) < 0) _exit(errno);
            write_file("/proc/self/setgroups", "deny");
            snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
            if (write_file("/proc/self/gid_map", map) < 0) _exit(errno);
            mkdir("/tmp", 01777);
            if (mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m") < 0) _exit(errno);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    report(name, code ? -1 : 0, code);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    in_child("unshare_user", 0);
    in_child("userns_tmpfs", 1);
    CHECK("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -4 /* KEY_SPEC_USER_KEYRING: uid 0 of the host without a userns */, 0));
    CHECK("add_key", syscall(SYS_add_key, "user", "corral-probe", "x", 1, -2 /* process */));
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    CHECK("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    CHECK("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    CHECK("io_uring_setup", syscall(SYS_io_uring_setup, 4, &params));
    CHECK("socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
    CHECK("socket_inet", socket(AF_INET, SOCK_DGRAM, 0));
    CHECK("personality_query", personality(0xffffffff));
    CHECK("personality_no_randomize", personality(ADDR_NO_RANDOMIZE));
    CHECK("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 1 /* KCMP_VM */, 0, 0));
    char src[8] = "corral", dst[8] = "";
    struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
    CHECK("process_vm_readv", process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
    CHECK("clone3", syscall(SYS_clone3, NULL, 0));
    return 0;
}
