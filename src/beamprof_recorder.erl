%% @doc The flight recorder's Erlang side: opens and closes the recording and
%% writes the records the Erlang side knows (doc/recording-format.md).
%%
%% The recording is one file of fixed size (a 4096-byte header and a ring,
%% default 16 MiB) in a memory-mapped ring that outlives the process: when
%% the node is killed (SIGKILL, the OOM killer) the page cache keeps what was
%% written, so the last minutes before the kill can be read afterwards with
%% `beamprof:read_recording/1' on any node. No `fsync': a machine crash (not
%% a process kill) can lose the tail. The file's pages are page cache of the
%% node's cgroup: in a container they count against its memory limit, and the
%% file belongs on a volume that outlives the container.
%%
%% Who writes what:
%% <ul>
%% <li>`header' (here): first after each open, in the same lock hold as the
%% open, before any tick.</li>
%% <li>`tick' (the C sampler thread, every tick, 100 ms by default): each
%% scheduler thread's OS CPU, the gate's scheduler figure, RSS and the
%% memory limit, the gate and its reason. Written with no scheduler's
%% help, so the ticks keep coming when every scheduler is saturated.</li>
%% <li>`interval' (`beamprof_sampler', every interval), `scan' (the
%% periodic scan, with its top processes by queue, memory and reductions),
%% `threshold', `monitor', `gate', `profile' (from the events beamprof
%% emits, hooked in `beamprof_events:emit/3' so that no handler detach can
%% lose them).</li>
%% </ul>
%%
%% Every value from the VM or the user is a binary; keys and atom values
%% come from `beamprof_recording:vocabulary/0', which exists on any node that
%% loads the reader,
%% so a reader decodes with `binary_to_term(Bin, [safe])'.
%%
%% Cost: a record is built and `term_to_binary/1'-encoded in the emitting
%% process, checked with a safe decode in the append NIF, then copied into
%% the mapped ring under a mutex shared with the C thread (microseconds for
%% the few hundred bytes to few kilobytes a record takes). When no recording
%% is open each hook costs one NIF call that is an atomic load.
-module(beamprof_recorder).

-export([start/1, stop/0, info/0, active/0, check/1, defaults/0]).
-export([unavailable/2, available/0, warnings/0]).
-export([record/2, event/3, interval/1, scan/1, scan_keys/0]).

-export_type([options/0, info/0]).

-type options() :: #{file := file:filename_all(), size => pos_integer()}
                 | [{file, file:filename_all()} | {size, pos_integer()}].
%% `file': where the recording goes (made absolute against the current
%% directory). `size': the ring's size in bytes, 65536..4294967296, rounded
%% down to a multiple of 8 (default 16 MiB; the file is 4096 bytes more).

-type info() :: #{file := binary(), ring_size := pos_integer(),
                  bytes_written := non_neg_integer(), frames := non_neg_integer(),
                  wraps := non_neg_integer(), seq := pos_integer(),
                  dropped := non_neg_integer(), encode_failed := non_neg_integer(),
                  tick_cpu_ns := non_neg_integer(), tick_records := non_neg_integer(),
                  build_failed := non_neg_integer()}.
%% Counters since the file was opened (`tick_cpu_ns' and `tick_records':
%% the C thread's CPU time spent on tick records and their count, since the
%% library loaded; `build_failed': records beamprof could not build from an
%% event, a sample or a scan, since the VM started, each also told by a
%% `note' record in the file at the 1st, 2nd, 4th, ... failure); `seq' is
%% the next frame's sequence number.

-define(DEFAULT_SIZE, 16 * 1024 * 1024).
-define(MIN_SIZE, 65536).
-define(MAX_SIZE, 4294967296).
-define(TOP_N, 5).
-define(UNAVAILABLE, {?MODULE, unavailable}).
-define(BUILD_FAILED, {?MODULE, build_failed}).
-define(SCAN_KEYS, [message_queue_len, memory, reductions]).

%% @doc The defaults: `#{size => 16777216}' (16 MiB of ring).
-spec defaults() -> #{size := pos_integer()}.
defaults() ->
    #{size => ?DEFAULT_SIZE}.

%% @doc Checks recorder options (a map, or `{Key, Value}' pairs): `ok' or `{error, Message}' naming what is
%% wrong (`beamprof_config' raises it as `badarg').
-spec check(term()) -> ok | {error, string()}.
check(Options) when is_list(Options), Options =/= [] ->
    case as_map(Options) of
        Map when is_map(Map) -> check(Map);
        _ -> check(not_options)
    end;
