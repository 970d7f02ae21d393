%% @private
%% @doc Where the scan's pids come from, by release.
%%
%% <ul>
%% <li>`processes_iterator': OTP 28 and later, `erlang:processes_iterator/0'
%% and `erlang:processes_next/1' (API: a few pids per call, no list of every
%% process);</li>
%% <li>`ptab_walk': the NIF reads the VM's process table in slices
%% (c_src/bp_ptab.h), only on the ERTS versions whose layout a test verified
%% (`verified_erts/0') and only while `beamprof_config:vm_internals/0' is
%% `true';</li>
%% <li>`processes': `erlang:processes()' otherwise, with a warning saying
%% why (`enumeration_fallback' or `vm_internals_off').</li>
%% </ul>
-module(beamprof_enum).

-export([choose/0, choose/1, verified_erts/0, iterator_compiled/0, table_not_found/0,
         describe/1]).
-export_type([source/0, facts/0]).

-type source() :: ptab_walk | processes_iterator | processes.
-type facts() :: #{erts := string(), iterator := boolean(), vm_internals := boolean()}.
%% `erts': `erlang:system_info(version)'; `iterator': whether
%% `erlang:processes_iterator/0' can be called (exported, and this module's
%% caller compiled with it, see `iterator_compiled/0'); `vm_internals':
%% `beamprof_config:vm_internals/0'.

%% @doc The ERTS versions (prefixes of `erlang:system_info(version)') whose
%% process table layout beamprof_scan_SUITE verified (the walk finds every
%% process, and only processes): ERTS 13 (OTP 25) and ERTS 15 (OTP 27). The
%% only place that says where the walk may run. OTP 26's ERTS 14 has the
%% layout of 15 as far as is known, but no test ran there.
-spec verified_erts() -> [string(), ...].
verified_erts() ->
    ["13.", "15."].

%% @doc Whether beamprof was compiled on OTP 28 or later, with the calls to
%% the iterator (in `beamprof_scan_walk', under the same condition): a beam
%% file compiled on an older release has none, whatever release runs it.
-spec iterator_compiled() -> boolean().
-if(?OTP_RELEASE >= 28).
iterator_compiled() -> true.
-else.
iterator_compiled() -> false.
-endif.

%% @doc The source for the running VM, with the warnings that explain a
%% fallback.
-spec choose() -> {source(), [beamprof_warnings:warning()]}.
choose() ->
    choose(#{erts => erlang:system_info(version),
             iterator => iterator_compiled()
                 andalso erlang:function_exported(erlang, processes_iterator, 0),
             vm_internals => beamprof_config:vm_internals()}).

%% @doc The source for the facts given. Pure.
-spec choose(facts()) -> {source(), [beamprof_warnings:warning()]}.
choose(#{iterator := true}) ->
    {processes_iterator, []};
choose(#{vm_internals := false}) ->
    {processes, [beamprof_warnings:new(vm_internals_off,
                                       "process table walk off (vm_internals = false); "
                                       "using erlang:processes()")]};
choose(#{erts := Erts}) ->
    case lists:any(fun(Prefix) -> lists:prefix(Prefix, Erts) end, verified_erts()) of
        true -> {ptab_walk, []};
        false -> {processes, [fallback("process table layout not verified on ERTS ~ts", Erts)]}
    end.

%% @doc The warning when the walk was chosen but the NIF did not find the
%% table (or its check of the caller's own pid failed).
-spec table_not_found() -> beamprof_warnings:warning().
table_not_found() ->
    fallback("process table not found on ERTS ~ts", erlang:system_info(version)).

fallback(Format, Erts) ->
    beamprof_warnings:new(enumeration_fallback,
                          [io_lib:format(Format, [Erts]), "; using erlang:processes()"]).

%% @doc How a person reads the source.
-spec describe(source()) -> string().
describe(ptab_walk) -> "process table walk";
describe(processes_iterator) -> "erlang:processes_iterator()";
describe(processes) -> "erlang:processes()".
