/* The pod sandbox's process for the CRI suite and benchmark (hack/cri.sh builds it static):
 * holds the pod's namespaces, reaps zombies when it is PID 1 of a shared PID namespace, and
 * exits on SIGINT/SIGTERM, as Kubernetes' pause does. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void down(int sig)
{
    (void)sig;
    _exit(0);
}

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv)
{
    struct sigaction sa = {0};
    (void)argv;
    if (argc > 1) {
        static const char v[] = "berth-cri pause\n";
        write(1, v, sizeof v - 1);
        return 0;
    }
    sa.sa_handler = down;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
}
