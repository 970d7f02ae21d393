%% @doc A small JSON encoder (OTP 25 has no `json' module) for the
%% documents beamprof writes (speedscope files, the data of the HTML flame
%% graph).
%%
%% Terms: maps with binary or atom keys -> objects (keys sorted, so the
%% output is deterministic); lists -> arrays; binaries (UTF-8) -> strings;
%% `true', `false', `null'; integers; floats (finite). Anything else, or a
%% binary that is not UTF-8, raises `{badarg, Message}'.
%%
%% Strings escape `"', `\\', control characters and also `<', `>', `&',
%% U+2028 and U+2029 as `\uXXXX', so the text is safe to embed in an HTML
%% `<script>' element (no `</script>' can appear) and in JavaScript.
-module(beamprof_json).

-export([encode/1]).

-type json() :: #{binary() | atom() => json()} | [json()] | binary()
              | true | false | null | integer() | float().
-export_type([json/0]).

%% @doc The JSON text of `Term' as iodata.
-spec encode(Term) -> iodata() when Term :: json().
encode(Map) when is_map(Map) ->
    Pairs = lists:sort([{key(K), V} || {K, V} <- maps:to_list(Map)]),
    [${, join([[string(K), $:, encode(V)] || {K, V} <- Pairs]), $}];
encode(List) when is_list(List) -> [$[, join([encode(V) || V <- List]), $]];
encode(Bin) when is_binary(Bin) -> string(Bin);
encode(true) -> <<"true">>;
encode(false) -> <<"false">>;
encode(null) -> <<"null">>;
encode(I) when is_integer(I) -> integer_to_binary(I);
encode(F) when is_float(F) -> float_to_binary(F, [short]);
encode(Other) -> badarg(Other).

key(K) when is_binary(K) -> K;
key(K) when is_atom(K) -> atom_to_binary(K);
key(K) -> badarg(K).

join([]) -> [];
join([H | T]) -> [H | [[$, | X] || X <- T]].

string(Bin) ->
    case escape(Bin, 0, 0, Bin, []) of
        Escaped when is_list(Escaped) -> [$", Escaped, $"];
        error -> badarg(Bin)
    end.

%% Copies runs of plain bytes as sub-binaries; escapes the rest.
escape(<<C, Rest/binary>>, Start, Len, Orig, Acc)
  when C >= 16#20, C < 16#80, C =/= $", C =/= $\\, C =/= $<, C =/= $>, C =/= $& ->
    escape(Rest, Start, Len + 1, Orig, Acc);
escape(<<C, Rest/binary>>, Start, Len, Orig, Acc) when C < 16#80 ->
    escaped(Rest, Start, Len, 1, Orig, Acc, ascii(C));
escape(<<C/utf8, Rest/binary>>, Start, Len, Orig, Acc) when C =:= 16#2028; C =:= 16#2029 ->
    escaped(Rest, Start, Len, 3, Orig, Acc, u(C));
escape(<<C/utf8, Rest/binary>>, Start, Len, Orig, Acc) ->
    escape(Rest, Start, Len + byte_size(<<C/utf8>>), Orig, Acc);
escape(<<>>, Start, Len, Orig, Acc) ->
    lists:reverse(Acc, [binary:part(Orig, Start, Len)]);
escape(_, _, _, _, _) ->
    error.

escaped(Rest, Start, Len, Size, Orig, Acc, Esc) ->
    escape(Rest, Start + Len + Size, 0, Orig, [Esc, binary:part(Orig, Start, Len) | Acc]).

ascii($") -> <<"\\\"">>;
ascii($\\) -> <<"\\\\">>;
ascii($\n) -> <<"\\n">>;
ascii($\r) -> <<"\\r">>;
ascii($\t) -> <<"\\t">>;
ascii(C) -> u(C).

u(C) -> io_lib:format("\\u~4.16.0b", [C]).

-spec badarg(term()) -> no_return().
badarg(Term) ->
    erlang:error({badarg, "Not encodable as JSON"}, [Term]).
