%% A minimal PNG decoder for the tests that check a headless browser's
%% screenshot: 8-bit RGB or RGBA, not interlaced (what Chromium writes).
%% Used by beamprof_flame_SUITE and beamprof_recording_report_SUITE.
-module(beamprof_png).

-export([decode/1]).

%% {Width, Height, [<<R, G, B>>]} row by row.
decode(<<137, "PNG", 13, 10, 26, 10, Chunks/binary>>) ->
    {#{w := W, h := H, bpp := Bpp}, Idat} = chunks(Chunks, #{}, []),
    Raw = zlib:uncompress(Idat),
    Rows = unfilter(Raw, W * Bpp, Bpp, binary:copy(<<0>>, W * Bpp), []),
    Pixels = [<<R, G, B>> || Row <- Rows, <<R, G, B, _:(Bpp - 3)/binary>> <= Row],
    {W, H, Pixels}.

chunks(<<Len:32, Type:4/binary, Data:Len/binary, _Crc:32, Rest/binary>>, Hdr, Idat) ->
    case Type of
        <<"IHDR">> ->
            <<W:32, H:32, 8, Colour, 0, 0, 0>> = Data,
            Bpp = case Colour of 2 -> 3; 6 -> 4 end,
            chunks(Rest, #{w => W, h => H, bpp => Bpp}, Idat);
        <<"IDAT">> -> chunks(Rest, Hdr, [Data | Idat]);
        <<"IEND">> -> {Hdr, iolist_to_binary(lists:reverse(Idat))};
        _ -> chunks(Rest, Hdr, Idat)
    end.

unfilter(<<>>, _Len, _Bpp, _Prev, Acc) -> lists:reverse(Acc);
unfilter(<<Filter, Rest/binary>>, Len, Bpp, Prev, Acc) ->
    <<Line:Len/binary, More/binary>> = Rest,
    Row = unfilter_row(Filter, Line, Prev, Bpp),
    unfilter(More, Len, Bpp, Row, [Row | Acc]).

unfilter_row(0, Line, _Prev, _Bpp) -> Line;
unfilter_row(Filter, Line, Prev, Bpp) ->
    list_to_binary(unfilter_bytes(Filter, binary_to_list(Line), binary_to_list(Prev),
                                  lists:duplicate(Bpp, 0), lists:duplicate(Bpp, 0), [])).

unfilter_bytes(_F, [], _Prev, _Left, _UpLeft, Acc) -> lists:reverse(Acc);
unfilter_bytes(F, [X | Xs], [Up | Ups], [A | As], [C | Cs], Acc) ->
    V = (X + predict(F, A, Up, C)) band 255,
    unfilter_bytes(F, Xs, Ups, As ++ [V], Cs ++ [Up], [V | Acc]).

predict(1, A, _B, _C) -> A;
predict(2, _A, B, _C) -> B;
predict(3, A, B, _C) -> (A + B) div 2;
predict(4, A, B, C) ->
    P = A + B - C,
    {Pa, Pb, Pc} = {abs(P - A), abs(P - B), abs(P - C)},
    if Pa =< Pb, Pa =< Pc -> A; Pb =< Pc -> B; true -> C end.
