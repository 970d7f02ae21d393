%% @private
%% @doc The native sampler's C library (`beamprof_native_nif.so', c_src/native/):
%% SIGPROF capture on the scheduler threads, unwinding and symbolization.
%%
%% Internal: the public API is `beamprof:native_start/1' and `beamprof_native'.
%%
%% The library is optional and loaded on first use, never at application start: it is
%% built only where supported (Linux x86_64 with libunwind), and every function here
%% loads it first. Where it is missing or cannot load, `load/0', `start/1', `info/0',
%% `symbolize/1' and `jit_symbols/0' answer `{error, {unsupported, Reason}}', `stop/0'
%% answers `ok' and `drain/1' `[]' (nothing can run). `Reason' says what is missing:
%%
%% <ul>
%% <li>`{not_built, Detail}': no library file; `Detail' is the line the build printed
%% when it skipped the library (`priv/beamprof_native_nif.unsupported': the
%% architecture, or libunwind's headers missing), else the path looked at;</li>
%% <li>`{load_failed, Detail}': the file exists but the VM's loader refused it (`Detail'
%% is its message: a missing `libunwind-x86_64.so.8', another architecture's file,
%% ...);</li>
%% <li>`{channel, Detail}': the core library (`beamprof_nif') is not loaded, or speaks
%% another channel version than this library (see c_src/README.md, "The
%% channel").</li>
%% </ul>
%%
%% The library finds the scheduler threads and the load gate in the core library through
%% `beamprof_nif:native_channel/0': every `start/1' passes a fresh channel, kept by the
%% C side until the run stops. Ill-typed arguments raise `badarg'; conditions a caller
%% can act on return `{error, Reason}'.
-module(beamprof_native_nif).

-export([load/0, start/1, start/2, stop/0, drain/1, info/0, info/1, symbolize/1,
         jit_symbols/0, jit_symbols/1, symbol_table/1, symbolize/2, symbol_objects/1]).
-export_type([config/0, sample/0, start_error/0, unsupported/0, info/0, symbol_table/0,
              symbol_object/0]).

-type thread_type() :: normal | dirty_cpu | dirty_io.
-type config() :: #{hz => 1..10000,
                    threads => [thread_type(), ...],
                    depth => 1..1024,
                    stack_bytes => 0..65536,
                    ring_bytes => 65536..67108864,
                    vm_internals => boolean(),
                    test_hooks => [deny_vm_readv | slow_start],
                    _ => _}.
-type sample() :: {thread_type(), Index :: pos_integer(),
                   Weight :: pos_integer(), Truncated :: boolean() | unrooted,
                   Addrs :: [non_neg_integer()]}.
-type unsupported() :: {not_built | load_failed | channel, Detail :: binary()}.
%% What info/0,1 return (see info/0).
-type info() :: #{running := boolean(), hz := non_neg_integer(),
                  depth := non_neg_integer(),
                  frame_pointers := boolean() | unknown,
                  mode := fp | leaf,
                  samples := non_neg_integer(),
                  weighted := non_neg_integer(),
                  dropped := non_neg_integer(),
                  hz_under_gate := non_neg_integer(),
                  thinned := non_neg_integer(),
                  gated := non_neg_integer(),
                  gate_closed_ns := non_neg_integer(),
                  lost_weight := non_neg_integer(),
                  effective_hz := float(),
                  signal_hz := float(),
                  cpu_ns := non_neg_integer(),
                  wall_ns := non_neg_integer(),
                  threads := non_neg_integer(),
                  slots := non_neg_integer(),
                  stray := non_neg_integer(),
                  pending_bytes := non_neg_integer(),
                  drained := non_neg_integer(),
                  rescans := non_neg_integer(),
                  stack_bytes := non_neg_integer(),
                  ring_bytes := non_neg_integer(),
                  thread_kinds := [thread_type()],
                  handler_ns := non_neg_integer(),
                  drain_ns := non_neg_integer(),
                  rescan_ns := non_neg_integer(),
                  overhead_pct := float(),
                  frame_layout_source := erts_frame_layout | gdb_jit | none,
                  vm_internals := boolean(),
                  internal_reads := non_neg_integer(),
                  jit_walks := non_neg_integer(),
                  vm_readv := ok | denied | untested,
                  cached := boolean()}.
