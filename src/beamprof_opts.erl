%% @doc Helpers for validating options, shared by `beamprof_config' (the
%% application's options) and `beamprof_profile_opts' (the profiling API's):
%% a map or `{Key, Value}' list to a map, and the `{badarg, Message}' errors
%% naming an unknown option or a bad value.
-module(beamprof_opts).

-export([is_pairs/1, to_map/1, unknown/3, bad_value/4, bad/2]).

%% @doc Whether `List' is a list of `{Key, Value}' pairs.
-spec is_pairs(list()) -> boolean().
is_pairs(List) ->
    lists:all(fun(O) -> is_tuple(O) andalso tuple_size(O) =:= 2 end, List).

%% @doc `Options' as a map: a map as it is, a `{Key, Value}' list through
%% `maps:from_list/1'; raises `{badarg, Message}' for anything else.
-spec to_map(term()) -> map().
to_map(Options) when is_map(Options) ->
    Options;
to_map(Options) when is_list(Options) ->
    case is_pairs(Options) of
        true -> maps:from_list(Options);
        false -> not_options(Options)
    end;
to_map(Options) ->
    not_options(Options).

-spec not_options(term()) -> no_return().
not_options(Options) ->
    bad(Options, lists:flatten(io_lib:format("Expected options to be a map or a list of "
                                             "{Key, Value} pairs, got: ~0tP", [Options, 8]))).

%% @doc Raises `{badarg, "Unknown option Key; known options: ..."}' listing
%% `Known' in the order given; `Args' is the argument list shown.
-spec unknown(term(), [atom()], term()) -> no_return().
unknown(Key, Known, Args) ->
    bad(Args, lists:flatten(io_lib:format("Unknown option ~0tp; known options: ~ts",
                                          [Key, lists:join(", ", [atom_to_list(K) || K <- Known])]))).

%% @doc Raises `{badarg, "Expected option Key to be Expectation, got: Value"}'.
-spec bad_value(atom(), string(), term(), term()) -> no_return().
bad_value(Key, Expectation, Value, Args) ->
    bad(Args, lists:flatten(io_lib:format("Expected option ~ts to be ~ts, got: ~0tp",
                                          [Key, Expectation, Value]))).

%% @doc Raises `{badarg, Message}' with `[Args]' as the arguments.
-spec bad(term(), string()) -> no_return().
bad(Args, Message) ->
    erlang:error({badarg, Message}, [Args]).
