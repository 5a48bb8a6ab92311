/* netlab's sandbox helper: makes pods' pause processes (see netlab/kernel/sandbox.py).
 *
 * Started by the agent, single-threaded, it makes pause processes on request. For each it
 * unshares a new PID namespace for its children and forks one: the child, PID 1 of that
 * namespace, enters the pod's network (and UTS) namespace, unshares its mount, IPC (and
 * UTS) namespaces with private propagation, makes the pod's mounts with mount(2),
 * pivot_root's into the overlay, drops the old root and becomes the pause: named "pause",
 * every file but /dev/null on 0-2 closed, it waits for signals forever with SIGCHLD ignored
 * (as Kubernetes' pause does: the kernel reaps the orphans it inherits). The helper ignores
 * SIGCHLD too, so the kernel reaps its pauses when they end.
 *
 * Native code because a pause is made per pod and a pod's `up` waits for it: the same steps
 * from a forked Python process cost ~4.5 ms of CPU each (the fork's copy-on-write faults,
 * the interpreter's work, an execve tearing down its address space), this ~1 ms, nearly all
 * of it the kernel's mounts. No exec of a pause program either: an exec costs more than the
 * rest of the pause's setup together (the dynamic loader; glibc's CPU feature probing runs
 * cpuid, which traps in a VM).
 *
 * Protocol, on stdin: a request is a count N then N fields, each ended by a NUL byte:
 *   net uts root hostname staging timeout_ms ARGS...
 * (uts "" = a new UTS namespace named hostname; staging "1" = bind ROOT/../volumes at
 * /run/.netlab/volumes; ARGS: S path | B src dst | M name sizeopt | H name, as
 * sandbox.py builds them). One line answers each: "ok PID" once the pause is ready (it
 * closed its end of the status pipe with nothing written) or "err MESSAGE". The helper exits
 * at the end of its input, or after IDLE seconds (argv[1]) without a request.
 *
 * Its own mount namespace, which every pause copies, is the host's without the namespace
 * files (/run/netns/..., the labs' UTS files): unshare(CLONE_NEWNS) copies every mount and
 * pivot_root's detach of the old root walks them all again, so a copy of the host's table
 * (one mount per lab pod or node) would cost O(pods) per pod. Paths in requests are opened
 * through HOST, the host's root: a walk from it follows the host's mounts, so namespace
 * files made after the helper started are found (as through /proc/PID/root). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define STAGING "/run/.netlab/volumes"
#define MAX_FIELDS 4096
#define MAX_REQUEST (1 << 20)
/* statvfs's ST_* bits equal the MS_* mount flags */
#define KEEP (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)

static int HOST = -1;       /* the host's root, O_PATH */
static int status_fd = -1;  /* the child's end of the status pipe */

/* The child reports the first failure on the status pipe and exits. */
static void fail(const char *fmt, ...) {
    char msg[1024];
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 200, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof msg - 200) n = sizeof msg - 200;
    snprintf(msg + n, sizeof msg - n, ": %s", strerror(e));
    if (write(status_fd, msg, strlen(msg)) < 0) { /* nobody to tell */ }
    _exit(1);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data) {
    if (mount(src, dst, type, flags, data) != 0) fail("mount %s", dst);
}

static void read_only(const char *dst) {  /* mount -o remount,bind,ro, keeping its flags */
    struct statvfs sv;
    if (statvfs(dst, &sv) != 0) fail("statvfs %s", dst);
    do_mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | (sv.f_flag & KEEP), NULL);
}

static void enter(const char *path, int kind) {  /* path: in the host's mount namespace */
    while (*path == '/') path++;
    int fd = openat(HOST, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open /%s", path);
    if (setns(fd, kind) != 0) fail("setns /%s", path);
    close(fd);
}

static char *cat(const char *a, const char *b) {  /* a fresh string; the child execs soon */
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) { errno = ENOMEM; fail("malloc"); }
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static void mkdirs(const char *path, mode_t mode) {  /* mkdir -p: the leaf first */
    if (mkdir(path, mode) == 0 || errno == EEXIST) return;
    if (errno != ENOENT) fail("mkdir %s", path);
    char *parent = cat(path, "");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        mkdirs(parent, mode);
    }
    free(parent);
    if (mkdir(path, mode) != 0 && errno != EEXIST) fail("mkdir %s", path);
}

