%% Runs the PropEr properties of the scan's NIFs (prop_beamprof_scan) from
%% Common Test.
-module(beamprof_scan_prop_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([topk/1, hist/1, window/1, window_cached/1, window_reds/1, random_args/1,
         window_reds_dirty/1, hist_many_percentiles/1, window_regrowth/1]).

all() -> [topk, hist, window, window_cached, window_reds, random_args,
          window_reds_dirty, hist_many_percentiles, window_regrowth].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

topk(_Config) -> check(prop_beamprof_scan:prop_topk(), 1000).

hist(_Config) -> check(prop_beamprof_scan:prop_hist(), 1000).

window(_Config) -> check(prop_beamprof_scan:prop_window(), 500).

window_cached(_Config) -> check(prop_beamprof_scan:prop_window_cached(), 500).

window_reds(_Config) -> check(prop_beamprof_scan:prop_window_reds(), 500).

random_args(_Config) -> check(prop_beamprof_scan:prop_random_args(), 5000).

window_reds_dirty(_Config) -> check(prop_beamprof_scan:prop_window_reds_dirty(), 50).

hist_many_percentiles(_Config) -> check(prop_beamprof_scan:prop_hist_many_percentiles(), 100).

window_regrowth(_Config) -> check(prop_beamprof_scan:prop_window_regrowth(), 100).

check(Prop, N) -> beamprof_ct:quickcheck(Prop, N).
