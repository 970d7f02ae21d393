-module(nsym_nif).
-export([busy/1]).
-on_load(init/0).

init() ->
    erlang:load_nif(filename:join(filename:dirname(code:which(?MODULE)), "nsym_nif"), 0).

busy(_N) -> erlang:nif_error(not_loaded).
