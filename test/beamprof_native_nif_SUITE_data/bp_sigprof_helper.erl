%% Test-only NIF module (see bp_sigprof_helper.c), built by
%% beamprof_native_nif_SUITE into its priv dir.
-module(bp_sigprof_helper).
-export([load/1, install/0, restore/0, disposition/0, stray/0]).

load(Path) -> erlang:load_nif(Path, 0).
install() -> erlang:nif_error(not_loaded).
restore() -> erlang:nif_error(not_loaded).
disposition() -> erlang:nif_error(not_loaded).
stray() -> erlang:nif_error(not_loaded).
