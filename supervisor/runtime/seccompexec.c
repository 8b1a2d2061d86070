/*
 * corral-seccomp-exec: installs a container's seccomp filter, already compiled,
 * then execs the container's command.  Why it exists, and what guards it, is in
 * supervisor/runtime/seccompexec.py; this is the part that runs in the container.
 *
 * runc execs it as /proc/self/fd/3 (`--preserve-fds 1`): fd 3 is a sealed memfd
 * holding this program followed by the filter and a trailer
 *     [ELF][sock_filter x n][u32 n][u32 TRAILER_MAGIC]
 * argv: corral-seccomp-exec RAISED EXTRA COMMAND [ARG...]   (decimal masks)
 * EXTRA: capabilities runc gave this process beyond the container's: one the
 * container has not got, so that no process of the container can ptrace it (its
 * permitted set is not a subset of theirs) before the filter is in place, and
 * CAP_SETPCAP where the container has not got it (the bounding set's drop needs
 * it).  RAISED: the container's capabilities and the extras, which runc also put
 * in the inheritable and ambient sets, so that a non-root user keeps them across
 * runc's exec of this program (it keeps only its ambient set) and holds the
 * container's permitted set at the command's exec, as under runc alone (with
 * no_new_privs an exec never gains a capability the process had not got, so a
 * file capability of the command works only from what it had).  After the filter
 * is installed, before the exec: EXTRA is dropped from every set, RAISED from the
 * inheritable and ambient sets.
 *
 * The command is looked up as runc does (Go's exec.LookPath: a name with a slash
 * as it is, else each PATH entry, "" meaning "."); the daemon checked it before the
 * start, so a failure here is a race: said on stderr, exit 127 or 126 as a shell.
 * Any other failure exits 125 before the command runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SELF_FD 3
#define TRAILER_MAGIC 0x43524246u /* "FBRC" little-endian: corral BPF */
#define MAX_INSNS 4096            /* BPF_MAXINSNS */

extern char **environ;

static void die(int code, const char *what, int err)
{
	dprintf(2, "corral-seccomp-exec: %s: %s\n", what, strerror(err));
	_exit(code);
}

static void read_exact(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(125, "reading the filter", n < 0 ? errno : EIO);
		done += (size_t)n;
	}
}

static void install_filter(void)
{
	struct stat st;
	uint32_t trailer[2];
	if (fstat(SELF_FD, &st) != 0)
		die(125, "fstat", errno);
	if (st.st_size < (off_t)sizeof(trailer))
		die(125, "no filter", EINVAL);
	read_exact(SELF_FD, trailer, sizeof(trailer), st.st_size - (off_t)sizeof(trailer));
	uint32_t n = trailer[0];
	if (trailer[1] != TRAILER_MAGIC || n == 0 || n > MAX_INSNS)
		die(125, "no filter", EINVAL);
	off_t at = st.st_size - (off_t)sizeof(trailer) - (off_t)(n * sizeof(struct sock_filter));
	if (at <= 0)
		die(125, "no filter", EINVAL);
	static struct sock_filter insns[MAX_INSNS];
	read_exact(SELF_FD, insns, n * sizeof(struct sock_filter), at);
	close(SELF_FD);
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
	/* no_new_privs is set (runc, from the spec): no CAP_SYS_ADMIN needed.  No flags,
	 * as runc loads the same filter for a one-threaded process. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		die(125, "seccomp", errno);
}

static uint64_t permitted(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) != 0)
		die(125, "capget", errno);
	return (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
}

static void drop_extras(uint64_t raised, uint64_t extra)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	for (int cap = 0; cap < 64; cap++) {
		uint64_t bit = (uint64_t)1 << cap;
		/* needs CAP_SETPCAP in the effective set, which it is (raised) */
		if ((extra & bit) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
			die(125, "dropping a bounding capability", errno);
		if ((raised & bit) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap, 0, 0) != 0)
			die(125, "lowering an ambient capability", errno);
	}
	if (syscall(SYS_capget, &hdr, data) != 0)
		die(125, "capget", errno);
	for (int i = 0; i < 2; i++) {
		uint32_t keep = ~(uint32_t)(extra >> (32 * i));
		data[i].effective &= keep;
		data[i].permitted &= keep;
		data[i].inheritable &= keep & ~(uint32_t)(raised >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) != 0)
		die(125, "capset", errno);
}

/* Go's findExecutable: exists, not a directory, some execute bit */
static int find_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode) && (st.st_mode & 0111))
		return 0;
	return EACCES;
}

static uint64_t mask(const char *text)
{
	char *end;
	errno = 0;
	uint64_t value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || end == text)
		die(125, "a capability mask", EINVAL);
	return value;
}

static void run(char **argv)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		int err = find_executable(file);
		if (err != 0) {
			dprintf(2, "exec: \"%s\": %s\n", file, strerror(err));
			_exit(err == ENOENT ? 127 : 126);
		}
		execve(file, argv, environ);
		dprintf(2, "exec %s: %s\n", file, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	const char *path = getenv("PATH");
	static char full[4096];
	while (path && *path) {
		const char *end = strchrnul(path, ':');
		size_t len = (size_t)(end - path);
		const char *dir = len ? path : ".";
		if (len == 0)
			len = 1;
		if (len + 1 + strlen(file) + 1 <= sizeof(full)) {
			memcpy(full, dir, len);
			full[len] = '/';
			strcpy(full + len + 1, file);
			if (find_executable(full) == 0) {
				execve(full, argv, environ);
				dprintf(2, "exec %s: %s\n", full, strerror(errno));
				_exit(errno == ENOENT ? 127 : 126);
			}
		}
		path = *end ? end + 1 : end;
	}
	dprintf(2, "exec: \"%s\": executable file not found in $PATH\n", file);
	_exit(127);
}

int main(int argc, char **argv)
{
	/* not dumpable: with the extras, a second reason no process of the container
	 * can ptrace or read this one before the filter is in place */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		die(125, "PR_SET_DUMPABLE", errno);
	if (argc < 4)
		die(125, "usage: corral-seccomp-exec RAISED EXTRA COMMAND [ARG...]", EINVAL);
	uint64_t raised = mask(argv[1]), extra = mask(argv[2]);
	/* the guard is held (a runtime that dropped a capability it did not know would
	 * leave this process open to a ptrace before the filter): else nothing runs */
	if ((permitted() & (raised | extra)) != (raised | extra))
		die(125, "the capabilities runc was asked for are not all held", EPERM);
	install_filter();
	drop_extras(raised | extra, extra);
	run(argv + 3);
	return 125;
}
