"""
Property tests (hypothesis) of decode + convert + render on generated answers.

Raw node dicts are generated in every API shape slurmrestd has used (v0.0.37/38:
a state string plus ``state_flags`` and comma-string features; v0.0.39+: one
upper-case state list, feature lists and ``{"set", "infinite", "number"}``
numbers), with missing, null and wrong-typed fields, odd text (control
characters, lone surrogates) and junk entries.  Jobs come from the whole range
of job options, built directly (bypassing the config checks) so that the
converter's own defences are tested too.  Each body served is then checked as
Prometheus would read it.
"""
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from slurm_sd.config.model import Config, JobConfig, SlurmrestdConfig
from slurm_sd.errors import BadResponse
from slurm_sd.pipeline.convert import convert
from slurm_sd.pipeline.decode import decode_nodes
from slurm_sd.pipeline.render import render
from slurm_sd.slurm import BASE_STATES, KNOWN_FLAGS
from tests.properties import property_settings

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
PROFILE = property_settings(60)

#: Characters that break naive code, drawn often: lone surrogates (JSON's
#: "\\ud800" escapes decode to them), NUL, newlines, quotes, a BOM, non-ASCII.
ODD_CHARACTERS = ["\ud800", "\udfff", "\x00", "\n", "\u2028", "\"", "\\", "\ufeff",
                  "\u00e9", "\U0001f600", ",", ":", " "]
#: Any text at all, lone surrogates and control characters included.
any_text = st.lists(st.one_of(st.sampled_from(ODD_CHARACTERS),
                              st.characters(exclude_categories=())),
                    max_size=10).map("".join)
#: Names a cluster might use, plus odd ones.
name_text = st.one_of(st.sampled_from(["cpu01", "cpu02", "gpu01", "gpu02", "big01",
                                       "node-1", "n1.example"]),
                      st.from_regex(r"[a-z]{1,4}[0-9]{0,3}", fullmatch=True), any_text)
partition_text = st.one_of(st.sampled_from(["batch", "gpu", "debug", "p 1", ""]), any_text)
feature_text = st.one_of(st.sampled_from(["gpu", "a100", "nvlink", "ib"]), any_text)
state_words = st.one_of(st.sampled_from(BASE_STATES), st.sampled_from(["SLEEPING", "?", ""]),
                        any_text)
flag_words = st.one_of(st.sampled_from(KNOWN_FLAGS), st.sampled_from(["hibernating", "?"]),
                       any_text)
junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                 st.lists(st.integers(), max_size=2), st.dictionaries(any_text, st.integers(),
                                                                      max_size=2))
number_object = st.fixed_dictionaries({"set": st.booleans(), "infinite": st.booleans(),
                                       "number": st.integers(-2, 2 ** 32)})


def maybe(strategy):
    """``strategy``, or a junk value of some other type."""
    return st.one_of(strategy, junk)


def old_shape():
    """A v0.0.37/38 node: state string, state_flags, comma-string features."""
    return st.fixed_dictionaries({}, optional={
        "name": maybe(name_text),
        "hostname": maybe(name_text),
        "address": maybe(st.one_of(st.sampled_from(["127.0.0.1", "10.0.0.1", "fe80::1", ""]),
                                   any_text)),
        "partitions": maybe(st.lists(partition_text, max_size=3)),
        "state": maybe(state_words.map(str.lower)),
        "state_flags": maybe(st.lists(flag_words.map(str.upper), max_size=3)),
        "architecture": maybe(st.sampled_from(["x86_64", "aarch64", ""])),
        "features": maybe(st.lists(feature_text, max_size=3).map(",".join)),
        "active_features": maybe(st.lists(feature_text, max_size=3).map(",".join)),
        "gres": maybe(st.sampled_from(["gpu:a100:4", "", "gpu:v100:2(S:0)"])),
        "reason": maybe(any_text),
        "cpu_load": st.integers(-2, 2 ** 32),
    })


