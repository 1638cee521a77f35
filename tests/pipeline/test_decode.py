"""
Tests for slurm_sd.pipeline.decode: real slurmrestd bodies and hand-made ones for every
API version, leniency towards odd nodes, and every BadResponse case.
"""
import json

from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.errors import BadResponse, SlurmSDError
from slurm_sd.pipeline.decode import decode_nodes, describe_errors
from slurm_sd.pipeline.nodefields import normalize_node
from slurm_sd.pipeline.nodes import Node, NodeList
from tests.fakes import fixture_body


def states(node_list):
    """``{name: (state, flags)}`` of a NodeList."""
    return {node.name: (node.state, node.flags) for node in node_list.nodes}


def body(nodes, **envelope):
    """A v0.0.40-style body holding ``nodes``, as bytes."""
    document = {"meta": {"slurm": {"cluster": "testcluster"}}, "errors": [],
                "warnings": [], "nodes": nodes}
    document.update(envelope)
    return json.dumps(document).encode("utf-8")


# What the 22.05 cluster reports after the state changes of the "varied" capture
# (see tests/fixtures/README.rst), for both v0.0.37 and v0.0.38.
VARIED_2205 = {
    "cpu01": ("mixed", ("drain",)),
    "cpu02": ("unknown", ("drain", "not_responding")),
    "cpu03": ("unknown", ("drain", "not_responding")),
    "cpu04": ("unknown", ("not_responding",)),
    "gpu01": ("unknown", ("not_responding",)),
    "gpu02": ("unknown", ("not_responding",)),
    "gpu03": ("down", ("not_responding",)),
    "gpu04": ("unknown", ("not_responding",)),
}

PARTITIONS_2205 = {
    "cpu01": ("debug", "batch"), "cpu02": ("batch",), "cpu03": ("batch",),
    "cpu04": ("batch",), "gpu01": ("batch", "gpu"), "gpu02": ("batch", "gpu"),
    "gpu03": ("gpu",), "gpu04": ("gpu",),
}


