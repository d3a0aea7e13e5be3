"""The C++ config composer against OmegaConf (an independent implementation of the same merge,
interpolation and YAML typing rules) and against Hydra itself (composition and multirun sweeps), and
every shipped config composes."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import modgap
from conftest import modgap_cli

omegaconf = pytest.importorskip("omegaconf")
from omegaconf import OmegaConf  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    # (base YAML, dot-list overrides applied by OmegaConf / Hydra's key=value)
    ("a: 1\nb:\n  c: 2\n  d: [1, 2]\n", ["a=3", "b.c=hello"]),
    ("model:\n  dim: 64\n  width: ${model.dim}\n  name: m${model.dim}\ncopy: ${model}\n", ["model.dim=128"]),
    ("x:\n  y: 1\n  z: ${.y}\n  w: ${..top}\ntop: 5\n", []),
    ("lr: 1e-3\nwd: 0.1\nflag: true\nnothing: null\nlist: [a, 1, 2.5, false]\n", ["flag=false", "wd=0.5"]),
    ("pick: a\nvalues:\n  a: 1\n  b: 2\nchosen: ${values.${pick}}\n", ["pick=b"]),
    ("items: [10, 20, 30]\nsecond: ${items.1}\n", []),
]


@pytest.mark.parametrize("text,overrides", CASES)
def test_matches_omegaconf(tmp_path, text, overrides):
    (tmp_path / "c.yaml").write_text(text)
    ours = modgap.config.compose(tmp_path, "c", overrides)
    reference = OmegaConf.merge(OmegaConf.create(text), OmegaConf.from_dotlist(overrides))
    assert ours == OmegaConf.to_container(reference, resolve=True)


YAML_MERGE_KEYS = [
    "base: &base\n  lr: 0.1\n  wd: 0.01\nrun:\n  <<: *base\n  lr: 0.5\n",
    "a: &a {x: 1, y: 2}\nb: &b {y: 3, z: 4}\nc:\n  <<: [*a, *b]\n  w: 0\nd:\n  <<: *a\n  x: 9\n  nested:\n"
    "    <<: *b\n    z: ${d.x}\n",
    "outer: &o\n  inner: &i {k: 1}\n  <<: *i\nuse:\n  <<: *o\n  extra: !!float 2\nlst: &l [1, 2]\ncopy: *l\n",
]


@pytest.mark.parametrize("text", YAML_MERGE_KEYS)
def test_yaml_merge_keys_and_tags_as_omegaconf(tmp_path, text):
    """`<<: *anchor` merges as OmegaConf reads it (values and key order), aliases copy, `!!float 2` is 2.0."""
    (tmp_path / "c.yaml").write_text(text)
    ours = modgap.config.compose(tmp_path, "c", [])
    reference = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    assert json.dumps(ours) == json.dumps(reference)  # equal, and in the same order


@pytest.mark.parametrize("text, message", [
    ("? [1, 2]\n: complex key\n", r"c.yaml: a mapping key must be a scalar, got a list"),
    ("x: !!float abc\n", r"`!!float abc`: not a number"),
    ("a:\n  <<: 5\n", r"c.yaml: a merge key `<<` takes a mapping or a list of mappings"),
])
def test_yaml_a_complex_key_or_a_bad_tag_is_a_clear_error(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        modgap.config.compose(tmp_path, "c", [])


def test_merge_order_matches_omegaconf_merge(tmp_path):
    # A primary config whose defaults place two files into packages, then its own body (_self_ last):
    # the same as OmegaConf.merge of the three, in that order.
    (tmp_path / "loss").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "loss" / "ours.yaml").write_text("lambda1: 1.0\nt: 2.0\nnested:\n  a: 1\n  b: 2\n")
    (tmp_path / "data" / "d.yaml").write_text("root: ???\nsize: 10\n")
    (tmp_path / "main.yaml").write_text("defaults:\n  - loss: ours\n  - data: d\nloss:\n  t: 3.0\n  nested:\n    b: 5\n"
                                        "data:\n  root: /x\n")
    ours = modgap.config.compose(tmp_path, "main", ["loss.lambda1=0.5"])
    reference = OmegaConf.merge(
        {"loss": OmegaConf.load(tmp_path / "loss" / "ours.yaml")}, {"data": OmegaConf.load(tmp_path / "data" / "d.yaml")},
        OmegaConf.create("loss:\n  t: 3.0\n  nested:\n    b: 5\ndata:\n  root: /x\n"), OmegaConf.from_dotlist(["loss.lambda1=0.5"]))
    assert ours == OmegaConf.to_container(reference, resolve=True)


@pytest.mark.parametrize("loss", sorted(p.stem for p in (ROOT / "configs" / "loss").glob("*.yaml")))
def test_every_loss_config_composes(loss):
    cfg = modgap.config.compose(ROOT / "configs", "train", [f"loss={loss}"])
    assert cfg["loss"]["name"] == loss and cfg["run_name"] == f"digits_{loss}_seed0"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml")))
def test_every_experiment_composes_once_its_paths_are_given(experiment):
    with pytest.raises(ValueError, match=r"is missing \(\?\?\?\); set it"):
        modgap.config.compose(ROOT / "configs", "train", [f"+experiment={experiment}"])
    cfg = modgap.config.compose(ROOT / "configs", "train", [f"+experiment={experiment}", "data.root=/data"])
    # 100 epochs in the paper's OpenCLIP runs and CoMM's; GRAM's config JSON sets its own
    assert cfg["data"]["name"] == experiment and cfg["epochs"] == (None if experiment == "msrvtt" else 100)


@pytest.mark.parametrize("data", sorted(p.stem for p in (ROOT / "configs" / "data").glob("*.yaml")))
def test_every_data_config_composes(data):
    overrides = [f"data={data}"]
    cfg = modgap.config.compose(ROOT / "configs", "train", overrides + ["++data.root=/d", "++data.mnist_root=/m",
                                                                         "++data.audio_mnist_root=/a"])
    assert cfg["data"]["name"] == data


def test_defaults_list_and_yaml_output():
    assert modgap.config.defaults_list(ROOT / "configs", "train", ["loss=clip_ft"])[:3] == [
        "loss: clip_ft -> loss", "data: digits -> data", "model: tiny -> model"]
    assert "lambda1: 1.0" in modgap.config.compose_yaml(ROOT / "configs", "train", [])


def test_cli_config_matches_python():
    cli = modgap_cli()
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "loss=notagap", "seed=3"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == modgap.config.compose(ROOT / "configs", "train", ["loss=notagap", "seed=3"])
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "loss=nope"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "unknown option 'nope' for config group 'loss'" in run.stderr


# ---- Hydra itself as the oracle: the composer, and multirun sweeps (Hydra's BasicSweeper) ----

def _hydra_compose(config_dir: Path, name: str, overrides: list[str]) -> dict:
    hydra = pytest.importorskip("hydra")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    assert hydra
    return OmegaConf.to_container(cfg, resolve=True)


def _hydra_jobs(overrides: list[str]) -> list[list[str]]:
    pytest.importorskip("hydra")
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parsed = OverridesParser.create().parse_overrides(overrides)
    return BasicSweeper.split_arguments(parsed, None)[0]


SHIPPED_OVERRIDES = [[], ["loss=clip_lt"], ["loss=notagap", "seed=3"], ["loss=ours_scheduled", "loss.temperature=0.1"],
                     ["+experiment=cifar10", "data.root=/x"], ["+experiment=mscoco", "data.root=/x"],
                     ["+experiment=mosi", "data.root=/x"], ["data=av_digits", "++data.extra=1", "~eval.fill_gap_k"]]


@pytest.mark.parametrize("overrides", SHIPPED_OVERRIDES, ids=lambda o: " ".join(o) or "defaults")
def test_shipped_configs_compose_as_hydra_does(overrides):
    assert modgap.config.compose(ROOT / "configs", "train", overrides) == _hydra_compose(ROOT / "configs", "train", overrides)


# Interpolations inside an override's [list] or {dict} (YAML's flow syntax alone reads '${' as a mapping).
INTERPOLATIONS_IN_COLLECTIONS = ["+q=[${seed},2]", "+q={a: ${seed}, b: x${epochs}y}", "+q=[a${seed}b]",
                                 "+q=['${seed}']", "+q=[[${seed}], {k: ${loss.t}}]", "+q=[ ${seed} , x ]",
                                 "+q=[\"a,${seed}\", '${epochs}']"]


@pytest.mark.parametrize("override", INTERPOLATIONS_IN_COLLECTIONS)
def test_interpolations_inside_lists_and_dicts_as_hydra(override):
    overrides = ["seed=7", override]
    assert modgap.config.compose(ROOT / "configs", "train", overrides) == _hydra_compose(ROOT / "configs", "train",
                                                                                         overrides)


def test_an_interpolated_dict_key_is_refused_as_hydra_does():
    with pytest.raises(ValueError, match=r"override '\+q=\{\$\{seed\}: 1\}': a dict key cannot be an interpolation"):
        modgap.config.compose(ROOT / "configs", "train", ["+q={${seed}: 1}"])


SWEEPS = [
    ["a=1,2", "b=range(0,1,0.25)", "c=x"],
    ["a=range(3)", "b=range(5,1,-2)"],
    ["b=range(1,2,0.1)"],          # Hydra's FloatRange: 1.9000000000000001, accumulated as Hydra does
    ["b=range(1.0,3)", "a=range(-2,2)"],
    ["b=range(0.5,-0.6,-0.25)"],
    ["c='x y',\"z\"", "+new=choice(1,'a,b',[1,2])"],
    ["a=1.5, 2.5e-3 , 7"],
    ["lst=[1,2],[3]", "d={q: 1},{q: 2}"],
    ["lst=[${a}],[1]", "d={q: '${c}'},{q: x${a}}"],  # interpolations inside swept collections
    ["++d={q: 2, r: 3},{r: 4}", "++lst=[yes, 010, 0x10, 1_000, inf, NULL, TRUE]"],  # Hydra's typing, not YAML's
    ["grp=one,two", "a=choice(4)"],
    ["a=1,2", "b=5", "a=3,4"],      # a key given twice: first position, last value
    ["~c", "a=1,2", "++z=true,false"],
    ["a=7"],
    ["b=1e400,-1e400,1.5e-7,2_0.5"],  # Python's float(): out-of-range literals are infinite
    [r"+e=x\,y,z", r"+f=a\ b", r"+g=f\(1\)", r"+h=back\\slash", r"+i=1\,5", r"+j=abc\d", r"+k=p\=q\:r"],  # escapes
    [],
]


def _sweep_tree(tmp_path: Path) -> Path:
    (tmp_path / "grp").mkdir()
    (tmp_path / "grp" / "one.yaml").write_text("v: 1\nname: one\n")
    (tmp_path / "grp" / "two.yaml").write_text("v: 2\nname: two\n")
    (tmp_path / "main.yaml").write_text("defaults:\n  - grp: one\n  - _self_\na: 0\nb: 0.0\nc: s\n"
                                        "lst: [0]\nd:\n  q: 0\nlabel: ${grp.name}_${a}\n")
    return tmp_path


@pytest.mark.parametrize("overrides", SWEEPS, ids=lambda o: " ".join(o) or "none")
def test_multirun_jobs_match_hydra_basic_sweeper(tmp_path, overrides):
    # The job lists are compared through composition: Hydra normalises the text of a value (2.5e-3 ->
    # 0.0025, 'a,b' -> a\,b), ours keeps it; the composed configs of job i must be equal.
    config_dir = _sweep_tree(tmp_path)
    ours = modgap.config.compose_multirun(config_dir, "main", overrides)
    theirs = _hydra_jobs(overrides)
    assert len(ours) == len(theirs)
    for (job, cfg), hydra_job in zip(ours, theirs):
        assert [o.split("=")[0] for o in job] == [o.split("=")[0] for o in hydra_job]
        assert cfg == _hydra_compose(config_dir, "main", hydra_job), (job, hydra_job)


# ---- override values against Hydra's override grammar, on generated text ----
# Atoms cover each token of Hydra's OverrideLexer.g4 (VALUE_MODE) and the YAML look-alikes that it types
# differently (yes, 010, 0x1F, ~, 'it''s'); characters outside the grammar must be refused as Hydra refuses them.
OVERRIDE_ATOMS = ["1", "-2", "+3", "0", "010", "0x1F", "1_000", "1e3", "1.5e-3", ".5", "5.", "inf", "-inf", "NaN", "1e400",
                  "true", "TRUE", "yes", "off", "null", "NULL", "~", "abc", "a b", "a-b", "a.b", "a/b", "-x", "%", "*?|",
                  "'q s'", '"d q"', "'it''s'", r'"e\"x"', r"'tail\\'", "${a}", "${c}", "x${a}y", "${d.q}", "${lst.0}",
                  "${oc.select:zz,5}", r"\,", r"a\ b", r"\(x\)", r"\\", r"p\=q", "1:2", "a:b", "12:30", "@", "é", "", " ",
                  "x=y", "2024-01-01", "0o17", "1.5.6", "#", "!tag", "&", "f(1)", "str(2)", "int(2.7)", "int(' 0_10 ')",
                  "float(1)", "float(-Infinity)", "str(1e20)", "str(true)", "bool(0)", "bool(nan)", "bool(yes)",
                  "int(inf)", "str(null)", "int(value=3)", "str([1, 1.50])", "float({k: '2'})", "int(1,2)", "choice(1)"]
OVERRIDE_CHARACTERS = list("ab1 0._-+/\\$%*@?|:,[]{}()='\"\teE9xn") + ["${a}", "\\,", "\\ ", "inf", "true", "null", "1_0"]
OVERRIDE_KEYS = ["++z", "++a", "++d", "++lst", "+new", "c", "a", "d", "d.q", "lst", "~a", "~c", "~lst"]


def _random_override_value(rng, depth=0):
    r = rng.random()
    if r < 0.2:  # arbitrary text from the grammar's alphabet and beyond
        return "".join(rng.choice(OVERRIDE_CHARACTERS) for _ in range(rng.randint(0, 10)))
    if depth < 2 and r < 0.35:
        return "[" + ",".join(rng.choice(["", " "]) + _random_override_value(rng, depth + 1)
                              for _ in range(rng.randint(0, 3))) + rng.choice(["]", " ]", "] "]) 
    if depth < 2 and r < 0.45:
        keys = rng.sample(["k", "m", "q", "r", "1", "a b"], rng.randint(0, 2))
        return "{" + ", ".join(f"{k}{rng.choice([':', ': ', ' : '])}{_random_override_value(rng, depth + 1)}"
                               for k in keys) + "}"
    return rng.choice(OVERRIDE_ATOMS)


def test_override_values_compose_as_hydra(tmp_path):
    """500 generated `key=value` overrides (every prefix, values mixing Hydra's tokens, quotes, escapes,
    interpolations, lists, dicts and characters outside the grammar) on a small tree: each composes to
    Hydra's config, or both refuse it."""
    import random
    (tmp_path / "main.yaml").write_text("a: 1\nb: 2.5\nc: s\nlst: [1, 2]\nd:\n  q: 0\n  r: x\nflag: true\n")
    rng = random.Random(20261207)
    checked = accepted = 0
    for _ in range(500):
        override = f"{rng.choice(OVERRIDE_KEYS)}={_random_override_value(rng)}"
        try:
            theirs = _hydra_compose(tmp_path, "main", [override])
        except Exception:  # Hydra refuses it (a parse, merge or interpolation error): so must we
            with pytest.raises(ValueError):
                modgap.config.compose(tmp_path, "main", [override])
        else:
            ours = modgap.config.compose(tmp_path, "main", [override])
            assert json.dumps(ours) == json.dumps(theirs), override  # equal, in the same key order
            accepted += 1
        checked += 1
    assert checked == 500 and accepted > 150  # the generator reaches both sides


