%% @private
%% @doc The continuous profiler's options, checked and normalized: a map or
%% `{Key, Value}' pairs to `#{hz, period, sinks => [{Module, Options}]}'.
%% Throws `{bad, Message}' naming the first bad option.
-module(beamprof_continuous_opts).

-export([parse/1, sink_common/1, bad/2]).

-define(KNOWN, [hz, period, sink]).
-define(COMMON, [queue, retries, backoff]).

%% @doc The parsed options; throws `{bad, Message}'.
-spec parse(term()) -> #{hz := pos_integer(), period := pos_integer(),
                         sinks := [{module(), map()}]}.
parse(Options) ->
    Map = to_map(Options, "continuous options"),
    case [K || K <- maps:keys(Map), not lists:member(K, ?KNOWN)] of
        [] -> ok;
        [Key | _] -> bad("Unknown continuous option ~0tp (expected hz, period, sink)", [Key])
    end,
    #{hz := Hz, period := Period} = All = maps:merge(beamprof_continuous:defaults(), Map),
    is_integer(Hz) andalso Hz >= 1 andalso Hz =< 10000 orelse
        bad("Expected continuous hz to be an integer in 1..10000, got: ~0tP", [Hz, 8]),
    is_integer(Period) andalso Period >= 1000 andalso Period =< 86400000 orelse
        bad("Expected continuous period to be an integer of ms in 1000..86400000, got: ~0tP",
            [Period, 8]),
    Sinks = case All of
                #{sink := S} -> sinks(S);
                _ -> bad("Expected continuous options to name a sink: sink => {dir, Dir} | "
                         "telemetry | {http, Url, Opts}", [])
            end,
    #{hz => Hz, period => Period, sinks => Sinks}.

sinks([]) ->
    bad("Expected continuous sink to be a sink or a non-empty list of sinks", []);
sinks([T | _] = List) when is_tuple(T); T =:= telemetry ->
    [sink(S) || S <- List];
sinks(Sink) ->
    [sink(Sink)].

sink({dir, Dir}) -> sink({dir, Dir, #{}});
sink({dir, Dir, Opts}) -> {beamprof_continuous_dir, beamprof_continuous_dir:check(Dir, Opts)};
sink(telemetry) -> sink({telemetry, #{}});
sink({telemetry, Opts}) ->
    {beamprof_continuous_telemetry, beamprof_continuous_telemetry:check(Opts)};
sink({http, Url, Opts}) ->
    {beamprof_continuous_http, beamprof_continuous_http:check(Url, Opts)};
sink(Other) ->
    bad("Expected a continuous sink, {dir, Dir}, {dir, Dir, Opts}, telemetry or "
        "{http, Url, Opts}, got: ~0tP", [Other, 8]).

%% @doc A sink's options as a map with the options every sink takes
%% (`queue', `retries', `backoff') checked and defaulted; the sink's own
%% keys are left to it.
-spec sink_common(term()) -> map().
sink_common(Opts) ->
    Map = maps:merge(#{queue => 4, retries => 3, backoff => 1000},
                     to_map(Opts, "continuous sink options")),
    #{queue := Q, retries := R, backoff := B} = Map,
    is_integer(Q) andalso Q >= 1 andalso Q =< 1000 orelse
        bad("Expected sink queue to be an integer in 1..1000, got: ~0tP", [Q, 8]),
    is_integer(R) andalso R >= 0 andalso R =< 100 orelse
        bad("Expected sink retries to be an integer in 0..100, got: ~0tP", [R, 8]),
    is_integer(B) andalso B >= 1 andalso B =< 3600000 orelse
        bad("Expected sink backoff to be an integer of ms in 1..3600000, got: ~0tP", [B, 8]),
    Map.

to_map(Map, _What) when is_map(Map) -> Map;
to_map(List, What) when is_list(List) ->
    case beamprof_opts:is_pairs(List) of
        true -> maps:from_list(List);
        false -> bad("Expected ~ts to be a map or a list of {Key, Value} pairs, got: ~0tP",
                     [What, List, 8])
    end;
to_map(Other, What) ->
    bad("Expected ~ts to be a map or a list of {Key, Value} pairs, got: ~0tP", [What, Other, 8]).

%% @doc Throws `{bad, Message}' with the formatted message.
-spec bad(string(), list()) -> no_return().
bad(Format, Args) ->
    throw({bad, lists:flatten(io_lib:format(Format, Args))}).
