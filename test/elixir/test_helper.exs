# mix.exs aliases `test` to `test --no-start`: each test starts beamprof with
# the options it needs and stops it afterwards. Logs (the application's
# start/stop notices) are shown only for a failing test.
ExUnit.start(capture_log: true)
