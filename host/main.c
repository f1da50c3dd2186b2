/* tshost: the command line and the interactive REPL around LuaJIT with the `ts` module preloaded.
 *
 *   tshost [--threads N] [--device cpu|cuda] SCRIPT [key=value ...]   run a script; key=value pairs land in ts.args
 *   tshost [options] -e 'code'                run code
 *   tshost [options] [-i]                     interactive REPL (also after a script with -i)
 *
 * The REPL's evaluation, printing and completion are Lua (bindings/ts/repl.lua); this file reads lines
 * (GNU readline on a terminal, plain stdin otherwise), keeps the history file and handles Ctrl-C. */
#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <libgen.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"

static const char usage[] =
    "usage: tshost [options] [SCRIPT [key=value ...] [ARG ...]]\n"
    "\n"
    "Runs a Lua (LuaJIT) script with the `ts` module loaded as the global `ts`.\n"
    "Without a script, opens an interactive REPL.\n"
    "\n"
    "options:\n"
    "  -e CODE          run CODE (may be given several times; runs before SCRIPT)\n"
    "  -i               enter the REPL after running SCRIPT or -e code\n"
    "  --threads N      CPU threads for the kernels (default: TSHOST_THREADS, else all cores)\n"
    "  --device D       cpu or cuda: where ts.train and ts.device() put models (default: TSHOST_DEVICE,\n"
    "                   else the GPU when there is one)\n"
    "  --doctor         what to check when tshost or its GPU does not work: build, processor and kernels,\n"
    "                   GPU and why it did not start, CUDA library versions and paths, environment\n"
    "  -h, --help       this text\n"
    "\n"
    "Script arguments: every key=value after SCRIPT goes into the table ts.args (strings; use\n"
    "ts.options{key = default, ...} to read them with defaults and types), which is how sweeps pass\n"
    "hyperparameters: tshost experiments/baseline.lua lr=0.01 batch=64. Other arguments are in arg[1..].\n"
    "\n"
    "REPL: type Lua statements or expressions; results are printed (tensors as a summary). Line\n"
    "editing and Tab completion of names (ts.<Tab>, model:<Tab>); an unfinished statement continues\n"
    "on the next line (prompt >>). History is kept in ~/.tshost_history (TSHOST_HISTORY overrides).\n"
    "An error prints a message and the REPL goes on. Ctrl-C interrupts the running chunk (state kept) or\n"
    "drops the line being typed; during ts.train it finishes the step, writes a checkpoint and stops (a\n"
    "second Ctrl-C stops at once). Ctrl-D or os.exit() leaves.\n"
    "\n"
    "environment:\n"
    "  TSHOST_THREADS   CPU threads, as --threads\n"
    "  TSHOST_DEVICE    cpu or cuda, as --device\n"
    "  TSHOST_CPU       force a CPU matrix-product path: generic, avx2, avx512, avx512bf16 or amx (default: the best\n"
    "                   this processor runs)\n"
    "  TSHOST_DATA      the GTSRB pickle folder used by ts.data.gtsrb()\n"
    "  TSHOST_MODELS    the pretrained models folder used by ts.models.pretrained()\n"
    "  TSHOST_ROOT      where bindings/ and host/ts.h are (default: beside the executable)\n";

static lua_State *L;

/* ---- Ctrl-C ------------------------------------------------------------------------------------------
 * A script: the default action (the process ends, status 130). The REPL keeps its state: at the prompt the
 * line is dropped and a fresh prompt shown, and a chunk entered but not yet started is dropped; while a chunk
 * runs, a hook raises "interrupted" in it at its next call, return or instruction count (lua.c's way; LuaJIT
 * checks it in the interpreter, so a compiled loop that never leaves its trace is not stopped: a second Ctrl-C
 * then ends the process). Deferred mode (ts.train): the first Ctrl-C only counts and the trainer finishes its
 * step, checkpoints and stops; a second ends the process at once. The handler touches only sig_atomic_t
 * flags, write(2), _exit, signal and raise, and lua_sethook as lua.c does; readline's redisplay waits for
 * prompt_after_sigint, which readline calls outside the handler. */
enum { REPL_OFF, REPL_READING, REPL_BUSY, REPL_EVALUATING };   /* where the REPL is (REPL_OFF: not in it) */
static volatile sig_atomic_t deferred, pending_interrupts, repl_state, line_dropped, prompt_stale;
static const char interrupted[] = "interrupted (Ctrl-C)";