# ---- defaults trees against Hydra, on generated trees ----

def _random_defaults_tree(rng, root: Path) -> list[str]:
    """Three groups whose configs may carry `# @package` headers and defaults of their own (an absolute
    `/g3: p`), a primary config mixing `optional`, `group@package`, `null` and `_self_` entries, an
    experiment with `override /g1`, and command-line group overrides (keys with @package, deletions with
    and without an option, appends)."""
    import shutil
    shutil.rmtree(root, ignore_errors=True)
    groups = {"g1": ["a", "b"], "g2": ["x", "y"], "g3": ["p"]}
    for group, options in groups.items():
        (root / group).mkdir(parents=True)
        for option in options:
            lines = []
            if rng.random() < 0.3:
                lines.append(f"# @package {rng.choice(['_global_', 'pkg', '_group_', 'g1'])}")
            if group != "g3" and rng.random() < 0.3:
                lines.append("defaults:\n  - /g3: p" + ("\n  - _self_" if rng.random() < 0.5 else ""))
            lines.append(f"name: {group}_{option}\nval: {rng.randint(0, 9)}\nshared: {option}")
            (root / group / f"{option}.yaml").write_text("\n".join(lines) + "\n")
    (root / "exp").mkdir()
    (root / "exp" / "e1.yaml").write_text("# @package _global_\ndefaults:\n  - override /g1: b\nshared: from_exp\n")
    entries = []
    for group in ["g1", "g2"]:
        r = rng.random()
        if r < 0.15:
            entries.append(f"  - optional {group}: {rng.choice(groups[group] + ['absent'])}")
        elif r < 0.3:
            entries.append(f"  - {group}@{rng.choice(['pk', '_global_', 'nest.in'])}: {rng.choice(groups[group])}")
        elif r < 0.4:
            entries.append(f"  - {group}: null")
        else:
            entries.append(f"  - {group}: {rng.choice(groups[group])}")
    if rng.random() < 0.7:
        entries.insert(rng.randint(0, len(entries)), "  - _self_")
    (root / "main.yaml").write_text("defaults:\n" + "\n".join(entries) + "\nshared: main\ntop: 1\n")
    return [rng.choice(["g1=a", "g1=b", "g2=y", "+exp=e1", "~g2", "+g3=p", "shared=cli", "+g3@extra=p", "g1@pk=b",
                        "++top=5", "~g1=a", "~g1=b", "g1@_global_=b", "~g2@nest.in", "g2@nest.in=y", "~g1@pk"])
            for _ in range(rng.randint(0, 2))]