-type jit_symbols() ::
        {ok, [{Start :: non_neg_integer(), End :: non_neg_integer(), Name :: binary()}],
         #{modules := non_neg_integer(), skipped := non_neg_integer(),
           symbols := non_neg_integer(), frame_layout := 0 | 1 | undefined,
           descriptor := dlsym | search}}
      | {error, no_descriptor | unreadable | inconsistent | enomem | vm_internals_off
              | {unsupported, unsupported()}}.
-opaque symbol_table() :: reference().
-type symbol_object() ::
        #{object := binary(), path := binary(),
          source := dynsym | symtab | build_id | debuglink,
          debug_file := binary() | undefined, build_id := binary() | undefined,
          debuglink := binary() | undefined, symbols := non_neg_integer(),
          rejected := [{binary(), build_id_mismatch | crc_mismatch | malformed | no_symbols
                                  | same_file}]}.
-type start_error() :: already_started | superseded | enomem
                     | {sigprof_in_use, Description :: binary()}
                     | {unsupported, no_threads | cpu_timers | sigaction | unsupported()}
                     | {invalid, ring_bytes}.

-define(NIF_LIB, "beamprof_native_nif").

%% Stubs call erlang:nif_error/1 directly: Dialyzer then trusts their specs.
-define(NOT_LOADED,
        erlang:nif_error({not_loaded, [{module, ?MODULE}, {line, ?LINE}]})).

%%--------------------------------------------------------------------
%% Loading