static void interrupt_hook(lua_State *l, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(l, NULL, 0, 0);
    lua_pushstring(l, interrupted);   /* the traceback says where */
    lua_error(l);
}

static void say(const char *msg) { ssize_t w = write(2, msg, strlen(msg)); (void)w; }

static void on_sigint(int sig)
{
    if (deferred) {
        if (pending_interrupts++) {
            say("\ntshost: interrupted again: stopping now\n");
            _exit(130);
        }
        say("\ntshost: interrupt: finishing this step and writing a checkpoint (Ctrl-C again to stop at once)\n");
    } else if (repl_state == REPL_EVALUATING) {
        if (pending_interrupts++) _exit(130);   /* the first did not take effect: a loop inside a trace */
        lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    } else if (repl_state != REPL_OFF) {
        line_dropped = 1;   /* the REPL loop drops the unfinished statement, or the chunk about to run */
        prompt_stale = repl_state == REPL_READING;
    } else {
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

/* Readline's event hook: called while it waits for a key, at once when a signal cut the wait short and every
 * 0.1 s otherwise (so a Ctrl-C that came just before the wait began is not left until the next key). After a
 * Ctrl-C the line being typed goes and a fresh "> " prompt is shown (the REPL loop drops an unfinished
 * statement too); here, not in on_sigint, because readline's functions are not async-signal-safe. */
static int prompt_after_sigint(void)
{
    if (!prompt_stale) return 0;
    prompt_stale = 0;
    rl_crlf();
    rl_set_prompt("> ");
    rl_replace_line("", 0);
    rl_on_new_line();
    rl_redisplay();
    return 0;
}

void ts_interrupt_defer(int on)
{
    pending_interrupts = 0;
    deferred = on;
}

int ts_interrupt_pending(void) { return deferred ? pending_interrupts : 0; }

/* The error's message, with the stack where it came from when it carries a source position ("x.lua:12: ..."): a
 * bug's or a script's own. A message without one was raised for the user (error(msg, 0): "run/final.json is
 * missing ..."), and a traceback would only bury it; TSHOST_TRACEBACK=1 shows it anyway. An error object with a
 * __tostring says what it is; one whose __tostring fails, by its type (raised here, that error left only "error in
 * error handling"). Scripts' errors and the REPL's (_TSHOST_ERROR_MESSAGE) are shown by this one rule. */
static int traceback(lua_State *l)
{
    const char *msg = lua_tostring(l, 1);
    if (!msg && luaL_getmetafield(l, 1, "__tostring")) {
        lua_pushvalue(l, 1);
        if (lua_pcall(l, 1, 1, 0) == 0 && lua_type(l, -1) == LUA_TSTRING) msg = lua_tostring(l, -1);
    }
    if (!msg) msg = lua_pushfstring(l, "(error object is a %s value)", luaL_typename(l, 1));
    const char *colon = strchr(msg, ':');
    int positioned = colon && colon[1] >= '0' && colon[1] <= '9';
    const char *force = getenv("TSHOST_TRACEBACK");
    if (positioned || (force && !strcmp(force, "1"))) luaL_traceback(l, l, msg, 1);
    else lua_pushstring(l, msg);
    return 1;
}

/* Runs the chunk on top of the stack; prints the error and returns -1 on failure. */
static int run_chunk(int nargs)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, 0, base);
    lua_remove(L, base);
    if (rc) {
        fflush(stdout);   /* what the script printed comes before its error */
        fprintf(stderr, "tshost: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* Calls ts.repl.<name>(string of len bytes, NULs included) and returns what it returned as a Lua value on the stack. */
static int repl_call(const char *name, const char *text, size_t len, int nresults)
{
    lua_getglobal(L, "ts");
    lua_getfield(L, -1, "repl");
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    lua_remove(L, -2);
    lua_pushlstring(L, text, len);
    if (lua_pcall(L, 1, nresults, 0)) {
        fprintf(stderr, "tshost: REPL internal error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

static char **complete(const char *text, int start, int end)
{
    (void)start, (void)end;
    rl_attempted_completion_over = 1;   /* no file-name completion */
    if (repl_call("complete", text, strlen(text), 1) || !lua_istable(L, -1)) {
        lua_settop(L, 0);
        return NULL;
    }
    int n = (int)lua_objlen(L, -1);
    if (n == 0) {
        lua_pop(L, 1);
        return NULL;
    }
    /* readline wants [common prefix, match1, ..., NULL]; ts.repl.complete returns it in that shape */
    char **out = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        out[i] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (n == 1) rl_completion_suppress_append = 1;   /* a finished name: no space after it */
    return out;
}

/* a line of any length (readline on a terminal, getline otherwise), without its newline, its length in *len (a NUL
 * byte in piped input is kept, for Lua to judge: the line was cut at it, and what followed dropped without a word);
 * NULL at the end */
static char *read_line(const char *prompt, int tty, size_t *len)
{
    repl_state = REPL_READING;
    char *line = NULL;
    if (tty) {
        line = readline(prompt);
        *len = line ? strlen(line) : 0;
    } else {
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            free(line);
            line = NULL;
        } else if (n > 0 && line[n - 1] == '\n') {
            line[--n] = 0;
        }
        /* a UTF-8 byte-order mark that begins the input goes, as luaL_loadfile drops a script's: an editor's mark made
         * the first line "attempt to call global '\xEF\xBB\xBFprint'" */
        static int first = 1;
        if (line && first && n >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) memmove(line, line + 3, (size_t)(n -= 3) + 1);
        first = 0;
        *len = n > 0 ? (size_t)n : 0;
    }
    repl_state = REPL_BUSY;
    prompt_stale = 0;   /* a Ctrl-C that readline had no wait left to show */
    return line;
}

/* Into the history before the chunk runs, so a chunk that kills the process is still recorded; a multi-line
 * chunk becomes one line, which Lua reads the same. */
static void remember(const char *chunk, const char *history)
{
    char *one = strdup(chunk);
    for (char *c = one; *c; c++)
        if (*c == '\n') *c = ' ';
    add_history(one);
    free(one);
    if (*history) {
        if (append_history(1, history) != 0) write_history(history);   /* first entry: create it */
        history_truncate_file(history, 2000);
    }
}

/* Runs a complete chunk through ts.repl.eval, which prints its results or its error; a Ctrl-C that came
 * after its last line was entered drops it, as if it had come as the chunk began. Returns 0, or -1 when the
 * chunk failed. */
static int evaluate(const char *chunk, size_t len)
{
    if (line_dropped) {
        line_dropped = 0;
        printf("error: %s\n", interrupted);
        return -1;
    }
    pending_interrupts = 0;
    repl_state = REPL_EVALUATING;
    int ok = repl_call("eval", chunk, len, 1) == 0 && lua_toboolean(L, -1);
    repl_state = REPL_BUSY;
    lua_sethook(L, NULL, 0, 0);   /* a Ctrl-C that came as the chunk ended */
    lua_settop(L, 0);
    return ok ? 0 : -1;
}

/* Reads and runs chunks until the input ends. Returns how many failed: input that is not a terminal (a file or a
 * pipe, a batch's script) ends with exit status 1 when any did, as a script would. */
static int repl(void)
{
    int tty = isatty(0) && isatty(1);
    char history[PATH_MAX] = "";
    if (getenv("TSHOST_HISTORY")) snprintf(history, sizeof history, "%s", getenv("TSHOST_HISTORY"));
    else if (getenv("HOME")) snprintf(history, sizeof history, "%s/.tshost_history", getenv("HOME"));
    if (tty) {
        rl_readline_name = "tshost";
        rl_attempted_completion_function = complete;
        rl_basic_word_break_characters = " \t\n\"'><=;+-*/%^~#{}()[],";
        rl_completer_word_break_characters = rl_basic_word_break_characters;
        rl_event_hook = prompt_after_sigint;
        using_history();
        if (*history) read_history(history);
        printf("tshost REPL (LuaJIT) — ts is loaded; help: print(ts.help()) — Ctrl-D to quit\n");
    }
    char *pending = NULL;
    size_t pending_len = 0;
    int failed = 0;
    for (;;) {
        size_t line_len;
        char *line = read_line(pending ? ">> " : "> ", tty, &line_len);
        if (!line) {
            /* the input ended inside a statement: run it, so that its error ("unexpected <eof>") is seen rather
               than the statement dropped without a word */
            if (pending) failed += evaluate(pending, pending_len) != 0;
            break;
        }
        if (line_dropped) {   /* Ctrl-C at the prompt also drops an unfinished statement */
            line_dropped = 0;
            free(pending);
            pending = NULL;
        }
        size_t len = (pending ? pending_len + 1 : 0) + line_len;
        char *chunk = malloc(len + 1);
        if (pending) {
            memcpy(chunk, pending, pending_len);
            chunk[pending_len] = '\n';
        }
        memcpy(chunk + (pending ? pending_len + 1 : 0), line, line_len);
        chunk[len] = 0;
        free(line);
        free(pending);
        pending = NULL;
        /* an unfinished statement continues on the next line */
        if (repl_call("incomplete", chunk, len, 1) == 0 && lua_toboolean(L, -1)) {
            lua_settop(L, 0);
            pending = chunk;
            pending_len = len;
            continue;
        }
        lua_settop(L, 0);
        if (tty && *chunk) remember(chunk, history);
        failed += evaluate(chunk, len) != 0;
        free(chunk);
        fflush(stdout);
    }
    free(pending);
    if (tty) printf("\n");
    return failed;
}

/* exe: this executable's path ("" when unknown) */
static void find_root(char *root, size_t size, const char *exe)
{
    if (getenv("TSHOST_ROOT")) {
        snprintf(root, size, "%s", getenv("TSHOST_ROOT"));
        return;
    }
    /* beside the executable (a build tree), else one folder up (a release: bin/tshost-*; build/asan/tshost) or two
     * (build/emu/tshost) */
    char folder[PATH_MAX], probe[PATH_MAX + 32];
    snprintf(folder, sizeof folder, "%s", exe);   /* dirname writes into its argument */
    snprintf(root, size, "%s", *exe ? dirname(folder) : ".");
    static const char *const up[] = {"", "/..", "/../.."};
    for (int i = 0; i < 3; i++) {
        snprintf(probe, sizeof probe, "%s%s/host/ts.h", root, up[i]);
        if (!access(probe, R_OK)) {
            snprintf(root + strlen(root), size - strlen(root), "%s", up[i]);
            return;
        }
    }
}

/* a thread count from an option or TSHOST_THREADS: a whole number 1..1024 (what ts_set_threads takes), or -1
 * after saying what is wrong */
static int parse_threads(const char *what, const char *text)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!isdigit((unsigned char)*text) || *end || v < 1 || v > 1024) {   /* digits only: no sign, no blanks */
        fprintf(stderr, "tshost: %s: expected a whole number of threads from 1 to 1024, got '%s'\n", what, text);
        return -1;
    }
    return (int)v;
}

/* a device name from --device or TSHOST_DEVICE: 0 for cpu or cuda, else -1 after saying what is wrong (whether
 * cuda is there is asked at once for --device, and for TSHOST_DEVICE when ts.device() first needs it) */
static int check_device(const char *what, const char *text)
{
    if (!strcmp(text, "cpu") || !strcmp(text, "cuda")) return 0;
    fprintf(stderr, "tshost: %s: expected cpu or cuda, got '%s'\n", what, text);
    return -1;
}

/* At exit, however it comes (the end of main, os.exit): output that could not be written (a full disk, a closed
 * stdout) fails the run, as it does in cat or Python, instead of exit status 0 for a file that lacks what was printed.
 * A closed stdout that nothing was written to is no failure. (gnulib's close_stdout.) */
static void close_stdout(void)
{
    int pending = __fpending(stdout) != 0, failed_before = ferror(stdout);
    errno = 0;
    int close_failed = fclose(stdout) != 0;
    if (failed_before || (close_failed && (pending || errno != EBADF))) {
        if (errno) fprintf(stderr, "tshost: writing the output (stdout) failed: %s\n", strerror(errno));
        else fprintf(stderr, "tshost: writing the output (stdout) failed: what was printed is incomplete\n");
        _exit(1);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* progress reaches a log file line by line */
    atexit(close_stdout);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    rl_catch_signals = 0;   /* on_sigint deals with Ctrl-C at the prompt too */
    /* the environment is checked as the options are (an empty variable counts as unset, as ts.device() has it) */
    const char *env_threads = getenv("TSHOST_THREADS"), *env_device = getenv("TSHOST_DEVICE");
    int threads = env_threads && *env_threads ? parse_threads("TSHOST_THREADS", env_threads) : ts_get_threads();
    if (threads < 0) return 2;
    if (env_device && *env_device && check_device("TSHOST_DEVICE", env_device)) return 2;
    if (ts_cpu_select_path(getenv("TSHOST_CPU"))) {
        fprintf(stderr, "tshost: %s\n", ts_last_error());
        return 2;
    }
    int interactive = 0, doctor = 0, first_script = argc;
    const char *code[64];
    int ncode = 0;
    for (int i = 1; i < argc; i++) {
        /* --opt VALUE or --opt=VALUE; NULL (and the message) when the value is missing */
        const char *value = NULL;
        int valued = !strcmp(argv[i], "--threads") || !strcmp(argv[i], "--device") || !strcmp(argv[i], "-e");
        if (valued) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tshost: %s needs a value (see tshost --help)\n", argv[i]);
                return 2;
            }
            value = argv[i + 1];
        } else if (!strncmp(argv[i], "--threads=", 10) || !strncmp(argv[i], "--device=", 9)) {
            value = strchr(argv[i], '=') + 1;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strncmp(argv[i], "--threads", 9) && value) {
            if ((threads = parse_threads("--threads", value)) < 0) return 2;
            i += valued;
        } else if (!strncmp(argv[i], "--device", 8) && value) {
            if (check_device("--device", value)) return 2;
            if (!strcmp(value, "cuda") && !ts_cuda_available()) {   /* asked for by name: say at once why not */
                fprintf(stderr, "tshost: --device cuda: %s\n", ts_cuda_unavailable_reason());
                return 2;
            }
            setenv("TSHOST_DEVICE", value, 1);   /* read by ts.device(), and by the scripts this one starts */
            i += valued;
        } else if (!strcmp(argv[i], "-e") && value) {
            if (ncode == 64) {
                fprintf(stderr, "tshost: at most 64 -e chunks\n");
                return 2;
            }
            code[ncode++] = value;
            i++;
        } else if (!strcmp(argv[i], "-i")) {
            interactive = 1;
        } else if (!strcmp(argv[i], "--doctor")) {
            doctor = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "tshost: unknown option %s (see tshost --help)\n", argv[i]);
            return 2;
        } else {
            first_script = i;
            break;
        }
    }
    if (ts_set_threads(threads)) {
        fprintf(stderr, "tshost: --threads/TSHOST_THREADS: %s\n", ts_last_error());
        return 2;
    }

    char root[PATH_MAX];
    /* this executable, for the root and for ts.program */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    find_root(root, sizeof root, exe);
    if (doctor && (ncode || interactive || first_script < argc)) {   /* the rest was not run, and the status said 0 */
        fprintf(stderr, "tshost: --doctor runs alone: no script, -e or -i with it\n");
        return 2;
    }
    if (doctor) {
        static char report[16384];
        ts_doctor_report(report, sizeof report, root);
        fputs(report, stdout);
        return 0;
    }
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    /* made by Lua, of any length: a fixed buffer cut a long LUA_PATH without a word */
    lua_pushfstring(L, "%s/bindings/?.lua;%s/bindings/?/init.lua;%s", root, root, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_pushstring(L, root);
    lua_setglobal(L, "_TSHOST_ROOT");
    /* the command that starts this same tshost again (a sweep's runs, the tests' subprocesses), as Python's
     * sys.executable: the release's launcher when it started this one (it sets TSHOST_PROGRAM, so that a run on
     * another node picks that node's build), else this executable */
    const char *launcher = getenv("TSHOST_PROGRAM");
    lua_pushstring(L, launcher && *launcher ? launcher : *exe ? exe : argv[0]);
    lua_setglobal(L, "_TSHOST_PROGRAM");
    /* the REPL shows its errors by the same rule as scripts' (bindings/ts/repl.lua) */
    lua_pushcfunction(L, traceback);
    lua_setglobal(L, "_TSHOST_ERROR_MESSAGE");

    /* arg: arg[0] is the script, arg[1..] what follows it, as in the lua interpreter */
    lua_newtable(L);
    for (int i = first_script; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first_script);
    }
    lua_setglobal(L, "arg");

    luaL_loadstring(L, "ts = require('ts'); ts.args = ts.parse_args(arg)");
    if (run_chunk(0)) return 1;
    int status = 0;
    for (int i = 0; i < ncode && !status; i++) {
        if (luaL_loadbuffer(L, code[i], strlen(code[i]), "=(command line)")) {
            fprintf(stderr, "tshost: %s\n", lua_tostring(L, -1));
            return 1;
        }
        status = run_chunk(0);
    }
    if (!status && first_script < argc) {
        if (luaL_loadfile(L, argv[first_script])) {
            fprintf(stderr, "tshost: %s\n", lua_tostring(L, -1));
            return 1;
        }
        status = run_chunk(0);
    }
    if (interactive || (first_script == argc && ncode == 0)) {
        int failed = repl();
        if (failed && !(isatty(0) && isatty(1))) status = -1;
    }
    lua_close(L);
    return status ? 1 : 0;
}
