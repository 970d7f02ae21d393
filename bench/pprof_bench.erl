%% pprof files of native profiles: the time beamprof_pprof:encode/1 takes
%% (address stacks to locations, functions, mappings; protobuf; gzip) and
%% the file's size, for profiles of N distinct address stacks, beside the
%% baseline of writing the same profile as folded text in the same run
%% (beamprof_flame:write(Profile, Path, folded)), both written to a file.
%% The profiles are built the way the collector builds them: samples
%% through beamprof_native_agg (depth 6..30, 2,000 addresses in beam.smp's
%% executable mapping over 400 function names), the mappings read from
%% /proc/self/maps. bench/run.sh pprof_bench
-module(pprof_bench).
-export([run/0, run/1, profile/1]).

run() ->
    run([1000, 10000, 100000]).

run(Sizes) ->
    Dir = string:trim(os:cmd("mktemp -d")),
    Rows = [row(N, Dir) || N <- Sizes],
    os:cmd("rm -rf " ++ Dir),
    bench_util:print_table(["stacks", "frames", "pprof ms", "pprof bytes", "folded ms",
                            "folded bytes", "pprof/folded time", "pprof/folded size"], Rows).

row(N, Dir) ->
    P = profile(N),
    Frames = lists:sum([length(S) || {S, _} <- maps:get(stacks, P)]),
    Pprof = filename:join(Dir, "p.pb.gz"),
    Folded = filename:join(Dir, "p.folded"),
    %% one warm-up each, then the median of 5
    {TP, SP} = timed(fun() -> {ok, _} = beamprof_flame:write(P, Pprof, pprof) end, Pprof),
    {TF, SF} = timed(fun() -> {ok, _} = beamprof_flame:write(P, Folded, folded) end, Folded),
    [integer_to_list(N), integer_to_list(Frames), ms(TP), integer_to_list(SP), ms(TF),
     integer_to_list(SF), bench_util:ratio(TP, TF), bench_util:ratio(SP, SF)].

timed(Fun, Path) ->
    _ = Fun(),
    Ts = [element(1, timer:tc(Fun)) || _ <- lists:seq(1, 5)],
    {bench_util:median(Ts), filelib:file_size(Path)}.

ms(Us) -> bench_util:fmt(Us / 1000).

%% A native profile of N distinct address stacks, as beamprof_native builds it.
profile(N) ->
    rand:seed(exsss, {1, 2, 3}),
    [#{start := Start} | _] = Maps = beamprof_pprof_native:read_maps(),
    Addrs = list_to_tuple([Start + 16#1000 + I * 64 || I <- lists:seq(1, 2000)]),
    Names = list_to_tuple([list_to_binary(io_lib:format("mod~B:fun~B/~B", [M, F, F rem 4]))
                           || M <- lists:seq(1, 40), F <- lists:seq(1, 10)]),
    Samples = [begin
                   Leaf = [element(1 + erlang:phash2(lists:sublist(Path, D), 2000), Addrs)
                           || D <- lists:seq(length(Path), 1, -1)],
                   Fs = [element(1 + (A div 64) rem 400, Names) || A <- Leaf],
                   {normal, 1, rand:uniform(5), false, Fs, Leaf}
               end || _ <- lists:seq(1, N),
                      Path <- [[rand:uniform(3) || _ <- lists:seq(1, 5 + rand:uniform(25))]]],
    Acc = beamprof_native_agg:add(Samples, beamprof_native_agg:new()),
    Data = beamprof_pprof_native:covering(Maps, lists:usort(tuple_to_list(Addrs))),
    Pprof = (beamprof_native_agg:pprof(Acc))#{kind => native, period_ns => 10101010,
                                              mappings => [M#{build_id => <<>>} || M <- Data],
                                              time_nanos => 0, duration_nanos => 1000000000},
    #{stacks => beamprof_native_agg:stacks(Acc), unit => samples, pprof => Pprof,
      title => <<"pprof_bench">>}.