def test_defaults_trees_compose_as_hydra(tmp_path):
    """120 generated defaults trees: packages of nested group defaults (relative to the including config's
    package), headers, `_global_`, override keys `group@package`, deletions, appends and duplicates compose to
    Hydra's config, or both refuse them."""
    import random
    import warnings
    rng = random.Random(7)
    accepted = 0
    for i in range(120):
        root = tmp_path / f"tree{i}"
        overrides = _random_defaults_tree(rng, root)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Hydra's "missing _self_" notice
                theirs = _hydra_compose(root, "main", overrides)
        except Exception:
            with pytest.raises(ValueError):
                modgap.config.compose(root, "main", overrides)
        else:
            ours = modgap.config.compose(root, "main", overrides)
            assert json.dumps(ours) == json.dumps(theirs), ((root / "main.yaml").read_text(), overrides)
            accepted += 1
    assert accepted > 60


def test_dict_override_keys_follow_hydra_struct_mode(tmp_path):
    config_dir = _sweep_tree(tmp_path)
    with pytest.raises(ValueError, match=r"could not override 'd': 'd.r' is not in the config. To add keys use \+\+d="):
        modgap.config.compose(config_dir, "main", ["d={r: 1}"])
    with pytest.raises(Exception, match="Could not override 'd'"):
        _hydra_compose(config_dir, "main", ["d={r: 1}"])


