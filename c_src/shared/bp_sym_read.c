/* bp_sym_read.c - checked reads of our own memory (see bp_sym_read.h):
 * process_vm_readv on ourselves, else a pread of /proc/self/mem. */
#include "bp_sym_read.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

/* Fallback when process_vm_readv is refused (seccomp, old kernel): a pread
 * of /proc/self/mem returns EIO for unmapped memory instead of faulting. */
static int bp_sym_read_procmem(void *dst, uint64_t addr, size_t len)
{
    int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, dst, len, (off_t)addr);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

int bp_sym_read(void *dst, uint64_t addr, size_t len)
{
    if (len == 0)
        return 0;
    if (addr == 0 || addr + len < addr)
        return -1;
    struct iovec local = {.iov_base = dst, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && (errno == ENOSYS || errno == EPERM))
        return bp_sym_read_procmem(dst, addr, len);
    return -1;
}
