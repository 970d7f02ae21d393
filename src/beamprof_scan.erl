%% @doc Top processes and ports without hurting the node.
%%
%% `top/2,3' and `top_ports/2,3' answer "which process?" on a node with
%% hundreds of thousands of processes: the walk runs in a fresh process, in
%% slices of about 0.5 ms that yield between them; `message_queue_len' is asked
%% first and the items that walk a queue (`memory', `total_heap_size') are
%% skipped for processes whose queue is `skip_queue' messages or longer
%% (reported as `skipped'); the top-K and histograms live in C (NIF
%% resources), so the walker's heap stays flat; only the K winners are
%% named, at the end.
%%
%% `reductions' is a delta over a window, not a lifetime total: with
%% beamprof running, over the time since the periodic scan's last pass
%% (`beamprof_scan_server'); otherwise the call takes a baseline pass, waits
%% `window_ms' (default 500) and takes the real one. The window table is
%% linear in the process count (two generations in C). When it cannot be
%% allocated nothing is ranked by reductions (`top(reductions, N)' returns
%% `[]' and logs a warning; `top_all/1' says `scan_window_unavailable' in its
%% `warnings'). With `scan_interval => off' the server keeps no window: the
%% call takes its own baseline pass and wait.
%%
%% Cost (500k idle processes, 2 cores, see bench/scan_bench.erl and the
%% doc/cost.md): about one `process_info/2' call per process for
%% `message_queue_len', two for `memory' (the second a signal round trip on
%% OTP 25: the floor of a cold memory scan); with beamprof running, memory
%% goes through the periodic scanner's window, which asks again only the
%% processes whose reductions or queue changed since its last pass. The
%% walker's heap stays under a few hundred KiB.
-module(beamprof_scan).

-export([top/2, top/3, top_ports/2, top_ports/3, top_all/1, top_all/2, local_top/3, result/4,
         default_skip_queue/0, check_top/2]).
-export_type([key/0, port_key/0, options/0, tops/0]).

-type key() :: message_queue_len | memory | reductions | total_heap_size.
-type port_key() :: queue_size | memory | input | output.
-type options() :: #{window_ms => 0..60000, skip_queue => pos_integer()}.
-type tops() :: #{message_queue_len := [beamprof_scan_rows:row()],
                  memory := [beamprof_scan_rows:row()],
                  reductions := [beamprof_scan_rows:row()],
                  window_ms := non_neg_integer(), scanned := non_neg_integer(),
                  skipped := non_neg_integer(), duration_us := non_neg_integer(),
                  cpu_us := non_neg_integer(), fill_us := non_neg_integer(),
                  max_slice_us := non_neg_integer(), source := beamprof_enum:source(),
                  warnings := [beamprof_warnings:warning()]}.
%% `source': where the pass's pids came from (`ptab_walk',
%% `processes_iterator' or `processes'); `warnings': why, when it is a
%% fallback (`enumeration_fallback', `vm_internals_off'), and
%% `scan_window_unavailable' when the reductions window's table could not be
%% allocated (then `reductions' is `[]': a lifetime total is not ranked as a
%% delta).

-define(KEYS, [message_queue_len, memory, reductions, total_heap_size]).
-define(PORT_KEYS, [queue_size, memory, input, output]).
-define(DEFAULT_WINDOW_MS, 500).
-define(DEFAULT_SKIP_QUEUE, 10000).