def test_sweep_order_and_values():
    assert modgap.config.sweep(["a=1,2", "b=x,y"]) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]
    assert modgap.config.sweep(["x=range(0,1.01,0.25)"]) == [[f"x={v}"] for v in ("0.0", "0.25", "0.5", "0.75", "1.0")]
    assert modgap.config.sweep(["x=range(1,2,0.1)"])[-1] == ["x=1.9000000000000001"]
    assert modgap.config.sweep(["x=[1,2]", "y={a: 1, b: 2}", "z='p,q'", "w=${oc.env:HOME,/tmp}"]) == [
        ["x=[1,2]", "y={a: 1, b: 2}", "z='p,q'", "w=${oc.env:HOME,/tmp}"]]
    assert modgap.config.sweep([]) == [[]]


@pytest.mark.parametrize("overrides,message", [
    (["a=1,,2"], "a sweep element is empty"),
    (["a=range(0,1,0)"], "range() step must not be zero"),
    (["a=range(3,1)"], "the sweep is empty"),
    (["a=range(1,2,3,4)"], "range() takes 1 to 3 arguments"),
    (["a=range(x)"], "range() expects numbers, got 'x'"),
    (["a=glob(*)"], "glob() is not supported"),
    (["a=interval(0,1)"], "interval() is not supported"),
    (["a=[1,2"], "']' expected before the end of the value"),
    (["a=1]"], "unbalanced ']'"),
    (["a='x"], "unterminated single quote"),
    (["a=range(1000)", "b=range(1000)"], "more than 100000 jobs"),
    (["=1,2"], "the key is empty"),
])
def test_sweep_errors_name_the_override(overrides, message):
    with pytest.raises(ValueError, match="override '.*'|multirun") as error:
        modgap.config.sweep(overrides)
    assert message in str(error.value)