def new_shape():
    """A v0.0.39+ node: upper-case state list, feature lists, number objects."""
    return st.fixed_dictionaries({}, optional={
        "name": maybe(name_text),
        "hostname": maybe(name_text),
        "address": maybe(st.sampled_from(["127.0.0.1", "10.0.0.2", "", "::1"])),
        "partitions": maybe(st.lists(maybe(partition_text), max_size=3)),
        "state": maybe(st.lists(st.one_of(state_words, flag_words).map(str.upper),
                                max_size=4)),
        "architecture": maybe(st.sampled_from(["x86_64", "aarch64", ""])),
        "features": maybe(st.lists(maybe(feature_text), max_size=3)),
        "active_features": maybe(st.lists(maybe(feature_text), max_size=3)),
        "gres": maybe(st.just("gpu:a100:4")),
        "reason": maybe(any_text),
        "free_mem": number_object,
        "boot_time": number_object,
        "unknown_future_field": junk,
    })


raw_node = st.one_of(old_shape(), new_shape())
raw_entry = st.one_of(raw_node, raw_node, raw_node, junk, any_text)


def envelope(nodes, cluster):
    """A /nodes/ body in the 22.05 (v0.0.38) or the 24.11+ (meta.slurm) envelope."""
    return st.sampled_from([
        {"meta": {"plugin": {"type": "openapi/v0.0.38"}, "Slurm": {"release": "22.05.8"}},
         "errors": [], "nodes": nodes},
        {"errors": [], "warnings": [], "meta": {"slurm": {"cluster": cluster}},
         "nodes": nodes},
    ])


job_name = st.from_regex(r"[A-Za-z0-9_.:-]{1,10}", fullmatch=True)
jobs = st.lists(
    st.builds(
        JobConfig,
        name=job_name,
        port=st.integers(1, 65535),
        partitions=st.one_of(st.none(), st.lists(partition_text, min_size=1, max_size=2)
                             .map(tuple)),
        features=st.one_of(st.none(), st.lists(feature_text, min_size=1, max_size=2)
                           .map(tuple)),
        exclude_states=st.frozensets(st.sampled_from(["active", "drain", "down",
                                                      "powered_down", "unknown"])),
        scheme=st.one_of(st.none(), st.sampled_from(["http", "https"])),
        metrics_path=st.one_of(st.none(), st.sampled_from(["/metrics", "/probe"])),
        params=st.lists(st.tuples(any_text, any_text), max_size=2),
        labels=st.lists(st.tuples(st.one_of(any_text, st.sampled_from(
            ["rack", "9lives", "__meta_state", "a-b"])), any_text), max_size=3),
        group_by=st.sampled_from(["partition", "node"]),
    ),
    min_size=1, max_size=3, unique_by=lambda job: job.name)
configs = st.builds(
    Config,
    slurmrestd=st.just(SlurmrestdConfig(url="file:/dev/null")),
    jobs=jobs,
    cluster_name=st.one_of(st.none(), st.sampled_from(["hpc1", ""]), any_text),
    target_address=st.sampled_from(["address", "hostname", "name"]),
)


def bodies_for(body, config):
    """decode + convert + render: the bodies served, or None for a refused answer."""
    try:
        node_list = decode_nodes(body)
    except BadResponse:
        return None
    snapshot = render(convert(node_list, config), node_count=len(node_list.nodes),
                      skipped=node_list.skipped, cluster_name=node_list.cluster_name)
    return snapshot.bodies


def encode(document):
    """The document as slurmrestd's JSON bytes (lone surrogates escaped, as JSON allows)."""
    return json.dumps(document).encode("ascii")


@st.composite
def answers(draw, unique=False):
    """``(raw node entries, body bytes)`` of one generated answer."""
    if unique:
        # Distinct names: then the answer has one meaning whatever the order.
        named = draw(st.lists(raw_node, max_size=12))
        names = draw(st.lists(name_text, min_size=len(named), max_size=len(named),
                              unique_by=lambda n: n.strip()))
        entries = [dict(node, name=name) for node, name in zip(named, names)]
        entries += draw(st.lists(st.one_of(junk, st.just({"name": None}),
                                           st.just({"name": " "})), max_size=3))
        if entries:
            entries += draw(st.lists(st.sampled_from(entries), max_size=2))  # exact copies
    else:
        entries = draw(st.lists(raw_entry, max_size=12))
    cluster = draw(st.one_of(st.just("testcluster"), any_text, junk))
    return entries, encode(draw(envelope(entries, cluster)))


