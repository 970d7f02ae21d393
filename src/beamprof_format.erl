%% @doc Text for people: human units and the compact tables of
%% `beamprof:top/0'.
-module(beamprof_format).

-include("beamprof_doc.hrl").
?MODULEDOC("Human units and compact text tables.").

-export([bytes/1, count/1, percent/1, snapshot/1]).
-export([microseconds/1, bar/2]).

%% @doc `1536' -> `"1.5 KiB"'.
-spec bytes(number()) -> string().
bytes(N) when N < 1024 -> lists:flatten(io_lib:format("~B B", [round(N)]));
bytes(N) -> scaled(N / 1024, 1024, [" KiB", " MiB", " GiB", " TiB"]).

%% @doc `1234567' -> `"1.2M"'.
-spec count(number()) -> string().
count(N) when N < 1000 -> lists:flatten(io_lib:format("~B", [round(N)]));
count(N) -> scaled(N / 1000, 1000, ["k", "M", "G", "T"]).

%% @doc `0.1234' -> `"12.3%"'; `undefined' -> `"-"'.
-spec percent(number() | undefined) -> string().
percent(undefined) -> "-";
percent(R) -> lists:flatten(io_lib:format("~.1f%", [R * 100])).

%% @doc `850' -> `"850 us"', `1234' -> `"1.2 ms"', `2500000' -> `"2.5 s"'.
-spec microseconds(number()) -> string().
microseconds(N) when N < 1000 -> lists:flatten(io_lib:format("~B us", [round(N)]));
microseconds(N) when N < 1000000 -> lists:flatten(io_lib:format("~.1f ms", [N / 1000]));
microseconds(N) -> lists:flatten(io_lib:format("~.1f s", [N / 1000000])).

%% @doc A bar of `Width' cells for a ratio in [0.0, 1.0]: `"[###.......]"';
%% `undefined' gives empty cells.
-spec bar(number() | undefined, pos_integer()) -> string().
bar(undefined, Width) -> [$[ | lists:duplicate(Width, $\s)] ++ "]";
bar(R, Width) ->
    Full = min(Width, max(0, round(R * Width))),
    [$[ | lists:duplicate(Full, $#)] ++ lists:duplicate(Width - Full, $.) ++ "]".

%% N in the first unit; steps up while it is at least Step and a unit is left.
scaled(N, Step, [_, Next | Rest]) when N >= Step -> scaled(N / Step, Step, [Next | Rest]);
scaled(N, _, [Unit | _]) -> lists:flatten(io_lib:format("~.1f~s", [N, Unit])).

%% @doc The text of a `beamprof_vm:sample()': schedulers, memory, run
%% queues, counts, rates and the gate, in at most about 25 lines.
-spec snapshot(beamprof_vm:sample()) -> iolist().
snapshot(#{gate := Gate, window_ms := Window} = S) ->
    [io_lib:format("beamprof on ~s - window ~.2f s - gate ~s~n",
                   [node(), Window / 1000, gate(Gate)]),
     schedulers(S), memory(S), counts(S), rates(S)].

gate(#{state := open}) -> "open";
gate(#{state := closed, reason := {Kind, R}}) ->
    io_lib:format("CLOSED (~s ~s)", [Kind, percent(R)]).

schedulers(#{schedulers := Rows, utilization := U}) ->
    {Normal, Dirty} = lists:partition(fun(#{type := T}) -> T =:= normal end, Rows),
    Shown = case length(Normal) =< 16 of true -> Normal; false -> [] end,
    [io_lib:format("~-24s ~7s ~7s~n", ["scheduler", "util", "os cpu"]),
     [sched_row(io_lib:format("normal ~B", [I]), Ut, Os, bar(Ut))
      || #{index := I, utilization := Ut, os_cpu := Os} <- Shown],
     [sched_row(io_lib:format("~s (~B)", [K, length(Of)]), maps:get(K, U),
                maps:get(os_key(K), U), "")
      || K <- [normal, dirty_cpu, dirty_io],
         Of <- [[R || #{type := T} = R <- Normal ++ Dirty, T =:= K]],
         Of =/= [], K =/= normal orelse Shown =:= []],
     io_lib:format("~-24s ~7s  weighted ~s~n",
                   ["total (normal+dirty cpu)", percent(maps:get(total, U)),
                    percent(maps:get(weighted, U))])].

os_key(normal) -> os_cpu;
os_key(dirty_cpu) -> os_cpu_dirty_cpu;
os_key(dirty_io) -> os_cpu_dirty_io.

sched_row(Name, Util, Os, Bar) ->
    io_lib:format("  ~-22s ~7s ~7s  ~s~n", [Name, percent(Util), percent(Os), Bar]).

bar(undefined) -> "";
bar(R) -> lists:duplicate(round(R * 20), $#).

memory(#{memory := #{erlang := E} = M}) ->
    [io_lib:format("memory   total ~s  processes ~s  binary ~s  ets ~s  code ~s~n",
                   [bytes(maps:get(K, E)) || K <- [total, processes, binary, ets, code]]),
     io_lib:format("         rss ~s of ~s (~s limit, ~s in use)~n",
                   [bytes(maps:get(rss, M)), bytes(maps:get(limit, M)),
                    maps:get(limit_source, M), percent(maps:get(ratio, M))])].

counts(#{run_queues := RQ, system := Sys}) ->
    [io_lib:format("run queues  total ~B  cpu ~B  io ~B~n",
                   [maps:get(K, RQ) || K <- [total, cpu, io]]),
     io_lib:format("counts   processes ~s / ~s  ports ~s / ~s  atoms ~s / ~s~n",
                   [count(maps:get(K, Sys)) || K <- [process_count, process_limit, port_count,
                                                     port_limit, atom_count, atom_limit]])].

rates(#{rates := R}) ->
    io_lib:format("rates    reductions ~s/s  gc ~s/s  io in ~s/s  out ~s/s~n",
                  [count(maps:get(reductions, R)), count(maps:get(gc, R)),
                   bytes(maps:get(io_in, R)), bytes(maps:get(io_out, R))]).
