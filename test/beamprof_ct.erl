%% Helpers the Common Test suites share: waiting on a condition with a
%% deadline, collecting emitted events, starting a peer VM on this node's
%% code path, a 1 ms pinger and idle processes by the thousand, the native
%% sampler library for the suites that need it, this node distributed and
%% peers over distribution (bench/scan_bench.erl uses the pinger and the idle
%% processes too, bench/cluster_bench.erl the distribution). Compiled with the suites (test/ is an extra_src_dir of
%% rebar3's test profile).
-module(beamprof_ct).

-export([wait_until/2, wait_events/2, detach_all/0, start_peer/1, quickcheck/2, hold_binary/1,
         start_pinger/0, stop_pinger/1, spawn_idle/1, labels/0, set_label/1,
         native_suite/1, beam_smp/0, beam_exports/1, port_output/1,
         forget_kept/0, start_table/0, distribute/1, start_dist_peer/2]).

%% @doc What a port opened with `exit_status', `binary' and `stream' writes
%% until it exits: `{ExitStatus, Output}'. Fails the case after 60 s.
-spec port_output(port()) -> {non_neg_integer(), binary()}.
port_output(Port) ->
    port_output(Port, []).

port_output(Port, Acc) ->
    receive
        {Port, {data, D}} -> port_output(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 60000 -> ct:fail(port_timeout)
    end.

%% @doc For init_per_suite of a suite of the native sampler: loads its
%% library and returns `Config'. Where the library cannot exist (a VM that
%% is not x86_64) the suite is skipped with the reason the library gives;
%% on x86_64 its absence fails the suite (a build that lost it is a bug).
-spec native_suite(list()) -> list() | {skip, string()}.
native_suite(Config) ->
    case {beamprof_native_nif:load(), erlang:system_info(system_architecture)} of
        {ok, _} -> Config;
        {{error, Reason}, "x86_64" ++ _} -> ct:fail({native_library, Reason});
        {{error, Reason}, Arch} -> {skip, lists:flatten(io_lib:format("~s: ~p", [Arch, Reason]))}
    end.

