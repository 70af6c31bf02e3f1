/*
 * attyguard's login launcher.
 *
 * Why this exists: login(1), sshd and `su -` tell a shell that it is a login
 * shell only through argv[0] ("-attyguard"). pip's console script is a #!
 * script, and the kernel replaces argv[0] of a #! script with the
 * interpreter's path, so that signal is lost before Python starts. This tiny
 * binary is what /etc/passwd should name: it turns a leading '-' in argv[0]
 * into an explicit -l and execs the real entry point, passing everything
 * else through unchanged (arguments, environment, descriptors, signals).
 *
 * Built by contrib/build-launcher.sh with the interpreter and script baked in:
 *   cc -O2 -DATTYGUARD_PYTHON='"/opt/attyguard/venv/bin/python"' \
 *      -DATTYGUARD_SCRIPT='"/opt/attyguard/venv/bin/attyguard"' -o attyguard login-launcher.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ATTYGUARD_PYTHON
#error "define ATTYGUARD_PYTHON"
#endif
#ifndef ATTYGUARD_SCRIPT
#error "define ATTYGUARD_SCRIPT"
#endif

int main(int argc, char **argv) {
    int login = argc > 0 && argv[0] != NULL && argv[0][0] == '-';
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (args == NULL) {
        fputs("attyguard: out of memory\n", stderr);
        return 126;
    }
    int n = 0;
    args[n++] = ATTYGUARD_PYTHON;
    args[n++] = ATTYGUARD_SCRIPT;
    if (login)
        args[n++] = "-l";
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execv(ATTYGUARD_PYTHON, args);
    fprintf(stderr, "attyguard: cannot run %s: %s\n", ATTYGUARD_PYTHON, strerror(errno));
    /* 127 like a shell that cannot find a command; 126 if it exists but won't run */
    return errno == ENOENT ? 127 : 126;
}
