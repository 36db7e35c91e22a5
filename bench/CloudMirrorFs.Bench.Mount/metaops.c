/*
 * metaops: the small-operation half of the mount benchmark (bench/CloudMirrorFs.Bench.Mount).
 * Compiled by the bench at run time: gcc -O2 -Wall -Wextra -o metaops metaops.c
 *
 *   metaops meta  DIR  N   N x (open(O_CREAT|O_WRONLY) + write 4 KiB + close + stat + unlink) of DIR/fNNNNNN,
 *                          timed as a whole; prints files per second.
 *   metaops fsync FILE N   N x (pwrite 4 KiB at offset i * 4 KiB + fsync) on a new FILE, each timed;
 *                          prints p50, p99, mean and max in microseconds; FILE is removed at the end.
 *
 * Output: one JSON object on stdout. Any failed call prints the call, path, iteration and errno text on stderr
 * and exits 1, so a misbehaving mount is reported rather than measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(const char *call, const char *path, long i)
{
    fprintf(stderr, "metaops: %s(%s) failed at iteration %ld: %s\n", call, path, i, errno ? strerror(errno) : "short transfer");
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int meta(const char *dir, long n)
{
    static char buf[BLOCK];
    char path[4096];
    memset(buf, 'm', sizeof buf);
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%06ld", dir, i);
        errno = 0;
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        if (fd < 0)
            return fail("open", path, i);
        buf[0] = (char)i;
        if (write(fd, buf, BLOCK) != BLOCK)
            return fail("write", path, i);
        if (close(fd) != 0)
            return fail("close", path, i);
        struct stat st;
        if (stat(path, &st) != 0)
            return fail("stat", path, i);
        if (st.st_size != BLOCK) {
            fprintf(stderr, "metaops: stat(%s) at iteration %ld says size %lld, expected %d\n", path, i, (long long)st.st_size, BLOCK);
            return 1;
        }
        if (unlink(path) != 0)
            return fail("unlink", path, i);
    }
    double seconds = (now_us() - t0) / 1e6;
    printf("{\"mode\":\"meta\",\"n\":%ld,\"seconds\":%.6f,\"filesPerSecond\":%.1f}\n", n, seconds, (double)n / seconds);
    return 0;
}

static int fsync_latency(const char *path, long n)
{
    static char buf[BLOCK];
    double *samples = malloc((size_t)n * sizeof(double));
    if (samples == NULL) {
        fprintf(stderr, "metaops: out of memory\n");
        return 1;
    }
    memset(buf, 'f', sizeof buf);
    errno = 0;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return fail("open", path, -1);
    double sum = 0;
    for (long i = 0; i < n; i++) {
        buf[0] = (char)i;
        errno = 0;
        double t0 = now_us();
        if (pwrite(fd, buf, BLOCK, (off_t)i * BLOCK) != BLOCK)
            return fail("pwrite", path, i);
        if (fsync(fd) != 0)
            return fail("fsync", path, i);
        samples[i] = now_us() - t0;
        sum += samples[i];
    }
    if (close(fd) != 0)
        return fail("close", path, n);
    if (unlink(path) != 0)
        return fail("unlink", path, n);
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    long i99 = n * 99 / 100;
    if (i99 >= n)
        i99 = n - 1;
    printf("{\"mode\":\"fsync\",\"n\":%ld,\"p50us\":%.1f,\"p99us\":%.1f,\"meanUs\":%.1f,\"maxUs\":%.1f}\n",
           n, samples[n / 2], samples[i99], sum / (double)n, samples[n - 1]);
    free(samples);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: metaops meta DIR N | metaops fsync FILE N\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    if (n <= 0) {
        fprintf(stderr, "metaops: N must be positive, got %s\n", argv[3]);
        return 2;
    }
    if (strcmp(argv[1], "meta") == 0)
        return meta(argv[2], n);
    if (strcmp(argv[1], "fsync") == 0)
        return fsync_latency(argv[2], n);
    fprintf(stderr, "metaops: unknown mode %s (meta or fsync)\n", argv[1]);
    return 2;
}
