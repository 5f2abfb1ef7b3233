/* tools/bench/protocol-ceiling.c: what a file system allows each way of
 * committing a 4 KiB message durably, without any mail system around it.
 *
 *   cc -O2 -pthread -o /tmp/protocol-ceiling tools/bench/protocol-ceiling.c
 *   /tmp/protocol-ceiling DIR PROTOCOL [WRITERS [MESSAGES_EACH]]
 *
 * DIR is an empty directory on the file system to measure (it gets tmp/ and
 * queue/ inside, and is left full: set it aside, or delete it and wait a few
 * minutes, before the next run on ext4 without a journal, which slows down
 * allocation after many deletions). WRITERS threads (default 10, the
 * sessions of tools/bench.sh's SMTP cells) each commit MESSAGES_EACH
 * messages (default 500); it prints the messages per second.
 *
 * PROTOCOL:
 *   postern     spool-layout.md 6.1 as the listener does it with delivery
 *               paused: mkdir tmp/ID, message and envelope.json written,
 *               sync_file_range on both, fsync message, envelope, directory,
 *               rename into queue/, one fsync of queue/ shared by the
 *               writers that renamed before it started (group commit).
 *   parallel    the same with the three fsyncs before the rename submitted
 *               at once (native AIO, IOCB_CMD_FSYNC).
 *   one-file    envelope and message in one file inside the message's
 *               directory: fsync file, fsync directory, rename, group fsync.
 *   flat        envelope and message in one file, no directory of its own:
 *               fsync file, rename into queue/, group fsync.
 *   postfix     what Postfix's cleanup does: one file created in the queue
 *               directory, fsync, renamed within it, no directory fsync.
 *   made        postern in blanks made ahead by a thread of its own
 *               (spool-layout.md 6.4): both files opened truncated, fsynced,
 *               no fsync of the directory, rename, group fsync; a writer
 *               finding no blank ready does as postern. The maker keeps
 *               MADE_STOCK blanks (default 32, at most 256), making
 *               MADE_BATCH at a time (default 1, at most 64) and making them
 *               durable by MADE_SYNCFS: 0 (default) an fsync of each new
 *               directory, 1 one syncfs a batch (what Postern does, with 32
 *               and 32), 2 the batch's fsyncs submitted at once (native AIO).
 *               It prints how many messages found a blank.
 *
 * Used for the "where the time goes" of tools/bench/results/2026-12-05-4.md
 * and of the results file that introduced blanks made ahead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum protocol { POSTERN, PARALLEL, ONE_FILE, FLAT, POSTFIX, MADE };
static const char *names[] = { "postern", "parallel", "one-file", "flat", "postfix", "made" };
#define PROTOCOLS 6

static enum protocol protocol;
static int writers = 10, each = 500, queue_fd, tmp_fd;
static char message[4096], envelope[700], both[4096 + 700];

/* The group commit: a writer's rename is durable once an fsync of queue/
 * that started after it has finished. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t synced_cond = PTHREAD_COND_INITIALIZER;
static long renamed, synced, syncing;

static void group_sync(void) {
    pthread_mutex_lock(&lock);
    long mine = ++renamed;
    while (synced < mine) {
        if (syncing) { pthread_cond_wait(&synced_cond, &lock); continue; }
        syncing = 1;
        long upto = renamed;
        pthread_mutex_unlock(&lock);
        if (fsync(queue_fd) != 0) { perror("fsync queue/"); exit(1); }
        pthread_mutex_lock(&lock);
        synced = upto;
        syncing = 0;
        pthread_cond_broadcast(&synced_cond);
    }
    pthread_mutex_unlock(&lock);
}

static void must(int ok, const char *what) { if (!ok) { perror(what); exit(1); } }

static int create_at(int dir, const char *name, const char *bytes, size_t size) {
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    must(fd >= 0, "create");
    must(write(fd, bytes, size) == (ssize_t)size, "write");
    return fd;
}

static void fsync_at_once(const int *fds, int count) {
    static __thread aio_context_t context;
    if (!context) must(syscall(SYS_io_setup, 64, &context) == 0, "io_setup");
    struct iocb blocks[64], *list[64];
    for (int k = 0; k < count; k++) {
        memset(&blocks[k], 0, sizeof blocks[k]);
        blocks[k].aio_fildes = (unsigned)fds[k];
        blocks[k].aio_lio_opcode = IOCB_CMD_FSYNC;
        list[k] = &blocks[k];
    }
    must(syscall(SYS_io_submit, context, (long)count, list) == count, "io_submit");
    struct io_event events[64];
    for (int got = 0; got < count;) {
        long n = syscall(SYS_io_getevents, context, 1L, (long)(count - got), events, NULL);
        must(n > 0, "io_getevents");
        got += (int)n;
    }
}


/* "made": blanks made ahead by a thread of their own, kept in a stack. */
static pthread_mutex_t made_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t made_cond = PTHREAD_COND_INITIALIZER;
static char made[256][32];
static int made_count, made_serial, stopping;
static int made_stock = 32;