class RealSampleTests(SynchronousTestCase):
    """Bodies captured from real Slurm 22.05.8 and 24.11.7 clusters."""

    def test_v0037_fresh(self):
        """The v0.0.37 body right after start gives eight nodes, cpu01 idle, others unknown."""
        nodes = decode_nodes(fixture_body("slurm-22.05-v0.0.37-nodes.json"))
        self.assertEqual(nodes.cluster_name, "")
        self.assertEqual(nodes.skipped, 0)
        self.assertEqual([n.name for n in nodes.nodes],
                         ["cpu01", "cpu02", "cpu03", "cpu04",
                          "gpu01", "gpu02", "gpu03", "gpu04"])
        self.assertEqual(nodes.nodes[0], Node(
            name="cpu01", hostname="vm", address="127.0.0.1",
            partitions=("debug", "batch"), state="idle", flags=(),
            architecture="x86_64", features=("cpu", "intel", "avx2"),
            active_features=("cpu", "intel", "avx2"), gres="", reason=""))
        self.assertEqual({n.state for n in nodes.nodes[1:]}, {"unknown"})

    def test_v0037_comma_features(self):
        """v0.0.37 comma-separated features and gres strings become tuples and text."""
        nodes = decode_nodes(fixture_body("slurm-22.05-v0.0.37-nodes.json"))
        gpu01 = nodes.nodes[4]
        self.assertEqual(gpu01.features, ("gpu", "a100", "nvlink"))
        self.assertEqual(gpu01.active_features, ("gpu", "a100", "nvlink"))
        self.assertEqual(gpu01.gres, "gpu:a100:4")
        self.assertEqual(gpu01.architecture, "")
        self.assertEqual(gpu01.hostname, "gpu01")

    def test_v0038_same_as_v0037(self):
        """The v0.0.38 body of the same cluster decodes to exactly the v0.0.37 nodes."""
        self.assertEqual(decode_nodes(fixture_body("slurm-22.05-v0.0.38-nodes.json")),
                         decode_nodes(fixture_body("slurm-22.05-v0.0.37-nodes.json")))

    def test_v0037_varied_states(self):
        """v0.0.37 lowercase state plus state_flags give base state and lower-case flags."""
        nodes = decode_nodes(fixture_body("slurm-22.05-v0.0.37-nodes-varied.json"))
        self.assertEqual(states(nodes), VARIED_2205)

    def test_v0038_varied(self):
        """v0.0.38 varied body: states, flags, partitions and reasons as Slurm reported them."""
        nodes = decode_nodes(fixture_body("slurm-22.05-v0.0.38-nodes-varied.json"))
        self.assertEqual(states(nodes), VARIED_2205)
        self.assertEqual({n.name: n.partitions for n in nodes.nodes}, PARTITIONS_2205)
        reasons = {n.name: n.reason for n in nodes.nodes if n.reason}
        self.assertEqual(reasons, {"cpu01": "test: draining with a running job",
                                   "cpu02": "test: drain of a node without slurmd",
                                   "cpu03": "disk failure",
                                   "gpu03": "test: GPU fault"})

    def test_v0038_drained(self):
        """After the job ended, cpu01 is idle with the drain flag."""
        nodes = decode_nodes(fixture_body("slurm-22.05-v0.0.38-nodes-drained.json"))
        self.assertEqual(states(nodes)["cpu01"], ("idle", ("drain",)))
        self.assertEqual(states(nodes)["gpu03"], ("down", ("not_responding",)))

    def test_v0040_varied(self):
        """The 24.11 v0.0.40 body: upper-case state lists, list features, cluster from meta."""
        nodes = decode_nodes(fixture_body("slurm-24.11-v0.0.40-nodes-varied.json"))
        self.assertEqual(nodes.cluster_name, "testcluster")
        self.assertEqual(nodes.skipped, 0)
        expected = dict(VARIED_2205, cpu03=("unknown", ("not_responding",)))
        self.assertEqual(states(nodes), expected)
        self.assertEqual({n.name: n.partitions for n in nodes.nodes}, PARTITIONS_2205)
        cpu01 = nodes.nodes[0]
        self.assertEqual((cpu01.hostname, cpu01.architecture, cpu01.features),
                         ("vm", "x86_64", ("cpu", "intel", "avx2")))
        self.assertEqual(nodes.nodes[6].gres, "gpu:v100:2")


