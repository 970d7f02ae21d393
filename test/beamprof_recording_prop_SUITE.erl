%% Runs the PropEr properties of the recording reader
%% (prop_beamprof_recording) from Common Test.
-module(beamprof_recording_prop_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0]).
-export([untouched/1, flipped_bits/1, truncated/1, random_bytes/1, random_ring/1]).

suite() -> [{timetrap, {minutes, 10}}].

%% The file-writing properties take about 130 ms a case; their counts keep the suite
%% near 40 s per release so that the three releases' CI stays under its time limit.
all() -> [untouched, flipped_bits, truncated, random_bytes, random_ring].

untouched(Config) -> check(prop_beamprof_recording:prop_untouched(dir(Config)), 120).

flipped_bits(Config) -> check(prop_beamprof_recording:prop_flipped_bits(dir(Config)), 120).

truncated(Config) -> check(prop_beamprof_recording:prop_truncated(dir(Config)), 100).

random_bytes(Config) -> check(prop_beamprof_recording:prop_random_bytes(dir(Config)), 1000).

random_ring(Config) -> check(prop_beamprof_recording:prop_random_ring(dir(Config)), 200).

dir(Config) -> ?config(priv_dir, Config).

check(Prop, N) -> beamprof_ct:quickcheck(Prop, N).