%% @doc Polls `Fun' every 10 ms until it returns `true'; fails the test case
%% with `{timeout, Timeout}' when it has not after `Timeout' milliseconds.
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok.
wait_until(Fun, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until(Fun, Deadline, Timeout).

wait_until(Fun, Deadline, Timeout) ->
    case Fun() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ct:fail({timeout, Timeout});
                false -> receive after 10 -> wait_until(Fun, Deadline, Timeout) end
            end
    end.

%% @doc Attaches to `Event', waits for `N' emissions (10 s for each at most,
%% else fails with `{no_event, Event}'), detaches, and returns them as
%% `{Event, Measurements, Metadata}', newest first.
-spec wait_events([atom(), ...], pos_integer()) -> [{[atom()], map(), map()}].
wait_events(Event, N) ->
    Ref = make_ref(),
    Self = self(),
    ok = beamprof:attach(Ref, Event, fun(E, M, Meta, _) -> Self ! {Ref, {E, M, Meta}} end, nil),
    try
        lists:foldl(fun(_, Acc) ->
                            receive {Ref, Ev} -> [Ev | Acc]
                            after 10000 -> ct:fail({no_event, Event})
                            end
                    end, [], lists:seq(1, N))
    after
        beamprof:detach(Ref)
    end.

%% @doc Detaches every handler, attached or kept (handlers outlive
%% `beamprof:stop()'): for `end_per_testcase', so that each case starts with
%% none.
-spec detach_all() -> ok.
detach_all() ->
    lists:foreach(fun(#{id := Id}) -> _ = beamprof:detach(Id) end, beamprof:list_handlers([])).

%% @doc `peer:start_link/1' over standard_io with this node's code path
%% (`-pa') ahead of the `args' in `Opts'; other keys of `Opts' are passed on.
-spec start_peer(peer:start_options()) -> {ok, pid(), node()}.
start_peer(Opts) ->
    Args = ["-pa" | code:get_path()] ++ maps:get(args, Opts, []),
    {ok, Peer, Node} = peer:start_link(Opts#{connection => standard_io, args => Args}),
    {ok, Peer, Node}.

%% @doc Makes this node distributed with a short name `Prefix_OsPid@Host' (Host
%% the machine's host name when it resolves, else `localhost': a chroot, like
%% the OTP roots of the matrix, may have a host name its /etc/hosts does not
%% know, and peers connect to a short name's host). `erl -sname' starts epmd
%% itself and net_kernel:start/2 does not, so it is started here as erl would
%% (a daemon, left running as erl leaves it). `{ok, true}' when this call made
%% the node distributed (stop it with net_kernel:stop/0), `{ok, false}' when
%% it was, `{skip, Reason}' when it cannot be.
-spec distribute(string()) -> {ok, boolean()} | {skip, string()}.
distribute(Prefix) ->
    case {is_alive(), os:find_executable("epmd")} of
        {true, _} -> {ok, false};
        {false, false} -> {skip, "no epmd executable: peers need distribution"};
        {false, Epmd} ->
            _ = os:cmd(Epmd ++ " -daemon"),
            start_dist(list_to_atom(Prefix ++ "_" ++ os:getpid() ++ "@" ++ host()), 50)
    end.

start_dist(_Name, 0) ->
    {skip, "net_kernel:start/2 failed: no epmd answering or no resolvable host name"};
start_dist(Name, Tries) ->
    case net_kernel:start(Name, #{name_domain => shortnames}) of
        {ok, _} -> {ok, true};
        {error, _} -> receive after 100 -> start_dist(Name, Tries - 1) end
    end.

host() ->
    {ok, Name} = inet:gethostname(),
    case inet:gethostbyname(Name) of
        {ok, _} -> Name;
        {error, _} -> "localhost"
    end.

%% @doc `peer:start_link/1' of a node named `Prefix-N-OsPid' on this
%% (distributed) node's host, connected over distribution, with `Args'.
-spec start_dist_peer(string(), [string()]) -> {ok, pid(), node()}.
start_dist_peer(Prefix, Args) ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    peer:start_link(#{name => peer:random_name(Prefix), host => Host, args => Args}).

%% @doc Runs the PropEr property `Prop' `N' times; fails the test case with
%% `{counterexample, CounterExample}' when it does not hold.
-spec quickcheck(term(), pos_integer()) -> ok.
quickcheck(Prop, N) ->
    Opts = [{numtests, N}, {to_file, user}, long_result],
    case proper:quickcheck(Prop, Opts) of
        true -> ok;
        CounterExample -> ct:fail({counterexample, CounterExample})
    end.

%% @doc Spawns a process holding a binary of `Bytes' (off the process heap:
%% it counts in the node's memory) until it is sent `stop'; returns once the
%% binary is made.
-spec hold_binary(pos_integer()) -> pid().
hold_binary(Bytes) ->
    Self = self(),
    Holder = spawn(fun() -> Bin = binary:copy(<<1>>, Bytes), Self ! {held, self()},
                            receive stop -> byte_size(Bin) end end),
    receive {held, Holder} -> Holder end.

%% @doc Starts a process due every millisecond (an absolute timer for the
%% next millisecond of the monotonic clock: `receive after 1' rounds up to
%% the next tick and sleeps about 2 ms on an idle node).
-spec start_pinger() -> pid().
start_pinger() ->
    spawn(fun() -> ping(erlang:monotonic_time(microsecond),
                       #{max_us => 0, count => 0, over_2ms => 0, long => []}) end).

%% @doc Stops the pinger; returns its worst gap between two wakes and how
%% many gaps it saw and how many of them were over 2 ms, in microseconds: a
%% gap is 1000 when nothing delayed the pinger. `long' lists the gaps over
%% 1.5 ms (at most 10000) as `{EndUs, GapUs}' on the monotonic clock, newest
%% first. The machines here take the CPU away from a guest for milliseconds
%% at a time: a real-time thread waking every millisecond sees gaps of 5-9 ms
%% (bench/host_pinger.c), so a tight bound on this gap is a bench figure.
-spec stop_pinger(pid()) -> #{max_us := non_neg_integer(), count := non_neg_integer(),
                              over_2ms := non_neg_integer(),
                              long := [{integer(), pos_integer()}]}.
stop_pinger(Pinger) ->
    Pinger ! {stop, self()},
    receive {gaps, Gaps} -> Gaps end.

ping(Last, #{max_us := Max, count := N, over_2ms := Over, long := Long} = Gaps) ->
    Ref = erlang:start_timer(erlang:monotonic_time(millisecond) + 1, self(), tick, [{abs, true}]),
    receive
        {stop, From} ->
            _ = erlang:cancel_timer(Ref),
            From ! {gaps, Gaps};
        {timeout, Ref, tick} ->
            Now = erlang:monotonic_time(microsecond),
            Gap = Now - Last,
            Long1 = case Gap > 1500 andalso length(Long) < 10000 of
                        true -> [{Now, Gap} | Long];
                        false -> Long
                    end,
            ping(Now, Gaps#{max_us := max(Max, Gap), count := N + 1,
                            over_2ms := Over + min(1, Gap div 2001), long := Long1})
    end.

%% @doc Spawns `N' processes that wait for a message that never comes (their
%% parent, which holds them, waits too); returns when all exist.
-spec spawn_idle(non_neg_integer()) -> ok.
spawn_idle(N) ->
    Parent = self(),
    spawn(fun() ->
                  [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
                  Parent ! spawned,
                  receive stop -> ok end
          end),
    receive spawned -> ok end.

%% @doc Whether this VM has process labels (`proc_lib:set_label/1', OTP 27+).
-spec labels() -> boolean().
labels() ->
    {module, proc_lib} = code:ensure_loaded(proc_lib),
    erlang:function_exported(proc_lib, set_label, 1).

%% @doc Labels the calling process where the VM has labels; nothing on OTP 25
%% and 26.
-spec set_label(term()) -> ok.
set_label(Label) ->
    case labels() of
        true -> proc_lib:set_label(Label);
        false -> ok
    end.

%% @doc The path of this VM's beam.smp.
-spec beam_smp() -> file:filename().
beam_smp() ->
    filename:join([code:root_dir(), "erts-" ++ erlang:system_info(version), "bin", "beam.smp"]).

%% @doc Whether beam.smp exports a dynamic symbol named Name, or a C++ one
%% whose mangled name holds it (OTP 29's exports only the NIF and driver
%% APIs: no erts_frame_layout, no __jit_debug_descriptor, none of its
%% internal functions).
-spec beam_exports(string()) -> boolean().
beam_exports(Name) ->
    Mangled = integer_to_list(length(Name)) ++ Name,
    lists:any(fun(S) -> S =:= Name orelse string:find(S, Mangled) =/= nomatch end,
              [lists:last(string:lexemes(L, " "))
               || L <- string:split(os:cmd("nm -D --defined-only " ++ beam_smp()), "\n", all),
                  L =/= ""]).

%% @doc Forgets the handlers beamprof keeps in its application environment
%% beyond the handler table's life (attached before start or across stops).
-spec forget_kept() -> ok.
forget_kept() ->
    application:unset_env(beamprof, '$handlers').

%% @doc Starts the handler table alone, not linked to the caller.
-spec start_table() -> pid().
start_table() ->
    {ok, Pid} = beamprof_handlers:start_link(),
    unlink(Pid),
    Pid.