class VersionFixtureTests(SynchronousTestCase):
    """Hand-made bodies following the v0.0.39 .. v0.0.45 node schemas (v0.0.46 as v0.0.45)."""

    def test_v0039(self):
        """v0.0.39: state lists with flags, no cluster in meta, a node in no partition."""
        nodes = decode_nodes(fixture_body("v0.0.39-nodes.json"))
        self.assertEqual(nodes.cluster_name, "")
        self.assertEqual(states(nodes), {
            "c1": ("idle", ()),
            "c2": ("mixed", ("drain",)),
            "c3": ("down", ("not_responding",)),
            "g1": ("allocated", ()),
            "g2": ("idle", ("cloud", "powered_down")),
            "s1": ("future", ()),
        })
        by_name = {n.name: n for n in nodes.nodes}
        self.assertEqual(by_name["c2"].partitions, ("cpu", "debug"))
        self.assertEqual(by_name["s1"].partitions, ())
        self.assertEqual(by_name["g2"].features, ("gpu", "a100"))
        self.assertEqual(by_name["g2"].active_features, ())
        self.assertEqual(by_name["g1"].gres, "gpu:a100:4")

    def test_v0041(self):
        """v0.0.41: power, reboot and error states; a node with no address or hostname."""
        nodes = decode_nodes(fixture_body("v0.0.41-nodes.json"))
        self.assertEqual(nodes.cluster_name, "hpc41")
        self.assertEqual(states(nodes), {
            "a1": ("idle", ("powering_up",)),
            "a2": ("idle", ("drain", "reboot_requested")),
            "a3": ("error", ()),
            "g1": ("mixed", ()),
            "f1": ("future", ()),
        })
        f1 = nodes.nodes[-1]
        self.assertEqual((f1.address, f1.hostname, f1.partitions), ("", "", ()))
        self.assertEqual(nodes.nodes[3].architecture, "aarch64")
        self.assertEqual(nodes.nodes[3].gres, "gpu:h100:4(S:0-1)")

    def test_v0042(self):
        """v0.0.42: fail, power_drain and completing flags; an empty address."""
        nodes = decode_nodes(fixture_body("v0.0.42-nodes.json"))
        self.assertEqual(nodes.cluster_name, "hpc42")
        self.assertEqual(states(nodes), {
            "n1": ("idle", ()),
            "n2": ("mixed", ("fail",)),
            "n3": ("idle", ("power_drain",)),
            "g1": ("allocated", ("completing",)),
            "g2": ("down", ("drain",)),
            "u1": ("idle", ("powered_down",)),
        })
        n2 = nodes.nodes[1]
        self.assertEqual((n2.address, n2.hostname), ("", "n2.cluster.example"))
        self.assertEqual(nodes.nodes[3].partitions, ("gpu", "cpu"))

    def test_v0043(self):
        """v0.0.43: an empty meta.slurm.cluster gives no cluster name."""
        nodes = decode_nodes(fixture_body("v0.0.43-nodes.json"))
        self.assertEqual(nodes.cluster_name, "")
        self.assertEqual(states(nodes), {
            "m1": ("idle", ("maintenance", "reserved")),
            "m2": ("unknown", ("not_responding",)),
            "m3": ("idle", ("planned",)),
            "g1": ("mixed", ("drain", "not_responding")),
            "p1": ("idle", ("powering_down",)),
        })

    def test_v0044(self):
        """v0.0.44: the newer EXTERNAL, BLOCKED and DYNAMIC_* flags are kept."""
        nodes = decode_nodes(fixture_body("v0.0.44-nodes.json"))
        self.assertEqual(nodes.cluster_name, "hpc44")
        self.assertEqual(states(nodes), {
            "e1": ("idle", ("external",)),
            "e2": ("allocated", ("blocked",)),
            "e3": ("down", ("drain", "not_responding")),
            "g1": ("idle", ("cloud", "powered_down")),
            "g2": ("mixed", ("dynamic_norm",)),
            "x1": ("future", ("dynamic_future",)),
        })

    def test_v0045(self):
        """v0.0.45: POWER_DOWN_ASAP / POWER_DOWN_FORCE flags, features as lists."""
        nodes = decode_nodes(fixture_body("v0.0.45-nodes.json"))
        self.assertEqual(nodes.cluster_name, "hpc45")
        self.assertEqual(states(nodes), {
            "k1": ("idle", ()),
            "k2": ("allocated", ("drain", "power_down_asap")),
            "k3": ("down", ("not_responding",)),
            "g1": ("mixed", ()),
            "g2": ("idle", ("powered_down", "power_down_force")),
            "f1": ("future", ()),
        })
        self.assertEqual(nodes.nodes[0].features, ("cpu", "sapphirerapids"))
        self.assertEqual(nodes.nodes[2].partitions, ("cpu", "debug"))

    def test_v0046(self):
        """v0.0.46 (Slurm 26.11's data_parser) is parsed: cluster, states, GPU node fields."""
        nodes = decode_nodes(fixture_body("v0.0.46-nodes.json"))
        self.assertEqual((nodes.cluster_name, nodes.skipped), ("hpc46", 0))
        self.assertEqual(states(nodes), {
            "r1": ("idle", ("reboot_issued",)),
            "r2": ("mixed", ("drain", "completing")),
            "r3": ("unknown", ("invalid_reg",)),
            "g1": ("allocated", ()),
            "g2": ("idle", ("powering_down", "power_down")),
            "p1": ("idle", ("planned",)),
        })
        g1 = nodes.nodes[3]
        self.assertEqual((g1.address, g1.partitions, g1.architecture, g1.features, g1.gres),
                         ("10.46.1.1", ("gpu", "cpu"), "aarch64", ("gpu", "gb300"),
                          "gpu:gb300:4"))
        self.assertEqual(nodes.nodes[1].reason, "draining")