static int lexists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

struct request {
    char *net, *uts, *root, *hostname, *staging;
    long timeout_ms;
    char **args;
    int nargs;
};

static const struct { const char *name; int major, minor; } DEVICES[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
    {"tty", 5, 0}};
static const char *LINKS[][2] = {
    {"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};

static char *args_start, *args_end;  /* the helper's command line (main's argv) */

/* The pause: PID 1 of the pod's PID namespace, holding its namespaces until it is killed.
 * Its name and command line read "pause" (ps in the pod, and on the host, show it so). */
static void become_pause(void) {
    prctl(PR_SET_NAME, "pause", 0, 0, 0);
    /* The command line is the memory of the helper's arguments: "pause" and its NUL written
     * over them, and their last byte made non-NUL, which makes the kernel show the
     * arguments as one string up to the first NUL (setproctitle's convention; pointing
     * them elsewhere with PR_SET_MM needs CAP_SYS_RESOURCE, which containers often drop). */
    if (args_end - args_start > 7) {
        memset(args_start, 0, args_end - args_start);
        memcpy(args_start, "pause", 6);
        args_end[-1] = ' ';
    }
    closefrom(3);  /* the status pipe among them: the helper reads its end, ready */
    for (;;) pause();  /* SIGCHLD stays ignored: orphans are reaped by the kernel */
}

static void setup(struct request *q) {
    umask(0);
    enter(q->net, CLONE_NEWNET);
    if (*q->uts) enter(q->uts, CLONE_NEWUTS);
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | (*q->uts ? 0 : CLONE_NEWUTS)) != 0)
        fail("unshare");
    const char *h = q->hostname;
    if (!*q->uts && sethostname(h, strlen(h)) != 0) fail("sethostname");
    char *m = cat(q->root, "/merged");
    char opts[4096];
    if (snprintf(opts, sizeof opts, "lowerdir=/,upperdir=%s/upper,workdir=%s/work", q->root,
                 q->root) >= (int)sizeof opts) {
        errno = ENAMETOOLONG;
        fail("overlay options");
    }
    do_mount("overlay", m, "overlay", 0, opts);
    if (*h) {
        char *f = cat(m, "/etc/hostname");
        int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) fail("open %s", f);
        char *line = cat(h, "\n");
        if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) fail("write %s", f);
        close(fd);
    }
    static const char *TOP[] = {"/proc", "/sys", "/dev", "/tmp", "/run"};
    for (size_t i = 0; i < sizeof TOP / sizeof *TOP; i++) mkdirs(cat(m, TOP[i]), 0755);
    do_mount("proc", cat(m, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* as Docker does: kernel.* sysctls are not per namespace */
    static const char *PROC_RO[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
                                    "/proc/bus"};
    for (size_t i = 0; i < sizeof PROC_RO / sizeof *PROC_RO; i++) {
        char *p = cat(m, PROC_RO[i]);
        if (!lexists(p)) continue;
        do_mount(p, p, NULL, MS_BIND, NULL);
        read_only(p);
    }
    do_mount("sysfs", cat(m, "/sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
             NULL);
    do_mount("tmpfs", cat(m, "/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    do_mount("tmpfs", cat(m, "/run"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
    char *dev = cat(m, "/dev");
    do_mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=4m");
    char path[4096];
    for (size_t i = 0; i < sizeof DEVICES / sizeof *DEVICES; i++) {
        snprintf(path, sizeof path, "%s/%s", dev, DEVICES[i].name);
        if (mknod(path, 0666 | S_IFCHR, makedev(DEVICES[i].major, DEVICES[i].minor)) != 0)
            fail("mknod %s", path);
    }
    char *pts = cat(dev, "/pts"), *shm = cat(dev, "/shm");
    if (mkdir(pts, 0755) != 0) fail("mkdir %s", pts);
    if (mkdir(shm, 0755) != 0) fail("mkdir %s", shm);
    do_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=620");
    do_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    for (size_t i = 0; i < sizeof LINKS / sizeof *LINKS; i++) {
        snprintf(path, sizeof path, "%s/%s", dev, LINKS[i][0]);
        if (symlink(LINKS[i][1], path) != 0) fail("symlink %s", path);
    }
    char *staging = cat(m, STAGING);
    if (strcmp(q->staging, "1") == 0) {
        mkdirs(staging, 0755);
        do_mount(cat(q->root, "/../volumes"), staging, NULL, MS_BIND, NULL);
    }
    for (int i = 0; i < q->nargs;) {
        const char *op = q->args[i];
        int need = strcmp(op, "B") == 0 || strcmp(op, "M") == 0 ? 3 : 2;
        if (i + need > q->nargs) {
            errno = EINVAL;
            fail("argument %s: missing operands", op);
        }
        if (strcmp(op, "S") == 0) {  /* a host disk mount, read-only */
            char *dst = cat(m, q->args[i + 1]);
            do_mount(q->args[i + 1], dst, NULL, MS_BIND, NULL);
            read_only(dst);
        } else if (strcmp(op, "B") == 0) {  /* a file or dir of the lab, bound */
            char *dst = cat(m, q->args[i + 2]);
            if (!lexists(dst)) {
                char *parent = cat(dst, "");
                char *slash = strrchr(parent, '/');
                if (slash && slash != parent) {
                    *slash = 0;
                    mkdirs(parent, 0755);
                }
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0) fail("create %s", dst);
                close(fd);
            }
            do_mount(q->args[i + 1], dst, NULL, MS_BIND, NULL);
        } else if (strcmp(op, "M") == 0) {  /* an emptyDir of medium Memory */
            snprintf(path, sizeof path, "%s/%s", staging, q->args[i + 1]);
            char *data = cat("mode=1777", q->args[i + 2]);
            do_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, data);
        } else if (strcmp(op, "H") == 0) {  /* a hostPath volume, made read-only */
            snprintf(path, sizeof path, "%s/%s", staging, q->args[i + 1]);
            read_only(path);
        } else {
            errno = EINVAL;
            fail("bad argument %s", op);
        }
        i += need;
    }
    if (chdir(m) != 0) fail("chdir %s", m);
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) fail("umount the old root");
    if (chdir("/") != 0) fail("chdir /");
    umask(022);
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null < 0) fail("open /dev/null");
    for (int fd = 0; fd < 3; fd++)
        if (dup2(null, fd) < 0) fail("dup2");
    if (null > 2) close(null);
    become_pause();
}