%% @doc Loads the library unless this module instance has it: `ok', or what
%% is missing. From $BEAMPROF_NATIVE_NIF (a path without ".so"), else the
%% application's priv dir, else ../priv next to this module's ebin. Loading
%% over an older instance of this module that ran the sampler hands its run
%% over (it restarts here with the same options). Safe to call from many
%% processes at once.
-spec load() -> ok | {error, {unsupported, unsupported()}}.
load() ->
    try nif_loaded() of
        true -> ok
    catch
        error:{not_loaded, _} -> load_library()
    end.

load_library() ->
    Path = lib_path(),
    case {filelib:is_regular(Path ++ ".so"), channel()} of
        {false, _} -> unsupported({not_built, not_built(Path)});
        {true, {ok, Channel}} -> load_nif(Path, Channel);
        {true, {error, _} = Error} -> Error
    end.

load_nif(Path, Channel) ->
    case erlang:load_nif(Path, Channel) of
        ok -> ok;
        {error, {reload, _}} -> ok; %% another process loaded it meanwhile
        {error, {_, Text}} -> unsupported({load_failed, text(Text)})
    end.

%% A fresh channel of the core library's current instance.
channel() ->
    try beamprof_nif:native_channel() of
        Channel when is_binary(Channel) ->
            {ok, Channel};
        {error, Reason} ->
            unsupported({channel, text(io_lib:format("beamprof_nif:native_channel() -> ~p",
                                                     [Reason]))})
    catch
        error:Undef when Undef =:= undef; element(1, Undef) =:= not_loaded ->
            unsupported({channel, <<"the core library (beamprof_nif) is not loaded">>})
    end.

not_built(Path) ->
    case file:read_file(Path ++ ".unsupported") of
        {ok, Note} -> string:trim(Note);
        {error, _} -> text(["no ", Path, ".so (the build did not make it)"])
    end.

unsupported(What) -> {error, {unsupported, What}}.

text(Chars) ->
    case unicode:characters_to_binary(Chars) of
        Bin when is_binary(Bin) -> Bin;
        _ -> iolist_to_binary(io_lib:format("~p", [Chars]))
    end.

-spec lib_path() -> file:filename().
lib_path() ->
    case os:getenv("BEAMPROF_NATIVE_NIF") of
        Path when is_list(Path), Path =/= "" -> Path;
        _ -> filename:join(beamprof_nif:priv_dir(), ?NIF_LIB)
    end.

%%--------------------------------------------------------------------
%% API

%% @doc Starts the native sampler: a CPU-time timer on each selected
%% scheduler thread raising SIGPROF on it `hz' times per CPU second (the
%% kernel delivers at most its tick rate, 250/s here: samples carry the
%% overrun as their weight), a handler capturing registers, the JIT frames
%% and a copy of the C stack window into per-thread rings. Every key is
%% optional: `hz' (default 99), `threads' (default all three kinds),
%% `depth' (frames kept, default 128), `stack_bytes' (C stack window,
%% default 16384, a multiple of 8), `ring_bytes' (per thread, a power of
%% two, default 1048576; pages are touched only as
%% samples arrive), `vm_internals' (default `beamprof_config:vm_internals()',
%% `badarg' for a non-boolean). Drain at least every 100 ms at high rates: a full ring
%% drops samples (counted). Refuses to replace someone else's SIGPROF
%% handler.
%%
%% While the core's load gate is closed each thread is sampled at
%% `min(hz, 99)' (`hz_under_gate' in info/0): the signals in between are
%% not captured (`thinned') and their weight goes to the next sample, so
%% `weighted' still measures CPU time; it never stops sampling.
%%
%% Before the first timer, start probes `process_vm_readv' on the VM's own
%% pid (every stack read of the signal handler goes through it; a seccomp
%% filter may deny it). When it is denied the run reads no stack: each
%% sample is its innermost address alone (`vm_readv => denied' in info/0).
%%
%% Test-only: `test_hooks' (a list; from the application environment key
%% `native_test_hooks' when Config has none), `deny_vm_readv' makes the
%% probe report denial, `slow_start' holds the control lock 3 s longer in
%% start. Not for production use.
%%
%% With `vm_internals => false' the library reads none of the VM's
%% internals: not the frame layout (`erts_frame_layout', or the GDB JIT
%% list's emulator record), not the GDB JIT list, and no JIT or Erlang
%% frames on the VM's stacks (their layout is the VM's). A sample taken in
%% JIT code is then its instruction pointer alone, one taken in C code its
%% C frames (DWARF unwinding, beam.smp's public unwind tables) down to the
%% JIT code that called them; both are marked `unrooted'. `info/0' then
%% says `mode => leaf', `frame_layout_source => none'.
-spec start(Config) -> ok | {error, start_error()} when
      Config :: config().
start(Config) ->
    case load() of
        ok ->
            case channel() of
                {ok, Channel} -> nif_start(with_internals(Config), Channel);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc `start/1' with a given channel (a binary of
%% `beamprof_nif:native_channel/0' in this VM): `badarg' for anything else,
%% a copy of one included; `{error, {unsupported, {channel, Detail}}}' for a
%% channel of a version this library does not read.
-spec start(Config, Channel) -> ok | {error, start_error()} when
      Config :: config(), Channel :: binary().
start(Config, Channel) ->
    case load() of
        ok -> nif_start(with_internals(Config), Channel);
        {error, _} = Error -> Error
    end.

%% The application's vm_internals switch unless Config says (a non-map is
%% left to the NIF's badarg), and the test-only hooks of the application
%% environment (`native_test_hooks').
with_internals(Config) when is_map(Config), not is_map_key(vm_internals, Config) ->
    with_hooks(Config#{vm_internals => beamprof_config:vm_internals()});
with_internals(Config) ->
    with_hooks(Config).

with_hooks(Config) when is_map(Config), not is_map_key(test_hooks, Config) ->
    case application:get_env(beamprof, native_test_hooks) of
        {ok, Hooks} -> Config#{test_hooks => Hooks};
        undefined -> Config
    end;
with_hooks(Config) ->
    Config.

%% @doc Stops the native sampler: no timer fires afterwards and SIGPROF
%% stays handled. Samples not drained yet stay until the next start.
%% Idempotent; runs on a dirty IO scheduler. `ok' without the library.
-spec stop() -> ok.
stop() ->
    case load() of
        ok -> nif_stop();
        {error, _} -> ok
    end.

%% @doc At most `Max' samples, oldest first, unwound (C frames by DWARF
%% from the copied window, JIT frames by frame pointers): addresses leaf
%% first, return addresses as captured. Runs on a dirty CPU scheduler.
%% `[]' without the library.
-spec drain(Max :: pos_integer()) -> [sample()].
drain(Max) ->
    case load() of
        ok -> nif_drain(Max);
        {error, _} -> []
    end.

%% @doc The native sampler's state and counters: `samples' written,
%% `weighted' (their weights), `dropped' (ring full), `hz_under_gate' (the
%% rate kept while the load gate is closed: `min(hz, 99)'), `thinned'
%% (signals not captured under the closed gate, their weight carried into
%% the next sample), `gated' (samples taken while it was closed),
%% `gate_closed_ns' (wall time the gate was closed during the run, polled
%% every 100 ms), `stray' (SIGPROFs the handler got that were for no
%% sampled thread: sent by `kill', or arriving after a stop; counted since
%% the library was loaded, whether a run is on or not), `vm_readv' (`ok',
%% or `denied' when the last start found `process_vm_readv' denied and ran
%% leaf-only; `untested' before the first start), `cached' (`true' when
%% the control lock was held, by a start, a rescan or a drain, and the
%% run's figures are the copy taken the last time it was free: this call
%% never waits for it), `effective_hz' (samples kept per CPU second of
%% the sampled threads: the rate a profile got), `signal_hz' (signals per CPU
%% second, thinned and dropped ones included: the timers' rate, which the
%% kernel's tick caps), `cpu_ns' of those threads during the run, `frame_pointers'
%% and the walk `mode' it implies, with `frame_layout_source', where that
%% came from: `erts_frame_layout' (the variable beam.smp exports on OTP
%% 25 and 27), `gdb_jit' (the emulator record of its GDB JIT list, on OTP
%% 29, whose beam.smp exports neither) or `none' (`frame_pointers' is then
%% `unknown'); `mode', the walk of JIT frames a start uses: `fp' (frame
%% pointers: the Erlang callers are walked) or `leaf' (no JIT frame read:
%% `vm_internals' off, no frame pointers, or the layout unknown; a sample
%% keeps its innermost Erlang function and its C frames, since without
%% frame pointers no caller can be verified); these
%% three as a start with `beamprof_config:vm_internals()' finds them (see
%% info/1); `internal_reads', how many lookups of VM internals (the frame
%% layout, the GDB JIT list, a search for its descriptor) this library has
%% made since it was loaded, and `jit_walks', how many samples of the last
%% run read the VM's stack (both stay put while `vm_internals' is off:
%% proof that nothing was read);
%% the sampler's own cost in CPU ns this run: `handler_ns' (the signal
%% handler, timed inside it), `drain_ns' (the drains, unwinding included),
%% `rescan_ns' (the rescan thread), and `overhead_pct', their sum against
%% `cpu_ns'.
-spec info() -> info() | {error, {unsupported, unsupported()}}.
info() ->
    info(beamprof_config:vm_internals()).

%% @doc `info/0' with its frame layout keys (`frame_pointers',
%% `frame_layout_source', `mode') as a start with `vm_internals =>
%% VmInternals' finds them: looked up when `true' (the layout is fixed at
%% the VM's boot), else `unknown', `none', `leaf' without reading anything.
%% `vm_internals' is `VmInternals'; `badarg' for a non-boolean.
-spec info(VmInternals :: boolean()) -> info() | {error, {unsupported, unsupported()}}.
info(VmInternals) ->
    case load() of
        ok -> nif_info(VmInternals);
        {error, _} = Error -> Error
    end.

%% @doc The names of native code addresses (dladdr): the exported symbol
%% covering each address, else `<<"object+0xOffset">>' relative to the
%% object's base; `undefined' for an address in no loaded object (JIT
%% code). Pass `ReturnAddress - 1' for non-leaf frames. At most 100000
%% addresses; runs on a dirty CPU scheduler.
-spec symbolize(Addrs) -> [binary() | undefined] | {error, {unsupported, unsupported()}} when
      Addrs :: [non_neg_integer()].
symbolize(Addrs) ->
    case load() of
        ok -> nif_symbolize(Addrs);
        {error, _} = Error -> Error
    end.

%% @doc A consistent snapshot of the JIT's code ranges from beam.smp's GDB
%% JIT interface, sorted by start: `{ok, [{Start, End, Name}], Info}'.
%% Info also has the emulator record's `frame_layout' (1 when JIT code
%% keeps frame pointers) and how the descriptor was found: `dlsym' where
%% beam.smp exports it (OTP 25, 27), `search' of beam.smp's writable
%% segments where it does not (OTP 29). Runs on a dirty CPU scheduler
%% (tens of thousands of names). The GDB JIT list is a VM internal:
%% `jit_symbols(beamprof_config:vm_internals())'.
-spec jit_symbols() -> jit_symbols().
jit_symbols() ->
    jit_symbols(beamprof_config:vm_internals()).

%% @doc `jit_symbols/0' when `VmInternals' is `true'; with `false',
%% `{error, vm_internals_off}' without reading anything; `badarg' for a
%% non-boolean.
-spec jit_symbols(VmInternals :: boolean()) -> jit_symbols().
jit_symbols(VmInternals) ->
    case load() of
        ok -> nif_jit_symbols(VmInternals);
        {error, _} = Error -> Error
    end.