class NormalizeNodeTests(SynchronousTestCase):
    """normalize_node() is lenient about one node's fields."""

    def test_minimal(self):
        """A node with only a name gets empty fields and the unknown state."""
        self.assertEqual(normalize_node({"name": "n1"}),
                         Node("n1", "", "", (), "unknown", (), "", (), (), "", ""))

    def test_unknown_fields_ignored(self):
        """Fields we do not know, including number objects, change nothing."""
        raw = {"name": "n1", "state": ["IDLE"], "brand_new": {"x": [1, 2]},
               "free_mem": {"set": True, "infinite": False, "number": 5},
               "boot_time": {"set": False, "infinite": True, "number": 0}}
        self.assertEqual(normalize_node(raw), Node("n1", state="idle"))

    def test_null_fields(self):
        """Null fields become empty strings and empty tuples."""
        raw = dict.fromkeys(["hostname", "address", "partitions", "state", "state_flags",
                             "architecture", "features", "active_features", "gres",
                             "reason"])
        raw["name"] = "n1"
        self.assertEqual(normalize_node(raw), Node("n1"))

    def test_wrong_types(self):
        """Wrong-typed fields (numbers, objects, booleans) become empty, never fatal."""
        number = {"set": True, "infinite": False, "number": 1}
        raw = {"name": "n1", "hostname": 7, "address": number, "partitions": 3,
               "state": 12, "state_flags": "DRAIN", "architecture": ["x86_64"],
               "features": {"a": 1}, "active_features": True, "gres": 4, "reason": []}
        self.assertEqual(normalize_node(raw), Node("n1"))

    def test_unusable_name(self):
        """A node whose name is missing, null, empty, blank or not a string is skipped."""
        for name in (None, "", "   ", 5, ["n1"], {"set": True, "number": 1}):
            self.assertIsNone(normalize_node({"name": name, "state": "idle"}), name)
        self.assertIsNone(normalize_node({"state": "idle"}))

    def test_not_an_object(self):
        """An entry that is not an object is skipped."""
        for raw in ("n1", 1, None, ["n1"]):
            self.assertIsNone(normalize_node(raw))

    def test_name_stripped(self):
        """Whitespace around a node name is removed."""
        self.assertEqual(normalize_node({"name": " n1\n"}).name, "n1")

    def test_partitions_list(self):
        """A partition list keeps strings in order, dropping non-strings, empties and repeats."""
        raw = {"name": "n1", "partitions": ["gpu", "", None, 7, "batch", "gpu", " "]}
        self.assertEqual(normalize_node(raw).partitions, ("gpu", "batch"))

    def test_partitions_comma_string(self):
        """A comma-separated partition string is split, stripped and cleaned."""
        raw = {"name": "n1", "partitions": "gpu, batch,,gpu"}
        self.assertEqual(normalize_node(raw).partitions, ("gpu", "batch"))

    def test_features_string_or_list(self):
        """Features as a comma string (<= v0.0.38) and as a list (v0.0.39+) agree."""
        old = normalize_node({"name": "n", "features": "gpu,a100",
                              "active_features": "gpu"})
        new = normalize_node({"name": "n", "features": ["gpu", "a100"],
                              "active_features": ["gpu"]})
        self.assertEqual(old, new)
        self.assertEqual((new.features, new.active_features), (("gpu", "a100"), ("gpu",)))

    def test_old_and_new_state_shapes_agree(self):
        """state+state_flags (v0.0.37/38) and the upper-case state list (v0.0.39+) agree."""
        old = normalize_node({"name": "n", "state": "unknown",
                              "state_flags": ["DRAIN", "NOT_RESPONDING"]})
        new = normalize_node({"name": "n", "state": ["UNKNOWN", "DRAIN", "NOT_RESPONDING"]})
        self.assertEqual(old, new)
        self.assertEqual((new.state, new.flags), ("unknown", ("drain", "not_responding")))

    def test_state_missing_or_garbage(self):
        """A missing, empty or unrecognised base state becomes unknown."""
        for state in (None, "", [], "frobbed", ["FROBBED"], [7], {"a": 1}):
            node = normalize_node({"name": "n", "state": state})
            self.assertEqual((node.state, node.flags), ("unknown", ()), state)

    def test_garbage_base_keeps_flags(self):
        """An unknown word in the base slot is dropped but the flags after it are kept."""
        node = normalize_node({"name": "n", "state": ["FROBBED", "DRAIN"]})
        self.assertEqual((node.state, node.flags), ("unknown", ("drain",)))

    def test_unknown_flags(self):
        """A well-formed unknown flag is kept lower-cased; '?', blanks and non-strings are not."""
        node = normalize_node({"name": "n", "state": "idle",
                               "state_flags": ["?", "SHINY_NEW", "", 3, None, "DRAIN"]})
        self.assertEqual(node.flags, ("shiny_new", "drain"))

    def test_flag_order_and_repeats(self):
        """Flags keep Slurm's order and a repeated flag appears once."""
        node = normalize_node({"name": "n", "state": ["MIXED", "NOT_RESPONDING", "DRAIN",
                                                      "NOT_RESPONDING"]})
        self.assertEqual(node.flags, ("not_responding", "drain"))

    def test_base_state_not_first(self):
        """A base state after a flag is still found as the base state."""
        node = normalize_node({"name": "n", "state": ["DRAIN", "IDLE"]})
        self.assertEqual((node.state, node.flags), ("idle", ("drain",)))

    def test_second_base_state_dropped(self):
        """Only the first base state counts; a second one is not turned into a flag."""
        node = normalize_node({"name": "n", "state": ["IDLE", "MIXED", "DRAIN"]})
        self.assertEqual((node.state, node.flags), ("idle", ("drain",)))

    def test_state_letter_case(self):
        """Base states and flags in any letter case are recognised."""
        node = normalize_node({"name": "n", "state": "Idle", "state_flags": ["Drain"]})
        self.assertEqual((node.state, node.flags), ("idle", ("drain",)))

    def test_plus_spelling(self):
        """A state string written as base+flags is split into base state and flags."""
        node = normalize_node({"name": "n", "state": "mixed+drain"})
        self.assertEqual((node.state, node.flags), ("mixed", ("drain",)))

    def test_every_base_state(self):
        """All eight base states are recognised in both spellings."""
        for base in ("idle", "allocated", "mixed", "down", "error", "future",
                     "unknown", "invalid"):
            self.assertEqual(normalize_node({"name": "n", "state": base}).state, base)
            self.assertEqual(normalize_node({"name": "n", "state": [base.upper()]}).state,
                             base)

    def test_node_cluster_name_ignored(self):
        """A node's own cluster_name field does not name the cluster."""
        nodes = decode_nodes(body([{"name": "n1", "cluster_name": "fed1"}], meta={}))
        self.assertEqual(nodes.cluster_name, "")