check(#{file := File} = Options) ->
    case maps:keys(maps:without([file, size], Options)) of
        [] -> check_file(File, maps:get(size, Options, ?DEFAULT_SIZE));
        [Key | _] -> {error, lists:flatten(io_lib:format("Unknown recorder option ~0tp "
                                                         "(expected file, size)", [Key]))}
    end;
check(_) ->
    {error, "Expected recorder to be off, or a map or {Key, Value} list with file (a path) "
            "and size (bytes)"}.

check_file(File, Size) ->
    case path(File) of
        {ok, _} when is_integer(Size), Size >= ?MIN_SIZE, Size =< ?MAX_SIZE -> ok;
        {ok, _} -> {error, "Expected recorder size to be an integer of bytes in "
                           "65536..4294967296"};
        error -> {error, "Expected recorder file to be a non-empty path (string or binary)"}
    end.

path(File) when is_binary(File), File =/= <<>> -> {ok, File};
path(File) when is_list(File), File =/= [] ->
    case unicode:characters_to_binary(File, unicode, file:native_name_encoding()) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> error
    end;
path(_) -> error.

%% @doc Opens the recording and writes its `header'. `ok', or `{error,
%% Reason}': `already_open' (a recording is open: `stop/0' it first),
%% `locked' (another VM writes it), `not_a_recording' (the file exists and
%% is not one: it is left as it is), `{unwritable, Errno}' (the OS refused:
%% `eacces', `enoent', `eloop' for a symbolic link, ...). A recording that
%% another VM left is first moved to `File.prev'; one this VM left (the
%% application restarted) is continued. Raises `{badarg, Message}' for
%% ill-typed options.
-spec start(options()) -> ok | {error, term()}.
start(Options) ->
    case check(Options) of
        ok -> open(as_map(Options));
        {error, Message} -> erlang:error({badarg, Message}, [Options])
    end.

%% Options given as `{Key, Value}' pairs (sys.config, Elixir keyword lists)
%% as a map; anything else as it is.
as_map(Options) when is_list(Options) ->
    try beamprof_opts:to_map(Options) catch error:{badarg, _} -> Options end;
as_map(Options) ->
    Options.

open(#{file := File} = Options) ->
    {ok, Bin} = path(File),
    Path = filename:absname(Bin),
    Size0 = maps:get(size, Options, ?DEFAULT_SIZE),
    Size = Size0 - Size0 rem 8,
    ok = ensure_nif(),
    case beamprof_nif:recorder_open(Path, Size, vm_start_us(), header(Size)) of
        {ok, _How} -> available();
        {error, _} = Error -> Error
    end.

%% @private
%% @doc The application could not open the recording its options name: logs
%% it (a warning with no logger domain, which a plain shell prints) and keeps
%% it for `warnings/0' until a recording opens. beamprof runs on without one:
%% a file it cannot write must not keep the node's applications from starting.
-spec unavailable(options(), term()) -> ok.
unavailable(#{file := File}, Reason) ->
    Message = unicode:characters_to_binary(
                io_lib:format("the flight recording ~ts cannot be opened (~0tp); "
                              "beamprof runs without it", [File, Reason])),
    logger:warning("beamprof: ~ts", [Message]),
    persistent_term:put(?UNAVAILABLE, beamprof_warnings:new(recorder_unavailable, Message)).

%% @private
%% @doc Forgets a recording that could not be opened (a recording opened, or
%% the application stopped). Erases only what is there: an erase of a
%% persistent term costs the node a global scan.
-spec available() -> ok.
available() ->
    case persistent_term:get(?UNAVAILABLE, none) of
        none -> ok;
        _ -> _ = persistent_term:erase(?UNAVAILABLE), ok
    end.

%% @doc `[Warning]' with code `recorder_unavailable' while the recording the
%% application's options name could not be opened (until one opens), else
%% `[]'. Part of every sample's `warnings'.
-spec warnings() -> [beamprof_warnings:warning()].
warnings() ->
    case persistent_term:get(?UNAVAILABLE, none) of
        none -> [];
        Warning -> [Warning]
    end.

ensure_nif() ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    ok.

%% This VM's start, µs since the epoch: a recording naming this OS pid but
%% opened earlier is another VM's (a container's pid 1, restarted).
vm_start_us() ->
    Up = erlang:monotonic_time(microsecond) -
        erlang:convert_time_unit(erlang:system_info(start_time), native, microsecond),
    os:system_time(microsecond) - Up - 1000000.