%% @doc The `N' processes with the largest `Key'. See `top/3'.
-spec top(Key :: key(), N :: 1..10000) -> [beamprof_scan_rows:row()].
top(Key, N) ->
    top(Key, N, #{}).

%% @doc The `N' processes with the largest `Key', best first, as rows
%% `#{pid, key, value, name, label, initial_call, current_function,
%% message_queue_len, memory, reductions}' (`memory' is `skipped' for a huge
%% queue; `label' is the process's `proc_lib:set_label/1' label, OTP 27+, else
%% `undefined'). Options: `window_ms' (the reductions window when beamprof is not
%% running, default 500) and `skip_queue' (default: the `scan_skip_queue'
%% option, 10000).
-spec top(Key :: key(), N :: 1..10000, Opts :: options()) -> [beamprof_scan_rows:row()].
top(Key, N, Opts) ->
    check_top(Key, N, [Key, N, Opts]),
    check_opts(Opts, [Key, N, Opts]),
    Result = scan([Key], N, Opts),
    _ = [logger:warning("beamprof: ~ts", [M])
         || Key =:= reductions,
            #{code := scan_window_unavailable, message := M} <- maps:get(warnings, Result)],
    maps:get(Key, Result).

%% @doc The `N' ports with the largest `Key' (`queue_size', `memory',
%% `input', `output' bytes), as rows `#{port, key, value, name, owner,
%% queue_size, memory, input, output}'.
-spec top_ports(Key :: port_key(), N :: 1..10000) -> [beamprof_scan_rows:port_row()].
top_ports(Key, N) ->
    top_ports(Key, N, #{}).

%% @doc `top_ports/2'; `Opts' is accepted for symmetry (no option applies).
-spec top_ports(Key :: port_key(), N :: 1..10000, Opts :: map()) ->
          [beamprof_scan_rows:port_row()].