class NodeListTests(SynchronousTestCase):
    """decode_nodes() builds the NodeList from the envelope."""

    def test_duplicates(self):
        """The first node of a name is kept and later ones are counted as skipped."""
        nodes = decode_nodes(body([{"name": "a", "state": ["IDLE"]},
                                   {"name": "b"},
                                   {"name": "a", "state": ["DOWN"]},
                                   {"name": "a"}]))
        self.assertEqual([(n.name, n.state) for n in nodes.nodes],
                         [("a", "idle"), ("b", "unknown")])
        self.assertEqual(nodes.skipped, 2)

    def test_unusable_entries_counted(self):
        """Nameless nodes and non-object entries are skipped and counted."""
        nodes = decode_nodes(body([{"name": ""}, "x", None, {"name": "ok"}, {}]))
        self.assertEqual([n.name for n in nodes.nodes], ["ok"])
        self.assertEqual(nodes.skipped, 4)

    def test_all_unusable_refused(self):
        """Entries of which none is usable are a bad answer, not an empty cluster."""
        error = self.assertRaises(BadResponse, decode_nodes,
                                  body([{"name": ""}, "x", {"node_name": "a"}]))
        self.assertIn("listed 3 nodes but none has a usable name", str(error))

    def test_order_kept(self):
        """Nodes stay in the order slurmrestd sent them."""
        names = ["z9", "a1", "m5"]
        nodes = decode_nodes(body([{"name": name} for name in names]))
        self.assertEqual([n.name for n in nodes.nodes], names)

    def test_zero_nodes(self):
        """An empty node list is real data, not an error."""
        self.assertEqual(decode_nodes(body([])),
                         NodeList(nodes=(), cluster_name="testcluster", skipped=0))

    def test_cluster_from_meta(self):
        """The cluster name comes from meta.slurm.cluster."""
        self.assertEqual(decode_nodes(body([])).cluster_name, "testcluster")

    def test_cluster_odd_meta(self):
        """A missing or wrong-typed meta, slurm or cluster gives no cluster name."""
        for meta in (None, 5, [], {}, {"slurm": "x"}, {"slurm": {"cluster": 5}},
                     {"Slurm": {"cluster": "old"}}):
            self.assertEqual(decode_nodes(body([], meta=meta)).cluster_name, "", meta)

    def test_warnings_ignored(self):
        """A non-empty warnings list does not fail the decode."""
        nodes = decode_nodes(body([{"name": "n1"}],
                                  warnings=[{"description": "x", "source": "y"}]))
        self.assertEqual(len(nodes.nodes), 1)

    def test_str_body(self):
        """A str body decodes like the same bytes."""
        data = fixture_body("v0.0.42-nodes.json")
        self.assertEqual(decode_nodes(data.decode("utf-8")), decode_nodes(data))

    def test_escaped_slashes(self):
        """Slurm's escaped slashes and non-ASCII text decode normally."""
        nodes = decode_nodes(b'{"nodes": [{"name": "n1", "reason": "a\\/b \xc3\xa9"}]}')
        self.assertEqual(nodes.nodes[0].reason, "a/b \u00e9")


