%% @private
%% @doc What call_time and call_count breakpoints counted, turned into the
%% results of the `calls', `eprof' and `cprof' strategies, whichever way the
%% breakpoints were set (global tracing, or a trace session of our own on
%% OTP 27+): the caller passes the function that reads one entry.
-module(beamprof_profile_counts).

-export([call_time/4, call_count/2, own/1]).

-define(TOP, 100).

%% @doc The result of `calls' or `eprof' for `Pid': `Info(MFA)' answers as
%% `erlang:trace_info(MFA, call_time)' does; `Own' says how many calls of a
%% function are beamprof's own (the call that turns tracing off is seen on its
%% way in), taken off that function's count.
-spec call_time(Strategy, Pid, Info, Own) -> map() when
      Strategy :: calls | eprof, Pid :: pid(), Info :: fun((mfa()) -> term()),
      Own :: #{mfa() => pos_integer()}.
call_time(Strategy, Pid, Info, Own) ->
    Rows = [{MFA, N - maps:get(MFA, Own, 0), S * 1000000 + Us}
            || MFA <- functions(),
               {P, N, S, Us} <- entries(Info(MFA)),
               P =:= Pid, N > maps:get(MFA, Own, 0)],
    Total = lists:sum([N || {_, N, _} <- Rows]),
    case Strategy of
        calls ->
            Sorted = lists:reverse(lists:keysort(2, Rows)),
            #{calls => Total,
              functions => [{MFA, N} || {MFA, N, _} <- lists:sublist(Sorted, ?TOP)]};
        eprof ->
            Sorted = lists:reverse(lists:keysort(3, Rows)),
            #{calls => Total, time_us => lists:sum([T || {_, _, T} <- Rows]),
              functions => lists:sublist(Sorted, ?TOP)}
    end.

%% @doc The result of `cprof': `Info(MFA)' answers as
%% `erlang:trace_info(MFA, call_count)' does; `Own' as for `call_time/4'. Every
%% process's calls count.
-spec call_count(Info, Own) -> map() when
      Info :: fun((mfa()) -> term()), Own :: #{mfa() => pos_integer()}.
call_count(Info, Own) ->
    Rows = [{MFA, N - maps:get(MFA, Own, 0)}
            || MFA <- functions(), {call_count, N} <- [Info(MFA)],
               is_integer(N), N > maps:get(MFA, Own, 0)],
    Sorted = lists:reverse(lists:keysort(2, Rows)),
    #{calls => lists:sum([N || {_, N} <- Rows]), functions => lists:sublist(Sorted, ?TOP)}.

%% @doc Whether `MFA' is beamprof's profiling machinery or the OTP tool it
%% drives (fprof, cprof, or the `trace' module on OTP 27+): left out of results.
-spec own(term()) -> boolean().
own({M, _, _}) -> own_module(M);
own(_) -> false.

own_module(M) ->
    lists:member(M, [beamprof_profile, beamprof_profile_trace, beamprof_profile_session,
                     beamprof_profile_counts, beamprof_profile_opts, fprof, cprof, trace]).

%% Every function of every loaded module but ours.
functions() ->
    [{M, F, A} || {M, _} <- code:all_loaded(), not own_module(M),
                  {F, A} <- erlang:get_module_info(M, functions)].

entries({call_time, L}) when is_list(L) -> L;
entries(_) -> [].