%% @doc Closes the recording (no `fsync'); `ok' also when none is open.
-spec stop() -> ok.
stop() ->
    case erlang:module_loaded(beamprof_nif) of
        true -> beamprof_nif:recorder_close();
        false -> ok
    end.

%% @doc The open recording's path and counters, or `undefined'.
-spec info() -> info() | undefined.
info() ->
    ok = ensure_nif(),
    case beamprof_nif:recorder_info() of
        Info when is_map(Info) -> Info#{build_failed => build_failed_count()};
        undefined -> undefined
    end.

%% @doc Whether a recording is open (an atomic load in C).
-spec active() -> boolean().
active() ->
    erlang:module_loaded(beamprof_nif) andalso beamprof_nif:recorder_active().

%% @doc Appends one record `Fields#{kind => Kind}' when a recording is open;
%% `ok' in every case (a record that cannot be written is counted in
%% `info/0''s `dropped' or lost with the closed file, never raised to the
%% emitter).
-spec record(atom(), map()) -> ok.
record(Kind, Fields) ->
    case active() of
        true -> append(Fields#{kind => Kind});
        false -> ok
    end.

append(Record) ->
    try beamprof_nif:recorder_append(term_to_binary(Record)) of
        _ -> ok
    catch
        error:_ -> ok
    end.

%% @doc The hook in `beamprof_events:emit/3': the record an event makes, if
%% any, when a recording is open. Never raises.
-spec event([atom()], map(), map()) -> ok.
event(Suffix, Measurements, Metadata) ->
    case active() of
        true ->
            try beamprof_recorder_records:from_event(Suffix, Measurements, Metadata) of
                {Kind, Fields} -> append(Fields#{kind => Kind});
                skip -> ok
            catch
                Class:Reason -> build_failed(Suffix, Class, Reason)
            end;
        false -> ok
    end.

%% @doc The hook in `beamprof_sampler': the `interval' record of a sample
%% (`beamprof_vm:sample()'). Never raises.
-spec interval(map()) -> ok.
interval(Sample) ->
    case active() of
        true ->
            try beamprof_recorder_records:interval(Sample) of
                Fields -> append(Fields#{kind => interval})
            catch
                Class:Reason -> build_failed(interval, Class, Reason)
            end;
        false -> ok
    end.

%% @doc The hook in the periodic scan: the `scan' record of its rows (`Rows'
%% maps each key of `scan_keys/0' to `beamprof_scan_rows' rows, largest
%% first). Never raises.
-spec scan(map()) -> ok.
scan(Rows) ->
    case active() of
        true ->
            try beamprof_recorder_records:scan(Rows, ?TOP_N) of
                Fields -> append(Fields#{kind => scan})
            catch
                Class:Reason -> build_failed(scan, Class, Reason)
            end;
        false -> ok
    end.

%% A record that could not be built from what beamprof emitted: counted
%% (`info/0''s `build_failed'), and told in the recording itself by a `note'
%% record at the 1st, 2nd, 4th, 8th, ... failure, so that a bug in one kind
%% cannot fill the ring with notes.
build_failed(What, Class, Reason) ->
    N = counters_add(),
    case N band (N - 1) of
        0 ->
            Message = unicode:characters_to_binary(
                        io_lib:format("a ~0tp record was not written (~0tp:~0tP); "
                                      "~B such records since the VM started",
                                      [What, Class, Reason, 6, N])),
            append(#{kind => note, message => Message});
        _ ->
            ok
    end.

counters_add() ->
    Ref = failed_counter(),
    ok = counters:add(Ref, 1, 1),
    counters:get(Ref, 1).

%% One counter for the VM's life: made once, never replaced (replacing a
%% persistent term costs the node a global scan).
failed_counter() ->
    case persistent_term:get(?BUILD_FAILED, undefined) of
        undefined ->
            Ref = counters:new(1, [write_concurrency]),
            persistent_term:put(?BUILD_FAILED, Ref),
            Ref;
        Ref ->
            Ref
    end.

build_failed_count() ->
    case persistent_term:get(?BUILD_FAILED, undefined) of
        undefined -> 0;
        Ref -> counters:get(Ref, 1)
    end.

%% @doc The keys and row count the periodic scan ranks when a recording is
%% open (`{Keys, N}'), else `{[], 1}' (the scan then ranks nothing).
-spec scan_keys() -> {[beamprof_scan:key()], pos_integer()}.
scan_keys() ->
    case active() of
        true -> {?SCAN_KEYS, ?TOP_N};
        false -> {[], 1}
    end.

%% The header record, encoded.
header(Size) ->
    Config = try beamprof_config:load() catch error:_ -> beamprof_config:defaults() end,
    term_to_binary(beamprof_recorder_records:header(Config, Size)).
