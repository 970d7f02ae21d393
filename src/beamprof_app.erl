%% @doc The beamprof application: loads the NIF library eagerly, reads the
%% configuration and starts the supervision tree.
-module(beamprof_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @private
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    %% Loading eagerly here, from one process: on OTP 25 a failing on_load
    %% raced by several processes can block them forever (erlang/otp#7466).
    case code:ensure_loaded(beamprof_nif) of
        {module, beamprof_nif} -> start_tree();
        {error, Reason} -> {error, {nif_not_loaded, Reason}}
    end.

start_tree() ->
    try beamprof_config:load() of
        #{event_prefix := Prefix} = Config ->
            _ = beamprof_events:ensure_telemetry(),
            ok = beamprof_events:set_prefix(Prefix),
            ok = beamprof_config:set_running(Config),
            start_recorder(Config)
    catch
        error:{badarg, Message} -> {error, {bad_config, Message}}
    end.

%% @private
%% The recording (option `recorder') is opened before the tree starts, so
%% its header precedes the first tick. A recording that cannot be opened
%% does not fail the start: beamprof runs without it and says so (a logged
%% warning and a `recorder_unavailable' warning in every sample, see
%% `beamprof_recorder:unavailable/2').
start_recorder(#{recorder := off} = Config) ->
    beamprof_sup:start_link(Config);
start_recorder(#{recorder := Options} = Config) ->
    case beamprof_recorder:start(Options) of
        ok ->
            case beamprof_sup:start_link(Config) of
                {ok, _} = Ok -> Ok;
                Error -> ok = beamprof_recorder:stop(), Error
            end;
        {error, Reason} ->
            ok = beamprof_recorder:unavailable(Options, Reason),
            beamprof_sup:start_link(Config)
    end.

%% The recording, however started, closes with the application (after the
%% tree, so the last records of its processes are in).
-spec stop(term()) -> ok.
%% No application environment write here: the application controller waits
%% for this callback, so a set_env or unset_env would wait 5 s for it (the
%% running configuration recorded at start is read only while beamprof runs).
stop(_State) ->
    ok = beamprof_recorder:available(),
    beamprof_recorder:stop().
