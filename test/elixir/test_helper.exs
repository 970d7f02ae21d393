# mix.exs aliases `test` to `test --no-start`: each test starts beamprof with
# the options it needs and stops it afterwards.
ExUnit.start()
