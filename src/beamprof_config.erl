%% @doc Options of the beamprof application: defaults, validation and where
%% they come from (application environment, then the options given to
%% `beamprof:start/1').
%%
%% Every option is checked by name and type; an unknown or ill-typed option
%% is refused with `erlang:error({badarg, Message}, [Options])', where the
%% message names the option. Keys are never turned into atoms.
-module(beamprof_config).

-export([defaults/0, validate/1, load/0, set_start_options/1, clear_start_options/0,
         check_start/2, env_config/0, differences/2, set_running/1, running/0,
         nif_config/1, vm_internals/0]).

-export_type([config/0, options/0, differences/0]).

-type config() :: #{interval := pos_integer(),
                    tick := pos_integer(),
                    scheduler_high := float(),
                    scheduler_low := float(),
                    memory_high := float(),
                    memory_low := float(),
                    reopen_ticks := pos_integer(),
                    memory_limit := auto | pos_integer(),
                    event_prefix := [atom(), ...],
                    vm_events := boolean(),
                    system_monitor := false | beamprof_monitor:options() | map() | list(),
                    %% process and port scan (beamprof_scan_server)
                    scan_interval := pos_integer() | off,
                    scan_budget := float(),
                    scan_skip_queue := pos_integer(),
                    long_message_queue := pos_integer(),
                    large_memory := pos_integer(),
                    busy_port_queue := pos_integer(),
                    vm_internals := boolean(),
                    heartbeat := pos_integer(),
                    test_hide_threads := boolean(),
                    test_window_enomem := boolean(),
                    recorder := off | beamprof_recorder:options(),
                    continuous := off | beamprof_continuous:options()}.