/* The pause for request q: "ok PID" or "err ..." in answer. */
static void start(struct request *q, int here, char *answer, size_t size) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(answer, size, "err pipe: %s", strerror(errno));
        return;
    }
    if (unshare(CLONE_NEWPID) != 0) {
        snprintf(answer, size, "err unshare pid: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        status_fd = p[1];
        setup(q);
        _exit(1);
    }
    int fork_errno = errno;
    if (setns(here, CLONE_NEWPID) != 0) {  /* cannot go on making pauses */
        fprintf(stderr, "netlab-pause-helper: setns back: %s\n", strerror(errno));
        exit(1);
    }
    close(p[1]);
    if (pid < 0) {
        snprintf(answer, size, "err fork: %s", strerror(fork_errno));
        close(p[0]);
        return;
    }
    char out[1024];
    size_t got = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = q->timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
                                     (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd pfd = {p[0], POLLIN, 0};
        int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            kill(pid, SIGKILL);
            snprintf(answer, size, "err timed out");
            close(p[0]);
            return;
        }
        ssize_t n = read(p[0], out + got, sizeof out - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || got + n >= sizeof out - 1) {
            if (n > 0) got += n;
            break;
        }
        got += n;
    }
    close(p[0]);
    out[got] = 0;
    for (char *c = out; *c; c++)
        if (*c == '\n') *c = ' ';
    if (got) snprintf(answer, size, "err %s", out);
    else snprintf(answer, size, "ok %d", (int)pid);
}

