-module(beamprof_flame_html).
-export([render/1]).
-spec render(beamprof_flame:graph()) -> iodata().
render(G) -> beamprof_flame_svg:render(G).
