%% @private
%% @doc How beamprof names a local process (its registered name, its label,
%% its initial call and its current function) and a local port (its name and
%% owner).
%%
%% The label is what the process set with `proc_lib:set_label/1' (OTP 27+),
%% any term; `undefined' when it set none, and always on OTP 25 and 26, which
%% have no labels. It is asked in the same `process_info/2' call as the other
%% names: the `label' item on OTP 27.2+, the `{dictionary, '$process_label'}'
%% item on 27.0 and 27.1. Which one is found out once and kept in
%% `persistent_term' (a new key: no global collection).
%%
%% The initial call is proc_lib's `'$initial_call'' when the process was
%% started through proc_lib (`init_p/5' for gen_* and `proc_lib:start*',
%% `init_p/3' for `proc_lib:spawn*(Fun)'): the dictionary is asked only
%% then (OTP 25 has no single-key dictionary item, so the whole dictionary
%% is copied, for that one process).
-module(beamprof_names).

-export([process/1, from_info/2, port/1, label_items/0]).
-export_type([names/0, port_names/0]).

-type names() :: #{name := atom() | undefined, label := term(),
                   initial_call := mfa() | undefined,
                   current_function := mfa() | undefined}.

-define(LABEL_ITEMS, {?MODULE, label_items}).

-type port_names() :: #{name := string() | undefined, owner := pid() | undefined}.

%% @doc The name (as `erlang:port_info/2' gives it) and the owner of the
%% local port `Port'; `undefined' once it is closed.
-spec port(port()) -> port_names().
port(Port) ->
    #{name => case erlang:port_info(Port, name) of {name, N} -> N; undefined -> undefined end,
      owner => case erlang:port_info(Port, connected) of
                   {connected, O} -> O;
                   undefined -> undefined
               end}.

%% @doc The names of the local process `Pid', from one `process_info/2' of
%% three or four items; all `undefined' when it is gone.
-spec process(pid()) -> names().
process(Pid) ->
    case erlang:process_info(Pid, [registered_name, initial_call, current_function
                                   | label_items()]) of
        undefined -> #{name => undefined, label => undefined, initial_call => undefined,
                       current_function => undefined};
        Info -> from_info(Pid, Info)
    end.

%% @doc The names of `Pid' from a `process_info/2' answer that holds (at
%% least) `registered_name', `initial_call', `current_function' and the items
%% of `label_items/0'.
-spec from_info(pid(), [{term(), term()}]) -> names().
from_info(Pid, Info) ->
    #{name => case proplists:get_value(registered_name, Info) of
                  Name when is_atom(Name), Name =/= [] -> Name;
                  _ -> undefined
              end,
      label => label(Info),
      initial_call => initial_call(Pid, proplists:get_value(initial_call, Info)),
      current_function => mfa(proplists:get_value(current_function, Info))}.

%% @doc The `process_info/2' items that ask for a process's label on this VM:
%% `[label]' (OTP 27.2+), `[{dictionary, '$process_label'}]' (27.0, 27.1) or
%% `[]' (no labels before OTP 27).
-spec label_items() -> [term()].
label_items() ->
    case persistent_term:get(?LABEL_ITEMS, unknown) of
        unknown ->
            Items = find_label_items(),
            persistent_term:put(?LABEL_ITEMS, Items),
            Items;
        Items ->
            Items
    end.

find_label_items() ->
    {module, proc_lib} = code:ensure_loaded(proc_lib),
    case erlang:function_exported(proc_lib, set_label, 1) of
        false -> [];
        true ->
            case erts_version() >= [15, 2] of
                true -> [label];
                false -> [{dictionary, '$process_label'}]
            end
    end.

%% ERTS 15.2 is OTP 27.2's.
erts_version() ->
    [case string:to_integer(Part) of {N, _} when is_integer(N) -> N; _ -> 0 end
     || Part <- string:lexemes(erlang:system_info(version), ".")].

label(Info) ->
    case [L || {Item, L} <- Info, Item =:= label orelse Item =:= {dictionary, '$process_label'}] of
        [Label | _] -> Label;
        [] -> undefined
    end.

initial_call(Pid, {proc_lib, init_p, Arity} = Call) when Arity =:= 3; Arity =:= 5 ->
    case erlang:process_info(Pid, dictionary) of
        {dictionary, Dict} ->
            case lists:keyfind('$initial_call', 1, Dict) of
                {_, {M, F, A} = MFA} when is_atom(M), is_atom(F), is_integer(A) -> MFA;
                _ -> Call
            end;
        undefined -> Call
    end;
initial_call(_Pid, Call) -> mfa(Call).

mfa({M, F, A} = MFA) when is_atom(M), is_atom(F), is_integer(A) -> MFA;
mfa(_) -> undefined.
