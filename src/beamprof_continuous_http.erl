%% @doc The continuous profiler's HTTP sink: `{http, Url, Opts}' pushes each
%% period's profile to Pyroscope's ingest API (or anything that speaks it:
%% Grafana Alloy's `pyroscope.receive_http', Grafana Cloud Profiles).
%%
%% The request: `POST Url/ingest?name=App{node=Node,application=App}&from=F&until=U&format=pprof&sampleRate=Hz&spyName=beamprof'
%% (query values percent-encoded; `from' and `until' in Unix seconds), the
%% body the gzipped pprof itself (`Content-Type: application/octet-stream';
%% with `format=pprof' Pyroscope reads the raw body, not a multipart form,
%% and takes gzipped or plain pprof). `Url' is the server's base URL
%% (`http://pyroscope:4040'); a trailing `/ingest' is accepted too.
%%
%% Options (a map or `{Key, Value}' pairs): `app' (the application name,
%% default `<<"beamprof">>'), `labels' (more labels, `#{binary() =>
%% binary()}'), `auth' (`{basic, User, Password}' or `{bearer, Token}'),
%% `tenant' (sent as `X-Scope-OrgID'), `timeout' (ms per request, default
%% 10000), `ssl' (more `ssl' client options, appended to the verified
%% defaults), and the options every sink takes (`queue', `retries',
%% `backoff').
%%
%% Requests go through OTP's `httpc' in a profile of its own
%% (`beamprof_continuous'), never the default one, started here with
%% `inets' if needed. https is verified: `verify_peer' against the OS's CA
%% certificates (`public_key:cacerts_get/0'), the host name checked with
%% the HTTPS rules. A 2xx answer is success; 4xx answers other than 408 and
%% 429 are not retried (the request itself is wrong); every other failure
%% is.
-module(beamprof_continuous_http).

-export([check/2, name/1, encode/3, deliver/2, retryable/1, deadline/1, query/3]).

-define(PROFILE, beamprof_continuous).
-define(KNOWN, [app, labels, auth, tenant, timeout, ssl, queue, retries, backoff]).

%% @doc Checks the URL and options; throws `{bad, Message}'.
-spec check(term(), term()) -> map().
check(Url0, Opts) ->
    Map = maps:merge(#{app => <<"beamprof">>, labels => #{}, timeout => 10000, ssl => []},
                     beamprof_continuous_opts:sink_common(Opts)),
    case maps:keys(maps:without(?KNOWN, Map)) of
        [] -> ok;
        [K | _] -> bad("Unknown http sink option ~0tp (expected app, labels, auth, tenant, "
                       "timeout, ssl, queue, retries, backoff)", [K])
    end,
    Url = url(Url0),
    maps:foreach(fun check_opt/2, Map),
    Map#{url => Url, app := text(maps:get(app, Map))}.

url(Url0) ->
    Url = try unicode:characters_to_binary(Url0) catch error:_ -> error end,
    case is_binary(Url) andalso uri_string:parse(Url) of
        #{scheme := S, host := H} = U when (S =:= <<"http">> orelse S =:= <<"https">>),
                                           H =/= <<>> ->
            base(U);
        _ -> bad("Expected the http sink's URL to be an http:// or https:// URL, got: ~0tP",
                 [Url0, 8])
    end.

%% The base URL without a trailing / or /ingest, nor query.
base(#{path := Path} = U) ->
    Trimmed = string:trim(string:trim(Path, trailing, "/"), trailing, "/"),
    P = case binary:longest_common_suffix([Trimmed, <<"/ingest">>]) of
            7 -> binary:part(Trimmed, 0, byte_size(Trimmed) - 7);
            _ -> Trimmed
        end,
    uri_string:recompose(maps:without([query, fragment], U#{path => P})).

check_opt(app, V) ->
    is_binary(text(V)) andalso text(V) =/= <<>> orelse
        bad("Expected http sink app to be a non-empty string, got: ~0tP", [V, 8]);
check_opt(labels, V) ->
    is_map(V) andalso lists:all(fun({K, L}) -> is_binary(K) andalso is_binary(L) end,
                                maps:to_list(V)) orelse
        bad("Expected http sink labels to be a map of binary => binary, got: ~0tP", [V, 8]);
check_opt(auth, {basic, U, P}) when is_binary(U) orelse is_list(U),
                                    is_binary(P) orelse is_list(P) -> ok;
check_opt(auth, {bearer, T}) when is_binary(T); is_list(T) -> ok;
check_opt(auth, V) ->
    bad("Expected http sink auth to be {basic, User, Password} or {bearer, Token}, "
        "got: ~0tP", [V, 8]);
check_opt(tenant, V) ->
    is_binary(text(V)) orelse bad("Expected http sink tenant to be a string, got: ~0tP", [V, 8]);
check_opt(timeout, V) ->
    is_integer(V) andalso V >= 100 andalso V =< 600000 orelse
        bad("Expected http sink timeout to be an integer of ms in 100..600000, got: ~0tP",
            [V, 8]);
check_opt(ssl, V) ->
    is_list(V) orelse bad("Expected http sink ssl to be a list of ssl options, got: ~0tP",
                          [V, 8]);
check_opt(_, _) ->
    ok.

text(V) when is_binary(V) -> V;
text(V) when is_list(V) ->
    try unicode:characters_to_binary(V) of
        B when is_binary(B) -> B;
        _ -> error
    catch error:_ -> error
    end;
text(_) -> error.

-spec bad(string(), list()) -> no_return().
bad(Format, Args) ->
    beamprof_continuous_opts:bad(Format, Args).

%% @doc `{http, Url}'.
-spec name(map()) -> binary().
name(#{url := Url}) ->
    <<"{http, ", Url/binary, "}">>.

%% @doc The request: URL with its query, headers, body.
-spec encode(map(), map(), map()) -> {string(), [{string(), string()}], binary()}.
encode(Profile, #{node := Node} = Meta, #{url := Url, app := App, labels := Extra} = Opts) ->
    Labels = maps:merge(Extra, #{<<"node">> => atom_to_binary(Node),
                                 <<"application">> => App}),
    Body = beamprof_continuous:pprof(Profile, Labels),
    Full = <<Url/binary, "/ingest?", (query(App, Labels, Meta))/binary>>,
    {binary_to_list(Full), headers(Opts), Body}.

%% @doc The ingest query: `name' (`App{k=v,...}', labels sorted), `from',
%% `until' (Unix seconds), `format=pprof', `sampleRate', `spyName'.
-spec query(binary(), #{binary() => binary()}, map()) -> binary().
query(App, Labels, #{from_ms := From, until_ms := Until, hz := Hz}) ->
    Pairs = [[K, "=", V] || {K, V} <- lists:sort(maps:to_list(Labels))],
    Name = iolist_to_binary([App, "{", lists:join(",", Pairs), "}"]),
    unicode:characters_to_binary(
      uri_string:compose_query([{"name", Name},
                                {"from", integer_to_list(From div 1000)},
                                {"until", integer_to_list(max(Until div 1000, From div 1000 + 1))},
                                {"format", "pprof"},
                                {"sampleRate", integer_to_list(Hz)},
                                {"spyName", "beamprof"}])).

headers(Opts) ->
    auth(maps:get(auth, Opts, none)) ++
        case maps:get(tenant, Opts, none) of
            none -> [];
            Tenant -> [{"X-Scope-OrgID", unicode:characters_to_list(Tenant)}]
        end.

auth({basic, U, P}) ->
    Creds = base64:encode(unicode:characters_to_binary([U, ":", P])),
    [{"Authorization", "Basic " ++ binary_to_list(Creds)}];
auth({bearer, T}) ->
    [{"Authorization", "Bearer " ++ unicode:characters_to_list(T)}];
auth(none) ->
    [].

%% @doc POSTs the profile: `ok' on 2xx, else `{error, {http_status, Code}}',
%% `{error, no_ca_certificates}' (https, and the OS has none to verify with:
%% give `cacertfile' or `cacerts' in `ssl') or httpc's reason.
-spec deliver({string(), [{string(), string()}], binary()}, map()) -> ok | {error, term()}.
deliver({Url, Headers, Body}, #{timeout := Timeout} = Opts) ->
    ok = ensure_httpc(),
    case ssl_opts(Url, Opts) of
        {ok, Ssl} ->
            HttpOpts = [{timeout, Timeout}, {connect_timeout, Timeout}, {ssl, Ssl}],
            post(Url, Headers, Body, HttpOpts);
        {error, _} = Error ->
            Error
    end.

post(Url, Headers, Body, HttpOpts) ->
    case httpc:request(post, {Url, Headers, "application/octet-stream", Body}, HttpOpts,
                       [{body_format, binary}], ?PROFILE) of
        {ok, {{_, Code, _}, _, _}} when Code >= 200, Code < 300 -> ok;
        {ok, {{_, Code, _}, _, _}} -> {error, {http_status, Code}};
        {error, Reason} -> {error, Reason}
    end.

%% Verified TLS for https. For http the `ssl' option is still given (empty):
%% httpc otherwise computes its own default, which reads the OS's CA
%% certificates and fails where there are none (OTP 27).
ssl_opts("https:" ++ _, #{ssl := Extra}) ->
    ok = ensure_started(ssl),
    case ca_certificates(Extra) of
        {ok, Cas} ->
            {ok, Cas ++ [{verify, verify_peer},
                         {customize_hostname_check,
                          [{match_fun, public_key:pkix_verify_hostname_match_fun(https)}]},
                         {depth, 10} | Extra]};
        {error, _} = Error ->
            Error
    end;
ssl_opts(_, _) ->
    {ok, []}.

ca_certificates(Extra) ->
    case lists:any(fun(O) -> lists:member(element(1, O), [cacerts, cacertfile]) end,
                   [O || O <- Extra, is_tuple(O)]) of
        true -> {ok, []};
        false ->
            try public_key:cacerts_get() of
                Cas -> {ok, [{cacerts, Cas}]}
            catch _:_ -> {error, no_ca_certificates}
            end
    end.

ensure_httpc() ->
    ok = ensure_started(inets),
    case inets:start(httpc, [{profile, ?PROFILE}]) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> ok
    end.

ensure_started(App) ->
    case application:ensure_all_started(App) of
        {ok, _} -> ok;
        {error, Reason} -> error({cannot_start, App, Reason})
    end.

%% @doc Whether a failure is worth retrying: not a 4xx answer other than
%% 408 and 429.
-spec retryable(term()) -> boolean().
retryable({http_status, Code}) when Code >= 400, Code < 500 -> Code =:= 408 orelse Code =:= 429;
retryable(_) -> true.

%% @doc The request's timeout and 5 s more.
-spec deadline(map()) -> pos_integer().
deadline(#{timeout := T}) -> T + 5000.
