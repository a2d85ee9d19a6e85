"""LogCapture routing (the no-heavy-imports rule lives in tests/unit/test_imports.py)."""

from trtops.trt import logger as trt_logger
from trtops.trt.logger import LogCapture


def test_capture_routes_and_echoes():
    echoed = []
    with LogCapture(echo=echoed.append) as outer:
        trt_logger._dispatch(2, "a warning")
        trt_logger._dispatch(3, "some info")
        trt_logger._dispatch(4, "verbose noise")
        trt_logger._dispatch(1, "an error")
        outer.info("trtops progress")
    trt_logger._dispatch(1, "after exit")
    text = outer.text
    assert "[TRT] [W] a warning" in text and "[TRT] [I] some info" in text and "[E] an error" in text
    assert "verbose noise" not in text and "after exit" not in text
    assert list(outer.errors) == ["an error"]
    assert [line.split("] ", 2)[-1] for line in echoed] == ["[W] a warning", "[E] an error", "[I] trtops progress"]
    assert outer.tail(1).endswith("trtops progress")


def test_broken_echo_does_not_break():
    def boom(_):
        raise RuntimeError("no")

    with LogCapture(echo=boom) as capture:
        trt_logger._dispatch(1, "error")
    assert "error" in capture.text


def test_stream_gets_every_kept_line_as_it_happens():
    import io

    stream = io.StringIO()
    with LogCapture(min_severity=3, stream=stream) as capture:
        trt_logger._dispatch(3, "parsing")
        assert stream.getvalue().endswith("[TRT] [I] parsing\n")  # before the build ends
        trt_logger._dispatch(4, "verbose noise")
        capture.info("building")
    assert stream.getvalue().count("\n") == 2 and "verbose noise" not in stream.getvalue()
    stream.close()
    with LogCapture(stream=stream) as capture:  # a closed stream does not break the build
        trt_logger._dispatch(1, "error")
    assert "error" in capture.text


def test_line_limit():
    with LogCapture(max_lines=3) as capture:
        for i in range(10):
            trt_logger._dispatch(3, f"m{i}")
    assert capture.text.count("\n") == 3 and "m9" in capture.text and "m6" not in capture.text
