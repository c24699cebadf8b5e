/* rsswrap OUT PROG ARGS...: fork+exec PROG, wait4 it, write "<exit-code> <ru_maxrss KiB>" to OUT.
 * Used for the peak-RSS figure only. The driver (python) cannot measure this itself: a process
 * started from python inherits python's RSS high-water mark through exec (the kernel keeps the
 * maximum in signal->maxrss across execve), so every runtime would report >= python's ~17 MiB.
 * This helper is static and tiny, so its own high-water mark (the floor) is ~1 MiB or less. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: rsswrap OUT PROG ARGS...\n"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) { execv(argv[2], argv + 2); perror("execv"); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 2; }
    FILE *f = fopen(argv[1], "w");
    if (!f) { perror(argv[1]); return 2; }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    fprintf(f, "%d %ld\n", code, ru.ru_maxrss);
    fclose(f);
    return code;
}
