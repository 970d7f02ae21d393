%% @doc Text for people: human units, durations and bars (the screen of
%% `beamprof:top/0' is beamprof_top's).
-module(beamprof_format).

-export([bytes/1, count/1, percent/1, microseconds/1, bar/2]).

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

