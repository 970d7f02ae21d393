%% @private
%% @doc The flight recorder's records, built from what beamprof already has
%% (doc/recording-format.md, "Payloads"). Pure but for the header's and the
%% interval's reads of the VM. Keys and atom values come from
%% `beamprof_recording:vocabulary/0'; everything else is a binary or a number.
-module(beamprof_recorder_records).

-export([header/2, interval/1, scan/2, from_event/3, text/1]).

%% @doc The `header' record's fields (kind included) for a ring of `Size'
%% bytes under `Config' (`beamprof_config:config()').
-spec header(map(), pos_integer()) -> map().
header(Config, Size) ->
    Limit = try beamprof_nif:memory() of
                #{limit := L} when is_integer(L), L > 0 -> L;
                _ -> undefined
            catch error:_ -> undefined
            end,
    #{kind => header,
      node => atom_to_binary(node()),
      otp_release => text(erlang:system_info(otp_release)),
      erts_version => text(erlang:system_info(version)),
      beamprof_version => case application:get_key(beamprof, vsn) of
                              {ok, V} -> text(V);
                              undefined -> <<>>
                          end,
      os_pid => list_to_integer(os:getpid()),
      schedulers => erlang:system_info(schedulers),
      schedulers_online => erlang:system_info(schedulers_online),
      dirty_cpu_schedulers => erlang:system_info(dirty_cpu_schedulers),
      dirty_io_schedulers => erlang:system_info(dirty_io_schedulers),
      tick_ms => maps:get(tick, Config, 100),
      interval_ms => maps:get(interval, Config, 1000),
      memory_limit => Limit,
      ring_size => Size}.

%% @doc The `interval' record's fields from a sample (`beamprof_vm:sample()').
-spec interval(map()) -> map().
interval(#{schedulers := Rows, memory := #{erlang := Erl}, system := Sys}) ->
    Sorted = lists:sort(fun(#{id := A}, #{id := B}) -> A =< B end, Rows),
    Util = maps:from_list([{Type, [U || #{type := T, utilization := U} <- Sorted, T =:= Type]}
                           || Type <- [normal, dirty_cpu, dirty_io]]),
    #{utilization => Util,
      run_queues => erlang:statistics(run_queue_lengths_all),
      memory => maps:with([total, processes, binary, ets, atom, code, system], Erl),
      process_count => maps:get(process_count, Sys),
      port_count => maps:get(port_count, Sys)}.

%% @doc The `scan' record's fields: the top `N' rows per key of `Rows'
%% (`beamprof_scan_rows' rows, largest first). A pass taken while the gate
%% was closed (`Rows' has `gate => closed') ranked mailboxes alone: its
%% record has only `message_queue_len' in `top', and `gate => closed'.
-spec scan(map(), pos_integer()) -> map().
scan(#{gate := closed} = Rows, N) ->
    #{top => top(Rows, N, [message_queue_len]), gate => closed};
scan(Rows, N) ->
    #{top => top(Rows, N, [message_queue_len, memory, reductions])}.

top(Rows, N, Keys) ->
    maps:from_list([{K, [row(R) || R <- lists:sublist(maps:get(K, Rows, []), N)]} || K <- Keys]).

row(#{pid := Pid, value := Value} = Row) ->
    #{pid => pid_text(Pid), name => text(beamprof_top:name(Row)), value => Value}.

%% @doc The record an event makes: `{Kind, Fields}', or `skip' for events the
%% recording does not keep (the scan's own event: its record comes with the
%% rows, from the scan).
-spec from_event([atom()], map(), map()) -> {atom(), map()} | skip.
from_event([process, Key], M, #{source := system_monitor} = Meta)
  when Key =:= long_message_queue ->
    {monitor, #{event => long_message_queue, pid => pid_text(maps:get(pid, Meta)),
                name => text(beamprof_top:name(Meta)),
                info => #{message_queue_len => maps:get(message_queue_len, M, 0)}}};
from_event([process, Kind], M, Meta) when Kind =:= long_message_queue;
                                          Kind =:= large_memory ->
    Key = case Kind of long_message_queue -> message_queue_len; large_memory -> memory end,
    {threshold, #{key => Key, pid => pid_text(maps:get(pid, Meta)),
                  name => text(beamprof_top:name(Meta)),
                  value => maps:get(Key, M), limit => maps:get(threshold, Meta)}};
from_event([monitor, Event], M, Meta) when Event =:= long_gc; Event =:= long_schedule;
                                           Event =:= large_heap; Event =:= busy_port;
                                           Event =:= busy_dist_port ->
    {monitor, #{event => Event, pid => pid_text(maps:get(pid, Meta, undefined)),
                name => text(beamprof_top:name(Meta)), info => monitor_info(M, Meta)}};
from_event([gate, State], _M, Meta) when State =:= open; State =:= closed ->
    {gate, #{state => State, reason => gate_reason(State, Meta)}};
from_event([profile, Event], M, Meta) when Event =:= start; Event =:= stop ->
    Fields = #{event => Event, target => target(Meta),
               strategy => maps:get(strategy, Meta, undefined)},
    {profile, case Event of
                  stop -> Fields#{ms => erlang:convert_time_unit(maps:get(duration, M, 0),
                                                                 native, millisecond)};
                  start -> Fields
              end};
from_event(_Suffix, _M, _Meta) ->
    skip.

-define(INFO_INTS, [duration_ms, heap_size, heap_block_size, old_heap_size,
                    old_heap_block_size, mbuf_size, stack_size, total_heap_size]).
-define(INFO_TEXTS, [port, port_name, port_op, in, out, current_function]).

monitor_info(M, Meta) ->
    Ints = maps:filter(fun(_, V) -> is_integer(V) end, maps:with(?INFO_INTS, M)),
    Texts = maps:map(fun(current_function, V) -> text(beamprof_top:mfa(V));
                        (in, V) -> text(beamprof_top:mfa(V));
                        (out, V) -> text(beamprof_top:mfa(V));
                        (_, V) -> text(V)
                     end,
                     maps:filter(fun(_, V) -> V =/= undefined end, maps:with(?INFO_TEXTS, Meta))),
    maps:merge(Ints, Texts).

gate_reason(open, _Meta) -> none;
gate_reason(closed, #{blind := true, kind := scheduler}) -> blind;
gate_reason(closed, #{kind := Kind}) when Kind =:= scheduler; Kind =:= memory -> Kind;
gate_reason(closed, _Meta) -> none.

target(#{module := M, function := F, arity := A}) -> text(beamprof_top:mfa({M, F, A}));
target(_) -> <<>>.

pid_text(Pid) when is_pid(Pid) -> list_to_binary(pid_to_list(Pid));
pid_text(_) -> <<>>.

%% @doc Any name-like term as a UTF-8 binary: binaries and character data as
%% they are, atoms by name, ports and pids as printed, the rest as `~0tp'.
-spec text(term()) -> binary().
text(B) when is_binary(B) -> B;
text(A) when is_atom(A) -> atom_to_binary(A);
text(P) when is_pid(P) -> pid_text(P);
text(P) when is_port(P) -> list_to_binary(erlang:port_to_list(P));
text(L) when is_list(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> B;
        _ -> unicode:characters_to_binary(io_lib:format("~0tp", [L]))
    end;
text(T) -> unicode:characters_to_binary(io_lib:format("~0tp", [T])).
