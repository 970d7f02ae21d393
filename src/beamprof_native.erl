%% @doc The native sampler's Erlang API: a VM-wide CPU profile of what the
%% schedulers execute (Erlang functions, NIFs, drivers, GC, VM internals).
%%
%% `start/1' starts sampling in C (a CPU-time timer per scheduler thread, a
%% signal handler that copies the stack, unwinding off the hot path) and a
%% collector process that drains the C rings every 100 ms, symbolizes the
%% addresses right away (the JIT reuses addresses after a purge) and
%% aggregates root-first stacks. `stop/0' stops both and returns the
%% profile. Nothing runs, and nothing is installed, while stopped.
%%
%% Profile (the flame contract plus): `stacks' (root first, the thread kind
%% as root frame), `unit => samples', `title', `samples' (signals handled),
%% `weighted' (samples weighted by timer overruns: CPU time in ticks),
%% `truncated', `kinds' (weight per thread kind), `threads' (per
%% `{Kind, Index}'), `effective_hz' (samples kept per CPU second of the
%% sampled threads), `signal_hz' (the timers' signals per CPU second, those
%% thinned under a closed gate included), `hz' (requested), `dropped',
%% the gate and stray report of `beamprof_native_report' (`hz_under_gate',
%% `gate_closed_ms', `gate_closed_pct', `gated', `thinned', `stray',
%% `vm_readv': the sampler keeps sampling at `min(hz, 99)' per thread while
%% beamprof's load gate is closed, and says so),
%% `frame_source' (`perf_map' | `gdb_jit' | `none'), `frame_pointers',
%% `frame_layout_source' (where `frame_pointers' was read: `erts_frame_layout'
%% | `gdb_jit' | `none', see beamprof_native_nif:info/0), `duration_ms', `overhead' (the sampler's own cost: `handler_ns',
%% `rescan_ns', `drain_ns' in CPU time, `collector_ns' the collector's
%% rounds in wall time, the sampled threads' `cpu_ns', `pct' and `pct_max':
%% see overhead/2), `hint' when Erlang frames cannot all be recovered,
%% `unnamed_pct' (the share of the weight, in percent, whose stack has a C
%% frame no symbol table names: `Object+0xOffset'), `unnamed_leaf_pct' (the
%% share whose leaf frame is one: self time without a name) and `unnamed'
%% (the first share per object file name), `warnings' (`beamprof_warnings'
%% entries; among them a `c_symbols_missing' one per object without symbols,
%% naming the package that gives them: see beamprof_native_csyms) and
%% `notes' (what the files written from the profile say first: see below
%% and `beamprof_flame'), and `pprof': internal, the sampler's own data the
%% pprof file is built from (address stacks by thread kind, each address's
%% name, the executable mappings holding them; bounded like the stacks:
%% 100,000 address stacks, the rest counted per kind). Its shape may
%% change: read the file `beamprof_pprof:encode/1' makes of it instead.
%%
%% Only frames that are known. Whether the VM's JIT code keeps frame
%% pointers is read from the VM's own frame layout, not from its flags:
%% beam.smp's `erts_frame_layout' where it exports it (OTP 25, 27), else the
%% emulator record of its GDB JIT list (OTP 29); `erlang:system_info/1' has
%% no such item on any release. Measured: `+JPperf map' and `+JPperf true'
%% give frame pointers on OTP 25, 27 and 29, `+JPperf fp' on 26+ (25
%% refuses the flag); no flag, `+JPperf dump' and a later `+JPperf no_fp'
%% give none. With frame pointers a stack is the whole chain: the JIT frames
%% walked from the frame pointer and, for a sample in C code, its C frames
%% (DWARF) joined to the Erlang chain they were called from (a chain that
%% does not join is left out and the stack marked `[truncated]').
%% Without them (or when the layout cannot be read) no Erlang caller can be
%% verified, so none is shown: a sample keeps its innermost Erlang function
%% (the JIT code it was taken in, or the one its C frames return to) and
%% its C frames, under `[truncated]'; the `warnings' hold a
%% `native_callers_dropped' entry and `notes' the same message, naming the
%% flag that gives whole stacks on the running release. Files written from
%% the profile (`flame_graph/2', `beamprof:write_profile/3') carry the note
%% in the file itself: a `# ...' first line in folded text, the SVG's title
%% and a line under its header, the HTML page's title and a notice under
%% its heading, the speedscope profile's name. (Before this, the JIT frames
%% came from a return-address scan of 32 KiB above the stack pointer, which
%% took return addresses left in other processes' memory for callers.)
%%
%% The `vm_internals' switch (`beamprof_config:vm_internals/0', read once
%% per start): `false' reads none of the VM's internals: no frame layout,
%% no GDB JIT list, no JIT or Erlang frames walked on the VM's stacks.
%% Erlang names then come from the perf map alone (`frame_source' `perf_map'
%% with `+JPperf map', else `none'), `frame_layout_source' is `none', a JIT
%% sample keeps its innermost function and a C sample its C frames down to
%% the JIT code that called them, and `warnings' holds a `vm_internals_off'
%% entry saying so.
%%
%% Warnings of the run itself (see `beamprof_native_report'):
%% `native_rate_lowered', `native_no_samples', `native_leaf_only'.
%%
%% One sampler, several windows (`beamprof_native_window'): the C sampler
%% is the node's one, and the collector hands every drained batch to each
%% open window. A `start/1' run is the `main' window and has the sampler to
%% itself; the continuous profiler (`beamprof_continuous') holds the
%% `continuous' window, rotated each period by `rotate_window/1'; while it
%% runs, `sample/2' (so `flame_graph/2' and cluster flame graphs) opens a
%% window of its own on the same sampler, at the continuous rate (the
%% profile's `hz', with `hz_asked', `shared => continuous' and a note), and
%% `start/1' answers `{error, {already_started, continuous}}'. A window's
%% counters (samples, gate, overhead, rates) are the C side's over its own
%% span. The last window closed stops the sampler.
%%
%% Events: `[beamprof, native, stop]' when a run's profile is built, with
%% measurements `duration' (native units), `monotonic_time', `samples' and
%% `weighted', and metadata `hz', `hz_under_gate', `gate_closed_ms',
%% `stray', `frame_source' and `warnings'.
-module(beamprof_native).
-behaviour(gen_server).

-export([start/1, stop/0, top/1, top/2, filter/2, flame_graph/2, sample/2, running/0]).
-export([flame_options/1]).
-export([open_window/3, close_window/1, rotate_window/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([profile/0, options/0, kind/0]).

-type kind() :: normal | dirty_cpu | dirty_io.
-type options() :: #{hz => 1..10000, threads => [kind()], duration => pos_integer(),
                     depth => pos_integer()}.
-type profile() :: #{stacks := [{[binary()], pos_integer()}], _ => _}.

-define(SERVER, beamprof_native_collector).
-define(DRAIN_MS, 100).
-define(DRAIN_MAX, 4096).
-define(LOOP, <<"global::process_main">>).
-define(HINT, "Erlang frames need the JIT's names and frame pointers: start the VM "
              "with +JPperf map (e.g. ERL_FLAGS=\"+JPperf map\")").
-define(HINT_FP, ", or with +JPperf fp for frame pointers without the map file").
-define(HINT_END, ". Without them only the innermost Erlang function of a sample and the "
                  "C frames are reliable.").
-define(HINT_OFF, "Erlang callers are not read while vm_internals is false: start beamprof "
                  "with vm_internals => true (and the VM with +JPperf map) for whole stacks.").
-define(NOTE_OFF, "Erlang callers not shown (vm_internals is false: the VM's stacks are not "
                  "read); shown: each sample's innermost Erlang function and its C frames. "
                  "For whole stacks start beamprof with vm_internals => true.").
-define(OFF_MESSAGE, "frame layout, GDB JIT list and JIT stack frames not read "
                     "(vm_internals = false); ").

%%--------------------------------------------------------------------
%% API

%% @doc Starts sampling every scheduler thread of the kinds in `threads'
%% (default all three) at `hz' samples per second of each thread's CPU time
%% (default 99; the kernel tick caps it, about 250 here). With `duration'
%% (ms) it stops by itself; `stop/0' then returns the profile. Returns the
%% collector's pid, `{error, already_started}', or the C side's reason
%% (`{sigprof_in_use, Description}', `{unsupported, What}'). Where the
%% native sampler library is not built or cannot load (it exists for Linux
%% x86_64 only), `{error, {unsupported, {not_built | load_failed | channel,
%% Detail}}}' with `Detail' a binary saying what is missing (see
%% `beamprof_native_nif').
-spec start(options()) -> {ok, pid()} | {error, term()}.
start(Opts) when is_map(Opts) ->
    Config = config(Opts),
    open(main, Config, Opts, undefined);
start(Opts) ->
    erlang:error({badarg, got("Expected options to be a map", Opts)}, [Opts]).

%% Starts the collector with window `Id' as its first, or opens the window
%% on the running one (which refuses what it cannot share: see admit/2).
open(Id, Config, Opts, Owner) ->
    case {whereis(?SERVER), beamprof_native_nif:load()} of
        {undefined, ok} ->
            case gen_server:start({local, ?SERVER}, ?MODULE, {Config, Opts, Id, Owner}, []) of
                {ok, Pid} -> {ok, Pid};
                {error, {already_started, _}} -> join(Id, Opts, Owner);
                {error, _} = Error -> Error
            end;
        {undefined, {error, _} = Unsupported} ->
            Unsupported;
        _ ->
            join(Id, Opts, Owner)
    end.

join(Id, Opts, Owner) ->
    try gen_server:call(?SERVER, {open, Id, maps:with([hz, threads, depth], Opts), Owner},
                        60000)
    catch exit:{noproc, _} -> {error, not_running}
    end.

%% @doc Opens a window on the one native sampler of the node: `continuous'
%% (the continuous profiler's: it starts the sampler at `hz' if none runs;
%% `{error, {already_started, native}}' while a `start/1' run has it,
%% `{error, {already_started, continuous}}' when one is open) or a
%% reference (a window on the continuous profiler's sampler, at its rate:
%% `{error, already_started}' when another run has the sampler,
%% `{error, not_running}' when none runs). The window closes when `Owner'
%% exits, or with `close_window/1'. Options as `start/1''s (`duration' is
%% not one); the library's absence answers `{error, {unsupported, Reason}}'.
-spec open_window(continuous | reference(), options(), pid()) ->
          {ok, pid()} | {error, term()}.
open_window(Id, Opts, Owner) when is_map(Opts), is_pid(Owner),
                                  (Id =:= continuous orelse is_reference(Id)) ->
    Config = config(maps:without([duration], Opts)),
    case {Id, whereis(?SERVER), beamprof_native_nif:load()} of
        {_, _, {error, _} = Unsupported} -> Unsupported;
        {continuous, _, ok} -> open(continuous, Config, maps:without([duration], Opts), Owner);
        {_, undefined, ok} -> {error, not_running};
        {_, _, ok} -> join(Id, Opts, Owner)
    end.

%% @doc Closes a window and returns its profile (`{error, not_running}'
%% for a window not open). The last window closed stops the sampler.
-spec close_window(continuous | reference()) -> {ok, profile()} | {error, not_running}.
close_window(Id) ->
    call_and_wait({close, Id}).

%% @doc The profile of a window since it opened (or was last rotated), and
%% a new window in its place from now: one call, no sample lost or counted
%% twice between the two.
-spec rotate_window(continuous | reference()) -> {ok, profile()} | {error, not_running}.
rotate_window(Id) ->
    try gen_server:call(?SERVER, {rotate, Id}, 60000)
    catch exit:{noproc, _} -> {error, not_running}
    end.

%% A call whose reply says whether the collector exits after it: then wait
%% for that, so that a start right after finds the name free.
call_and_wait(Request) ->
    case whereis(?SERVER) of
        undefined ->
            {error, not_running};
        Pid ->
            Ref = monitor(process, Pid),
            try gen_server:call(Pid, Request, 60000) of
                {Reply, last} ->
                    receive {'DOWN', Ref, process, Pid, _} -> Reply
                    after 60000 -> Reply
                    end;
                {Reply, _} ->
                    demonitor(Ref, [flush]),
                    Reply
            catch exit:{noproc, _} ->
                demonitor(Ref, [flush]),
                {error, not_running}
            end
    end.

config(Opts) ->
    maps:foreach(fun check_option/2, Opts),
    Config = maps:with([hz, threads, depth], maps:merge(#{hz => 99}, Opts)),
    Config#{vm_internals => beamprof_config:vm_internals()}.

check_option(hz, Hz) when is_integer(Hz), Hz >= 1, Hz =< 10000 -> ok;
check_option(threads, [_ | _] = Ts) ->
    lists:foreach(fun(T) -> check_option(thread, T) end, Ts);
check_option(thread, T) when T =:= normal; T =:= dirty_cpu; T =:= dirty_io -> ok;
check_option(duration, D) when is_integer(D), D > 0 -> ok;
check_option(depth, D) when is_integer(D), D > 0 -> ok;
check_option(Key, Value) ->
    erlang:error({badarg, option_message(Key)}, [#{Key => Value}]).

option_message(hz) -> "Expected hz to be an integer in 1..10000";
option_message(Threads) when Threads =:= threads; Threads =:= thread ->
    "Expected threads to be a non-empty list of normal | dirty_cpu | dirty_io";
option_message(duration) -> "Expected duration to be a positive integer (ms)";
option_message(depth) -> "Expected depth to be a positive integer";
option_message(Key) ->
    lists:flatten(io_lib:format("Unknown option ~0tp; known options: hz, threads, duration, "
                                "depth (and output, format for flame_graph/2)", [Key])).

%% @doc Stops sampling and returns the profile; `{error, not_running}'
%% when no `start/1' run is on. While the continuous profiler shares the
%% sampler it keeps sampling.
-spec stop() -> {ok, profile()} | {error, not_running}.
stop() ->
    call_and_wait(stop).

%% @doc Whether a collector exists (sampling, or holding a finished profile).
-spec running() -> boolean().
running() ->
    whereis(?SERVER) =/= undefined.

%% @doc The N hottest functions of the running (or finished, not yet
%% collected) profile: see top/2.
-spec top(pos_integer()) -> [map()] | {error, not_running}.
top(N) when is_integer(N), N > 0 ->
    try gen_server:call(?SERVER, profile, 60000) of
        {ok, Profile} -> top(Profile, N)
    catch exit:{noproc, _} -> {error, not_running}
    end;
top(N) ->
    erlang:error({badarg, "Expected N to be a positive integer"}, [N]).

%% @doc The N hottest functions of Profile by self weight:
%% `#{frame, self, total, self_pct, total_pct}'.
-spec top(profile(), pos_integer()) -> [map()].
top(Profile, N) ->
    beamprof_native_agg:top(Profile, N).

%% @doc Profile restricted to the given thread kinds.
-spec filter(profile(), [kind()]) -> profile().
filter(Profile, Kinds) ->
    beamprof_native_agg:filter(Profile, Kinds).

%% @doc Samples for Ms milliseconds and writes a flame graph. Opts is the
%% output path (any chardata: a string, a binary as Elixir passes; format
%% from its extension: .svg, .html, .htm, .json (speedscope), .folded, .txt,
%% .pb.gz (pprof, see `beamprof_pprof'); any other extension raises
%% `{badarg, Message}' unless `format' is given)
%% or a map with `output', `format', and the options of start/1.
%% Without an output the profile is returned under `profile'.
%%
%% Everything is checked before sampling starts: a bad option (`format'
%% included) raises `{badarg, Message}'; an output whose directory does
%% not exist or is not writable returns `{error, {unwritable, Path,
%% Reason}}' at once. A write that still fails after sampling (the
%% directory removed meanwhile) is logged (a logger warning with no domain,
%% which a plain shell prints) and returns `{error, {write_failed, Path, Reason}}'.
-spec flame_graph(pos_integer(), file:filename_all() | unicode:chardata() | map()) ->
          {ok, map()} | {error, term()}.
flame_graph(Ms, Path) when is_list(Path); is_binary(Path) ->
    flame_graph(Ms, #{output => Path});
flame_graph(Ms, Opts) when is_integer(Ms), Ms > 0, is_map(Opts) ->
    case flame_options(Opts) of
        {ok, Output, Format, StartOpts} -> sample_and_write(Ms, StartOpts, Output, Format);
        {error, _} = Error -> Error
    end;
flame_graph(Ms, Opts) when is_integer(Ms), Ms > 0 ->
    erlang:error({badarg, got("Expected Opts to be an output path or a map of options", Opts)},
                 [Ms, Opts]);
flame_graph(Ms, Opts) ->
    erlang:error({badarg, got("Expected Ms to be a positive integer of milliseconds", Ms)},
                 [Ms, Opts]).

%% @private
%% @doc `flame_graph/2''s options checked as it checks them before sampling:
%% the output path (flat, or `undefined'), the format, and the options of
%% `start/1'; a bad one raises `{badarg, Message}', an output that cannot be
%% written answers `{error, {unwritable, Path, Reason}}'. For the cluster's
%% flame graph (`beamprof_cluster_flame'), which samples on other nodes.
-spec flame_options(map()) -> {ok, file:filename_all() | undefined, beamprof_flame:format(),
                                options()} | {error, term()}.
flame_options(Opts) ->
    {Output, Format} = output_options(Opts),
    StartOpts = maps:without([output, format], Opts),
    maps:foreach(fun check_option/2, StartOpts),
    case writable(Output) of
        ok -> {ok, Output, Format, StartOpts};
        {error, _} = Error -> Error
    end.

got(Expected, Value) ->
    lists:flatten(io_lib:format("~ts, got: ~0tP", [Expected, Value, 8])).

sample_and_write(Ms, StartOpts, Output, Format) ->
    case sample(Ms, StartOpts) of
        {ok, Profile} -> write(Profile, Output, Format);
        {error, _} = Error -> Error
    end.

%% @doc Samples for `Ms' milliseconds with `start/1''s options (checked by
%% `start/1') and returns the profile, symbolized on this node; `start/1''s
%% errors otherwise. Blocks the caller for `Ms'. While the continuous
%% profiler runs, the samples come from its sampler, at its rate: a window
%% of `Ms' on it (the profile's `hz' is that rate, `hz_asked' the rate
%% asked for, and its `notes' say so); `depth' is then the running one.
-spec sample(pos_integer(), options()) -> {ok, profile()} | {error, term()}.
sample(Ms, StartOpts) when is_integer(Ms), Ms > 0, is_map(StartOpts) ->
    case whereis(?SERVER) of
        undefined -> sample_alone(Ms, StartOpts);
        _ ->
            case sample_window(Ms, StartOpts) of
                {error, not_running} -> sample_alone(Ms, StartOpts);
                Other -> Other
            end
    end.

sample_alone(Ms, StartOpts) ->
    case start(StartOpts) of
        {ok, _} ->
            receive after Ms -> ok end,
            stop();
        {error, {already_started, continuous}} ->
            sample_window(Ms, StartOpts);
        {error, _} = Error ->
            Error
    end.

sample_window(Ms, StartOpts) ->
    Ref = make_ref(),
    case open_window(Ref, StartOpts, self()) of
        {ok, _} ->
            receive after Ms -> ok end,
            close_window(Ref);
        {error, _} = Error ->
            Error
    end.

%% The output path (flat) and the format, checked: raises `{badarg, Message}'.
output_options(Opts) ->
    Output = case maps:get(output, Opts, undefined) of
                 undefined -> undefined;
                 Path0 ->
                     case beamprof_file:path(Path0) of
                         {ok, Path} -> Path;
                         error -> erlang:error({badarg, "Expected output to be a file name "
                                                "(string or binary)"}, [Opts])
                     end
             end,
    %% the extension is read only without a format option (an output
    %% `cpu.bin' with `format => pprof' is fine)
    Format = case Opts of
                 #{format := F} -> F;
                 _ -> format_of(Output, Opts)
             end,
    case lists:member(Format, beamprof_flame:formats()) of
        true -> {Output, Format};
        false -> erlang:error({badarg, "Expected format to be one of " ++
                                   beamprof_flame:formats_text()}, [Opts])
    end.

writable(undefined) -> ok;
writable(Output) ->
    case beamprof_file:check_writable(Output) of
        ok -> ok;
        {error, Reason} -> {error, {unwritable, Output, Reason}}
    end.

%% The format the output's name says; svg without an output (a profile
%% returned, not written).
format_of(undefined, _) -> svg;
format_of(Output, Opts) ->
    case beamprof_flame:format_of(Output) of
        {ok, Format} -> Format;
        error -> erlang:error({badarg, beamprof_profile_opts:unknown_extension(Output)}, [Opts])
    end.

write(Profile, Output, Format) ->
    Summary = maps:with([samples, weighted, effective_hz, signal_hz, truncated, frame_source,
                         frame_layout_source, hint, overhead, warnings, notes, unnamed_pct,
                         unnamed_leaf_pct, hz, hz_under_gate, gate_closed_ms, gate_closed_pct,
                         gated, stray, vm_readv], Profile),
    case Output of
        undefined ->
            {ok, Summary#{profile => Profile}};
        _ ->
            case beamprof_flame:write(Profile, Output, Format) of
                {ok, File} -> {ok, Summary#{file => File}};
                {error, {badarg, _}} = Error -> Error;
                {error, Reason} -> {error, beamprof_file:write_failed(Output, Reason)}
            end
    end.

%%--------------------------------------------------------------------
%% Collector

%% The collector's state: the symbolizer and the run's configuration
%% (shared by every window), `windows' (`main' for a start/1 run,
%% `continuous', a reference per flame graph taken on the continuous
%% sampler: see beamprof_native_window), `monitors' (the windows' owners),
%% `finished' (the main run's profile once its `duration' ended, kept for
%% stop/0) and `sampling' (the C sampler is on).

%% @private
init({#{vm_internals := Internals} = Config, Opts, Id, Owner}) ->
    process_flag(trap_exit, true),
    Sym = beamprof_native_sym:new(auto, Internals),
    case start_nif(Config) of
        ok ->
            _ = maybe_duration(Id, Opts),
            erlang:send_after(drain_ms(Config), self(), drain),
            State = #{sym => Sym, config => Config, collector_ns => 0, windows => #{},
                      monitors => #{}, finished => undefined, sampling => true},
            Stray = maps:get(stray, info(State), 0),
            {ok, add_window(Id, {run_start, Stray}, {maps:with([hz, threads, depth], Opts), Owner},
                            State)};
        {error, Reason} ->
            beamprof_native_sym:close(Sym),
            {stop, Reason}
    end.

%% A sampler left running by a collector that was killed is stopped first;
%% samples left undrained by an earlier run are dropped.
start_nif(Config) ->
    discard(),
    case beamprof_native_nif:start(Config) of
        {error, already_started} ->
            ok = beamprof_native_nif:stop(),
            beamprof_native_nif:start(Config);
        Other ->
            Other
    end.

discard() ->
    case beamprof_native_nif:drain(?DRAIN_MAX) of
        [] -> ok;
        _ -> discard()
    end.

maybe_duration(main, #{duration := Ms}) -> erlang:send_after(Ms, self(), finish);
maybe_duration(_, _) -> ok.

add_window(Id, Info0, {_Asked, Owner} = Consumer,
           #{windows := Ws, monitors := Ms, collector_ns := Ns} = State) ->
    W = beamprof_native_window:new(Info0, Ns, Consumer),
    Monitors = case Owner of
                   undefined -> Ms;
                   _ -> Ms#{monitor(process, Owner) => Id}
               end,
    State#{windows := Ws#{Id => W}, monitors := Monitors}.

remove_window(Id, #{windows := Ws, monitors := Ms} = State) ->
    Mine = [M || {M, I} <- maps:to_list(Ms), I =:= Id],
    lists:foreach(fun(M) -> demonitor(M, [flush]) end, Mine),
    State#{windows := maps:remove(Id, Ws), monitors := maps:without(Mine, Ms)}.

%% Which windows may share the running sampler: `main' never (a start/1
%% run owns its sampler and its options); `continuous' while no start/1 run
%% has it; a flame graph's only on the continuous profiler's sampler.
admit(main, #{windows := #{continuous := _}}) -> {error, {already_started, continuous}};
admit(main, _) -> {error, already_started};
admit(continuous, #{windows := #{continuous := _}}) -> {error, {already_started, continuous}};
admit(continuous, #{windows := #{main := _}}) -> {error, {already_started, native}};
admit(continuous, #{finished := F, sampling := S}) when F =/= undefined; not S ->
    {error, {already_started, native}};
admit(continuous, _) -> ok;
admit(_Ref, #{windows := #{continuous := _}, sampling := true}) -> ok;
admit(_Ref, _) -> {error, already_started}.

%% @private
handle_call({open, Id, Asked, Owner}, _From, State) ->
    case admit(Id, State) of
        ok ->
            Drained = drain(State),
            {reply, {ok, self()}, add_window(Id, info(Drained), {Asked, Owner}, Drained)};
        {error, _} = Error ->
            {reply, Error, State}
    end;
handle_call({close, Id}, _From, #{windows := Ws} = State) ->
    case Ws of
        #{Id := _} -> close(Id, State);
        _ -> {reply, {{error, not_running}, more}, State}
    end;
handle_call({rotate, Id}, _From, #{windows := Ws} = State) ->
    case Ws of
        #{Id := W} ->
            Drained = drain(State),
            Info = info(Drained),
            Profile = profile(Id, W, Drained, Info),
            Fresh = beamprof_native_window:new(Info, maps:get(collector_ns, Drained),
                                               {beamprof_native_window:asked(W),
                                                beamprof_native_window:owner(W)}),
            {reply, {ok, Profile}, Drained#{windows := Ws#{Id := Fresh}}};
        _ ->
            {reply, {error, not_running}, State}
    end;
handle_call(stop, _From, #{finished := Profile, windows := Ws} = State)
  when Profile =/= undefined ->
    case map_size(Ws) of
        0 -> {stop, normal, {{ok, Profile}, last}, State};
        _ -> {reply, {{ok, Profile}, more}, State#{finished := undefined}}
    end;
handle_call(stop, _From, #{windows := #{main := _}} = State) ->
    close(main, State);
handle_call(stop, _From, State) ->
    {reply, {{error, not_running}, more}, State};
handle_call(profile, _From, #{finished := undefined, windows := Ws} = State) ->
    case [Id || Id <- [main, continuous], is_map_key(Id, Ws)] of
        [Id | _] ->
            Drained = drain(State),
            {reply, {ok, profile(Id, maps:get(Id, Ws), Drained, info(Drained))}, Drained};
        [] ->
            {reply, {error, not_running}, State}
    end;
handle_call(profile, _From, #{finished := Profile} = State) ->
    {reply, {ok, Profile}, State}.

%% Closes window Id: its profile; the last window (no finished run kept)
%% stops the sampler and the collector.
close(Id, #{windows := Ws, finished := Finished} = State) ->
    Last = map_size(Ws) =:= 1 andalso Finished =:= undefined,
    Drained = case Last of
                  true -> stop_sampling(State);
                  false -> drain(State)
              end,
    Profile = profile(Id, maps:get(Id, Ws), Drained, info(Drained)),
    ok = stop_event(Id, maps:get(Id, Ws), Profile),
    Rest = remove_window(Id, Drained),
    case Last of
        true -> {stop, normal, {{ok, Profile}, last}, Rest};
        false -> {reply, {{ok, Profile}, more}, Rest}
    end.

%% @private
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
handle_info(drain, #{sampling := true, config := Config} = State) ->
    erlang:send_after(drain_ms(Config), self(), drain),
    {noreply, drain(State)};
handle_info(finish, #{windows := #{main := W} = Ws} = State) ->
    Drained = case map_size(Ws) of
                  1 -> stop_sampling(State);
                  _ -> drain(State)
              end,
    Profile = profile(main, W, Drained, info(Drained)),
    ok = stop_event(main, W, Profile),
    {noreply, (remove_window(main, Drained))#{finished := Profile}};
handle_info({'DOWN', MRef, process, _, _}, #{monitors := Ms} = State) ->
    case Ms of
        #{MRef := Id} ->
            Rest = remove_window(Id, State),
            case Rest of
                #{windows := Ws, finished := undefined} when map_size(Ws) =:= 0 ->
                    {stop, normal, stop_sampling(Rest)};
                _ ->
                    {noreply, Rest}
            end;
        _ ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, #{sampling := Sampling, sym := Sym}) ->
    _ = case Sampling of
            true -> beamprof_native_nif:stop();
            false -> ok
        end,
    beamprof_native_sym:close(Sym).

%% How often the collector drains: each round costs the same whatever it
%% finds (a dirty NIF call, the perf map's size, the batch's symbols), so
%% low rates drain less often. A busy thread's samples in C code carry a
%% 16 KiB stack window: a 1 MiB ring holds about 60 of them, 0.6 s at 99 Hz
%% and a quarter of a second at the 250/s the kernel tick allows.
drain_ms(#{hz := Hz}) when Hz =< 100 -> 300;
drain_ms(_) -> ?DRAIN_MS.

%% Stops the C side and drains what is left.
stop_sampling(#{sampling := true} = State) ->
    ok = beamprof_native_nif:stop(),
    (drain(State))#{sampling := false};
stop_sampling(State) ->
    State.

%% The C side's counters (none if the library went away meanwhile), its
%% frame layout as this run's vm_internals lets it know.
info(#{config := #{vm_internals := Internals}}) ->
    case beamprof_native_nif:info(Internals) of
        Info when is_map(Info) -> Info;
        {error, _} -> #{}
    end.

%% Drains until the rings are empty (bounded: a few batches per call),
%% adding the time it took to collector_ns (wall time: an upper bound of
%% the collector's CPU time, the NIF's unwinding included).
drain(State) ->
    T0 = erlang:monotonic_time(nanosecond),
    #{collector_ns := Ns} = Drained = drain(State, 64),
    Drained#{collector_ns := Ns + erlang:monotonic_time(nanosecond) - T0}.

drain(State, 0) ->
    State;
drain(#{sym := Sym0, windows := Ws} = State, Rounds) ->
    case beamprof_native_nif:drain(?DRAIN_MAX) of
        [] ->
            State;
        Samples ->
            Sym1 = beamprof_native_sym:refresh(Sym0),
            {Frames, Sym} = beamprof_native_sym:symbolize([A || {_, _, _, _, A} <- Samples], Sym1),
            Symbolized = [settle(K, I, W, T, F, A)
                          || {{K, I, W, T, A}, F} <- lists:zip(Samples, Frames)],
            Next = State#{sym := Sym,
                          windows := maps:map(fun(_, Win) ->
                                                      beamprof_native_window:add(Symbolized, Win)
                                              end, Ws)},
            case length(Samples) < ?DRAIN_MAX of
                true -> Next;
                false -> drain(Next, Rounds - 1)
            end
    end.

%% The sampler's own cost against the sampled threads' CPU time: `pct'
%% counts what is measured in CPU time (the signal handler, timed inside
%% it; the rescan thread; the C drain, DWARF unwinding included), `pct_max'
%% the handler, the rescans and the collector's whole rounds in wall time
%% (symbolizing and aggregating too; an upper bound: on a loaded node it
%% includes waiting for a scheduler).
overhead(Info, CollectorNs) ->
    Handler = maps:get(handler_ns, Info, 0),
    Rescan = maps:get(rescan_ns, Info, 0),
    Drain = maps:get(drain_ns, Info, 0),
    Cpu = maps:get(cpu_ns, Info, 0),
    #{handler_ns => Handler, rescan_ns => Rescan, drain_ns => Drain,
      collector_ns => CollectorNs, cpu_ns => Cpu,
      pct => pct(Handler + Rescan + Drain, Cpu),
      pct_max => pct(Handler + Rescan + max(Drain, CollectorNs), Cpu)}.

pct(_, 0) -> 0.0;
pct(Ns, Cpu) -> round(100000 * Ns / Cpu) / 1000.

%% Samples per second of thread CPU time, to one decimal (250.6).
one_decimal(Hz) -> round(Hz * 10) / 10.

%% The C side marks `unrooted' a sample whose walk reached JIT code without
%% an Erlang chain: complete when that code is the scheduler loop between
%% processes (`$global::process_main', the leaf of a JIT sample or the
%% outermost frame of a C one), else truncated (an Erlang chain was
%% expected). A JIT sample in the loop keeps only its leaf: a walk from
%% there follows no process's frames. The addresses (for the pprof file)
%% are cut as the frames are.
settle(K, I, W, unrooted, [?LOOP | _], [A | _]) -> {K, I, W, false, [?LOOP], [A]};
settle(K, I, W, unrooted, Frames, As) -> {K, I, W, lists:last(Frames) =/= ?LOOP, Frames, As};
settle(K, I, W, T, Frames, As) -> {K, I, W, T, Frames, As}.

%% The continuous profiler's periods emit their own event (beamprof_continuous).
stop_event(continuous, _W, _Profile) ->
    ok;
stop_event(_Id, W, Profile) ->
    Now = erlang:monotonic_time(),
    beamprof_events:emit([native, stop],
                         #{duration => Now - beamprof_native_window:t0(W), monotonic_time => Now,
                           samples => maps:get(samples, Profile, 0),
                           weighted => maps:get(weighted, Profile, 0)},
                         maps:with([hz, hz_under_gate, gate_closed_ms, stray, frame_source,
                                    warnings], Profile)).

%% The profile of window W (`Id') from the C side's counters now.
profile(Id, W, #{sym := Sym, config := #{vm_internals := Internals} = Config,
                 collector_ns := CollectorNs}, InfoNow) ->
    Info = beamprof_native_window:delta(InfoNow, W),
    Acc = beamprof_native_window:acc(W),
    Totals = beamprof_native_agg:totals(Acc),
    Source = beamprof_native_sym:source(Sym),
    FramePointers = maps:get(frame_pointers, Info, unknown) =:= true,
    LayoutSource = maps:get(frame_layout_source, Info, none),
    Stacks = beamprof_native_agg:stacks(Acc),
    %% one NIF call for the objects, one clock read for the span
    {Objects, _DebugRoot} = ObjectsAndRoot = beamprof_native_sym:objects(Sym),
    DurationMs = erlang:monotonic_time(millisecond) - beamprof_native_window:started(W),
    #{unnamed_pct := UnnamedPct, unnamed_leaf_pct := LeafPct, unnamed := Unnamed,
      warnings := CWarnings} =
        beamprof_native_csyms:report(Stacks, beamprof_native_sym:unnamed(Sym), ObjectsAndRoot),
    Hz = maps:get(hz, Config),
    Base = Totals#{stacks => Stacks, unit => samples,
                   title => <<"beamprof native CPU profile">>,
                   hz => Hz,
                   effective_hz => one_decimal(maps:get(effective_hz, Info, 0)),
                   signal_hz => one_decimal(maps:get(signal_hz, Info, 0)),
                   dropped => maps:get(dropped, Info, 0),
                   frame_source => Source, frame_pointers => FramePointers,
                   frame_layout_source => LayoutSource,
                   overhead => overhead(Info, CollectorNs -
                                            beamprof_native_window:collector_ns0(W)),
                   duration_ms => DurationMs,
                   unnamed_pct => UnnamedPct, unnamed_leaf_pct => LeafPct,
                   unnamed => Unnamed,
                   warnings => warnings(Internals, Source) ++
                       callers_warning(Internals, FramePointers, LayoutSource) ++ CWarnings ++
                       beamprof_native_report:warnings(Info),
                   notes => notes(Internals, FramePointers, LayoutSource) ++
                       shared_notes(Id, Hz, beamprof_native_window:asked(W)),
                   pprof => beamprof_pprof_native:data(beamprof_native_agg:pprof(Acc), Hz,
                                                       Objects, DurationMs)},
    Report = maps:merge(Base, beamprof_native_report:fields(Info,
                                                            beamprof_native_window:stray0(W))),
    Shared = shared_fields(Id, beamprof_native_window:asked(W), Report),
    case {Internals, Source =/= none andalso FramePointers} of
        {false, _} -> Shared#{hint => <<?HINT_OFF>>};
        {true, true} -> Shared;
        {true, false} -> Shared#{hint => hint()}
    end.

%% A flame graph taken on the continuous profiler's sampler says so, and
%% at which rate: the running one, whatever it asked for.
shared_notes(Id, Hz, Asked) when is_reference(Id) ->
    [iolist_to_binary(io_lib:format("Sampled at ~B Hz by the continuous profiler's sampler, "
                                    "shared (asked: ~B Hz)", [Hz, maps:get(hz, Asked, 99)]))];
shared_notes(_Id, _Hz, _Asked) ->
    [].

shared_fields(Id, Asked, Profile) when is_reference(Id) ->
    Profile#{shared => continuous, hz_asked => maps:get(hz, Asked, 99)};
shared_fields(_Id, _Asked, Profile) ->
    Profile.

warnings(true, _Source) ->
    [];
warnings(false, perf_map) ->
    [beamprof_warnings:new(vm_internals_off,
                           [?OFF_MESSAGE, "Erlang names from the perf map, the innermost "
                            "Erlang function of each sample and C frames by DWARF unwinding"])];
warnings(false, _Source) ->
    [beamprof_warnings:new(vm_internals_off,
                           [?OFF_MESSAGE, "no perf map (+JPperf map) for Erlang names: C frames "
                            "by DWARF unwinding, JIT code as [unknown]"])].

%% Without frame pointers (or not knowing the frame layout) the C side
%% reads no Erlang caller (a return-address scan took stale words above the
%% process's stack for callers): each sample keeps its innermost Erlang
%% function and its C frames. The warning and the files' notes say so, why,
%% and which flag gives whole stacks. With vm_internals off the
%% vm_internals_off warning says it already; the files still say it.
callers_warning(true, false, LayoutSource) ->
    [beamprof_warnings:new(native_callers_dropped, callers_message(LayoutSource))];
callers_warning(_Internals, _FramePointers, _LayoutSource) ->
    [].

notes(true, false, LayoutSource) -> [callers_message(LayoutSource)];
notes(false, _FramePointers, _LayoutSource) -> [<<?NOTE_OFF>>];
notes(true, true, _LayoutSource) -> [].

%% What was lost; why; what is shown instead (after "; ", see
%% beamprof_warnings); the remedy on this release.
callers_message(LayoutSource) ->
    Why = case LayoutSource of
              none -> "the VM's frame layout could not be read";
              _ -> "this VM's JIT code has no frame pointers"
          end,
    iolist_to_binary(["Erlang callers not shown (", Why, ", so they cannot be verified); "
                      "shown: each sample's innermost Erlang function and its C frames. "
                      "For whole stacks start the VM with ", fp_flags(), "."]).

%% The flags that give frame pointers, measured (erts_frame_layout or the
%% GDB JIT record) on OTP 25, 27 and 29: +JPperf map and +JPperf true on
%% all three, +JPperf fp on 26+ (25 refuses it); not +JPperf dump, nor
%% +JPperf no_fp after any of them.
fp_flags() ->
    case list_to_integer(erlang:system_info(otp_release)) >= 26 of
        true -> "+JPperf fp (frame pointers) or +JPperf true (also the perf map for names)";
        false -> "+JPperf true or +JPperf map (OTP 25 has no +JPperf fp)"
    end.

%% The VM flags that give names and frame pointers on this release: OTP 26
%% added `+JPperf fp' (frame pointers alone; names then come from the GDB
%% JIT table); OTP 25 refuses it.
hint() ->
    Fp = case list_to_integer(erlang:system_info(otp_release)) >= 26 of
             true -> ?HINT_FP;
             false -> ""
         end,
    iolist_to_binary([?HINT, Fp, ?HINT_END]).