%% @doc A new set of full symbol tables (c_src/native/bp_objsyms.h): for
%% each object `symbolize/2' meets, its own `.symtab', else a debug file
%% found by build-id under `DebugRoot/.build-id/', else by its
%% `.gnu_debuglink' (the object's directory, its `.debug/', then
%% `DebugRoot' followed by the object's directory), checked by build-id or
%% CRC-32. `DebugRoot' is gdb's debug-file-directory, `/usr/lib/debug' on
%% Debian. The tables live as long as the returned term.
-spec symbol_table(DebugRoot :: file:filename_all()) ->
          symbol_table() | {error, enomem | {unsupported, unsupported()}}.
symbol_table(DebugRoot) ->
    Root = unicode:characters_to_binary(DebugRoot, file:native_name_encoding()),
    case {load(), is_binary(Root)} of
        {ok, true} -> nif_symbol_table(Root);
        {ok, false} -> erlang:error({badarg, "Expected a directory name"}, [DebugRoot]);
        {{error, _} = Error, _} -> Error
    end.

%% @doc As `symbolize/1', with `Table''s full symbol tables for what dladdr
%% cannot name (loaded on first use of each object: file reads, on a dirty
%% IO scheduler). An address that stays unnamed in an object answers
%% `{Object, Offset}': the object's file name and the offset of its
%% function's start from the object's base (`Object+0xOffset' as a frame).
-spec symbolize(symbol_table(), Addrs) ->
          [binary() | {Object :: binary(), Offset :: non_neg_integer()} | undefined]
        | {error, {unsupported, unsupported()}} when
      Addrs :: [non_neg_integer()].