top_ports(Key, N, Opts) ->
    check_order(top_ports, Key, N, [Key, N, Opts]),
    check(lists:member(Key, ?PORT_KEYS), key_message("queue_size, memory, input, output", Key),
          [Key, N, Opts]),
    check_n(N, [Key, N, Opts]),
    check(is_map(Opts), "Expected options to be a map", [Key, N, Opts]),
    isolated(fun() ->
                     #{tops := #{Key := Winners}} =
                         beamprof_scan_walk:ports(#{keys => [Key], n => N}),
                     beamprof_scan_rows:ports(Key, Winners)
             end).

%% @doc One pass for the three tables of `beamprof:top/0': top `N' by
%% message queue, memory and reductions over the window, with the pass's
%% figures. Through the periodic scanner when beamprof runs.
-spec top_all(N :: 1..10000) -> tops().
top_all(N) ->
    top_all(N, #{}).

%% @doc `top_all/1' with the options of `top/3'.
-spec top_all(N :: 1..10000, Opts :: options()) -> tops().
top_all(N, Opts) ->
    check_n(N, [N, Opts]),
    check_opts(Opts, [N, Opts]),
    scan([message_queue_len, memory, reductions], N, Opts).

%% @private
%% @doc Checks `top/2''s key and count (the order, the key, 1..10000); raises
%% `{badarg, Message}' naming what is wrong. For callers that rank rows of
%% `top/2' themselves (`beamprof_cluster').
-spec check_top(Key :: term(), N :: term()) -> ok.
check_top(Key, N) ->
    check_top(Key, N, [Key, N]).

check_top(Key, N, Args) ->
    check_order(top, Key, N, Args),
    check(lists:member(Key, ?KEYS), key_message("message_queue_len, memory, reductions, "
                                                "total_heap_size", Key), Args),
    check_n(N, Args).

%% Through the server when it runs and reductions or memory are asked (its
%% window holds the previous pass: reductions over the window, and the memory
%% of processes that did not change since), unless a skip_queue of the
%% call's own is given; else here.
scan(Keys, N, Opts) ->
    Server = (lists:member(reductions, Keys) orelse lists:member(memory, Keys))
        andalso not maps:is_key(skip_queue, Opts),
    case Server andalso beamprof_scan_server:top(Keys, N) of
        {ok, Result} -> Result;
        _ -> isolated(fun() -> local_top(Keys, N, Opts) end)
    end.

%% @doc Runs a scan in the calling process (its heap is the scanner's):
%% a baseline pass and a wait of `window_ms' first when `reductions' is
%% asked. Returns the rows per key and the pass's figures.
-spec local_top(Keys :: [key()], N :: 1..10000, Opts :: options()) -> map().
local_top(Keys, N, Opts) ->
    Skip = maps:get(skip_queue, Opts, default_skip_queue()),
    Spec0 = #{keys => Keys, n => N, skip_queue => Skip},
    {Spec, WindowMs} =
        case lists:member(reductions, Keys) of
            true ->
                Window = beamprof_nif:scan_window_new(),
                T0 = erlang:monotonic_time(millisecond),
                _ = beamprof_scan_walk:processes(#{keys => [], n => 1, skip_queue => Skip,
                                                   window => Window}),
                timer:sleep(maps:get(window_ms, Opts, ?DEFAULT_WINDOW_MS)),
                {Spec0#{window => Window}, erlang:monotonic_time(millisecond) - T0};
            false ->
                {Spec0, 0}
        end,
    R = beamprof_scan_walk:processes(Spec),
    _ = [beamprof_nif:scan_window_release(W) || #{window := W} <- [Spec]],
    result(Keys, R, Skip, WindowMs).

%% @private
%% @doc Rows per key and the pass's figures, from a walk's result.
-spec result([key()], beamprof_scan_walk:result(), pos_integer(), non_neg_integer()) -> map().
result(Keys, #{tops := Tops} = R, Skip, WindowMs) ->
    Rows = maps:from_list([{K, beamprof_scan_rows:processes(K, maps:get(K, Tops, []), Skip)}
                           || K <- Keys]),
    Rows#{window_ms => WindowMs, scanned => maps:get(scanned, R),
          skipped => maps:get(skipped, R), duration_us => maps:get(duration_us, R),
          cpu_us => maps:get(cpu_us, R), fill_us => maps:get(fill_us, R),
          max_slice_us => maps:get(max_slice_us, R), source => maps:get(source, R),
          warnings => maps:get(warnings, R)}.

%% @doc The queue length from which `memory' is skipped: the application's
%% `scan_skip_queue' when set, else 10000.
-spec default_skip_queue() -> pos_integer().
default_skip_queue() ->
    case application:get_env(beamprof, scan_skip_queue) of
        {ok, V} when is_integer(V), V > 0 -> V;
        _ -> ?DEFAULT_SKIP_QUEUE
    end.

%% Runs Fun in a fresh process (a clean, small heap; nothing of the scan
%% stays in the caller's) and returns its value.
isolated(Fun) ->
    Self = self(),
    Tag = make_ref(),
    {Pid, Ref} = spawn_monitor(fun() -> Self ! {Tag, Fun()} end),
    receive
        {Tag, Result} ->
            erlang:demonitor(Ref, [flush]),
            Result;
        {'DOWN', Ref, process, Pid, Reason} ->
            erlang:error({scan_failed, Reason})
    end.

%% top(5, memory): the count and the key swapped.
check_order(Function, Key, N, Args) when is_integer(Key), is_atom(N) ->
    bad(lists:flatten(io_lib:format("Arguments in the wrong order: ~ts(Key, N) takes the key "
                                    "first, e.g. ~ts(~ts, ~b)", [Function, Function, N, Key])),
        Args);
check_order(_Function, _Key, _N, _Args) ->
    ok.

key_message(Keys, Key) ->
    lists:flatten(io_lib:format("Expected key to be one of ~ts, got: ~0tP", [Keys, Key, 8])).

check_n(N, Args) ->
    check(is_integer(N) andalso N >= 1 andalso N =< 10000,
          "Expected N to be an integer in 1..10000", Args).

check_opts(Opts, Args) ->
    check(is_map(Opts), "Expected options to be a map", Args),
    maps:foreach(fun(window_ms, V) when is_integer(V), V >= 0, V =< 60000 -> ok;
                    (skip_queue, V) when is_integer(V), V > 0 -> ok;
                    (K, _) -> bad(lists:flatten(
                                    io_lib:format("Bad option ~0tp: expected window_ms "
                                                  "(0..60000) or skip_queue (> 0)", [K])), Args)
                 end, Opts).

check(true, _Message, _Args) -> ok;
check(false, Message, Args) -> bad(Message, Args).

-spec bad(string(), list()) -> no_return().
bad(Message, Args) -> erlang:error({badarg, Message}, Args).
