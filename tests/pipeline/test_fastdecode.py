"""
Tests for slurm_sd.pipeline.fastdecode: the msgspec decode step gives exactly what the
reference decoder (slurm_sd.pipeline.decode) gives, piece by piece, for every body.
"""
import json
import os
import tempfile

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.errors import BadResponse
from slurm_sd.pipeline import decode as decode
from slurm_sd.pipeline import fastdecode
from slurm_sd.pipeline.readers import BytesReader
from tests.fakes import SAMPLES, fixture
from tests.properties import property_settings

NODE_FIXTURES = sorted(name for name in os.listdir(SAMPLES)
                       if name.endswith(".json") and "nodes" in name)
PIECES = (1, 64, 500, 4096, fastdecode.PIECE_BYTES)


def node(index, **fields):
    """A v0.0.41-like node object with a few fields set."""
    out = {"architecture": "x86_64", "boot_time": {"set": True, "infinite": False,
                                                    "number": 1700000000},
           "features": ["cpu", "avx2"], "active_features": ["cpu", "avx2"], "gres": "",
           "name": f"n{index:04d}", "address": f"10.0.0.{index % 250}",
           "hostname": f"n{index:04d}", "state": ["IDLE"], "partitions": ["batch"],
           "reason": "", "energy": {"current_watts": {"set": True, "number": 0}}}
    out.update(fields)
    return out


def body_of(nodes, pretty=True, before=None, after=None):
    """A /nodes/ body: ``before`` keys, then nodes, then ``after`` keys."""
    document = dict(before or {})
    document["nodes"] = nodes
    document.update(after if after is not None else
                    {"meta": {"slurm": {"cluster": "c1"}}, "errors": [], "warnings": []})
    if pretty:
        return json.dumps(document, indent=2).encode()
    return json.dumps(document, separators=(",", ":")).encode()


class FastDecodeTestMixin:
    """Checks that the fast path agrees with the reference."""

    def decode_all_ways(self, body, piece_bytes, expect_fast=True):
        """Decode ``body`` from bytes and from a file; both equal the reference."""
        notes = []
        try:
            expected = decode.decode_nodes(body)
        except Exception as error:
            # Any error, not only BadResponse: the same class and the same message.
            self.assertIsInstance(error, BadResponse)
            for how in (fastdecode.decode_bytes, self.decode_from_file):
                with self.assertRaises(Exception) as caught:
                    how(body, piece_bytes=piece_bytes, note=notes.append)
                self.assertIs(type(caught.exception), type(error), how.__name__)
                self.assertEqual(str(caught.exception), str(error))
            return None
        for how in (fastdecode.decode_bytes, self.decode_from_file):
            self.assertEqual(how(body, piece_bytes=piece_bytes, note=notes.append),
                             expected, (how.__name__, piece_bytes))
        if expect_fast:
            self.assertEqual(notes, [])
        return expected

    def decode_from_file(self, body, **kwargs):
        """fastdecode.decode_file on ``body`` written to an unnamed file."""
        with tempfile.TemporaryFile() as handle:
            handle.write(body)
            handle.flush()
            return fastdecode.decode_file(handle, **kwargs)


class FixtureTests(FastDecodeTestMixin, SynchronousTestCase):
    """Real node lists of every API version."""

    def test_fixtures(self):
        """Every fixture node list, cut into pieces of any size, decodes as the reference."""
        self.assertGreater(len(NODE_FIXTURES), 10)
        for name in NODE_FIXTURES:
            for piece in PIECES:
                self.decode_all_ways(fixture(name), piece)

    def test_demo(self):
        """The bundled demo node list decodes as the reference."""
        path = os.path.join(os.path.dirname(SAMPLES), "..", "etc", "demo-nodes.json")
        with open(path, "rb") as handle:
            body = handle.read()
        for piece in PIECES:
            self.assertEqual(len(self.decode_all_ways(body, piece).nodes), 12)


