%% @doc The application's supervisor: the handler table, the gate owner and
%% the VM sampler, each restarted on its own (and the continuous profiler
%% when the `continuous' option is set).
-module(beamprof_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

%% @private
-spec init(beamprof_config:config()) ->
          {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config) ->
    Children = [#{id => beamprof_handlers, start => {beamprof_handlers, start_link, []}},
                #{id => beamprof_gate, start => {beamprof_gate, start_link, [Config]}},
                #{id => beamprof_sampler, start => {beamprof_sampler, start_link, [Config]}},
                #{id => beamprof_monitor, start => {beamprof_monitor, start_link, [Config]}},
                #{id => beamprof_scan_server,
                  start => {beamprof_scan_server, start_link, [Config]}}]
        ++ continuous(Config),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10}, Children}}.

%% The continuous profiler when the `continuous' option asks for it: last,
%% so that the gate runs before its sampler starts.
continuous(#{continuous := off}) -> [];
continuous(#{continuous := Options}) ->
    [beamprof_continuous:child_spec(beamprof_continuous_opts:parse(Options), option)];
continuous(_) -> [].
