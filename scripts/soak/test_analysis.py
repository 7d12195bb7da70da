"""Checks the soak's verdict rules: python3 -m unittest discover -s scripts/soak -p 'test_*.py'"""
import unittest

from analysis import analyse_centre, missing_ranges, on_intervals, parse_cyclictest, slope_per_hour, smaps_rollup

ROOT = "edge/v1/gw"


def msg(topic: str, payload: str) -> str:
    return f"{ROOT}/{topic} {payload}\n"


class SeqTests(unittest.TestCase):
    def test_contiguous_with_duplicate_and_no_seq(self):
        lines = [msg("status", '{"state":"online","seq":1}'),
                 msg("event/lamp-01", '{"seq":2,"type":"presence","data":{"detected":true}}'),
                 msg("event/lamp-01", '{"seq":2,"type":"presence","data":{"detected":true}}'),
                 msg("telemetry/lamp-01", '{"seq":3,"values":{}}'),
                 msg("status", '{"state":"offline"}')]
        r = analyse_centre(lines, ROOT, expected_last=3)
        self.assertEqual(r.gaps, [])
        self.assertEqual(r.duplicates, 1)
        self.assertEqual(r.without_seq, 1)
        self.assertEqual(r.distinct, 3)
        self.assertEqual(r.events, {"presence": 2})
        self.assertEqual(r.by_kind, {"status": 2, "event": 2, "telemetry": 1})

    def test_gap_in_middle_and_tail(self):
        lines = [msg("event/x", f'{{"seq":{s},"type":"t"}}') for s in (1, 2, 5, 6)]
        r = analyse_centre(lines, ROOT, expected_last=8)
        self.assertEqual(r.gaps, [(3, 4), (7, 8)])
        self.assertEqual(r.missing, 4)

    def test_head_gap(self):
        r = analyse_centre([msg("event/x", '{"seq":3,"type":"t"}')], ROOT)
        self.assertEqual(r.gaps, [(1, 2)])

    def test_priority_and_alarm_figures(self):
        lines = [msg("event/north", '{"seq":1,"type":"priority.timeout","data":{"held_ms":15003.5,"dropped":1}}'),
                 msg("event/north", '{"seq":2,"type":"priority.request","data":{"latency_ms":12,"delayed":false}}'),
                 msg("event/north", '{"seq":3,"type":"priority.request","data":{"latency_ms":2900,"delayed":true}}'),
                 msg("alarm/bollard-1/travel_timeout", '{"seq":4,"active":true}'),
                 msg("alarm/bollard-1/travel_timeout", '{"seq":5,"active":false}'),
                 msg("event/bollard-1", '{"seq":6,"type":"bollard.state","data":{"state":"lowering","cause":"reversal"}}')]
        r = analyse_centre(lines, ROOT)
        self.assertEqual(r.priority_timeout_max_held_ms, 15003.5)
        self.assertEqual(r.priority_request_max_latency_ms, 12)
        self.assertEqual(r.alarms_raised, {"travel_timeout": 1})
        self.assertEqual(r.bollard_causes, {"lowering/reversal": 1})

    def test_garbage_is_counted_not_fatal(self):
        r = analyse_centre([msg("event/x", "not json"), msg("event/x", "[1]"), "\n"], ROOT)
        self.assertEqual(r.unparsable, 2)
        self.assertEqual(r.messages, 2)

    def test_missing_ranges(self):
        self.assertEqual(missing_ranges({1, 2, 3}, 1, 3), [])
        self.assertEqual(missing_ranges(set(), 1, 2), [(1, 2)])


class FigureTests(unittest.TestCase):
    def test_slope(self):
        pts = [(t, 1000 + t / 3600 * 500) for t in range(0, 3600, 10)]   # +500 kB/h
        self.assertAlmostEqual(slope_per_hour(pts), 500, places=6)
        self.assertAlmostEqual(slope_per_hour([(t, 7.0) for t in range(10)]), 0)
        self.assertIsNone(slope_per_hour([(0, 1), (1, 2)]))

    def test_on_intervals(self):
        s = [(0.0, False), (0.1, True), (0.2, True), (0.5, False), (1.0, True), (1.3, True)]
        self.assertEqual(on_intervals(s), [(0.1, 0.4), (1.0, 0.30000000000000004)])

    def test_cyclictest(self):
        text = "# /dev/cpu_dma_latency set to 0us\n000000 000000\n000003 000090\n000010 000009\n" \
               "000050 000001\n# Total: 000000100\n# Min Latencies: 00002\n# Avg Latencies: 00003\n" \
               "# Max Latencies: 00050\n# Histogram Overflows: 00000\n"
        c = parse_cyclictest(text)
        self.assertEqual(c.samples, 100)
        self.assertEqual(c.max_us, 50)
        self.assertEqual(c.percentile(50), 3)
        self.assertEqual(c.percentile(99), 10)
        self.assertEqual(c.percentile(100), 50)

    def test_smaps(self):
        r = smaps_rollup("55d0-7ff [rollup]\nRss:               12345 kB\nPss:                9000 kB\nPss_Anon: 10 kB\n")
        self.assertEqual(r["Rss"], 12345)
        self.assertEqual(r["Pss"], 9000)


if __name__ == "__main__":
    unittest.main()