symbolize(Table, Addrs) ->
    case load() of
        ok -> nif_symbolize(Table, Addrs);
        {error, _} = Error -> Error
    end.

%% @doc What `Table' found for each object it was asked about, in the
%% order met: `source' `symtab' (its own), `build_id' or `debuglink' (a
%% debug file, `debug_file'), or `dynsym' (none: dladdr's exported names
%% only); its `build_id' (hex) and `debuglink' (`undefined' when absent),
%% the `symbols' kept, and the candidates `rejected' with why.
-spec symbol_objects(symbol_table()) -> [symbol_object()] | {error, {unsupported, unsupported()}}.
symbol_objects(Table) ->
    case load() of
        ok -> nif_symbol_objects(Table);
        {error, _} = Error -> Error
    end.

%%--------------------------------------------------------------------
%% NIF stubs (c_src/native/beamprof_native_nif.c)

-spec nif_loaded() -> true.
nif_loaded() -> ?NOT_LOADED.

-spec nif_start(config(), binary()) -> ok | {error, start_error()}.
nif_start(_Config, _Channel) -> ?NOT_LOADED.

-spec nif_stop() -> ok.
nif_stop() -> ?NOT_LOADED.

-spec nif_drain(pos_integer()) -> [sample()].
nif_drain(_Max) -> ?NOT_LOADED.

-spec nif_info(boolean()) -> #{atom() => term()}.
nif_info(_VmInternals) -> ?NOT_LOADED.

-spec nif_symbolize([non_neg_integer()]) -> [binary() | undefined].
nif_symbolize(_Addrs) -> ?NOT_LOADED.

-spec nif_symbol_table(binary()) -> symbol_table() | {error, enomem}.
nif_symbol_table(_Root) -> ?NOT_LOADED.

-spec nif_symbolize(symbol_table(), [non_neg_integer()]) ->
          [binary() | {binary(), non_neg_integer()} | undefined].
nif_symbolize(_Table, _Addrs) -> ?NOT_LOADED.

-spec nif_symbol_objects(symbol_table()) -> [symbol_object()].
nif_symbol_objects(_Table) -> ?NOT_LOADED.

-spec nif_jit_symbols(boolean()) ->
          {ok, [{non_neg_integer(), non_neg_integer(), binary()}], map()}
        | {error, no_descriptor | unreadable | inconsistent | enomem | vm_internals_off}.
nif_jit_symbols(_VmInternals) -> ?NOT_LOADED.
