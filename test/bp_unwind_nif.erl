%% Test-only stubs for c_src/test/unwind_nif/bp_unwind_nif.c (built by
%% `make -C c_src unwind-nif`), loaded explicitly by beamprof_unwind_SUITE.
-module(bp_unwind_nif).

-export([load/1, unwind_here/0, unwind_here_dirty/0, unwind_cost/1]).

-type frame() :: {non_neg_integer(), string() | none, string() | none}.

%% Path: the library without ".so".
-spec load(file:filename()) -> ok | {error, term()}.
load(Path) ->
    erlang:load_nif(Path, 0).

-spec unwind_here() -> {atom(), [frame()], map()}.
unwind_here() ->
    erlang:nif_error(not_loaded).

-spec unwind_here_dirty() -> {atom(), [frame()], map()}.
unwind_here_dirty() ->
    erlang:nif_error(not_loaded).

-spec unwind_cost(pos_integer()) -> {pos_integer(), integer()}.
unwind_cost(_Rounds) ->
    erlang:nif_error(not_loaded).