static char *unescape(char *s) {  /* mountinfo's octal escapes, in place */
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return s;
}

static void template(void) {
    HOST = open("/", O_PATH | O_CLOEXEC);
    if (HOST < 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "netlab-pause-helper: its mount namespace: %s\n", strerror(errno));
        exit(1);
    }
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        fprintf(stderr, "netlab-pause-helper: mountinfo: %s\n", strerror(errno));
        exit(1);
    }
    size_t cap = 256, n = 0;
    char **points = malloc(cap * sizeof *points);
    char *line = NULL;
    size_t len = 0;
    while (points && getline(&line, &len, f) > 0) {
        char *field = strtok(line, " ");
        for (int i = 0; field && i < 4; i++) field = strtok(NULL, " ");
        if (!field) continue;
        if (n == cap) points = realloc(points, (cap *= 2) * sizeof *points);
        if (points) points[n++] = strdup(unescape(field));
    }
    free(line);
    fclose(f);
    while (points && n-- > 0) {  /* children before parents */
        const char *p = points[n];
        if (p && (strncmp(p, "/run/netns/", 11) == 0 || strstr(p, "/uts/")))
            umount2(p, MNT_DETACH);  /* a failure only leaves it there */
    }
}

/* stdin, read by hand: the helper waits for a request only when nothing is buffered. */
static char rbuf[65536];
static size_t rpos, rlen;

/* The next byte of stdin, or -1 at its end (or after wait_ms without one, if >= 0). */
static int next_byte(int wait_ms) {
    while (rpos == rlen) {
        if (wait_ms >= 0) {
            struct pollfd pfd = {0, POLLIN, 0};
            int r = poll(&pfd, 1, wait_ms);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
        }
        ssize_t n = read(0, rbuf, sizeof rbuf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        rpos = 0;
        rlen = (size_t)n;
    }
    return (unsigned char)rbuf[rpos++];
}

/* One field (up to its NUL) into buf at *used: its offset, or -1 at the end of input. */
static long field(char *buf, size_t *used, int wait_ms) {
    size_t start = *used;
    for (;;) {
        int c = next_byte(start == *used ? wait_ms : -1);
        if (c < 0 || *used >= MAX_REQUEST - 1) return -1;
        buf[(*used)++] = (char)c;
        if (c == 0) return (long)start;
    }
}

int main(int argc, char **argv) {
    args_start = argv[0];
    args_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
    signal(SIGCHLD, SIG_IGN);  /* the kernel reaps the pauses */
    template();
    int here = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (here < 0) {
        fprintf(stderr, "netlab-pause-helper: /proc/self/ns/pid: %s\n", strerror(errno));
        return 1;
    }
    int idle_ms = argc > 1 ? (int)(atof(argv[1]) * 1000) : 5000;
    static char buf[MAX_REQUEST];
    static long offsets[MAX_FIELDS];
    char answer[1200];
    for (;;) {
        size_t used = 0;
        long at = field(buf, &used, idle_ms);  /* the idle wait: only before a request */
        if (at < 0) return 0;
        long count = atol(buf + at);
        if (count < 6 || count > MAX_FIELDS) {
            fprintf(stderr, "netlab-pause-helper: bad request (%ld fields)\n", count);
            return 1;
        }
        for (long i = 0; i < count; i++)
            if ((offsets[i] = field(buf, &used, -1)) < 0) return 0;
        char *f[MAX_FIELDS];
        for (long i = 0; i < count; i++) f[i] = buf + offsets[i];
        struct request q = {f[0], f[1], f[2], f[3], f[4], atol(f[5]), f + 6,
                            (int)count - 6};
        start(&q, here, answer, sizeof answer);
        printf("%s\n", answer);
        fflush(stdout);
    }
}
