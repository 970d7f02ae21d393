%% @private
%% @doc The C core of beamprof: scheduler thread CPU clocks, VM memory and its limit,
%% and the library's own sampler thread that keeps the load gate current even when every
%% scheduler is saturated.
%%
%% Internal: the public API is `beamprof'. Every function here returns within well under
%% a millisecond (`sampler_stop/0' runs on a dirty IO scheduler because it joins a
%% thread). Ill-typed arguments raise `badarg'; conditions a caller can act on return
%% `{error, Reason}'.
%%
%% The gate (`gate/0') costs one atomic load. The sampler thread ticks every `tick_ms';
%% the Erlang side must call `report_utilization/1' every tick with the normal
%% schedulers' utilization from `scheduler_wall_time' (it is also a heartbeat: when
%% reports stop for longer than 1.5 ticks, the thread falls back to the OS CPU time of
%% the scheduler threads, which includes busy-waiting but is then the only figure
%% available).
%%
%% This is the portable core (Linux, any architecture). The native sampler is a library
%% of its own, `beamprof_native_nif', loaded on first use; it reaches the gate and the
%% scheduler thread table through `native_channel/0' (see c_src/README.md, "The
%% channel").
-module(beamprof_nif).

-export([gate/0, gate_info/0, sampler_start/2, sampler_stop/0,
         report_utilization/1, sched_cpu/0, memory/0, history/0,
         sampler_info/0]).
-export([native_channel/0, priv_dir/0]).

%% Process and port scan (bp_scan_nif.c): see beamprof_scan.
-export([scan_buf_new/0, scan_buf_put/2, scan_buf_take/2, scan_buf_info/1,
         scan_topk_new/1, scan_topk_add/3, scan_topk_list/1,
         scan_hist_new/0, scan_hist_add/2, scan_hist_percentiles/2, scan_hist_info/1,
         scan_window_new/0, scan_window_begin/2, scan_window_update/4,
         scan_window_update/6, scan_window_cached/4, scan_window_reds/4,
         scan_window_info/1, scan_thread_cpu/0, scan_ptab_fill/3,
         scan_window_release/1, scan_buf_release/1, scan_reaper_info/0]).

%% The flight recorder (bp_recorder_nif.c): see beamprof_recorder.
-export([recorder_open/4, recorder_close/0, recorder_append/1, recorder_info/0,
         recorder_active/0]).

-export_type([gate_state/0, gate_reason/0, sched_source/0, thread_type/0,
              config/0, history_entry/0]).

-on_load(init/0).

-type gate_state() :: open | closed.
-type gate_reason() :: none | {scheduler, float()} | {memory, float()}.
-type sched_source() :: erlang | os_cpu | starved | none.
-type thread_type() :: normal | dirty_cpu | dirty_io.
-type config() :: #{tick_ms := 1..60000,
                    scheduler_high := float(),
                    scheduler_low := float(),
                    memory_high := float(),
                    memory_low := float(),
                    reopen_ticks := pos_integer(),
                    memory_limit := non_neg_integer(),
                    schedulers_online => 1..1024,
                    heartbeat_ms => 10..3600000,
                    test_hide_threads => boolean()}.
%% `heartbeat_ms' (default 1000): ping the notify pid at least this often
%% whatever demand reads. `test_hide_threads' (tests only, default false):
%% the thread acts as if it found no scheduler thread (blind).
-type history_entry() :: {MonoNs :: integer(),
                          SchedRatio :: float(), % -1.0: not known that tick
                          sched_source(), OsCpuRatio :: float(),
                          MemUsed :: non_neg_integer(),
                          MemLimit :: non_neg_integer(),
                          MemRatio :: float(), gate_state(),
                          DemandRatio :: float()}.

-define(NIF_LIB, "beamprof_nif").

%% Stubs call erlang:nif_error/1 directly: Dialyzer then trusts their specs
%% (through a helper it would infer that they never return).
-define(NOT_LOADED,
        erlang:nif_error({not_loaded, [{module, ?MODULE}, {line, ?LINE}]})).

%% Loads the library from $BEAMPROF_NIF (a path without ".so"), else the
%% application's priv dir, else ../priv next to this module's ebin.
-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(nif_path(), 0).

-spec nif_path() -> file:filename().
nif_path() ->
    case os:getenv("BEAMPROF_NIF") of
        Path when is_list(Path), Path =/= "" -> Path;
        _ -> filename:join(priv_dir(), ?NIF_LIB)
    end.

