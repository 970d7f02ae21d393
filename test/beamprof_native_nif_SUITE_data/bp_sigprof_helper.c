/* bp_sigprof_helper.c - test-only NIF for beamprof_native_nif_SUITE: installs
 * and removes a foreign SIGPROF handler, reports the current disposition and
 * sends the process a stray SIGPROF. */
#include <erl_nif.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct sigaction saved;
static int have_saved;
static volatile sig_atomic_t hits;

static void foreign(int sig)
{
    (void)sig;
    hits++;
}

static ERL_NIF_TERM install(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = foreign;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, &saved) != 0)
        return enif_make_atom(env, "error");
    have_saved = 1;
    return enif_make_atom(env, "ok");
}

static ERL_NIF_TERM restore(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    if (have_saved)
        sigaction(SIGPROF, &saved, NULL);
    have_saved = 0;
    return enif_make_atom(env, "ok");
}

/* default | ignore | foreign (this helper's) | handler (someone's, e.g. beamprof) */
static ERL_NIF_TERM disposition(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct sigaction cur;
    sigaction(SIGPROF, NULL, &cur);
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
        return enif_make_atom(env, "default");
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN)
        return enif_make_atom(env, "ignore");
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == foreign)
        return enif_make_atom(env, "foreign");
    return enif_make_atom(env, (cur.sa_flags & SA_ONSTACK) ? "handler_onstack" : "handler");
}

/* Sends SIGPROF to the whole process (some thread takes it). */
static ERL_NIF_TERM stray(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    kill(getpid(), SIGPROF);
    return enif_make_atom(env, "ok");
}

static ErlNifFunc funcs[] = {{"install", 0, install, 0},
                             {"restore", 0, restore, 0},
                             {"disposition", 0, disposition, 0},
                             {"stray", 0, stray, 0}};

ERL_NIF_INIT(bp_sigprof_helper, funcs, NULL, NULL, NULL, NULL)
