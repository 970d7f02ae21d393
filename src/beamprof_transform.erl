%% @doc Parse transform behind `include/beamprof.hrl': profiles the functions a module
%% names in `-beamprof_profile(...)' attributes, without touching their bodies.
%%
%% ```
%% -include_lib("beamprof/include/beamprof.hrl").
%% -beamprof_profile({compute_metrics, 1, #{strategy => sample, rate => 0.01}}).
%% -beamprof_profile({slow_query, 1, profile_if_slow, #{threshold => 1000}}).
%% -beamprof_profile({Name, Arity}).   % strategy sample, every call
%% '''
%%
%% For each, the function's clauses are kept as they are (lines, guards, patterns) under
%% the name `'__beamprof_profiled__Name'', and `Name/Arity' becomes a one-clause wrapper on
%% the first clause's line:
%% `Name(V1, ..., Vn) -> beamprof_profile:decorated(Module, Name, Arity, fun() ->
%% '__beamprof_profiled__Name'(V1, ..., Vn) end, Options)'. Exports and specs keep naming
%% `Name/Arity'. The options are validated while compiling (a bad option or a function
%% that is not defined is a compile error naming it) and embedded in their compiled form,
%% so a call pays no validation.
-module(beamprof_transform).

-export([parse_transform/2, format_error/1]).

-define(PREFIX, "__beamprof_profiled__").

%% @doc The transform: see the module documentation.
-spec parse_transform(Forms, Options) -> Forms | {error, list(), list()} when
      Forms :: [erl_parse:abstract_form() | erl_parse:form_info()], Options :: list().
parse_transform(Forms, _Options) ->
    File = file(Forms),
    Module = module(Forms),
    {Wanted, Errors} = wanted(Forms),
    Defined = [{F, A} || {function, _, F, A, _} <- Forms],
    Missing = [{Anno, {undefined_function, F, A}} || {F, A, _, Anno} <- Wanted,
                                                    not lists:member({F, A}, Defined)],
    case Errors ++ Missing of
        [] -> lists:flatmap(fun(Form) -> rewrite(Form, Module, Wanted) end, Forms);
        Bad -> {error, [{File, [{anno_line(Anno), ?MODULE, E} || {Anno, E} <- Bad]}], []}
    end.

%% @doc Messages of the compile errors this transform reports.
-spec format_error(term()) -> string().
format_error({undefined_function, F, A}) ->
    lists:flatten(io_lib:format("beamprof_profile: function ~tw/~B is not defined", [F, A]));
format_error({bad_options, F, A, Message}) ->
    lists:flatten(io_lib:format("beamprof_profile of ~tw/~B: ~ts", [F, A, Message]));
format_error({bad_attribute, Term}) ->
    lists:flatten(io_lib:format("beamprof_profile: expected {Name, Arity}, {Name, Arity, Options} "
                                "or {Name, Arity, Kind, Options}, got: ~0tp", [Term]));
format_error(Other) ->
    lists:flatten(io_lib:format("~tp", [Other])).

file(Forms) ->
    hd([F || {attribute, _, file, {F, _}} <- Forms] ++ ["nofile"]).

module(Forms) ->
    hd([M || {attribute, _, module, M} <- Forms]).

anno_line(Anno) -> erl_anno:line(Anno).

%% [{Name, Arity, CompiledOptions, Anno}] and [{Anno, Error}].
wanted(Forms) ->
    lists:foldr(fun({attribute, Anno, beamprof_profile, Term}, {Ok, Bad}) ->
                        case options(Term) of
                            {ok, F, A, C} -> {[{F, A, C, Anno} | Ok], Bad};
                            {error, E} -> {Ok, [{Anno, E} | Bad]}
                        end;
                   (_, Acc) -> Acc
                end, {[], []}, Forms).

options({F, A}) -> options({F, A, profile, #{}});
options({F, A, Opts}) -> options({F, A, profile, Opts});
options({F, A, Kind, Opts} = Term) when is_atom(F), is_integer(A), A >= 0, is_atom(Kind) ->
    try
        {ok, F, A, beamprof_profile_opts:compile(Kind, Opts)}
    catch
        error:{badarg, Message} -> {error, {bad_options, F, A, Message}};
        error:function_clause -> {error, {bad_attribute, Term}}
    end;
options(Term) ->
    {error, {bad_attribute, Term}}.

rewrite({function, Anno, F, A, Clauses} = Form, Module, Wanted) ->
    case lists:keyfind(F, 1, [W || {_, WA, _, _} = W <- Wanted, WA =:= A]) of
        false -> [Form];
        {F, A, Compiled, _} ->
            Inner = inner_name(F),
            [wrapper(Anno, Module, F, A, Inner, Compiled),
             {function, Anno, Inner, A, Clauses}]
    end;
rewrite(Form, _Module, _Wanted) ->
    [Form].

inner_name(F) ->
    list_to_atom(?PREFIX ++ atom_to_list(F)).

wrapper(Anno, Module, F, A, Inner, Compiled) ->
    Vars = [{var, Anno, list_to_atom("BeamprofArg" ++ integer_to_list(I))} || I <- lists:seq(1, A)],
    Body = {'fun', Anno, {clauses, [{clause, Anno, [], [], [{call, Anno, {atom, Anno, Inner}, Vars}]}]}},
    Call = {call, Anno, {remote, Anno, {atom, Anno, beamprof_profile}, {atom, Anno, decorated}},
            [{atom, Anno, Module}, {atom, Anno, F}, {integer, Anno, A}, Body,
             erl_parse:abstract(Compiled, [{location, Anno}])]},
    {function, Anno, F, A, [{clause, Anno, Vars, [], [Call]}]}.