%% @doc beamprof's priv directory, where both C libraries are built; found
%% beside ebin/ when the application is not known to the code server (a bare
%% `erl -pa ebin').
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(beamprof) of
        Dir when is_list(Dir) ->
            Dir;
        {error, bad_name} ->
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv")
    end.

%% @doc `open' or `closed'; one atomic load. `open' when no sampler runs.
-spec gate() -> gate_state().
gate() -> ?NOT_LOADED.

%% @doc The published gate with its reason (`not_running' while no sampler
%% runs), the scheduler figure's source, whether the sampler runs, when the
%% state last changed (comparable to `erlang:monotonic_time(nanosecond)'),
%% whether the thread is blind (sees no scheduler thread), the heartbeat,
%% the pings sent so far and when the Erlang side last reported (same clock,
%% or `undefined').
-spec gate_info() -> #{state := gate_state(), reason := gate_reason() | not_running,
                       source := sched_source(), running := boolean(),
                       changed_at := integer(), blind := boolean(),
                       heartbeat_ms := pos_integer(), pings := non_neg_integer(),
                       reported_at := integer() | undefined}.
gate_info() -> ?NOT_LOADED.

%% @doc Starts the sampler thread, or reconfigures the running one in place
%% (keeping the gate state). Every key of `Config' is required and exactly
%% typed (badarg otherwise); a low mark not below its high mark returns
%% `{error, {invalid, scheduler_low | memory_low}}'. Runs on a dirty IO
%% scheduler: it may wait for a stop that joins the thread.
-spec sampler_start(Config, NotifyPid) -> ok | {error, Reason} when
      Config :: config(),
      NotifyPid :: pid(),
      Reason :: {invalid, scheduler_low | memory_low} | superseded
              | thread_create.
sampler_start(_Config, _NotifyPid) -> ?NOT_LOADED.

%% @doc Stops and joins the sampler thread; idempotent. The gate reads
%% `open' afterwards (the notify pid is told if it was closed).
-spec sampler_stop() -> ok.
sampler_stop() -> ?NOT_LOADED.

%% @doc Reports the normal schedulers' utilization over the caller's last
%% tick (also a heartbeat). Returns `not_running' when no sampler runs (the
%% report is kept all the same).
-spec report_utilization(Ratio) -> ok | not_running when
      Ratio :: float() | 0 | 1.
report_utilization(_Ratio) -> ?NOT_LOADED.

%% @doc The CPU time of every scheduler thread now, sorted by type then index.
-spec sched_cpu() -> {MonotonicNs :: integer(),
                      [{thread_type(), Index :: pos_integer(),
                        CpuNs :: non_neg_integer()}]}.
sched_cpu() -> ?NOT_LOADED.

%% @doc RSS of the VM, the memory limit in force and where it comes from,
%% and the ratio the gate uses (`{error, memory}' only if /proc cannot be
%% read).
-spec memory() -> #{rss := non_neg_integer(), limit := non_neg_integer(),
                    limit_source := option | cgroup_v2 | cgroup_v1 | machine,
                    ratio := float(), mem_total := non_neg_integer(),
                    mem_available := non_neg_integer()}
                | {error, memory}.
memory() -> ?NOT_LOADED.

%% @doc The sampler's tick records, newest first (at most 600).
-spec history() -> [history_entry()].
history() -> ?NOT_LOADED.

%% @doc Sampler statistics: ticks since load, the tick, the sampler
%% thread's own CPU time in ns, and the number of scheduler threads known.
-spec sampler_info() -> #{running := boolean(), ticks := non_neg_integer(),
                          tick_ms := pos_integer(),
                          cpu_ns := non_neg_integer(),
                          threads := non_neg_integer()}.
sampler_info() -> ?NOT_LOADED.

%% @doc Opens (or creates) the recording at `Path' with a ring of `RingSize'
%% bytes (a multiple of 8 in 65536..4294967296) for this library's writers:
%% the C sampler thread's `tick' records and `recorder_append/1'. `SinceUs'
%% is this VM's start in µs since the epoch: a recording that names this OS
%% pid but was opened before it belongs to an earlier VM (a restarted
%% container reuses pids), and is moved to `Path.prev' like any other VM's.
%% `Header' (an ETF payload, as for `recorder_append/1') is written as the
%% first frame after the open, before any tick. Dirty IO. See
%% doc/recording-format.md.
-spec recorder_open(Path :: binary(), RingSize :: pos_integer(), SinceUs :: integer(),
                    Header :: binary()) ->
          {ok, created | resumed | moved_prev}
              | {error, already_open | locked | not_a_recording
                 | {unwritable, atom() | integer()}}.
recorder_open(_Path, _RingSize, _SinceUs, _Header) -> ?NOT_LOADED.