def test_compose_refuses_a_sweep_and_multirun_names_the_failing_job():
    for override in ("loss.lambda1=0,1", "loss.lambda1=range(0,1,0.5)", "loss.lambda1=choice(0,1)", "loss=clip_lt,ours"):
        with pytest.raises(ValueError, match="is a sweep, which needs multirun"):
            modgap.config.compose(ROOT / "configs", "train", [override])
    with pytest.raises(ValueError, match=r"multirun job 2 \(loss=nope\): .*unknown option 'nope' for config group 'loss'"):
        modgap.config.compose_multirun(ROOT / "configs", "train", ["loss=clip_lt,ours,nope"])
    # a comma inside ${...}, escaped, or inside a function call that is not a sweep is one value
    overrides = ["+x=${oc.env:MODGAP_UNSET_VAR,1}", r"+z=[a\,b,c]"]
    cfg = modgap.config.compose(ROOT / "configs", "train", overrides)
    assert cfg["z"] == ["a,b", "c"] and cfg == _hydra_compose(ROOT / "configs", "train", overrides)
    with pytest.raises(ValueError, match=r"override '\+y=f\(1,2\)': unknown function 'f' \(Hydra's functions: int"):
        modgap.config.compose(ROOT / "configs", "train", ["+y=f(1,2)"])