class HTTPSDPropertyTests(SynchronousTestCase):
    """Whatever slurmrestd lists, what /targets serves is valid HTTP SD."""

    def check_body(self, body, ports):
        """``body`` is HTTP SD JSON Prometheus accepts, with targets on ``ports``."""
        self.assertIsInstance(body, bytes)
        text = body.decode("utf-8")          # strict: valid UTF-8 or it raises
        groups = json.loads(text)
        self.assertIsInstance(groups, list)
        for group in groups:
            self.assertIsInstance(group, dict)
            self.assertEqual(set(group), {"targets", "labels"})
            targets = group["targets"]
            self.assertIsInstance(targets, list)
            self.assertTrue(targets, "no empty target lists")
            self.assertEqual(len(set(targets)), len(targets), "targets are distinct")
            for target in targets:
                self.assertIsInstance(target, str)
                host, _, port = target.rpartition(":")
                self.assertTrue(host, target)
                self.assertIn(int(port), ports)
            labels = group["labels"]
            self.assertIsInstance(labels, dict)
            for name, value in labels.items():
                self.assertRegex(name, LABEL_NAME)
                self.assertIsInstance(value, str)
                self.assertNotEqual(value, "", f"empty value for {name}")
            self.assertIn("__meta_prom_job", labels)

    @PROFILE
    @given(answers(), configs)
    def test_output_is_valid_http_sd(self, answer, config):
        """Every body served is UTF-8 JSON: groups of non-empty targets and legal labels."""
        _, body = answer
        bodies = bodies_for(body, config)
        if bodies is None:
            return
        self.assertEqual(set(bodies), {job.name for job in config.jobs} | {None})
        for job in config.jobs:
            self.check_body(bodies[job.name], {job.port})
            for group in json.loads(bodies[job.name]):
                self.assertEqual(group["labels"]["__meta_prom_job"], job.name)
        self.check_body(bodies[None], {job.port for job in config.jobs})

    @PROFILE
    @given(answers(), configs)
    def test_deterministic(self, answer, config):
        """The same answer and config always give the same bytes."""
        _, body = answer
        self.assertEqual(bodies_for(body, config), bodies_for(body, config))

    @PROFILE
    @given(answers(unique=True), configs, st.randoms(use_true_random=False))
    def test_independent_of_node_order(self, answer, config, random):
        """Shuffling slurmrestd's node list changes nothing served."""
        entries, body = answer
        document = json.loads(body)
        shuffled = list(entries)
        random.shuffle(shuffled)
        document["nodes"] = shuffled
        self.assertEqual(bodies_for(body, config), bodies_for(encode(document), config))

    @PROFILE
    @given(st.lists(raw_entry, min_size=1, max_size=8))
    def test_usable_nodes_or_refusal(self, entries):
        """An answer with entries is served with at least one node, or refused whole."""
        try:
            node_list = decode_nodes(encode({"nodes": entries}))
        except BadResponse as error:
            self.assertIn("none has a usable name", str(error))
        else:
            self.assertTrue(node_list.nodes)
            self.assertEqual(len(node_list.nodes) + node_list.skipped, len(entries))


class FoundByPropertiesTests(SynchronousTestCase):
    """Cases the properties found, kept as plain examples."""

    def test_lone_surrogate_in_a_name(self):
        """A node name with a lone surrogate (a JSON \\ud800 escape) is served as valid UTF-8."""
        config = Config(slurmrestd=SlurmrestdConfig(url="file:/dev/null"),
                        jobs=[JobConfig(name="node", port=9100)])
        bodies = bodies_for(b'{"nodes": [{"name": "cpu\\ud80001"}]}', config)
        [group] = json.loads(bodies["node"].decode("utf-8"))
        self.assertEqual(group["targets"], ["cpu?01:9100"])
