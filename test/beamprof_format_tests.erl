-module(beamprof_format_tests).
-include_lib("eunit/include/eunit.hrl").

bytes_test_() ->
    [?_assertEqual("0 B", beamprof_format:bytes(0)),
     ?_assertEqual("1023 B", beamprof_format:bytes(1023)),
     ?_assertEqual("1.5 KiB", beamprof_format:bytes(1536)),
     ?_assertEqual("2.0 MiB", beamprof_format:bytes(2 * 1024 * 1024)),
     ?_assertEqual("3.0 GiB", beamprof_format:bytes(3 * 1024 * 1024 * 1024)),
     ?_assertEqual("2048.0 TiB", beamprof_format:bytes(2048 * (1 bsl 40)))].

count_test_() ->
    [?_assertEqual("999", beamprof_format:count(999)),
     ?_assertEqual("1.2k", beamprof_format:count(1234)),
     ?_assertEqual("1.2M", beamprof_format:count(1234567)),
     ?_assertEqual("0", beamprof_format:count(0.2))].

percent_test_() ->
    [?_assertEqual("12.3%", beamprof_format:percent(0.1234)),
     ?_assertEqual("-", beamprof_format:percent(undefined))].

microseconds_test_() ->
    [?_assertEqual("850 us", beamprof_format:microseconds(850)),
     ?_assertEqual("1.2 ms", beamprof_format:microseconds(1234)),
     ?_assertEqual("2.5 s", beamprof_format:microseconds(2500000))].

bar_test_() ->
    [?_assertEqual("[..........]", beamprof_format:bar(0.0, 10)),
     ?_assertEqual("[###.......]", beamprof_format:bar(0.3, 10)),
     ?_assertEqual("[##########]", beamprof_format:bar(1.7, 10)),
     ?_assertEqual("[    ]", beamprof_format:bar(undefined, 4))].
