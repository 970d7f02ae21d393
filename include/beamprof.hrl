%% beamprof for Erlang users.
%%
%% Including this file turns on the beamprof_transform parse transform, which profiles
%% the functions named in -beamprof_profile attributes without touching their bodies:
%%
%%   -include_lib("beamprof/include/beamprof.hrl").
%%   -beamprof_profile({compute_metrics, 1, #{strategy => sample, rate => 0.01}}).
%%   -beamprof_profile({slow_query, 1, profile_if_slow, #{threshold => 1000}}).
%%
%% The options are those of beamprof:profile/2 (the third form names the entry point:
%% profile, profile_if_slow, profile_production, profile_memory, profile_calls,
%% flame_graph). They are checked at compile time.
-ifndef(BEAMPROF_HRL).
-define(BEAMPROF_HRL, true).

-compile({parse_transform, beamprof_transform}).

%% The event names (?BEAMPROF_EVENT_..., and ?BEAMPROF_PROFILE_EVENTS, the profiling API's
%% event suffixes): a header of their own, which a module can include without the parse
%% transform.
-include("beamprof_events.hrl").

-endif.
