#define _GNU_SOURCE
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <malloc.h>
#include <errno.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <endian.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include "CSysShim.h"

_Static_assert(RENAME_NOREPLACE == CSYS_RENAME_NOREPLACE, "RENAME_NOREPLACE");
_Static_assert(RENAME_EXCHANGE == CSYS_RENAME_EXCHANGE, "RENAME_EXCHANGE");
_Static_assert(O_PATH == CSYS_O_PATH, "O_PATH");

int csys_renameat2(int a, const char *b, int c, const char *d, unsigned int f) { return renameat2(a, b, c, d, f); }
int csys_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int csys_start_writeback(int fd) { return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }
int csys_syncfs(int fd) { return syncfs(fd); }
unsigned long csys_heap_in_use(void) { return (unsigned long)mallinfo2().uordblks; }
long csys_copy_file_range(int in_fd, int out_fd, unsigned long length) { return (long)copy_file_range(in_fd, NULL, out_fd, NULL, length, 0); }

/* openat2(2) with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS:
   "ID/envelope.json" below a directory in one call, no link followed at any
   component. -1 with errno ENOSYS where the kernel lacks it (before 5.6). */
int csys_open_beneath(int dirfd, const char *path, int flags) {
#ifdef SYS_openat2
    struct open_how how = { .flags = (unsigned long long)flags, .mode = 0,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* fcntl(F_SETPIPE_SZ): a bigger pipe for a listing's output (Linux only). */
int csys_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

/* The kernel's form of an access ACL (the "system.posix_acl_access" extended
   attribute, as libacl writes it): a little-endian version 2 header, then
   entries sorted by tag. Setting it also sets the mode's group bits to the
   mask and its other bits to those of the OTHER entry. */
struct csys_acl_entry { uint16_t tag, perm; uint32_t id; } __attribute__((packed));
enum { CSYS_ACL_USER_OBJ = 0x01, CSYS_ACL_USER = 0x02, CSYS_ACL_GROUP_OBJ = 0x04, CSYS_ACL_MASK = 0x10, CSYS_ACL_OTHER = 0x20 };

int csys_grant_user(const char *path, unsigned int uid, unsigned int perms) {
    struct stat status;
    if (lstat(path, &status) != 0) return -1;
    const uint32_t none = 0xFFFFFFFFu;
    struct { uint32_t version; struct csys_acl_entry entries[5]; } __attribute__((packed)) acl = {
        htole32(2), {
            { htole16(CSYS_ACL_USER_OBJ), htole16((status.st_mode >> 6) & 7), htole32(none) },
            { htole16(CSYS_ACL_USER), htole16(perms & 7), htole32(uid) },
            { htole16(CSYS_ACL_GROUP_OBJ), 0, htole32(none) },
            { htole16(CSYS_ACL_MASK), htole16(perms & 7), htole32(none) },
            { htole16(CSYS_ACL_OTHER), 0, htole32(none) },
        } };
    return lsetxattr(path, "system.posix_acl_access", &acl, sizeof acl, 0);
}

long csys_lgetxattr(const char *path, const char *name, void *value, unsigned long size) {
    return (long)lgetxattr(path, name, value, size);
}

int csys_name_thread(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = 0;
    return pthread_setname_np(pthread_self(), short_name);
}
