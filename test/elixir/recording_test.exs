defmodule BeamprofRecordingTest do
  # The facade's recording functions on a recording built here, from the
  # format's text (doc/recording-format.md): a header and two frames.
  use ExUnit.Case, async: true

  @moduletag :tmp_dir

  defp header(ring) do
    fields =
      <<"BPREC", 0, "v1", 1::little-32, 4096::little-32, ring::little-64, 42::little-64,
        0::little-64>>

    <<fields::binary, :erlang.crc32(fields)::little-32, 0::size(4052 * 8)>>
  end

  defp frame(seq, sys_us, term) do
    payload = :erlang.term_to_binary(term)
    len = byte_size(payload)
    covered = <<len::little-32, seq::little-64, seq * 1000::little-64, sys_us::little-64>>
    crc = :erlang.crc32(:erlang.crc32(covered), payload)
    pad = rem(8 - rem(len, 8), 8)

    <<0x46525042::little-32, covered::binary, crc::little-32, 0::32, payload::binary,
      0::size(pad * 8)>>
  end

  defp recording(dir) do
    ring = 65536

    frames =
      frame(1, 1_000_000, %{kind: :note, message: "one"}) <>
        frame(2, 2_000_000, %{kind: :gate, state: :closed, reason: :memory})

    path = Path.join(dir, "rec.bprec")
    File.write!(path, [header(ring), frames, <<0::size((ring - byte_size(frames)) * 8)>>])
    path
  end

  test "read_recording/1,2 read the records, oldest first", %{tmp_dir: dir} do
    path = recording(dir)

    assert {:ok, [%{kind: :note, seq: 1, time: 1000, message: "one"}, %{kind: :gate, seq: 2}]} =
             Beamprof.read_recording(path)

    assert {:ok, [%{kind: :gate, state: :closed}]} = Beamprof.read_recording(path, kinds: [:gate])

    assert {:ok, [%{seq: 2}], %{skipped: 0, frames: 2}} =
             Beamprof.read_recording(path, %{since: 1500, info: true})

    assert_raise ArgumentError, ~r/kinds/, fn -> Beamprof.read_recording(path, kinds: [:nope]) end
    assert {:error, :not_a_recording} = Beamprof.read_recording(__ENV__.file)
  end

  test "recording_report/2 writes the page", %{tmp_dir: dir} do
    out = Path.join(dir, "report.html")
    assert {:ok, ^out} = Beamprof.recording_report(recording(dir), out)
    assert File.read!(out) =~ "<svg class=\"chart\" id=\"gate\""
  end
end
