%% Common Test suite of the core library's reaper thread (c_src/core/bp_reaper.h):
%% a scan buffer or window dropped with 1 MiB or more of memory (its process
%% killed) is freed by the reaper thread, not by the scheduler that ran the
%% resource's destructor (smaller ones are freed in place). Checked through the
%% library's own counters (beamprof_nif:reaper_info/0).
-module(beamprof_reaper_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([large_frees_go_to_the_reaper/1]).

all() ->
    [large_frees_go_to_the_reaper].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

%% A process holding a buffer of 262,144 ids (2 MiB) and a window sized for
%% a million entries is killed: both destructors hand their memory to the
%% reaper, which frees it (done and bytes_done catch up with given).
large_frees_go_to_the_reaper(_Config) ->
    #{given := G0, done := D0, bytes_done := B0} = beamprof_nif:reaper_info(),
    {Holder, Bytes} = holder(262144, 1000000),
    ct:log("holder: ~p bytes of ids and tables", [Bytes]),
    ?assert(Bytes >= 2 * 1048576),
    exit(Holder, kill),
    ok = beamprof_ct:wait_until(
           fun() ->
                   #{done := D, bytes_done := B} = beamprof_nif:reaper_info(),
                   D >= D0 + 2 andalso B >= B0 + Bytes
           end, 30000),
    Info = beamprof_nif:reaper_info(),
    ct:log("reaper: ~p", [Info]),
    #{given := G1, done := D1, running := true} = Info,
    ?assert(G1 >= G0 + 2),
    ?assertEqual(G1, D1).

%% A process holding a scan buffer of N ids and a window begun for Expected
%% entries; returns it and the bytes they hold.
holder(N, Expected) ->
    Self = self(),
    Pid = spawn(fun() ->
                        Buf = beamprof_nif:scan_buf_new(),
                        ok = put_all(Buf, lists:duplicate(N, self())),
                        W = beamprof_nif:scan_window_new(),
                        _ = beamprof_nif:scan_window_begin(W, Expected),
                        #{capacity := Cap} = beamprof_nif:scan_window_info(W),
                        Self ! {held, self(), N * 8, Cap},
                        receive never -> {Buf, W} end
                end),
    receive
        {held, Pid, IdBytes, Cap} -> {Pid, IdBytes + Cap * slot_bytes()}
    after 30000 -> ct:fail(holder_not_ready)
    end.

%% A lower bound of a window slot's size (struct bp_wslot: 32 bytes).
slot_bytes() -> 16.

put_all(_Buf, []) -> ok;
put_all(Buf, Ids) -> put_all(Buf, beamprof_nif:scan_buf_put(Buf, Ids)).
