/* LD_PRELOAD shim of the emulated phone: execve of an aarch64 ELF file runs it under
 * user-mode QEMU instead, as a binfmt_misc registration would (none is possible here).
 *
 * The shell of the loopback phone and every host program it starts load this library;
 * when one of them executes a file whose ELF header names EM_AARCH64, the file is run as
 * `$VITDEPLOY_PHONE_QEMU FILE ARGS...`. QEMU reads its CPU model, its -L prefix and the
 * variables to hide from the guest (this library's LD_PRELOAD) from QEMU_CPU,
 * QEMU_LD_PREFIX and QEMU_UNSET_ENV. Any other file is executed as it is.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EM_AARCH64 183

typedef int (*execve_function)(const char *, char *const[], char *const[]);

static int is_aarch64_elf(const char *path) {
    unsigned char header[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, header, sizeof header);
    close(fd);
    return got == (ssize_t)sizeof header && memcmp(header, "\177ELF", 4) == 0 && header[5] == 1 &&
           (header[18] | header[19] << 8) == EM_AARCH64;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    execve_function real_execve = (execve_function)dlsym(RTLD_NEXT, "execve");
    const char *qemu = getenv("VITDEPLOY_PHONE_QEMU");
    if (qemu == NULL || !is_aarch64_elf(path)) return real_execve(path, argv, envp);
    size_t count = 0;
    while (argv[count] != NULL) count++;
    char **emulated = calloc(count + 2, sizeof *emulated);
    if (emulated == NULL) return -1;
    emulated[0] = (char *)qemu;
    emulated[1] = (char *)path;
    for (size_t i = 1; i < count; i++) emulated[i + 1] = argv[i];
    return real_execve(qemu, emulated, envp);
}
