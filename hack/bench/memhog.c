/* hack/bench/memhog.c: the process `hack/bench/criu.sh` checkpoints and restores. Allocates
 * MiB (argv[1], default 64) of anonymous memory, writes every page (so each one is present
 * and has to be dumped), says "ready" on stdout, then sleeps until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	size_t n = mib << 20;
	unsigned char *p = malloc(n);
	if (!p)
		return 1;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (unsigned char)((i >> 12) | 1);
	printf("ready %zu MiB\n", mib);
	fflush(stdout);
	for (;;)
		pause();
}
