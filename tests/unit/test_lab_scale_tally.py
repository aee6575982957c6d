"""The tally of `scripts/lab-scale` (benchmarks/lab_scale.py): failed tries and second starts
counted, the summary line (the boot itself: tests/lab/test_lab_scale.py)."""

from benchmarks.lab_scale import Try, summary


def test_the_scale_script_counts_failed_tries_and_second_starts():
    tries = [Try(1, 97.4, 30, (), None),
             Try(2, 120.2, 30, ("h7's QEMU exited while booting (x); starting it once more",), None),
             Try(3, 40.0, 12, (), "guest h3's QEMU exited while booting, twice")]
    assert [t.line(30) for t in tries] == [
        "try 1: 30 guests up in 97 s; retried: none",
        "try 2: 30 guests up in 120 s; retried: [\"h7's QEMU exited while booting (x); starting it "
        "once more\"]",
        "try 3: FAILED after 40 s: guest h3's QEMU exited while booting, twice"]
    assert summary(tries, 30) == ("2 of 3 tries brought all 30 guests up; second starts: 1; "
                                  "up in 97-120 s (median 109 s)")
    assert summary(tries[2:], 30) == "0 of 1 tries brought all 30 guests up; second starts: 0"
