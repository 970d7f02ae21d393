%% @private
%% @doc How beamprof names a local process (its registered name, its initial
%% call and its current function) and a local port (its name and owner).
%%
%% The initial call is proc_lib's `'$initial_call'' when the process was
%% started through proc_lib (`init_p/5' for gen_* and `proc_lib:start*',
%% `init_p/3' for `proc_lib:spawn*(Fun)'): the dictionary is asked only
%% then (OTP 25 has no single-key dictionary item, so the whole dictionary
%% is copied, for that one process).
-module(beamprof_names).

-include("beamprof_doc.hrl").
?MODULEDOC("The names of a process (registered name, initial call, current function) and a port.").

-export([process/1, from_info/2, port/1]).
-export_type([names/0, port_names/0]).

-type names() :: #{name := atom() | undefined, initial_call := mfa() | undefined,
                   current_function := mfa() | undefined}.

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
%% three items; all `undefined' when it is gone.
-spec process(pid()) -> names().
process(Pid) ->
    case erlang:process_info(Pid, [registered_name, initial_call, current_function]) of
        undefined -> #{name => undefined, initial_call => undefined,
                       current_function => undefined};
        Info -> from_info(Pid, Info)
    end.

%% @doc The names of `Pid' from a `process_info/2' answer that holds (at
%% least) `registered_name', `initial_call' and `current_function'.
-spec from_info(pid(), [{atom(), term()}]) -> names().
from_info(Pid, Info) ->
    #{name => case proplists:get_value(registered_name, Info) of
                  Name when is_atom(Name), Name =/= [] -> Name;
                  _ -> undefined
              end,
      initial_call => initial_call(Pid, proplists:get_value(initial_call, Info)),
      current_function => mfa(proplists:get_value(current_function, Info))}.

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