class PieceTests(FastDecodeTestMixin, SynchronousTestCase):
    """Cutting the nodes array into pieces."""

    def test_many_pieces(self):
        """A 300-node body cut every few hundred bytes decodes as the reference."""
        nodes = [node(i, state=["MIXED", "DRAIN"] if i % 7 == 0 else ["IDLE"],
                      partitions=["batch", "debug"] if i % 5 == 0 else ["batch"])
                 for i in range(300)]
        for pretty in (True, False):
            body = body_of(nodes, pretty)
            start = body.index(b"[") + 1
            cuts = fastdecode._cuts(BytesReader(body), start, len(body), 500)
            self.assertGreater(len(cuts), 50)
            for end, following in cuts:
                self.assertEqual(body[end - 1:end], b"}")
                self.assertEqual(body[following:following + 1], b"{")
            result = self.decode_all_ways(body, 500)
            self.assertEqual(len(result.nodes), 300)
            self.assertEqual(result.cluster_name, "c1")

    def test_cut_candidate_inside_a_string(self):
        """A reason containing ``},{`` is no cut: that piece is joined to the next one."""
        tricky = "power loss },{ \"name\": \"ghost\" }, { again"
        nodes = [node(i) for i in range(40)]
        nodes[20] = node(20, reason=tricky)
        for pretty in (True, False):
            body = body_of(nodes, pretty)
            start = body.index(b"[") + 1
            # Ask for the first cut just before the reason, so the first candidate found
            # lies inside the string.
            piece = body.index(b"power loss") - start - 2
            self.decode_all_ways(body, piece)
            self.assertEqual(self.decode_all_ways(body, piece).nodes[20].reason, tricky)

    def test_many_bad_candidates(self):
        """Every node's reason holding ``},{`` still decodes as the reference."""
        nodes = [node(i, reason="a},{b") for i in range(200)]
        for piece in (1, 100, 1000):
            self.decode_all_ways(body_of(nodes, False), piece, expect_fast=False)

    def test_errors_after_nodes(self):
        """An errors list of several objects after the nodes is the reference's error."""
        nodes = [node(i) for i in range(100)]
        errors = [{"description": "first", "error_number": 1, "error": "x", "source": "a"},
                  {"description": "second", "error_number": 2, "error": "y", "source": "b"}]
        body = body_of(nodes, False, after={"errors": errors})
        for piece in PIECES:
            self.decode_all_ways(body, piece)

    def test_warnings_after_nodes(self):
        """Warning objects after the nodes never pass for nodes, wherever the cuts fall."""
        nodes = [node(i) for i in range(30)]
        warnings = [{"description": f"warning {i}", "source": "x"} for i in range(50)]
        body = body_of(nodes, False, after={"warnings": warnings, "errors": []})
        for piece in (1, 50, 300, 2000):
            result = self.decode_all_ways(body, piece, expect_fast=False)
            self.assertEqual((len(result.nodes), result.skipped), (30, 0))

    def test_meta_and_errors_first(self):
        """meta and errors before the nodes (v0.0.37 .. v0.0.39 order) are read."""
        nodes = [node(i) for i in range(50)]
        before = {"meta": {"slurm": {"cluster": "first"}}, "errors": []}
        body = body_of(nodes, True, before=before, after={})
        for piece in PIECES:
            self.assertEqual(self.decode_all_ways(body, piece).cluster_name, "first")
        failing = body_of(nodes, True, before={"errors": [{"error": "boom"}]}, after={})
        self.decode_all_ways(failing, 100)

    def test_empty_and_tiny(self):
        """Zero or one node, with or without whitespace, decode as the reference."""
        for text in (b'{"nodes":[]}', b'{ "nodes" : [ ] }', b'{"nodes":[{"name":"a"}]}',
                     b'{"nodes": [], "meta": {"slurm": {"cluster": " x "}}}'):
            for piece in (1, 10):
                self.decode_all_ways(text, piece)


