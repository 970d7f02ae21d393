%% @private
%% @doc Names the winners of a scan: turns `{Value, Pid}' into the rows of
%% `beamprof:top/2' (registered name, label, initial call, current function,
%% queue, memory, reductions) and `{Value, Port}' into port rows. The label
%% (`proc_lib:set_label/1', OTP 27+) is `undefined' when the process set none,
%% and always on OTP 25 and 26.
%%
%% Only the K winners are asked, once, at the end of a scan. The queue
%% length is asked first and `memory' is `skipped' for a queue of
%% `skip_queue' messages or more. proc_lib's `'$initial_call'' is read from
%% the process dictionary only when the initial call is proc_lib's
%% (`init_p/5' for gen_* and `proc_lib:start*', `init_p/3' for
%% `proc_lib:spawn*(Fun)'; OTP 25
%% has no single-key dictionary item, so the whole dictionary is copied: one
%% process, K at most).
-module(beamprof_scan_rows).

-export([processes/3, ports/2]).
-export_type([row/0, port_row/0]).

-type row() :: #{pid := pid(), key := atom(), value := integer(),
                 name := atom() | undefined, label := term(),
                 initial_call := mfa() | undefined,
                 current_function := mfa() | undefined,
                 message_queue_len := non_neg_integer(),
                 memory := non_neg_integer() | skipped,
                 reductions := non_neg_integer()}.
-type port_row() :: #{port := port(), key := atom(), value := integer(),
                      name := string() | binary(), owner := pid() | undefined,
                      queue_size := non_neg_integer(), memory := non_neg_integer(),
                      input := non_neg_integer(), output := non_neg_integer()}.

-define(ITEMS, [registered_name, initial_call, current_function, message_queue_len,
                reductions]).

%% @doc Rows for `Key' from the scan's `[{Value, Pid}]' (best first); a
%% process that has exited since is left out. The row's `Key' field is the
%% scanned value (for `reductions', the delta over the window).
-spec processes(Key :: atom(), [{integer(), pid()}], SkipQueue :: pos_integer()) -> [row()].
processes(Key, Winners, Skip) ->
    lists:filtermap(fun({Value, Pid}) -> process_row(Key, Value, Pid, Skip) end, Winners).

process_row(Key, Value, Pid, Skip) ->
    case erlang:process_info(Pid, ?ITEMS ++ beamprof_names:label_items()) of
        undefined ->
            false;
        Info ->
            Q = proplists:get_value(message_queue_len, Info),
            Row = (beamprof_names:from_info(Pid, Info))#{pid => Pid, key => Key, value => Value,
                                      message_queue_len => Q,
                                      memory => memory(Pid, Q, Skip),
                                      reductions => proplists:get_value(reductions, Info)},
            {true, own_value(Key, Value, Row)}
    end.

own_value(Key, Value, Row) when Key =:= message_queue_len; Key =:= memory;
                                Key =:= reductions ->
    Row#{Key => Value};
own_value(_Key, _Value, Row) -> Row.

memory(_Pid, Q, Skip) when Q >= Skip -> skipped;
memory(Pid, _Q, _Skip) ->
    case erlang:process_info(Pid, memory) of
        {memory, M} -> M;
        undefined -> 0
    end.

%% @doc Port rows for `Key' from the scan's `[{Value, Port}]'; a port closed
%% since is left out.
-spec ports(Key :: atom(), [{integer(), port()}]) -> [port_row()].
ports(Key, Winners) ->
    lists:filtermap(fun({Value, Port}) -> port_row(Key, Value, Port) end, Winners).

port_row(Key, Value, Port) ->
    Items = [name, connected, queue_size, memory, input, output],
    case [erlang:port_info(Port, Item) || Item <- Items] of
        [{name, Name}, {connected, Owner}, {queue_size, Q}, {memory, M}, {input, I},
         {output, O}] ->
            {true, #{port => Port, key => Key, value => Value, name => Name,
                     owner => owner(Owner), queue_size => Q, memory => M, input => I,
                     output => O}};
        _ ->
            false
    end.

owner(Pid) when is_pid(Pid) -> Pid;
owner(_) -> undefined.
