"""CRI log files: format, partial lines, rotation, reading back with tail and since."""

from __future__ import annotations

from runtime.logs import CriLogWriter, format_time, parse_line, read_logs

T0 = 1_767_323_045_123_456_789  # 2026-01-02T03:04:05.123456789Z


def test_lines_in_cri_format(tmp_path):
    path = tmp_path / "c.log"
    w = CriLogWriter(str(path))
    w.write("stdout", b"hello\nwor", now_ns=T0)
    w.write("stderr", b"oops\n", now_ns=T0)
    w.write("stdout", b"ld\n", now_ns=T0)
    w.close()
    assert format_time(T0) == "2026-01-02T03:04:05.123456789Z"
    assert path.read_bytes().splitlines() == [
        b"2026-01-02T03:04:05.123456789Z stdout F hello",
        b"2026-01-02T03:04:05.123456789Z stderr F oops",
        b"2026-01-02T03:04:05.123456789Z stdout F world",
    ]
    assert parse_line(path.read_bytes().splitlines()[0]).time_ns == T0


def test_long_and_unfinished_lines_are_partial_and_read_back_whole(tmp_path):
    path = tmp_path / "c.log"
    w = CriLogWriter(str(path))
    w.write("stdout", b"x" * 40_000 + b"\nend", now_ns=T0)
    w.close()  # "end" had no newline when the container stopped
    tags = [line.split(b" ")[2] for line in path.read_bytes().splitlines()]
    assert tags == [b"P", b"P", b"F", b"P"]
    lines = read_logs(str(path))
    assert [len(ln.text) for ln in lines] == [40_000, 3]
    assert lines[1].partial


def test_rotation_keeps_a_fixed_number_of_files_and_reads_across_them(tmp_path):
    path = tmp_path / "c.log"
    w = CriLogWriter(str(path), max_bytes=200, max_files=3)
    for i in range(40):
        w.write("stdout", b"line %02d\n" % i, now_ns=T0 + i)
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c.log", "c.log.1", "c.log.2"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    lines = read_logs(str(path))
    texts = [ln.text for ln in lines]
    assert texts == sorted(texts) and texts[-1] == b"line 39"  # oldest first, newest kept
    assert [ln.text for ln in read_logs(str(path), tail=2)] == [b"line 38", b"line 39"]
    assert [ln.text for ln in read_logs(str(path), since_ns=T0 + 38)] == [b"line 38", b"line 39"]
    assert read_logs(str(path), tail=0) == []


def test_stream_filter(tmp_path):
    path = tmp_path / "c.log"
    w = CriLogWriter(str(path))
    w.write("stdout", b"out\n", now_ns=T0)
    w.write("stderr", b"err\n", now_ns=T0)
    w.close()
    assert [ln.text for ln in read_logs(str(path), streams=("stderr",))] == [b"err"]


def test_a_terminals_output_is_written_as_it_comes(tmp_path):
    """A tty's prompt has no newline: it is written at once as a part (P), which attach
    shows as it comes and logs joins back into the line it begins."""
    path = tmp_path / "c.log"
    w = CriLogWriter(str(path))
    w.flush_each = True
    w.write("stdout", b"/ # ", now_ns=T0)
    assert path.read_bytes() == b"2026-01-02T03:04:05.123456789Z stdout P / # \n"
    w.write("stdout", b"ls\r\nbin\r\n/ # ", now_ns=T0)
    w.close()
    assert [(ln.text, ln.partial) for ln in read_logs(str(path))] == [
        (b"/ # ls\r", False), (b"bin\r", False), (b"/ # ", True)]
