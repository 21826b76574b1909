"""The quick case of ``bench/chaos.py``: a few random SIGKILLs of primaries and replicas under
a mixed read/write load, then hostile clients, a damaged write log and a full disk."""
from __future__ import annotations

from bench import chaos  # the repository root is on sys.path via pytest's `pythonpath`


def test_quick_chaos_loses_nothing(tmp_path):
    out = chaos.run(tmp_path, kills=3, seconds=10, seed=1)
    assert out["acked_writes"] > 30 and out["reads"] > 30, out
    assert out["acked_writes_lost"] == 0 and out["torn_edges"] == 0, out
    assert out["duplicated_edges"] == 0 and out["wrong_sampling_answers"] == 0, out
    assert out["read_errors"] == 0, out  # one failure at a time: reads always fail over
    assert out["corrupt_log_refused"] and out["corrupt_log_accepted"], out
    hostile = out["hostile_clients"]
    assert hostile["garbage_bytes"] == "INVALID_ARGUMENT", hostile
    assert hostile["oversized_answer"] == "RESOURCE_EXHAUSTED", hostile
    assert hostile["others_answered_during_unread_streams"], hostile
    assert set(hostile["burst_of_2000"]) <= {"OK", "RESOURCE_EXHAUSTED"}, hostile
    disk = out["full_disk"]
    assert "skipped" in disk or (disk["refused_with"] == "RESOURCE_EXHAUSTED"
                                 and disk["resumed_without_restart"]), disk
