%% @doc Options of the profiling API (`beamprof_profile'): validation and the compiled
%% form.
%%
%% `compile/2' turns what a caller passes (a map or a `{Key, Value}' list) into a
%% complete map with every default filled in and the rate turned into a 32-bit
%% threshold, so that the hot path of a profiled call reads a map and never validates.
%% An unknown option or a bad value raises `{badarg, Message}' naming it, as
%% `beamprof_config' does. `cached/2' keeps the last compiled options of each entry
%% point in the process dictionary: a call with the same options term (a literal map is
%% the same term every time) costs one `get/1' and one comparison.
-module(beamprof_profile_opts).

-export([compile/2, cached/2, current_env/0, keys/0, unknown_extension/1]).
-export_type([kind/0, strategy/0, compiled/0]).

-type kind() :: profile | profile_if_slow | profile_production | profile_memory
              | profile_calls | flame_graph.
%% The entry point: it sets the defaults and which strategies are allowed.

-type strategy() :: sample | memory | calls | call_graph | fprof | eprof | cprof | flame_graph.

-type compiled() :: #{kind := kind(), strategy := strategy(), rate := float(),
                      draw := -1..16#100000000, duration := pos_integer() | infinity,
                      interval := pos_integer(), threshold := non_neg_integer() | undefined,
                      env := all | [term()], enabled := boolean(), async := boolean(),
                      emit_metrics := boolean(), check_load := boolean(),
                      metadata := map(), output := file:filename_all() | undefined,
                      format := beamprof_flame:format() | undefined,
                      compiled := true}.
%% Every option filled in. `draw' is `rate * 2^32': a call is profiled when a 32-bit random
%% draw is below it (2^32: always, no draw at all; -1: `enabled' is false).

-define(CACHE(Kind), {'$beamprof_profile_opts', Kind}).
-define(FULL, 16#100000000).
-define(TRACING, [calls, call_graph, fprof, eprof, cprof]).

%% @doc The option names profile/2 and the other entry points take.
-spec keys() -> [atom()].
keys() ->
    [async, check_load, duration, emit_metrics, enabled, env, format, interval, metadata,
     output, rate, sample_rate, strategy, threshold].

%% @doc Compiled options for `Kind', from the process's one-entry cache when `Options' is
%% the same term as last time; validates and stores them otherwise.
-spec cached(Kind, Options) -> compiled() when Kind :: kind(), Options :: map() | list().
cached(Kind, Options) ->
    case get(?CACHE(Kind)) of
        {Options, Compiled} -> Compiled;
        _ -> cache(Kind, Options)
    end.

cache(_Kind, #{compiled := true} = Compiled) ->
    Compiled;
cache(Kind, Options) ->
    Compiled = compile(Kind, Options),
    _ = put(?CACHE(Kind), {Options, Compiled}),
    Compiled.

%% @doc Validates `Options' for the entry point `Kind' and fills in the defaults. Raises
%% `{badarg, Message}' naming the first unknown option or bad value.
-spec compile(Kind, Options) -> compiled() when Kind :: kind(), Options :: map() | list().
compile(Kind, Options) ->
    Map = beamprof_opts:to_map(Options),
    maps:foreach(fun(K, V) -> check(K, V, Options) end, Map),
    Merged0 = maps:merge(defaults(Kind), rate_alias(Map, Options)),
    Merged = Merged0#{output => flat(maps:get(output, Merged0))},
    Compiled = Merged#{kind => Kind, compiled => true, draw => draw(Merged),
                       format => format(Merged, Options)},
    check_strategy(Kind, Compiled, Options),
    check_threshold(Compiled, Options),
    check_output(Compiled, Options),
    maps:remove(sample_rate, Compiled).

%% @doc The environment the node runs in: the `beamprof' application's `env' (a term, or a
%% fun of arity 0 returning one), `undefined' when unset.
-spec current_env() -> term().
current_env() ->
    case application:get_env(beamprof, env) of
        {ok, Fun} when is_function(Fun, 0) -> Fun();
        {ok, Env} -> Env;
        undefined -> undefined
    end.

draw(#{enabled := false}) -> -1;
draw(#{rate := Rate}) -> round(Rate * ?FULL).

defaults(Kind) ->
    Base = #{strategy => sample, rate => 1.0, duration => 60000, interval => 10,
             threshold => undefined, env => all, enabled => true, async => false,
             emit_metrics => true, check_load => true, metadata => #{}, output => undefined,
             format => undefined},
    maps:merge(Base, kind_defaults(Kind)).

kind_defaults(profile) -> #{};
kind_defaults(profile_if_slow) -> #{threshold => 100};
kind_defaults(profile_production) -> #{rate => 0.001};
kind_defaults(profile_memory) -> #{strategy => memory};
kind_defaults(profile_calls) -> #{strategy => calls};
kind_defaults(flame_graph) -> #{strategy => flame_graph}.

%% `sample_rate' (profile_production's name) is `rate' under another name.
rate_alias(#{sample_rate := R, rate := _}, O) when is_number(R) ->
    beamprof_opts:bad(O, "Expected only one of rate and sample_rate");
rate_alias(#{sample_rate := R} = Map, _) -> Map#{rate => float(R)};
rate_alias(#{rate := R} = Map, _) -> Map#{rate => float(R)};
rate_alias(Map, _) -> Map.

%% Any chardata names a file: kept flat (a binary as it is, anything else a string).
flat(undefined) -> undefined;
flat(Path) ->
    {ok, Flat} = beamprof_file:path(Path),
    Flat.

format(#{format := F}, _) when F =/= undefined -> F;
format(#{output := undefined}, _) -> undefined;
format(#{output := Path}, Options) ->
    case beamprof_flame:format_of(Path) of
        {ok, Format} -> Format;
        error -> beamprof_opts:bad(Options, unknown_extension(Path))
    end.

%% @doc The message for an output whose extension names no format.
-spec unknown_extension(file:name_all()) -> string().
unknown_extension(Path) ->
    Exts = [E || {_, Es} <- beamprof_flame:extensions(), E <- Es],
    lists:flatten(io_lib:format("Expected output ~0tp to end in ~ts, or a format option",
                                [Path, lists:join(", ", Exts)])).

check(strategy, V, _) when V =:= sample; V =:= memory; V =:= flame_graph -> ok;
check(strategy, V, _) when V =:= calls; V =:= call_graph; V =:= fprof; V =:= eprof;
                           V =:= cprof -> ok;
check(K, V, _) when (K =:= rate orelse K =:= sample_rate), is_number(V), V >= 0, V =< 1 -> ok;
check(duration, infinity, _) -> ok;
check(duration, V, _) when is_integer(V), V >= 1 -> ok;
check(interval, V, _) when is_integer(V), V >= 1, V =< 60000 -> ok;
check(threshold, V, _) when is_integer(V), V >= 0 -> ok;
check(env, all, _) -> ok;
check(env, V, _) when is_list(V) -> ok;
check(K, V, _) when is_boolean(V), (K =:= enabled orelse K =:= async orelse
                                    K =:= emit_metrics orelse K =:= check_load) -> ok;
check(metadata, V, _) when is_map(V) -> ok;
check(output, V, _) ->
    case beamprof_file:path(V) of
        {ok, _} -> ok;
        error -> bad_option(output, V)
    end;
check(K, V, O) when K =/= format; not is_atom(V) ->
    known(K, V, O);
check(format, V, O) ->
    case lists:member(V, beamprof_flame:formats()) of
        true -> ok;
        false -> known(format, V, O)
    end.

-spec known(atom(), term(), term()) -> no_return().
known(K, V, O) ->
    case lists:member(K, keys()) of
        true -> bad_option(K, V);
        false -> beamprof_opts:unknown(K, keys(), O)
    end.

check_strategy(Kind, #{strategy := S}, O) ->
    Allowed = allowed(Kind),
    case lists:member(S, Allowed) of
        true -> ok;
        false -> beamprof_opts:bad(O, lists:flatten(io_lib:format(
                   "Expected option strategy of ~ts to be one of ~ts, got: ~0tp",
                   [Kind, lists:join(", ", [atom_to_list(A) || A <- Allowed]), S])))
    end.

allowed(profile) -> [sample, memory, flame_graph | ?TRACING];
allowed(profile_if_slow) -> [sample, flame_graph];
allowed(profile_production) -> [sample, memory, flame_graph];
allowed(profile_memory) -> [memory];
allowed(profile_calls) -> [calls, cprof, eprof, fprof, call_graph];
allowed(flame_graph) -> [flame_graph].

check_threshold(#{threshold := undefined}, _) -> ok;
check_threshold(#{strategy := S}, _) when S =:= sample; S =:= flame_graph; S =:= memory -> ok;
check_threshold(#{strategy := S}, O) ->
    beamprof_opts:bad(O, lists:flatten(io_lib:format("Option threshold applies to the sample, "
                                                     "flame_graph and memory strategies, not ~ts",
                                                     [S]))).

check_output(#{strategy := flame_graph, output := undefined}, O) ->
    beamprof_opts:bad(O, "Expected option output (a file name) for the flame_graph strategy");
check_output(_, _) -> ok.

-spec bad_option(atom(), term()) -> no_return().
bad_option(Key, Value) ->
    beamprof_opts:bad_value(Key, expectation(Key), Value, Value).

expectation(strategy) ->
    "one of sample, memory, calls, call_graph, fprof, eprof, cprof, flame_graph";
expectation(rate) -> "a number in 0.0..1.0";
expectation(sample_rate) -> "a number in 0.0..1.0";
expectation(duration) -> "a positive integer of milliseconds or infinity";
expectation(interval) -> "an integer of milliseconds in 1..60000";
expectation(threshold) -> "a non-negative integer (ms, or bytes for memory)";
expectation(env) -> "all or a list of environments";
expectation(metadata) -> "a map";
expectation(output) -> "a file name (string, binary or chardata)";
expectation(format) -> "one of " ++ beamprof_flame:formats_text();
expectation(_) -> "a boolean".
