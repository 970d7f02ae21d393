%% @doc The continuous profiler's telemetry sink: `telemetry'. Each period
%% emits `[beamprof, profile, native]' (through `beamprof_events', so to
%% telemetry's handlers when telemetry is loaded, else to beamprof's own)
%% from the sink's process, never the collector's. Measurements: `samples',
%% `weighted' (samples weighted by timer overruns: CPU time in ticks of
%% 1/hz s), `duration_ms' (the period's span); metadata: `profile' (the
%% native profile, see `beamprof_native'), `from_ms', `until_ms' (system
%% time), `node', `hz', `period', `warnings'. Takes the options every sink
%% takes (`queue', `retries', `backoff').
-module(beamprof_continuous_telemetry).

-export([check/1, name/1, encode/3, deliver/2, retryable/1, deadline/1]).

%% @doc Checks the options; throws `{bad, Message}'.
-spec check(term()) -> map().
check(Opts) ->
    Map = beamprof_continuous_opts:sink_common(Opts),
    case maps:keys(maps:without([queue, retries, backoff], Map)) of
        [] -> Map;
        [K | _] -> beamprof_continuous_opts:bad("Unknown telemetry sink option ~0tp "
                                                "(expected queue, retries, backoff)", [K])
    end.

%% @doc `telemetry'.
-spec name(map()) -> binary().
name(_) -> <<"telemetry">>.

%% @doc The event's measurements and metadata.
-spec encode(map(), map(), map()) -> {map(), map()}.
encode(Profile, #{from_ms := From, until_ms := Until} = Meta, _Opts) ->
    {#{samples => maps:get(samples, Profile, 0), weighted => maps:get(weighted, Profile, 0),
       duration_ms => Until - From},
     maps:merge(maps:with([from_ms, until_ms, node, hz, period], Meta),
                #{profile => Profile, warnings => maps:get(warnings, Profile, [])})}.

%% @doc Emits the event.
-spec deliver({map(), map()}, map()) -> ok.
deliver({Measurements, Metadata}, _Opts) ->
    beamprof_events:emit([profile, native], Measurements, Metadata).

%% @doc Not retried: a handler that raises is detached by the events code.
-spec retryable(term()) -> false.
retryable(_) -> false.

%% @doc 30 s per attempt (the handlers run in the attempt's process).
-spec deadline(map()) -> pos_integer().
deadline(_) -> 30000.
