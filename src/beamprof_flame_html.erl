%% @doc The interactive HTML flame graph of a `beamprof_flame:graph()': one
%% self-contained page, CSS and JavaScript inline, and a Content Security
%% Policy that forbids every network request.
%%
%% The tree is embedded as JSON in a `<script type="application/json">'
%% element (`beamprof_json' escapes `<', `>' and `&', so no frame name can
%% close it) and drawn by the script as one positioned element per frame,
%% root at the bottom; frame names are set as text, never as markup.
%% Click a frame to zoom into it, "Reset zoom" to come back; the search box
%% takes a regular expression (or plain text when it is not one),
%% highlights the matching frames and shows the share of the total they
%% cover. The URL fragment holds the state, `#search=Text&zoom=Id' (Id: the
%% frame's depth-first index, the root being 0), so a link or a headless
%% browser can open the page searched and zoomed.
%%
%% The graph's notes are shown under the heading, as text, and follow the
%% title in the page's `<title>'.
%%
%% Frames lighter than 1/100000 of the total are merged per parent
%% (`beamprof_flame:prune/2'); the page draws only frames at least half a
%% pixel wide at the current zoom.
-module(beamprof_flame_html).

-export([render/1]).

-define(RESOLUTION, 100000).

%% @doc The HTML document of `Graph'.
-spec render(Graph) -> iodata() when Graph :: beamprof_flame:graph().
render(#{title := Title, total := Total, stacks := Stacks, tree := Tree0} = Graph) ->
    {Tree, {Hidden, _}} = beamprof_flame:prune(Tree0, max(1, Total / ?RESOLUTION)),
    {Names, Compact} = compact(Tree),
    Data = #{title => Title, unit => beamprof_flame:unit_label(Graph), total => Total,
             stacks => Stacks, merged => Hidden, names => Names,
             colors => [beamprof_flame:color(N) || N <- Names], tree => Compact},
    Esc = beamprof_flame:escape_xml(Title),
    [<<"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
       "<meta name=\"viewport\" content=\"width=device-width\">\n<title>">>,
     beamprof_flame:escape_xml(beamprof_flame:titled(Graph)),
     <<"</title>\n<style>">>, css(), <<"</style>\n</head><body>\n<header><h1>">>, Esc,
     <<"</h1>\n">>,
     [[<<"<p class=\"note\">">>, beamprof_flame:escape_xml(N), <<"</p>\n">>]
      || N <- maps:get(notes, Graph, [])],
     <<"<div id=\"totals\"></div>\n<div id=\"controls\">"
       "<button id=\"reset\" type=\"button\">Reset zoom</button> "
       "<input id=\"search\" type=\"search\" placeholder=\"Search (regular expression)\" size=\"40\"> "
       "<span id=\"matched\"></span></div>\n<div id=\"details\">&nbsp;</div></header>\n"
       "<div id=\"chart\"></div>\n"
       "<noscript>This flame graph needs JavaScript; the SVG format does not.</noscript>\n"
       "<script type=\"application/json\" id=\"profile-data\">">>,
     beamprof_json:encode(Data),
     <<"</script>\n<script>">>, js(), <<"</script>\n</body></html>\n">>].

%% Names once, in first-seen order; the tree as [NameIndex, Total, [Child]].
compact(Tree) ->
    {C, {_, Names}} = compact(Tree, {#{}, []}),
    {lists:reverse(Names), C}.

compact({Name, Total, Children}, {Index, Names} = Acc0) ->
    {I, Acc1} = case Index of
                    #{Name := Known} -> {Known, Acc0};
                    _ -> N = map_size(Index), {N, {Index#{Name => N}, [Name | Names]}}
                end,
    {Kids, Acc2} = lists:mapfoldl(fun compact/2, Acc1, Children),
    {[I, Total, Kids], Acc2}.

css() ->
    <<"body{font-family:sans-serif;margin:8px;background:#f8f8f4;color:#222}"
      "h1{font-size:18px;margin:4px 0}.note{font-size:13px;color:#8a1a1a;margin:4px 0}#totals,#details{font-size:13px;color:#444;margin:4px 0}"
      "#controls{margin:6px 0;font-size:13px}#matched{font-weight:bold;color:#8a1a8a}"
      "#chart{position:relative;width:100%;overflow:hidden}"
      ".frame{position:absolute;height:16px;box-sizing:border-box;border:1px solid #f8f8f4;"
      "border-radius:2px;font:11px monospace;line-height:14px;padding:0 2px;white-space:nowrap;"
      "overflow:hidden;text-overflow:ellipsis;cursor:pointer}"
      ".frame:hover{border-color:#000}.frame.ancestor{opacity:0.55}"
      ".frame.match{background:#ee00ee!important;color:#fff}">>.

%% The page's script. Written without backslashes or double quotes so it
%% reads the same here as in the page.
js() ->
    <<"(function () {\n"
      "'use strict';\n"
      "var D = JSON.parse(document.getElementById('profile-data').textContent);\n"
      "var H = 17, nodes = [], maxDepth = 0;\n"
      "function build(a, parent, depth, x) {\n"
      "  var n = {id: nodes.length, name: D.names[a[0]], color: D.colors[a[0]], total: a[1],\n"
      "           depth: depth, parent: parent, x: x, kids: []};\n"
      "  nodes.push(n);\n"
      "  if (depth > maxDepth) maxDepth = depth;\n"
      "  var cx = x;\n"
      "  for (var i = 0; i < a[2].length; i++) {\n"
      "    var c = build(a[2][i], n, depth + 1, cx); n.kids.push(c); cx += c.total;\n"
      "  }\n"
      "  return n;\n"
      "}\n"
      "var root = build(D.tree, null, 0, 0);\n"
      "var chart = document.getElementById('chart');\n"
      "var search = document.getElementById('search');\n"
      "var matchedEl = document.getElementById('matched');\n"
      "var details = document.getElementById('details');\n"
      "var zoomed = root, matches = null;\n"
      "function pct(w, of) { return of > 0 ? (100 * w / of).toFixed(2) : '0.00'; }\n"
      "function label(n) {\n"
      "  return n.name + ' (' + n.total + ' ' + D.unit + ', ' + pct(n.total, D.total) + '%)';\n"
      "}\n"
      "document.getElementById('totals').textContent = 'Total ' + D.total + ' ' + D.unit +\n"
      "  ' in ' + D.stacks + ' stacks' +\n"
      "  (D.merged > 0 ? ' - ' + D.merged + ' frames under 0.001% merged or left out' : '');\n"
      "function addFrame(n, left, width, cls) {\n"
      "  var d = document.createElement('div');\n"
      "  d.className = 'frame' + cls + (matches && matches.has(n) ? ' match' : '');\n"
      "  d.style.left = left.toFixed(1) + 'px';\n"
      "  d.style.width = width.toFixed(1) + 'px';\n"
      "  d.style.top = ((maxDepth - n.depth) * H) + 'px';\n"
      "  d.style.background = n.depth === 0 ? '#c8c8c8' : n.color;\n"
      "  d.dataset.id = n.id;\n"
      "  d.title = label(n);\n"
      "  if (width >= 20) d.textContent = n.name;\n"
      "  chart.appendChild(d);\n"
      "}\n"
      "function draw() {\n"
      "  while (chart.firstChild) chart.removeChild(chart.firstChild);\n"
      "  chart.style.height = ((maxDepth + 1) * H) + 'px';\n"
      "  var W = chart.clientWidth || 1000;\n"
      "  for (var a = zoomed.parent; a; a = a.parent) addFrame(a, 0, W, ' ancestor');\n"
      "  if (zoomed.total === 0) return;\n"
      "  var scale = W / zoomed.total, stack = [zoomed];\n"
      "  while (stack.length) {\n"
      "    var n = stack.pop(), w = n.total * scale;\n"
      "    if (w < 0.5) continue;\n"
      "    addFrame(n, (n.x - zoomed.x) * scale, w, n === zoomed && n !== root ? ' zoomed' : '');\n"
      "    for (var i = n.kids.length - 1; i >= 0; i--) stack.push(n.kids[i]);\n"
      "  }\n"
      "}\n"
      "function matcher(q) {\n"
      "  try { var re = new RegExp(q); return function (s) { return re.test(s); }; }\n"
      "  catch (e) { return function (s) { return s.indexOf(q) >= 0; }; }\n"
      "}\n"
      "function applySearch(q) {\n"
      "  if (!q) { matches = null; matchedEl.textContent = ''; return; }\n"
      "  var test = matcher(q), weight = 0;\n"
      "  matches = new Set();\n"
      "  (function walk(n, covered) {\n"
      "    var m = n !== root && test(n.name);\n"
      "    if (m) { matches.add(n); if (!covered) weight += n.total; }\n"
      "    for (var i = 0; i < n.kids.length; i++) walk(n.kids[i], covered || m);\n"
      "  })(root, false);\n"
      "  matchedEl.textContent = 'Matched: ' + pct(weight, D.total) + '% (' + weight + ' ' +\n"
      "    D.unit + ', ' + matches.size + ' frames)';\n"
      "}\n"
      "function saveState() {\n"
      "  var p = new URLSearchParams();\n"
      "  if (search.value) p.set('search', search.value);\n"
      "  if (zoomed !== root) p.set('zoom', String(zoomed.id));\n"
      "  try { history.replaceState(null, '', '#' + p.toString()); } catch (e) { }\n"
      "}\n"
      "function zoom(n) { zoomed = n || root; draw(); saveState(); }\n"
      "chart.addEventListener('click', function (e) {\n"
      "  var f = e.target.closest('.frame');\n"
      "  if (f) zoom(nodes[Number(f.dataset.id)]);\n"
      "});\n"
      "chart.addEventListener('mouseover', function (e) {\n"
      "  var f = e.target.closest('.frame');\n"
      "  if (f) details.textContent = label(nodes[Number(f.dataset.id)]);\n"
      "});\n"
      "document.getElementById('reset').addEventListener('click', function () { zoom(root); });\n"
      "search.addEventListener('input', function () { applySearch(search.value); draw(); saveState(); });\n"
      "window.addEventListener('resize', draw);\n"
      "var state = new URLSearchParams(location.hash.slice(1));\n"
      "if (state.get('search')) { search.value = state.get('search'); applySearch(search.value); }\n"
      "var z = Number(state.get('zoom'));\n"
      "if (state.get('zoom') !== null && nodes[z]) zoomed = nodes[z];\n"
      "draw();\n"
      "document.body.dataset.ready = 'true';\n"
      "})();\n">>.