%% @doc Closes the recording (unmaps, unlocks; no fsync). `ok' also when
%% none is open. Dirty IO.
-spec recorder_close() -> ok.
recorder_close() -> ?NOT_LOADED.

%% @doc Appends one frame holding `Payload', a whole term in the external
%% term format (`term_to_binary/1'; checked with a safe decode, else
%% `badarg'). `too_large' above 1 MiB or the ring's size less 40.
-spec recorder_append(Payload :: binary()) -> ok | {error, not_open | too_large}.
recorder_append(_Payload) -> ?NOT_LOADED.

%% @doc The open recording's path and counters, or `undefined'.
-spec recorder_info() -> undefined | #{file := binary(), ring_size := pos_integer(),
                                       bytes_written := non_neg_integer(),
                                       frames := non_neg_integer(),
                                       wraps := non_neg_integer(),
                                       seq := pos_integer(),
                                       dropped := non_neg_integer(),
                                       encode_failed := non_neg_integer(),
                                       tick_cpu_ns := non_neg_integer(),
                                       tick_records := non_neg_integer()}.
recorder_info() -> ?NOT_LOADED.

%% @doc Whether a recording is open: one atomic load.
-spec recorder_active() -> boolean().
recorder_active() -> ?NOT_LOADED.

%% @doc A channel to this library instance for the native sampler library
%% (`beamprof_native_nif'): a binary whose bytes are a versioned table of
%% pointers into this instance (its published gate, a snapshot function of
%% its scheduler thread table), held inside a resource object of this
%% instance. While the native library keeps it, this instance is neither
%% unloaded nor unmapped (ERTS defers a NIF library's unload while objects
%% of its resource types with a destructor exist). Only meaningful in this
%% VM: a copy of the binary is refused. `{error, no_channel}' if the
%% resource type could not be made at load.
-spec native_channel() -> binary() | {error, no_channel | enomem}.
native_channel() -> ?NOT_LOADED.

%% --- process and port scan (c_src/core/bp_scan_nif.c) -----------------------------
%% Resources are references; each holds its own mutex, so they may be shared,
%% but the scanner uses each from one process. Every call's work is bounded.

%% @doc A buffer of pids and ports, filled by `scan_buf_put/2' and read in
%% order by `scan_buf_take/2'.
-spec scan_buf_new() -> reference() | {error, enomem}.
scan_buf_new() -> ?NOT_LOADED.

%% @doc Keeps up to 20000 leading local pids or ports of `List' and returns
%% the rest; call again with it until `[]'. Anything else in the chunk, or an
%% improper list, raises badarg and keeps nothing.
-spec scan_buf_put(Buf :: reference(), List :: [pid() | port()]) ->
          [pid() | port()] | {error, enomem}.
scan_buf_put(_Buf, _List) -> ?NOT_LOADED.

%% @doc The next ids of the buffer, at most `Max' (1..16384); `[]' at the end.
-spec scan_buf_take(Buf :: reference(), Max :: 1..16384) -> [pid() | port()].
scan_buf_take(_Buf, _Max) -> ?NOT_LOADED.

%% @doc Appends to `Buf' the pids of the VM's process table from slot `Slot'
%% on, at most 8192 slots and about 0.2 ms per call; call again
%% with `Next' until `done'. `Limit' is `erlang:system_info(process_limit)'.
%% `{error, unavailable}' when the table was not found or failed the check
%% that it holds the caller's own pid where ERTS would look it up: use
%% `erlang:processes()' then. See c_src/core/bp_ptab.h.
-spec scan_ptab_fill(Buf :: reference(), Limit :: pos_integer(), Slot :: non_neg_integer()) ->
          {more, non_neg_integer()} | done | {error, unavailable | enomem}.
scan_ptab_fill(_Buf, _Limit, _Slot) -> ?NOT_LOADED.

%% @doc Frees the window's tables on a dirty scheduler (tens of MiB at
%% hundreds of thousands of processes); the window stays usable.
-spec scan_window_release(Window :: reference()) -> ok.
scan_window_release(_Window) -> ?NOT_LOADED.

%% @doc Frees the buffer's ids on a dirty scheduler (8 MiB at 500k
%% processes); the buffer stays usable, empty.
-spec scan_buf_release(Buf :: reference()) -> ok.
scan_buf_release(_Buf) -> ?NOT_LOADED.

%% @doc How many blocks the core's reaper thread has freed: the large tables
%% and buffers that resource destructors and window regrowth hand it rather
%% than free them on a scheduler (c_src/core/bp_reaper.h).
-spec scan_reaper_info() -> #{freed := non_neg_integer()}.
scan_reaper_info() -> ?NOT_LOADED.

-spec scan_buf_info(Buf :: reference()) -> #{size := non_neg_integer(),
                                             taken := non_neg_integer()}.
scan_buf_info(_Buf) -> ?NOT_LOADED.

%% @doc A top-K (K in 1..10000) of any terms keyed by 64-bit signed integers.
-spec scan_topk_new(K :: 1..10000) -> reference() | {error, enomem}.
scan_topk_new(_K) -> ?NOT_LOADED.

%% @doc Offers `{Value, Item}'; returns the value the next offer must exceed
%% (-2^63 until K items are kept). Ties keep the earlier item.
-spec scan_topk_add(TopK :: reference(), Item :: term(), Value :: integer()) -> integer().
scan_topk_add(_TopK, _Item, _Value) -> ?NOT_LOADED.

%% @doc The kept items, largest value first, ties in offer order.
-spec scan_topk_list(TopK :: reference()) -> [{integer(), term()}] | {error, enomem}.
scan_topk_list(_TopK) -> ?NOT_LOADED.

%% @doc A log-linear histogram of non-negative 64-bit integers (buckets at
%% most 1/32 of their value wide; values below 64 exact).
-spec scan_hist_new() -> reference() | {error, enomem}.
scan_hist_new() -> ?NOT_LOADED.

-spec scan_hist_add(Hist :: reference(), Value :: non_neg_integer()) -> ok.
scan_hist_add(_Hist, _Value) -> ?NOT_LOADED.

%% @doc Nearest-rank percentiles (each 0..100, at most 1000): the largest
%% value of the bucket holding that rank, clamped to the minimum and maximum
%% seen; 0 when empty.
-spec scan_hist_percentiles(Hist :: reference(), Ps :: [number()]) -> [non_neg_integer()].
scan_hist_percentiles(_Hist, _Ps) -> ?NOT_LOADED.

-spec scan_hist_info(Hist :: reference()) ->
          #{count := non_neg_integer(), min := non_neg_integer(),
            max := non_neg_integer(), sum := non_neg_integer()}.
