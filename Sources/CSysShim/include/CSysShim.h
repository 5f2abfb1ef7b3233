#ifndef CSYS_SHIM_H
#define CSYS_SHIM_H
/* Glibc functions that are visible only with _GNU_SOURCE, which Swift's Glibc
   module does not define. Kept tiny: one wrapper per call we need. */
#define CSYS_RENAME_NOREPLACE 1
int csys_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
int csys_pipe2(int fds[2], int flags);
/* sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): start writing a file's data back, without waiting. */
int csys_start_writeback(int fd);
int csys_syncfs(int fd);
long csys_copy_file_range(int in_fd, int out_fd, unsigned long length);
#define CSYS_RENAME_EXCHANGE 2
#define CSYS_O_PATH 010000000
/* Bytes allocated by malloc and in use now (mallinfo2), for memory measurements. */
unsigned long csys_heap_in_use(void);
/* openat2 refusing every link on the way; -1/ENOSYS on kernels before 5.6. */
int csys_open_beneath(int dirfd, const char *path, int flags);
/* fcntl(fd, F_SETPIPE_SZ, size); -1 when fd is not a pipe. */
int csys_set_pipe_size(int fd, int size);
/* Sets the POSIX access ACL of `path` (not following a link): its owner keeps
   its mode bits, user `uid` gets `perms` (0-7), the owning group and others
   nothing. -1 with errno (EOPNOTSUPP where the file system has no ACLs). */
int csys_grant_user(const char *path, unsigned int uid, unsigned int perms);
/* lgetxattr(2), which Swift's Glibc module leaves out. */
long csys_lgetxattr(const char *path, const char *name, void *value, unsigned long size);
/* pthread_setname_np for the calling thread; the kernel keeps 15 bytes. */
int csys_name_thread(const char *name);
#endif