class OddBodyTests(FastDecodeTestMixin, SynchronousTestCase):
    """Bodies the fast path hands to the reference decoder."""

    def test_bad_bodies(self):
        """Unusable bodies fail with the reference's one-line message."""
        for text in (b"", b"not json", b"\xff\xfe{}", b"[1, 2]", b'{"errors": []}',
                     b'{"nodes": {"a": 1}}', b'{"nodes": "x"}', b'{"nodes": [1, 2]',
                     b'{"nodes": [], "errors": [{"error": "nope", "error_number": 5}]}',
                     b'{"nodes": [{"name": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"):
            self.decode_all_ways(text, 10, expect_fast=False)

    def test_odd_entries(self):
        """Non-object entries, nameless and duplicate nodes are skipped as the reference does."""
        body = json.dumps({"nodes": [None, 3, {"name": ""}, {"name": " a "}, {"name": "a"},
                                     {"hostname": "x"}, {"name": 5}]}).encode()
        result = self.decode_all_ways(body, 1, expect_fast=False)
        self.assertEqual((len(result.nodes), result.skipped), (1, 6))
        objects_only = json.dumps({"nodes": [{"name": ""}, {"name": " a "}, {"name": "a"},
                                             {"hostname": "x"}, {"name": 5}]}).encode()
        result = self.decode_all_ways(objects_only, 1)
        self.assertEqual((len(result.nodes), result.skipped), (1, 4))

    def test_wrong_types(self):
        """Fields of the wrong type become "" or (), as with the reference."""
        odd = [node(0, hostname=5, address=None, architecture=["x"], gres={"a": 1},
                    reason=1.5, partitions="a, b,,a", features=[1, "x", None, "y,z"],
                    active_features={"x": 1}, state="idle+drain", state_flags=["DRAIN"]),
               node(1, state=[], partitions=None),
               node(2, state=["WEIRD", "DRAIN", "?", "not a flag"]),
               node(3, state=None, state_flags="DRAIN")]
        self.decode_all_ways(body_of(odd), 1)

    def test_errors_and_nameless_nodes(self):
        """An errors array with only nameless nodes is the reference's errors message."""
        errors = [{"error": "boom", "error_number": 9}]
        for before, after in (({"errors": errors}, {}), ({}, {"errors": errors})):
            body = body_of([{"hostname": "x"}, {"name": ""}], False, before, after)
            with self.assertRaises(BadResponse) as caught:
                fastdecode.decode_bytes(body, piece_bytes=1)
            self.assertEqual(str(caught.exception),
                             "slurmrestd reported errors: boom (error_number 9)")
            self.decode_all_ways(body, 1)

    def test_fallback_noted(self):
        """When the fast path gives up, ``note`` gets one line saying so."""
        notes = []
        fastdecode.decode_bytes(b'{"nodes": [1, {"name": "n1"}]}', note=notes.append)
        self.assertEqual(len(notes), 1)
        self.assertIn("fast decoder gave up", notes[0])
        self.assertNotIn("\n", notes[0])


_text = st.text(alphabet=st.sampled_from("ab ,}{[]\"\\:é\n"), max_size=6)
_value = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _text,
                   st.lists(_text, max_size=3),
                   st.dictionaries(st.sampled_from("xy"), st.integers(0, 2), max_size=2))
_state_word = st.sampled_from(["IDLE", "MIXED", "DOWN", "DRAIN", "NOT_RESPONDING",
                               "POWERED_DOWN", "CLOUD", "idle", "?", "Weird", "drain"])
_node = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.sampled_from(["n1", "n2", " n3 ", "", "n1"]), _value),
    "hostname": _value, "address": _value, "architecture": _value, "gres": _value,
    "reason": _value, "partitions": st.one_of(_value, st.lists(_text, max_size=3)),
    "features": _value, "active_features": _value, "state_flags": _value,
    "state": st.one_of(_value, st.lists(_state_word, max_size=4),
                       st.sampled_from(["idle", "down+drain"])),
    "noise": _value,
})


_error = st.one_of(_value, st.fixed_dictionaries({}, optional={
    "error": _value, "description": _value, "source": _value,
    "error_number": st.one_of(st.integers(-2, 2 ** 70), _value),
    "errno": st.one_of(st.integers(-2, 5), _value)}))
#: Every top-level member an answer may have, right or wrong.
_members = {
    "nodes": st.one_of(st.lists(_node, max_size=4), st.lists(st.one_of(_node, _value),
                                                             max_size=4), _value),
    "errors": st.one_of(st.lists(_error, max_size=4), _error),
    "warnings": st.one_of(st.lists(_error, max_size=2), _value),
    "meta": st.one_of(_value, st.fixed_dictionaries({"slurm": st.one_of(
        _value, st.fixed_dictionaries({}, optional={"cluster": _value}))})),
}


@st.composite
def _answers(draw):
    """Any body: members missing, wrong-typed, in any order; maybe cut short or trailed."""
    keys = draw(st.permutations(sorted(_members)))
    document = {key: draw(_members[key]) for key in keys if draw(st.booleans())}
    if draw(st.booleans()):
        document = draw(st.one_of(_value, st.just(document)))
    indent = draw(st.sampled_from([None, 2]))
    body = json.dumps(document, indent=indent).encode()
    cut = draw(st.one_of(st.none(), st.integers(0, len(body))))
    if cut is not None:
        body = body[:cut]
    return body + draw(st.sampled_from([b"", b"\n", b" x", b"}", b"{}"]))


class PropertyTests(FastDecodeTestMixin, SynchronousTestCase):
    """Random node lists and random bodies."""

    @property_settings(200)
    @given(_answers(), st.integers(1, 400))
    def test_same_error_as_reference(self, body, piece):
        """Whatever the body, the result or the error (class and message) is the reference's."""
        self.decode_all_ways(body, piece, expect_fast=False)

    @property_settings(150)
    @given(st.lists(_node, max_size=12), st.booleans(), st.integers(1, 400),
           st.one_of(st.none(), _value))
    def test_same_as_reference(self, nodes, pretty, piece, cluster):
        """Whatever the nodes, layout and piece size, the result is the reference's."""
        body = body_of(nodes, pretty, after={"meta": {"slurm": {"cluster": cluster}}})
        self.decode_all_ways(body, piece, expect_fast=False)