scan_hist_info(_Hist) -> ?NOT_LOADED.

%% @doc A window table: pid or port -> value and flags of the previous
%% generation, so that a scan gets deltas (reductions over the window) and
%% threshold crossings in time linear in the number of ids.
-spec scan_window_new() -> reference() | {error, enomem}.
scan_window_new() -> ?NOT_LOADED.

%% @doc Starts the next generation, sized for `Expected' updates.
-spec scan_window_begin(Window :: reference(), Expected :: non_neg_integer()) ->
          pos_integer() | {error, enomem}.
scan_window_begin(_Window, _Expected) -> ?NOT_LOADED.

%% @doc Records `Value' and `Flags' (0..15) for `Id' in this generation;
%% returns `Value' minus the previous generation's value (`Value' when `Id'
%% is new there, 0 in the first generation), with the flags that rose.
-spec scan_window_update(Window :: reference(), Id :: pid() | port(),
                         Value :: non_neg_integer(), Flags :: 0..15) ->
          non_neg_integer() | {non_neg_integer(), 1..15} | {error, no_generation}.
scan_window_update(_Window, _Id, _Value, _Flags) -> ?NOT_LOADED.

%% @doc `scan_window_update/4' that also keeps `Mem' (bytes, or `skipped':
%% nothing kept) beside the value, with the queue length `Mql' it was asked
%% at, for `scan_window_cached/4' of the next generation.
-spec scan_window_update(Window :: reference(), Id :: pid() | port(),
                         Value :: non_neg_integer(), Flags :: 0..15,
                         Mql :: non_neg_integer(), Mem :: non_neg_integer() | skipped) ->
          non_neg_integer() | {non_neg_integer(), 1..15} | {error, no_generation}.
scan_window_update(_Window, _Id, _Value, _Flags, _Mql, _Mem) -> ?NOT_LOADED.

%% @doc The memory the previous generation kept for `Id' when it recorded
%% exactly `Value' and `Mql' then; `none' otherwise.
-spec scan_window_cached(Window :: reference(), Id :: pid() | port(),
                         Value :: non_neg_integer(), Mql :: non_neg_integer()) ->
          non_neg_integer() | none.
scan_window_cached(_Window, _Id, _Value, _Mql) -> ?NOT_LOADED.

%% @doc The reductions-only pass over one slice: records each of `Values'
%% (or skips an `undefined': a process gone, counted) for the id at the same
%% place in `Ids' (at most 16384), offers each delta to `TopK' (or none with
%% `undefined') and returns `{Gone, Floor}' (Floor: TopK's, -2^63 without).
-spec scan_window_reds(Window :: reference(), TopK :: reference() | undefined,
                       Ids :: [pid() | port()], Values :: [non_neg_integer() | undefined]) ->
          {non_neg_integer(), integer()} | {error, enomem}.
scan_window_reds(_Window, _TopK, _Ids, _Values) -> ?NOT_LOADED.

-spec scan_window_info(Window :: reference()) ->
          #{generation := non_neg_integer(), entries := non_neg_integer(),
            previous := non_neg_integer(), capacity := non_neg_integer(),
            overflow := non_neg_integer()}.
scan_window_info(_Window) -> ?NOT_LOADED.

%% @doc CPU time of the calling scheduler thread, ns.
-spec scan_thread_cpu() -> non_neg_integer().
scan_thread_cpu() -> ?NOT_LOADED.
