%% A module decorated through include/beamprof.hrl, as a user writes it
%% (beamprof_transform_tests calls it).
-module(beamprof_transform_example).
-include("beamprof.hrl").

-export([classify/1, fact/1, total/2]).

-beamprof_profile({classify, 1, #{strategy => sample, check_load => false}}).
-beamprof_profile({fact, 1}).
-beamprof_profile({total, 2, profile_memory, #{check_load => false, metadata => #{team => core}}}).

-spec classify(term()) -> atom().
classify(X) when is_integer(X), X > 0 -> positive;
classify(0) -> zero;
classify(X) when is_integer(X) -> negative;
classify(_) -> other.

%% Recursive: profiled once, at the outermost call.
-spec fact(non_neg_integer()) -> pos_integer().
fact(0) -> 1;
fact(N) -> N * fact(N - 1).

-spec total([number()], number()) -> number().
total([], Acc) -> Acc;
total([X | Xs], Acc) -> total(Xs, Acc + X).