%% A complete, validated configuration. `vm_internals' (default `true'):
%% `false' turns off every read of the VM's internal structures (see
%% `vm_internals/0'). `heartbeat' (ms, default 1000): the C sampler thread
%% asks the Erlang side for `scheduler_wall_time' utilization at least this
%% often even when its own demand figure reads 0 (a scheduler blocked in the
%% kernel is busy for the VM, idle for the OS).
%% `recorder' (default `off'): `#{file => Path, size => Bytes}' writes the
%% flight recorder's recording from the application's start to its stop
%% (`beamprof_recorder').
%% `continuous' (default `off'): `#{hz, period, sink}' keeps the native
%% sampler on and hands a profile to the sinks every period
%% (`beamprof_continuous'). `test_hide_threads' and
%% `test_window_enomem' (default `false') are for tests only: the first makes
%% the C thread act as if it found no scheduler thread (the blind gate,
%% `gate_blind'); the second makes the periodic scan act as if its reductions
%% window could not be allocated (`scan_window_unavailable').

-type options() :: #{atom() => term()} | [{atom(), term()}].
%% What a caller may pass: any subset of {@link config()}.

-type differences() :: #{atom() => #{running := term(), asked := term()}}.
%% What `beamprof:start/1' answers in `{error, {already_started, Differences}}':
%% each option asked for whose value differs from the running one, e.g.
%% `#{tick => #{running => 100, asked => 50}}'. `system_monitor' and
%% `continuous' are compared (and shown) complete, their defaults filled in.

-define(APP, beamprof).
-define(START_KEY, '$start_options').
-define(RUNNING_KEY, '$running_config').

%% @doc The defaults: sample every second, tick the C sampler every 100 ms,
%% close the gate above 80% scheduler or 90% memory use.
-spec defaults() -> config().
defaults() ->
    #{interval => 1000,
      tick => 100,
      scheduler_high => 0.80,
      scheduler_low => 0.60,
      memory_high => 0.90,
      memory_low => 0.85,
      reopen_ticks => 3,
      memory_limit => auto,
      event_prefix => [beamprof],
      vm_events => true,
      system_monitor => beamprof_monitor:defaults(),
      %% process and port scan (beamprof_scan_server)
      scan_interval => 10000,
      scan_budget => 0.01,
      scan_skip_queue => 10000,
      long_message_queue => 10000,
      large_memory => 100 * 1024 * 1024,
      busy_port_queue => 8192,
      vm_internals => true,
      heartbeat => 1000,
      test_hide_threads => false,
      test_window_enomem => false,
      recorder => off,
      continuous => off}.

%% @doc Validates `Options' over the defaults; raises `{badarg, Message}'
%% naming the first bad option.
-spec validate(Options) -> config() when Options :: options().
validate(Options) ->
    validate(defaults(), Options).

%% Each option of Options checked and put over Base, then the marks checked
%% on the result; the error shows Options as the argument.
validate(Base, Options) ->
    Map = beamprof_opts:to_map(Options),
    Config = maps:fold(fun(Key, Value, Acc) -> check(Key, Value, Options), Acc#{Key => Value} end,
                       Base, Map),
    check_marks(Config, scheduler_low, scheduler_high, Options),
    check_marks(Config, memory_low, memory_high, Options),
    Config.

%% @doc Validates the options of `beamprof:start/1' over `Base' (the
%% running configuration, or the application environment's before a start)
%% and returns them as a map: only the options given. Raises `{badarg,
%% Message}' naming the first bad option.
-spec check_start(Base, Options) -> #{atom() => term()} when
      Base :: config(), Options :: options().
check_start(Base, Options) ->
    _ = validate(Base, Options),
    beamprof_opts:to_map(Options).

%% @doc The options of `Asked' (validated, see `check_start/2') whose values
%% differ from `Running'; `#{}' when every one matches. Options not asked for
%% are no difference.
-spec differences(Asked, Running) -> differences() when
      Asked :: #{atom() => term()}, Running :: config().
differences(Asked, Running) ->
    maps:fold(fun(Key, Value, Acc) ->
                      R = comparable(Key, maps:get(Key, Running)),
                      case comparable(Key, Value) of
                          R -> Acc;
                          A -> Acc#{Key => #{running => R, asked => A}}
                      end
              end, #{}, Asked).

comparable(system_monitor, Value) -> beamprof_monitor:options(Value);
comparable(continuous, off) -> off;
comparable(continuous, Value) -> beamprof_continuous_opts:parse(Value);
comparable(_Key, Value) -> Value.

%% @doc Records the configuration the application runs with; called by its
%% start (each start replaces it), read by `running/0' while it runs.
-spec set_running(config()) -> ok.
set_running(Config) ->
    application:set_env(?APP, ?RUNNING_KEY, Config).

%% @doc The configuration the application started with, or `undefined'
%% when it is not running.
-spec running() -> config() | undefined.
running() ->
    case lists:keymember(?APP, 1, application:which_applications()) of
        true -> application:get_env(?APP, ?RUNNING_KEY, load());
        false -> undefined
    end.

%% @doc The configuration in force: defaults, overridden by the application
%% environment, overridden by the options of the last `beamprof:start/1'.
-spec load() -> config().
load() ->
    Start = application:get_env(?APP, ?START_KEY, #{}),
    validate(maps:merge(env(), Start)).

%% @doc The configuration the application environment gives (the defaults
%% where it is silent), for `check_start/2' before a start; its own values
%% are checked when the application starts.
-spec env_config() -> config().
env_config() ->
    maps:merge(defaults(), env()).

env() ->
    ok = ensure_loaded(),
    maps:with(maps:keys(defaults()), maps:from_list(application:get_all_env(?APP))).

%% @doc Stores start options (checked with `check_start/2') so that the
%% application's start picks them up; they last until the next
%% `beamprof:start/0,1'.
-spec set_start_options(options()) -> ok.
set_start_options(Options) ->
    application:set_env(?APP, ?START_KEY, beamprof_opts:to_map(Options)).

%% @doc Forgets the options of an earlier `beamprof:start/1'.
-spec clear_start_options() -> ok.
clear_start_options() ->
    application:unset_env(?APP, ?START_KEY).

%% @doc The map the C sampler thread takes (`beamprof_nif:sampler_start/2'),
%% with the number of normal schedulers online now: only their threads count
%% towards the C side's demand figure.
-spec nif_config(config()) -> map().
nif_config(#{tick := Tick, memory_limit := Limit} = Config) ->
    Marks = maps:with([scheduler_high, scheduler_low, memory_high, memory_low, reopen_ticks],
                      Config),
    Marks#{tick_ms => Tick, memory_limit => limit_bytes(Limit),
           heartbeat_ms => maps:get(heartbeat, Config, 1000),
           test_hide_threads => maps:get(test_hide_threads, Config, false),
           schedulers_online => erlang:system_info(schedulers_online)}.

%% @doc Whether beamprof may read the VM's internal structures: the
%% `vm_internals' option of the last `beamprof:start/1', else the
%% application environment's (`{beamprof, [{vm_internals, false}]}'), else
%% `true'. Read at each use, so it applies to scans made without beamprof
%% running. What it governs: the scan's process table walk (else the scan
%% takes its pids from `erlang:processes()', or from the process iterator on
%% OTP 28+, which is API) and every read of the native sampler
%% (`beamprof_native': the frame layout, the GDB JIT list, the JIT frames on
%% the VM's stacks). The application is loaded first if it is not, so that
%% `-beamprof vm_internals false' and a sys.config apply before beamprof
%% starts. Raises `{badarg, Message}' when the value set is not a boolean.
-spec vm_internals() -> boolean().
vm_internals() ->
    ok = ensure_loaded(),
    V = case application:get_env(?APP, ?START_KEY, #{}) of
            #{vm_internals := Start} -> Start;
            _ -> application:get_env(?APP, vm_internals, true)
        end,
    case is_boolean(V) of
        true -> V;
        false -> bad_option(vm_internals, V, [{vm_internals, V}])
    end.

%% The application's environment exists once it is loaded (an ETS read when
%% it is; a load, which reads the command line's -beamprof flags and the
%% system config, when not).
ensure_loaded() ->
    case application:get_key(?APP, vsn) of
        {ok, _} -> ok;
        undefined -> _ = application:load(?APP), ok
    end.

limit_bytes(auto) -> 0;
limit_bytes(Bytes) -> Bytes.

check(interval, V, _) when is_integer(V), V >= 1, V =< 3600000 -> ok;
check(tick, V, _) when is_integer(V), V >= 10, V =< 60000 -> ok;
check(reopen_ticks, V, _) when is_integer(V), V >= 1, V =< 10000 -> ok;
check(memory_limit, auto, _) -> ok;
check(memory_limit, V, _) when is_integer(V), V > 0 -> ok;
check(Key, V, _) when is_boolean(V), (Key =:= vm_events orelse Key =:= vm_internals orelse
                                       Key =:= test_hide_threads orelse
                                       Key =:= test_window_enomem) -> ok;
check(heartbeat, V, _) when is_integer(V), V >= 10, V =< 3600000 -> ok;
check(Key, off, _) when Key =:= recorder; Key =:= continuous -> ok;
check(Key, V, O) when Key =:= recorder; Key =:= continuous; Key =:= system_monitor ->
    case (owner_check(Key))(V) of
        ok -> ok;
        {error, Message} -> beamprof_opts:bad(O, Message)
    end;
check(event_prefix, V, O) ->
    beamprof_handlers:is_event_name(V) orelse bad_option(event_prefix, V, O), ok;
%% process and port scan
check(scan_interval, off, _) -> ok;
check(scan_interval, V, _) when is_integer(V), V >= 100, V =< 86400000 -> ok;
check(scan_budget, V, _) when is_float(V), V > 0.0, V =< 1.0 -> ok;
check(Key, V, _) when is_integer(V), V > 0,
                      (Key =:= scan_skip_queue orelse Key =:= long_message_queue orelse
                       Key =:= large_memory orelse Key =:= busy_port_queue) -> ok;
check(Key, V, _) when is_float(V), V > 0.0, V =< 1.0,
                      (Key =:= scheduler_high orelse Key =:= scheduler_low orelse
                       Key =:= memory_high orelse Key =:= memory_low) -> ok;
check(Key, V, O) ->
    case maps:is_key(Key, defaults()) of
        true -> bad_option(Key, V, O);
        false -> beamprof_opts:unknown(Key, lists:sort(maps:keys(defaults())), O)
    end.

check_marks(Config, Low, High, O) ->
    case maps:get(Low, Config) < maps:get(High, Config) of
        true -> ok;
        false -> beamprof_opts:bad(O, lists:flatten(io_lib:format("Expected ~ts to be below ~ts",
                                                                  [Low, High])))
    end.

-spec bad_option(atom(), term(), term()) -> no_return().
%% The module that owns an option's shape checks it: `ok' or `{error, Message}'.
owner_check(recorder) -> fun beamprof_recorder:check/1;
owner_check(continuous) -> fun beamprof_continuous:check/1;
owner_check(system_monitor) -> fun beamprof_monitor:check/1.

bad_option(Key, Value, O) ->
    beamprof_opts:bad_value(Key, expectation(Key), Value, O).

expectation(interval) -> "an integer of milliseconds in 1..3600000";
expectation(tick) -> "an integer of milliseconds in 10..60000";
expectation(reopen_ticks) -> "an integer in 1..10000";
expectation(memory_limit) -> "auto or a positive integer of bytes";
expectation(vm_events) -> "a boolean";
expectation(vm_internals) -> "a boolean";
expectation(test_hide_threads) -> "a boolean";
expectation(test_window_enomem) -> "a boolean";
expectation(heartbeat) -> "an integer of milliseconds in 10..3600000";
expectation(event_prefix) -> "a non-empty list of atoms";
expectation(scan_interval) -> "off or an integer of milliseconds in 100..86400000";
expectation(scan_budget) -> "a float fraction of one core in (0.0, 1.0]";
expectation(scan_skip_queue) -> "a positive integer of messages";
expectation(long_message_queue) -> "a positive integer of messages";
expectation(large_memory) -> "a positive integer of bytes";
expectation(busy_port_queue) -> "a positive integer of bytes";
expectation(_) -> "a float in (0.0, 1.0]".