class BadResponseTests(SynchronousTestCase):
    """Bodies that cannot be used raise BadResponse with one operator-friendly line."""

    def assertBad(self, data, message):
        """decode_nodes(data) raises BadResponse whose str() is ``message``."""
        error = self.assertRaises(BadResponse, decode_nodes, data)
        self.assertEqual(str(error), message)
        self.assertNotIn("\n", str(error))
        return error

    def test_is_slurmsd_error(self):
        """BadResponse is a SlurmSDError."""
        self.assertTrue(issubclass(BadResponse, SlurmSDError))

    def test_empty_body(self):
        """An empty body is reported as not JSON, saying that it is empty."""
        self.assertBad(b"", "slurmrestd answered with a body that is not JSON "
                            "(an empty body)")
        self.assertBad(b" \r\n", "slurmrestd answered with a body that is not JSON "
                                "(an empty body)")

    def test_html_page(self):
        """An HTML page (a proxy's or a portal's) is named as such, with the fix."""
        self.assertBad(b"\n  <!DOCTYPE html><html><title>Sign in</title></html>",
                       "slurmrestd answered with a body that is not JSON (an HTML or "
                       "XML page: does slurmrestd.url point at slurmrestd?)")

    def test_text_plain(self):
        """slurmrestd's text/plain 401 body is reported as not JSON."""
        self.assertBad(fixture_body("slurm-22.05-v0.0.38-nodes-no-auth-headers.http"),
                       "slurmrestd answered with a body that is not JSON "
                       "(Expecting value: line 1 column 1 (char 0))")

    def test_truncated(self):
        """A body cut short is reported as not JSON, naming where."""
        data = fixture_body("slurm-22.05-v0.0.38-nodes.json")[:100]
        error = self.assertRaises(BadResponse, decode_nodes, data)
        self.assertTrue(str(error).startswith(
            "slurmrestd answered with a body that is not JSON ("), str(error))
        self.assertIn("line ", str(error))

    def test_invalid_utf8(self):
        """Bytes that are not UTF-8 give BadResponse, not UnicodeDecodeError."""
        self.assertBad(b'{"nodes": [{"name": "n\xff"}]}',
                       "slurmrestd answered with a body that is not JSON "
                       "(not UTF-8: invalid start byte at byte 22)")

    def test_nested_too_deeply(self):
        """Absurdly nested JSON gives BadResponse, not RecursionError."""
        self.assertBad(b"[" * 200000, "slurmrestd answered with a body that is not JSON "
                                      "(nested too deeply)")

    def test_huge_integer(self):
        """An integer too long for Python's int parser gives BadResponse."""
        error = self.assertRaises(BadResponse, decode_nodes,
                                  b'{"nodes": [], "n": ' + b"1" * 5000 + b"}")
        self.assertIn("not JSON", str(error))

    def test_not_an_object(self):
        """A JSON list, string, number or null at the top is refused."""
        self.assertBad(b"[]", "slurmrestd answered with JSON that is not an object (a list)")
        self.assertBad(b'"nodes"', "slurmrestd answered with JSON that is not an object "
                                   "(a string)")
        self.assertBad(b"3", "slurmrestd answered with JSON that is not an object (a number)")
        self.assertBad(b"null", "slurmrestd answered with JSON that is not an object (null)")

    def test_errors_errno(self):
        """A v0.0.38 error (key errno) is reported with its number."""
        self.assertBad(fixture_body("slurm-22.05-v0.0.38-nodes-slurmctld-down.http"),
                       "slurmrestd reported errors: Unspecified error (errno -1)")
        self.assertBad(fixture_body("slurm-22.05-v0.0.38-node-nosuch.http"),
                       "slurmrestd reported errors: Invalid node name specified "
                       "(errno 2018)")

    def test_errors_error_number(self):
        """A v0.0.40 error (key error_number) is reported with its description."""
        self.assertBad(fixture_body("slurm-24.11-v0.0.40-nodes-slurmctld-down.http"),
                       "slurmrestd reported errors: Failure to query nodes: Unable to "
                       "contact slurm controller (connect failure) (error_number 1800)")

    def test_errors_beat_nodes(self):
        """A non-empty errors list fails the decode even when nodes are present."""
        self.assertBad(body([{"name": "n1"}], errors=[{"error": "Partial", "errno": 9}]),
                       "slurmrestd reported errors: Partial (errno 9)")

    def test_several_errors(self):
        """Several errors are joined on one line and a long list is cut short."""
        errors = [{"error": f"e{i}", "error_number": i} for i in range(5)]
        self.assertBad(body([], errors=errors),
                       "slurmrestd reported errors: e0 (error_number 0); "
                       "e1 (error_number 1); e2 (error_number 2); and 2 more")

    def test_odd_error_entries(self):
        """Error entries without text, as strings, or with newlines still give one line."""
        self.assertBad(body([], errors=[{}]), "slurmrestd reported errors: unknown error")
        self.assertBad(body([], errors=["plain\ntext"]),
                       "slurmrestd reported errors: plain text")
        self.assertBad(body([], errors=[{"error": "x", "description": "x",
                                         "errno": True}]),
                       "slurmrestd reported errors: x")

    def test_empty_errors_ok(self):
        """An empty or null errors member is not an error."""
        for errors in ([], None, {}, ""):
            self.assertEqual(decode_nodes(body([{"name": "n"}], errors=errors)).nodes,
                             (Node("n"),))

    def test_no_nodes(self):
        """A body without a nodes member is refused."""
        self.assertBad(fixture_body("v0.0.39-nodes.json")
                       .replace(b'"nodes"', b'"nodez"'),
                       'slurmrestd response has no "nodes" list')
        self.assertBad(b"{}", 'slurmrestd response has no "nodes" list')
        self.assertBad(b'{"nodes": null}', 'slurmrestd response has no "nodes" list')

    def test_nodes_wrong_type(self):
        """A nodes member that is not a list is refused, naming what it is."""
        self.assertBad(b'{"nodes": {"name": "n1"}}',
                       'slurmrestd response has no "nodes" list ("nodes" is an object)')
        self.assertBad(b'{"nodes": "n1"}',
                       'slurmrestd response has no "nodes" list ("nodes" is a string)')


class DescribeErrorsTests(SynchronousTestCase):
    """describe_errors() summarises an errors member."""

    def test_nothing(self):
        """No errors give an empty summary."""
        for errors in (None, [], {}, "", 0):
            self.assertEqual(describe_errors(errors), "")

    def test_single_object(self):
        """A lone error object instead of a list is still described."""
        self.assertEqual(describe_errors({"error": "Boom", "errno": 1}), "Boom (errno 1)")

    def test_long_text_clipped(self):
        """An enormous error text is cut to a few hundred characters."""
        text = describe_errors([{"error": "x" * 10000}])
        self.assertLess(len(text), 400)
        self.assertTrue(text.endswith("..."))