def test_cli_multirun_matches_python():
    cli = modgap_cli()
    overrides = ["loss=clip_ft,ours", "loss.lambda1=range(0,1.01,0.5)", "epochs=3"]
    overrides = [o.replace("loss.lambda1", "++loss.lambda1") for o in overrides]
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "--multirun", *overrides],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    jobs = json.loads(run.stdout)
    expected = modgap.config.compose_multirun(ROOT / "configs", "train", overrides)
    assert [(j["job"], j["overrides"], j["config"]) for j in jobs] == [(i, o, c) for i, (o, c) in enumerate(expected)]
    assert len(jobs) == 6 and jobs[5]["config"]["loss"]["lambda1"] == 1.0
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "-m", "seed=1,2", "--info", "yaml"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.count("# job ") == 2 and "---\n# job 1: seed=2\n" in run.stdout
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "seed=1,2"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "is a sweep, which needs multirun" in run.stderr


def test_yaml_scalars_typed_and_interpolated_as_omegaconf(tmp_path):
    # YAML 1.1 as OmegaConf's loader reads it (yes/on booleans, octal, hex, sexagesimal, 1e-3 floats),
    # and str() of the typed value inside a string interpolation (x_0.001, x_True, x_16).
    import math
    values = ["1e-3", "1.50", "0x10", "010", "0b11", "1_000", "1_000.5", ".5", "+2", "-0", "1.0e+3", "1e3", ".inf",
              "-.inf", ".nan", "1:30", "1:30.5", "true", "yes", "no", "on", "off", "Off", "null", "~", "007", "0.", "-.5",
              "+.5e2", "1__0", "0x_1", "12e", "abc", "'q'", "2001-01-01", "+0x1f", "-010", "08", "0.0", "1e400"]
    text = "".join(f"v{i}: {v}\ns{i}: x_${{v{i}}}\n" for i, v in enumerate(values))
    (tmp_path / "c.yaml").write_text(text)
    ours = modgap.config.compose(tmp_path, "c", [])
    reference = OmegaConf.to_container(OmegaConf.load(tmp_path / "c.yaml"), resolve=True)
    for i, value in enumerate(values):
        for key in (f"v{i}", f"s{i}"):
            a, b = ours[key], reference[key]
            same = (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or (
                a == b and type(a) is type(b))
            assert same, (value, key, a, b)


# ---- string interpolation against OmegaConf, on generated strings ----

_INTERPOLATION_BASE = (
    "x: 1\ns: hello\nf: 1.5\nb: true\nz: null\nm: ???\nk: k\nkd: d.k\nkn: 1\n"
    "d: {k: 1, s: 'a', e: '\\${x}', n: {q: 2}, i: '${x}'}\nl: [1, 'b', {a: 2}, '${s}']\nr: ${d}\n"
    "w:\n  x: 7\n  v: ${..x}\n")
_NODE_KEYS = ["x", " x ", "s", "f", "b", "z", "d", "d.k", "d[k]", "[d].k", "l", "l[1]", "l.2.a", "l[2].a", "d.${k}",
              "d[${k}]", "r.k", "r.e", "r", "d.e", ".x", "w.v", "d.n.q", "kn", "d.i", "l.3", "r.n", "..x", "x  ", "r.i", "w"]
_BAD_NODE_KEYS = ["m", "l.9", "l.x", "${kd}", "nope", "d.nope", "x.y", "d.", "", ".", "d..k", "l[-1]", "d[k", "d.${kn}",
                  "d. k"]
_RESOLVER_ARGUMENTS = ["1", "1.5", "'q'", "\"q\"", "a b", "${x}", "[1, ${x}]", "{a: 1}", "\\,", "", "'${d}'", "null",
                       "true", "${d}", "x", ".x", "d.k", "'a${x}b'", "a${x}b", "\\\\", "$", "-", "{a: ${x}, b: [2]}",
                       " 2 ", "'it\\'s'", "inf", "1_0"]
_DECODED = ["'1'", "'[1, ${x}]'", "'{a: 1}'", "${s}", "'${d.s}'", "' 2 '", "null", "'a b'", "\\\\,", "'\\\\''", "1",
            "'\\\\${x}'", "\\\\}", "'  '"]
_TEXT = ["p", " ", "\\", "\\\\", "$", "{", "}", "'", "\"", ":", ",", "[", "]", ".", "\\$", "$$", "\\${x}", "\\\\${x}",
         "\\\\\\${x}", "é", "ab c", "\\\\\\"] * 3 + ["${"]
_CHARACTERS = ["$", "{", "}", "[", "]", ".", ":", ",", "'", "\"", "\\", " ", "x", "d", "k", "l", "1", "${", "oc.select:",
               "oc.decode:", "oc.env:", "${x}", "${d", "}", "-", "_", "\t", "e", "a", "é", "=", "(", ")", "%", "@", "?",
               "|", "\\,", "null", "True", "1.5"]


def _random_interpolation(rng, depth=0):
    if rng.random() < 0.55 or depth > 1:
        return "${" + rng.choice(_BAD_NODE_KEYS if rng.random() < 0.08 else _NODE_KEYS) + "}"
    resolver = rng.choice(["oc.select", "oc.env", "oc.select", "oc.decode", "oc.decode"] * 5 + ["nope"])
    if resolver == "oc.decode":
        arguments = [rng.choice(_DECODED)] + ([rng.choice(_RESOLVER_ARGUMENTS)] if rng.random() < 0.1 else [])
    else:
        key = rng.choice(["y", "x", "NOPE_VAR", "d.k", ".x", "m", "l.1", "x.y", "HOME_NOPE", "${k}", "'x'", "d", "r.e",
                          "l"] * 3 + ["1", "l.x"])
        arguments = [key] + [rng.choice(_RESOLVER_ARGUMENTS) if rng.random() < 0.8 else _random_interpolation(rng, depth + 1)
                             for _ in range(rng.choice([0, 1, 1, 1, 1, 1, 1, 2]))]
    return "${" + resolver + ":" + rng.choice([",", ", ", " ,"]).join(arguments) + "}"


def _random_interpolated_string(rng):
    parts = [_random_interpolation(rng) if rng.random() < 0.6 else rng.choice(_TEXT) for _ in range(rng.choice([1, 1, 2, 3]))]
    if not any("${" in part for part in parts):
        parts.append(_random_interpolation(rng))
    text = "".join(parts)
    if rng.random() < 0.1 and len(text) > 3:
        cut = rng.randrange(len(text))
        text = text[:cut] + text[cut + 1:]
    return text


def _random_character_string(rng):
    text = "".join(rng.choice(_CHARACTERS) for _ in range(rng.randint(1, 8)))
    if "${" not in text:
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + "${" + text[cut:]
    return text


def _yaml_quoted(text):
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize("generator, count, minimum_accepted", [
    (_random_interpolated_string, 300, 90), (_random_character_string, 1000, 60)])
def test_interpolations_resolve_as_omegaconf(tmp_path, generator, count, minimum_accepted):
    """Generated strings holding `${`: node keys (relative, [brackets], nested `${}` keys, through a copied
    dict), oc.select / oc.env / oc.decode with quoted, list, dict and nested arguments, escapes (`\\${`,
    backslash runs before an interpolation), str() of containers inside text, and random characters of the
    grammar. Each resolves to OmegaConf 2.3's value (same JSON, same key order), or both refuse it."""
    import random
    import warnings
    rng = random.Random(20261208 + count)
    accepted = 0
    for _ in range(count):
        values = [generator(rng) for _ in range(2 if generator is _random_interpolated_string else 1)]
        text = _INTERPOLATION_BASE + "".join(f"v{j}: {_yaml_quoted(v)}\n" for j, v in enumerate(values))
        if generator is _random_interpolated_string:
            text += f"u:\n  x: 3\n  t: {_yaml_quoted(generator(rng))}\n"  # a relative ${.x} / ${..x} one level down
        (tmp_path / "c.yaml").write_text(text)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OmegaConf warns about empty resolver arguments
                theirs = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
        except Exception:
            with pytest.raises(ValueError):
                modgap.config.compose(tmp_path, "c", [])
        else:
            ours = modgap.config.compose(tmp_path, "c", [])
            assert json.dumps(ours) == json.dumps(theirs), values
            accepted += 1
    assert accepted >= minimum_accepted  # the generator reaches both sides


@pytest.mark.parametrize("text, expected", [
    # an escaped interpolation is text, also once another key refers to it
    ("x: 1\na: '\\${x}'\nb: ${a}\nc: 'p${a}'\n", {"x": 1, "a": "${x}", "b": "${x}", "c": "p${x}"}),
    # a backslash pair before an interpolation is one backslash, the interpolation resolved
    ("x: 1\na: '\\\\${x}'\nb: '\\\\\\${x}'\n", {"x": 1, "a": "\\1", "b": "\\${x}"}),
    ("x: 1\na: ${ x }\nb: 'p${ x }q'\n", {"x": 1, "a": 1, "b": "p1q"}),
    # str() of a config node inside text prints its values unresolved, as OmegaConf's repr does
    ("x: 1\nd: {k: 1, s: '${x}'}\nl: [1, 'it''s']\na: 'p${d}'\nb: 'p${l}'\n",
     {"x": 1, "d": {"k": 1, "s": 1}, "l": [1, "it's"], "a": "p{'k': 1, 's': '${x}'}", "b": "p[1, \"it's\"]"}),
    ("d: ${e}\ne: {k: 1}\na: ${d.k}\n", {"d": {"k": 1}, "e": {"k": 1}, "a": 1}),
    ("x: 1\na: ${oc.decode:'[1, ${x}]'}\nb: '${oc.select:y,{q: ${x}}}'\n", {"x": 1, "a": [1, 1], "b": {"q": 1}}),
    # oc.select of the container holding the string prints it unresolved
    ("x: 1\nn: {y: 2, a: 'p${oc.select:.}'}\n", {"x": 1, "n": {"y": 2, "a": "p{'y': 2, 'a': 'p${oc.select:.}'}"}}),
])
def test_interpolation_cases_as_omegaconf(tmp_path, text, expected):
    (tmp_path / "c.yaml").write_text(text)
    assert OmegaConf.to_container(OmegaConf.create(text), resolve=True) == expected  # the oracle agrees
    assert modgap.config.compose(tmp_path, "c", []) == expected


@pytest.mark.parametrize("text, message", [
    ("x: {y: 1}\na: ${x.}\n", r"interpolation at 'a': '\$\{x\.\}' in '\$\{x\.\}' is not a config key"),
    ("x: 1\na: ${..x}\n", r"interpolation \$\{\.\.x\} at 'a': '\.\.x' goes above the top of the config"),
    ("x: 1\na: ${x y}\n", r"interpolation at 'a': ' ' at position 3 of '\$\{x y\}' is not allowed there"),
    ("l: [1]\na: ${l.x}\n", r"interpolation \$\{l\.x\} at 'a': index 'x' of the list 'l' is not an int"),
    ("x: 1\na: ${x.y}\n", r"'x' is not a container and thus cannot contain 'y'"),
    ("k: 1\nn: {x: 1}\na: ${n.${k}}\n", r"denotes a config key and must give a string, not 1"),
    ("x: 1\na: ${oc.select:''}\n", r"interpolation cycle: 'a' would hold a container that holds 'a'"),
])
def test_interpolation_errors_name_the_key_and_problem(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(Exception):
        OmegaConf.to_container(OmegaConf.create(text), resolve=True)  # OmegaConf refuses them too
    with pytest.raises(ValueError, match=message):
        modgap.config.compose(tmp_path, "c", [])