static int make_blank(const char *id) {
    must(mkdirat(tmp_fd, id, 0700) == 0, "mkdir");
    int dir = openat(tmp_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(create_at(dir, "message", "", 0));
    close(create_at(dir, "envelope.json", "", 0));
    return dir;
}
static int made_batch = 1, made_syncfs = 0;

static void *maker(void *unused) {
    (void)unused;
    char ids[64][32];
    int dirs[64];
    pthread_mutex_lock(&made_lock);
    while (!stopping) {
        if (made_count + made_batch > made_stock || made_batch > 64 || made_stock > 256) { pthread_cond_wait(&made_cond, &made_lock); continue; }
        pthread_mutex_unlock(&made_lock);
        for (int k = 0; k < made_batch; k++) {
            snprintf(ids[k], sizeof ids[k], "b-%d", made_serial++);
            dirs[k] = make_blank(ids[k]);
        }
        if (made_syncfs == 1) must(syncfs(tmp_fd) == 0, "syncfs");
        else if (made_syncfs == 2) fsync_at_once(dirs, made_batch);
        for (int k = 0; k < made_batch; k++) {
            if (!made_syncfs) must(fsync(dirs[k]) == 0, "fsync blank");
            close(dirs[k]);
        }
        pthread_mutex_lock(&made_lock);
        for (int k = 0; k < made_batch; k++) strcpy(made[made_count++], ids[k]);
    }
    pthread_mutex_unlock(&made_lock);
    return NULL;
}

/* A made blank's name into id, or 0 when none is ready. */
static int take_blank(char *id) {
    pthread_mutex_lock(&made_lock);
    int got = made_count > 0;
    if (got) strcpy(id, made[--made_count]);
    pthread_cond_signal(&made_cond);
    pthread_mutex_unlock(&made_lock);
    return got;
}

static int rewrite_at(int dir, const char *name, const char *bytes, size_t size) {
    int fd = openat(dir, name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    must(fd >= 0, "open blank file");
    must(write(fd, bytes, size) == (ssize_t)size, "write");
    return fd;
}

/* postern and parallel; also made's when no blank is ready. */
static void protocol_postern(const char *id) {
    must(mkdirat(tmp_fd, id, 0700) == 0, "mkdir");
    int dir = openat(tmp_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fds[3] = { create_at(dir, "message", message, sizeof message),
                   create_at(dir, "envelope.json", envelope, sizeof envelope), dir };
    sync_file_range(fds[0], 0, 0, SYNC_FILE_RANGE_WRITE);
    sync_file_range(fds[1], 0, 0, SYNC_FILE_RANGE_WRITE);
    if (protocol == PARALLEL) fsync_at_once(fds, 3);
    else for (int k = 0; k < 3; k++) must(fsync(fds[k]) == 0, "fsync");
    for (int k = 0; k < 3; k++) close(fds[k]);
    must(renameat(tmp_fd, id, queue_fd, id) == 0, "rename");
    group_sync();
}

static long made_used;

static void commit(const char *id) {
    switch (protocol) {
    case POSTERN:
    case PARALLEL:
        protocol_postern(id);
        break;
    case ONE_FILE: {
        must(mkdirat(tmp_fd, id, 0700) == 0, "mkdir");
        int dir = openat(tmp_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = create_at(dir, "message", both, sizeof both);
        must(fsync(fd) == 0 && fsync(dir) == 0, "fsync");
        close(fd);
        close(dir);
        must(renameat(tmp_fd, id, queue_fd, id) == 0, "rename");
        group_sync();
        break;
    }
    case FLAT: {
        int fd = create_at(tmp_fd, id, both, sizeof both);
        must(fsync(fd) == 0, "fsync");
        close(fd);
        must(renameat(tmp_fd, id, queue_fd, id) == 0, "rename");
        group_sync();
        break;
    }
    case MADE: {
        char blank[32];
        if (!take_blank(blank)) { protocol_postern(id); break; }
        int dir = openat(tmp_fd, blank, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fds[2] = { rewrite_at(dir, "message", message, sizeof message),
                       rewrite_at(dir, "envelope.json", envelope, sizeof envelope) };
        sync_file_range(fds[0], 0, 0, SYNC_FILE_RANGE_WRITE);
        sync_file_range(fds[1], 0, 0, SYNC_FILE_RANGE_WRITE);
        for (int k = 0; k < 2; k++) { must(fsync(fds[k]) == 0, "fsync"); close(fds[k]); }
        close(dir);
        must(renameat(tmp_fd, blank, queue_fd, id) == 0, "rename");
        group_sync();
        __atomic_add_fetch(&made_used, 1, __ATOMIC_RELAXED);
        break;
    }
    case POSTFIX: {
        char temporary[64];
        snprintf(temporary, sizeof temporary, "t.%s", id);
        int fd = create_at(queue_fd, temporary, both, sizeof both);
        must(fsync(fd) == 0, "fsync");
        close(fd);
        must(renameat(queue_fd, temporary, queue_fd, id) == 0, "rename");
        break;
    }
    }
}

static void *writer(void *argument) {
    long number = (long)argument;
    char id[32];
    for (int k = 0; k < each; k++) {
        snprintf(id, sizeof id, "%ld-%d", number, k);
        commit(id);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s DIR PROTOCOL [WRITERS [MESSAGES_EACH]]\n", argv[0]); return 64; }
    int found = 0;
    for (int k = 0; k < PROTOCOLS; k++) if (strcmp(argv[2], names[k]) == 0) { protocol = (enum protocol)k; found = 1; }
    if (!found) { fprintf(stderr, "unknown protocol %s\n", argv[2]); return 64; }
    if (argc > 3) writers = atoi(argv[3]);
    if (argc > 4) each = atoi(argv[4]);
    if (writers < 1 || writers > 256 || each < 1) { fprintf(stderr, "bad counts\n"); return 64; }
    memset(message, 'm', sizeof message);
    memset(envelope, 'e', sizeof envelope);
    memset(both, 'b', sizeof both);
    int base = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    must(base >= 0, argv[1]);
    must(mkdirat(base, "tmp", 0700) == 0 && mkdirat(base, "queue", 0700) == 0, "mkdir tmp, queue (DIR must be empty)");
    tmp_fd = openat(base, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    queue_fd = openat(base, "queue", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_t threads[256], making;
    if (getenv("MADE_BATCH")) made_batch = atoi(getenv("MADE_BATCH"));
    if (getenv("MADE_STOCK")) made_stock = atoi(getenv("MADE_STOCK"));
    if (getenv("MADE_SYNCFS")) made_syncfs = atoi(getenv("MADE_SYNCFS"));
    if (made_batch < 1 || made_batch > made_stock || made_batch > 64 || made_stock > 256) { fprintf(stderr, "bad MADE_BATCH\n"); return 64; }
    if (protocol == MADE) pthread_create(&making, NULL, maker, NULL);
    for (long k = 0; k < writers; k++) pthread_create(&threads[k], NULL, writer, (void *)k);
    for (int k = 0; k < writers; k++) pthread_join(threads[k], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (protocol == MADE) {
        pthread_mutex_lock(&made_lock);
        stopping = 1;
        pthread_cond_signal(&made_cond);
        pthread_mutex_unlock(&made_lock);
        pthread_join(making, NULL);
        printf("made: %ld of %d messages built in a blank made ahead\n", made_used, writers * each);
    }
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%s: %d writers x %d messages: %.0f msg/s\n", names[protocol], writers, each, writers * each / seconds);
    return 0;
}
