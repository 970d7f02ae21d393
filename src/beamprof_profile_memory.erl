%% @doc The memory strategy: `erlang:memory/0' before and after a call, the delta per
%% memory type, and the calling process's own heap and garbage-collection figures.
%%
%% Cost: `erlang:memory/0' walks the allocators, some microseconds to tens of
%% microseconds on a busy node, twice per profiled call; the process figures are a few
%% hundred nanoseconds.
-module(beamprof_profile_memory).

-export([before/0, after_call/1, process_memory/0]).
-export_type([reading/0, result/0]).

-type reading() :: #{vm := #{atom() => non_neg_integer()}, process := #{atom() => integer()}}.
-type result() :: #{before := non_neg_integer(), 'after' := non_neg_integer(),
                    delta := integer(), by_type := #{atom() => #{before := non_neg_integer(),
                                                                'after' := non_neg_integer(),
                                                                delta := integer()}},
                    process := #{atom() => #{before := integer(), 'after' := integer(),
                                             delta := integer()}}}.

-define(PROCESS_KEYS, [memory, heap_size, total_heap_size, stack_size, garbage_collection,
                       garbage_collection_info]).

%% @doc Reads the VM's and the calling process's memory figures.
-spec before() -> reading().
before() ->
    #{process => process_figures(), vm => maps:from_list(erlang:memory())}.

%% @doc Reads again and compares with `Before': totals (bytes of `erlang:memory(total)'), and
%% before/after/delta per memory type and per process figure.
-spec after_call(Before) -> result() when Before :: reading().
after_call(#{vm := Vm0, process := P0}) ->
    P1 = process_figures(),
    Vm1 = maps:from_list(erlang:memory()),
    #{before => maps:get(total, Vm0), 'after' => maps:get(total, Vm1),
      delta => maps:get(total, Vm1) - maps:get(total, Vm0),
      by_type => compare(Vm0, Vm1), process => compare(P0, P1)}.

%% @doc The calling process's memory in bytes (`process_info(self(), memory)'): cheap enough
%% to read around every profiled call.
-spec process_memory() -> non_neg_integer().
process_memory() ->
    {memory, Bytes} = erlang:process_info(self(), memory),
    Bytes.

process_figures() ->
    Info = erlang:process_info(self(), ?PROCESS_KEYS),
    {garbage_collection, Gc} = lists:keyfind(garbage_collection, 1, Info),
    {garbage_collection_info, GcInfo} = lists:keyfind(garbage_collection_info, 1, Info),
    Word = erlang:system_info(wordsize),
    Words = maps:from_list([{K, V * Word} || {K, V} <- Info,
                                             lists:member(K, [heap_size, total_heap_size,
                                                              stack_size])]),
    Words#{memory => element(2, lists:keyfind(memory, 1, Info)),
           minor_gcs => proplists:get_value(minor_gcs, Gc, 0),
           old_heap_size => proplists:get_value(old_heap_size, GcInfo, 0) * Word,
           mbuf_size => proplists:get_value(mbuf_size, GcInfo, 0) * Word}.

compare(Before, After) ->
    maps:fold(fun(K, V1, Acc) ->
                      V0 = maps:get(K, Before, 0),
                      Acc#{K => #{before => V0, 'after' => V1, delta => V1 - V0}}
              end, #{}, After).
