// GoogleTest suite of the Hydra-style config composer (modgap/config.h): composition, overrides,
// interpolation and every error, on config trees written to a temporary directory per test. The cases
// follow Hydra's defaults_list.md examples and OmegaConf's interpolation/merge rules.
#include <gtest/gtest.h>

#include <modgap/config.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("modgap_config_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& relative, const std::string& text) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::string compose(const std::string& name, const std::vector<std::string>& overrides = {}) {
    return modgap::compose_config(root_.string(), name, overrides).json;
  }
  std::string error(const std::string& name, const std::vector<std::string>& overrides = {}) {
    try {
      compose(name, overrides);
    } catch (const modgap::ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  // Compact JSON of the result for readable expectations.
  static std::string compact(std::string json) {
    std::string out;
    bool in_string = false;
    bool escaped = false;  // the character after a backslash inside a string (\" does not end it)
    for (const char c : json) {
      if (c == '"' && !escaped) in_string = !in_string;
      escaped = in_string && c == '\\' && !escaped;
      if (!in_string && (c == ' ' || c == '\n')) continue;
      out += c;
    }
    return out;
  }
  std::string composed(const std::string& name, const std::vector<std::string>& overrides = {}) {
    return compact(compose(name, overrides));
  }

  fs::path root_;
};

// Hydra defaults_list.md: db: mysql, server: apache; the primary config's own values win (_self_ last).
TEST_F(ConfigTest, DefaultsListComposesGroupsIntoTheirPackages) {
  write("config.yaml", "defaults:\n  - db: mysql\n  - server: apache\ndb:\n  user: root\n");
  write("db/mysql.yaml", "driver: mysql\nuser: omry\n");
  write("db/sqlite.yaml", "driver: sqlite\n");
  write("server/apache.yaml", "port: 80\n");
  EXPECT_EQ(composed("config"), R"({"db":{"driver":"mysql","user":"root"},"server":{"port":80}})");
  EXPECT_EQ(composed("config", {"db=sqlite"}), R"({"db":{"driver":"sqlite","user":"root"},"server":{"port":80}})");
  const auto defaults = modgap::compose_config(root_.string(), "config", {}).defaults;
  EXPECT_EQ(defaults, (std::vector<std::string>{"db: mysql -> db", "server: apache -> server"}));
}

TEST_F(ConfigTest, SelfFirstLetsTheDefaultsWin) {
  write("config.yaml", "defaults:\n  - _self_\n  - db: mysql\ndb:\n  user: root\n");
  write("db/mysql.yaml", "user: omry\n");
  EXPECT_EQ(composed("config"), R"({"db":{"user":"omry"}})");
}

TEST_F(ConfigTest, OverrideEntriesPackagesAndGlobalExperiments) {
  write("train.yaml", "defaults:\n  - loss: clip_lt\n  - data@dataset: digits\n  - _self_\nlr: 0.1\n");
  write("loss/clip_lt.yaml", "name: clip_lt\n");
  write("loss/ours.yaml", "name: ours\nlambda1: 1.0\n");
  write("data/digits.yaml", "root: ???\n");
  write("experiment/paper.yaml", "# @package _global_\ndefaults:\n  - override /loss: ours\nlr: 0.5\nloss:\n  lambda1: 2.0\n");
  EXPECT_EQ(composed("train", {"+experiment=paper"}),
            R"({"loss":{"name":"ours","lambda1":2.0},"dataset":{"root":"???"},"lr":0.5})");
  // The command line beats the experiment's override.
  EXPECT_EQ(composed("train", {"+experiment=paper", "loss=clip_lt", "~loss.lambda1"}),
            R"({"loss":{"name":"clip_lt"},"dataset":{"root":"???"},"lr":0.5})");
  EXPECT_EQ(composed("train", {"~loss"}), R"({"dataset":{"root":"???"},"lr":0.1})");
}

TEST_F(ConfigTest, PackageHeaderAndNestedRelativeGroups) {
  write("main.yaml", "defaults:\n  - model: tiny\n");
  write("model/tiny.yaml", "defaults:\n  - vision: vit\nwidth: 64\n");
  write("model/vision/vit.yaml", "patch: 16\n");
  write("model/vision/convnet.yaml", "# @package encoders.image\nkernel: 3\n");
  EXPECT_EQ(composed("main"), R"({"model":{"vision":{"patch":16},"width":64}})");
  EXPECT_EQ(composed("main", {"model/vision=convnet"}), R"({"encoders":{"image":{"kernel":3}},"model":{"width":64}})");
}

// Hydra's InputDefault._get_final_package: a default inside a group config lands under that config's final
// package, an absolute `/group` included; a `group@package` entry is selected by `group@package=option`.
TEST_F(ConfigTest, NestedDefaultsFollowTheIncludingPackage) {
  write("main.yaml", "defaults:\n  - model@net.main: tiny\n  - _self_\n");
  write("model/tiny.yaml", "defaults:\n  - /norm: layer\n  - vision: vit\n  - _self_\nwidth: 64\n");
  write("model/small.yaml", "width: 32\n");
  write("model/vision/vit.yaml", "patch: 16\n");
  write("norm/layer.yaml", "eps: 0.1\n");
  EXPECT_EQ(composed("main"), R"({"net":{"main":{"norm":{"eps":0.1},"vision":{"patch":16},"width":64}}})");
  EXPECT_EQ(composed("main", {"model@net.main=small"}), R"({"net":{"main":{"width":32}}})");
  EXPECT_EQ(composed("main", {"~norm@net.main.norm"}), R"({"net":{"main":{"vision":{"patch":16},"width":64}}})");
  EXPECT_NE(error("main", {"model=small"}).find("could not override 'model': no match in the defaults list"),
            std::string::npos);
  EXPECT_NE(error("main", {"~norm"}).find("could not delete 'norm': no match in the defaults list"), std::string::npos);
  EXPECT_NE(error("main", {"+model@net.main=small"}).find("model@net.main appears more than once in the final defaults list"),
            std::string::npos);
}

TEST_F(ConfigTest, ValueOverridesSetAddUpsertDelete) {
  write("c.yaml", "a: 1\nb:\n  c: x\n  d: [1, 2]\n");
  EXPECT_EQ(composed("c", {"a=2.5", "b.c='quoted'", "+e=null", "++b.f=true", "b.d=[3]"}),
            R"({"a":2.5,"b":{"c":"quoted","d":[3],"f":true},"e":null})");
  EXPECT_EQ(composed("c", {"~b.c", "~a=1"}), R"({"b":{"d":[1,2]}})");
  EXPECT_EQ(composed("c", {"b={c: y}"}), R"({"a":1,"b":{"c":"y","d":[1,2]}})");  // dicts merge
  // into existing keys only (Hydra's struct mode); ++ merges and adds keys
  EXPECT_NE(error("c", {"b={c: y, g: 1}"}).find("'b.g' is not in the config. To add keys use ++b={c: y, g: 1}"),
            std::string::npos);
  EXPECT_EQ(composed("c", {"++b={c: y, g: 1}"}), R"({"a":1,"b":{"c":"y","d":[1,2],"g":1}})");
  EXPECT_EQ(composed("c", {"a="}), R"({"a":"","b":{"c":"x","d":[1,2]}})");
  EXPECT_EQ(composed("c", {"a= "}), R"({"a":"","b":{"c":"x","d":[1,2]}})");
  EXPECT_EQ(composed("c", {"b=3"}), R"({"a":1,"b":3})");  // a scalar replaces a mapping, as in Hydra
}

// Values read by Hydra's override grammar (OverrideLexer.g4 / OverrideParser.g4), not as YAML flow text.
TEST_F(ConfigTest, OverrideValuesFollowHydrasGrammar) {
  write("c.yaml", "a: 1\n");
  EXPECT_EQ(composed("c", {"+q={n: @, m: 12:30, k: a b }"}), R"({"a":1,"q":{"n":"@","m":"12:30","k":"a b"}})");
  EXPECT_EQ(composed("c", {"+q=[a\\,b, 'c\\'d']"}), R"({"a":1,"q":["a,b","c'd"]})");
  EXPECT_EQ(composed("c", {"+q=[\"e\\\"f\", x${a}y]"}), R"({"a":1,"q":["e\"f","x1y"]})");
  EXPECT_EQ(composed("c", {"+q=[yes, 010, 0x1F, 1_000, -inf, NULL, TrUe, 5., .5]"}),
            R"({"a":1,"q":["yes","010","0x1F",1000,-Infinity,null,true,5.0,0.5]})");
  EXPECT_EQ(composed("c", {"+q=[str(1), int(2.7), float(' 1_0 '), bool(0), str([true, 1e20])]"}),
            R"({"a":1,"q":["1",2,10.0,false,["true","1e+20"]]})");
  EXPECT_NE(error("c", {"a=[1] "}).find("unexpected whitespace at position 3"), std::string::npos);
  EXPECT_NE(error("c", {"a='it''s'"}).find("unexpected ''s''"), std::string::npos);
  EXPECT_NE(error("c", {"a=f(1)"}).find("unknown function 'f'"), std::string::npos);
  EXPECT_NE(error("c", {"a=[~]"}).find("'~' at position 1 is not allowed in an unquoted value"), std::string::npos);
}

TEST_F(ConfigTest, InterpolationPreservesTypesAndResolvesRelativePaths) {
  write("c.yaml",
        "model:\n  dim: 512\n  width: ${.dim}\n  heads: ${..train.heads}\n"
        "train:\n  heads: 8\n  name: vit_${model.dim}\n  copy: ${model}\n  items: [a, b]\n  second: ${train.items.1}\n"
        "pick: dim\n  \nnested: ${model.${pick}}\nflt: 1e-4\nescaped: \\${model.dim}\n");
  EXPECT_EQ(composed("c"),
            R"({"model":{"dim":512,"width":512,"heads":8},"train":{"heads":8,"name":"vit_512","copy":{"dim":512,"width":512,"heads":8},"items":["a","b"],"second":"b"},"pick":"dim","nested":512,"flt":1e-04,"escaped":"${model.dim}"})");
}

// OmegaConf 2.3's grammar (expectations checked against OmegaConf.to_container(resolve=True) on the same files).
TEST_F(ConfigTest, InterpolationsFollowOmegaConfsGrammar) {
  write("c.yaml",
        "x: 1\nesc: '\\${x}'\nref: ${esc}\ntext: 'p${esc}'\npair: '\\\\${x}'\nodd: '\\\\\\${x}'\nspaced: ${ x }\n"
        "d: {k: 1, s: '${x}'}\nshown: 'd=${d}'\nalias: ${d}\nthrough: ${alias.k}\nq: '${oc.select:nope,\"a,b\"}'\n"
        "decoded: ${oc.decode:'[1, ${x}]'}\n");
  EXPECT_EQ(composed("c"),
            R"({"x":1,"esc":"${x}","ref":"${x}","text":"p${x}","pair":"\\1","odd":"\\${x}","spaced":1,)"
            R"("d":{"k":1,"s":1},"shown":"d={'k': 1, 's': '${x}'}","alias":{"k":1,"s":1},"through":1,"q":"a,b",)"
            R"("decoded":[1,1]})");
  write("dot.yaml", "x: {y: 1}\na: ${x.}\n");
  EXPECT_NE(error("dot").find("'${x.}' in '${x.}' is not a config key"), std::string::npos) << error("dot");
  write("up.yaml", "x: 1\na: ${..x}\n");
  EXPECT_NE(error("up").find("'..x' goes above the top of the config"), std::string::npos) << error("up");
  write("space.yaml", "x: 1\na: ${x y}\n");
  EXPECT_NE(error("space").find("' ' at position 3 of '${x y}' is not allowed there"), std::string::npos);
}

TEST_F(ConfigTest, EnvironmentAndSelectResolvers) {
  ::setenv("MODGAP_TEST_VAR", "42", 1);
  write("c.yaml", "a: ${oc.env:MODGAP_TEST_VAR}\nb: ${oc.env:MODGAP_UNSET_VAR,7}\nc: ${oc.select:nope,fallback}\nd: ${oc.select:a}\n");
  EXPECT_EQ(composed("c"), R"({"a":"42","b":"7","c":"fallback","d":"42"})");  // oc.env returns str(default)
  write("e.yaml", "a: ${oc.env:MODGAP_UNSET_VAR}\n");
  EXPECT_NE(error("e").find("environment variable 'MODGAP_UNSET_VAR' is not set"), std::string::npos);
}

TEST_F(ConfigTest, ErrorsNameTheFileKeyAndProblem) {
  write("train.yaml", "defaults:\n  - loss: ours\nlr: 0.1\nblock:\n  x: 1\nx: ${y}\ny: ${x}\n");
  write("loss/ours.yaml", "t: 2.0\n");
  write("loss/clip.yaml", "t: 1.0\n");
  write("plain.yaml", "lr: 0.1\nblock:\n  x: 1\nmissing: ???\nref: ${missing}\n");
  const std::string cycle = error("train");
  EXPECT_NE(cycle.find("interpolation cycle: x -> y -> x"), std::string::npos) << cycle;
  EXPECT_NE(error("train", {"loss=nope"}).find("train.yaml: defaults: unknown option 'nope' for config group 'loss' (available: clip, ours)"),
            std::string::npos);
  EXPECT_NE(error("plain", {"nokey=1"}).find("could not override 'nokey': the key is not in the config. To append to your config use +nokey=1"),
            std::string::npos);
  EXPECT_NE(error("plain", {"+lr=1"}).find("an item is already at 'lr'"), std::string::npos);
  // Hydra merges a [list] or {dict} into the one there (a scalar replaces anything): list into dict fails
  EXPECT_NE(error("plain", {"block=[3]"}).find("type mismatch: 'block' is a mapping and the new value is a list"),
            std::string::npos);
  EXPECT_NE(error("plain", {"lr=x=y"}).find("override 'lr=x=y': unexpected '=' at position 1 of the value"),
            std::string::npos);
  EXPECT_NE(error("plain", {"lr=caf\xc3\xa9"}).find("is not allowed in an unquoted value"), std::string::npos);
  EXPECT_NE(error("plain", {"lr=bool(yes)"}).find("cannot cast 'yes' to bool"), std::string::npos);
  EXPECT_NE(error("plain", {"~nokey"}).find("could not delete 'nokey'"), std::string::npos);
  EXPECT_NE(error("plain", {"~lr=0.2"}).find("its value does not match '0.2'"), std::string::npos);
  EXPECT_NE(error("plain", {"lr=1,2"}).find("is a sweep, which needs multirun"), std::string::npos);
  EXPECT_NE(error("plain").find("interpolation ${missing} at 'ref': 'missing' is missing (\?\?\?)"), std::string::npos);
  EXPECT_NE(error("nothere").find("nothere.yaml does not exist"), std::string::npos);
  write("bad.yaml", "a: [1, 2\n");
  EXPECT_NE(error("bad").find("bad.yaml: invalid YAML"), std::string::npos);
  write("list.yaml", "- 1\n- 2\n");
  EXPECT_NE(error("list").find("must hold a mapping at the top level"), std::string::npos);
  write("override_nothing.yaml", "defaults:\n  - override loss: ours\n");
  EXPECT_NE(error("override_nothing").find("`override loss` does not match any group default"), std::string::npos);
  write("plain2.yaml", "a: 1\n");
  EXPECT_NE(error("plain2", {"loss=ours"}).find("could not override 'loss': no match in the defaults list"),
            std::string::npos);
  write("cyc.yaml", "defaults:\n  - cyc\n");
  EXPECT_NE(error("cyc").find("defaults list cycle"), std::string::npos);
  write("unknown_resolver.yaml", "a: ${now:%H}\n");
  EXPECT_NE(error("unknown_resolver").find("unknown resolver 'now'"), std::string::npos);
}

TEST_F(ConfigTest, OptionalAndNullDefaults) {
  write("c.yaml", "defaults:\n  - optional extra: absent\n  - logger: null\n  - _self_\na: 1\n");
  write("logger/tensorboard.yaml", "dir: runs\n");
  EXPECT_EQ(composed("c"), R"({"a":1})");
  EXPECT_EQ(composed("c", {"logger=tensorboard"}), R"({"logger":{"dir":"runs"},"a":1})");
}

TEST_F(ConfigTest, MissingValuesDoNotOverwrite) {
  write("c.yaml", "defaults:\n  - _self_\n  - data: base\ndata:\n  root: /data\n");
  write("data/base.yaml", "root: ???\nsize: 10\n");
  EXPECT_EQ(composed("c"), R"({"data":{"root":"/data","size":10}})");
}

TEST(ConfigSweepTest, CartesianProductFirstOverrideSlowest) {
  using Jobs = std::vector<std::vector<std::string>>;
  EXPECT_EQ(modgap::expand_sweeps({"a=1,2", "b=x,y", "c=3"}),
            (Jobs{{"a=1", "b=x", "c=3"}, {"a=1", "b=y", "c=3"}, {"a=2", "b=x", "c=3"}, {"a=2", "b=y", "c=3"}}));
  EXPECT_EQ(modgap::expand_sweeps({"+a=choice(p, 'q,r', [1,2])"}), (Jobs{{"+a=p"}, {"+a='q,r'"}, {"+a=[1,2]"}}));
  EXPECT_EQ(modgap::expand_sweeps({"a=range(3)"}), (Jobs{{"a=0"}, {"a=1"}, {"a=2"}}));
  EXPECT_EQ(modgap::expand_sweeps({"a=range(5,0,-2)"}), (Jobs{{"a=5"}, {"a=3"}, {"a=1"}}));
  EXPECT_EQ(modgap::expand_sweeps({"a=range(0,1,0.25)"}), (Jobs{{"a=0.0"}, {"a=0.25"}, {"a=0.5"}, {"a=0.75"}}));
  // Hydra's FloatRange accumulates start + step + step ... in decimal: 1.9000000000000001 is the 10th value
  EXPECT_EQ(modgap::expand_sweeps({"a=range(1,2,0.1)"}).back(), (std::vector<std::string>{"a=1.9000000000000001"}));
  EXPECT_EQ(modgap::expand_sweeps({"a=1,2", "b=0", "a=3"}), (Jobs{{"a=3", "b=0"}}));  // first position, last value
  EXPECT_EQ(modgap::expand_sweeps({"~a", "b=${x.y},[1,2]"}), (Jobs{{"~a", "b=${x.y}"}, {"~a", "b=[1,2]"}}));
  EXPECT_EQ(modgap::expand_sweeps({}), (Jobs{{}}));
  EXPECT_EQ(modgap::expand_sweeps({"a=x\\,y,z"}), (Jobs{{"a=x\\,y"}, {"a=z"}}));  // Hydra's escaped comma
}

TEST(ConfigSweepTest, ErrorsNameTheOverride) {
  const auto error = [](const std::vector<std::string>& overrides) -> std::string {
    try {
      modgap::expand_sweeps(overrides);
    } catch (const modgap::ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(error({"a=1,,2"}), "override 'a=1,,2': a sweep element is empty (expected a,b,c)");
  EXPECT_EQ(error({"a=range(0,1,0)"}), "override 'a=range(0,1,0)': range() step must not be zero");
  EXPECT_EQ(error({"a=range(2,1)"}), "override 'a=range(2,1)': the sweep is empty (range() yields no value)");
  EXPECT_NE(error({"a=glob(*)"}).find("glob() is not supported"), std::string::npos);
  EXPECT_NE(error({"a=[1,2"}).find("']' expected before the end of the value"), std::string::npos);
  EXPECT_NE(error({"a=range(1000)", "b=range(1000)"}).find("more than 100000 jobs"), std::string::npos);
}

TEST_F(ConfigTest, MultirunComposesEveryJob) {
  write("c.yaml", "defaults:\n  - loss: a\n  - _self_\nlr: 0.1\nname: ${loss.n}_${lr}\n");
  write("loss/a.yaml", "n: a\n");
  write("loss/b.yaml", "n: b\n");
  const auto jobs = modgap::compose_multirun(root_.string(), "c", {"loss=a,b", "lr=1e-3,2"});
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(compact(jobs[0].config.json), R"({"loss":{"n":"a"},"lr":0.001,"name":"a_0.001"})");
  EXPECT_EQ(compact(jobs[3].config.json), R"({"loss":{"n":"b"},"lr":2,"name":"b_2"})");
  EXPECT_EQ(jobs[3].overrides, (std::vector<std::string>{"loss=b", "lr=2"}));
  try {
    modgap::compose_multirun(root_.string(), "c", {"loss=a,zz"});
    FAIL() << "no error";
  } catch (const modgap::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("multirun job 1 (loss=zz): "), std::string::npos) << e.what();
  }
  EXPECT_NE(error("c", {"lr=1,2"}).find("is a sweep, which needs multirun"), std::string::npos);
}

TEST_F(ConfigTest, ScalarsTypedAsOmegaConfAndOverridesAsHydra) {
  write("c.yaml", "a: yes\nb: 010\nc: 0x10\nd: 1e-3\ne: .inf\nf: x_${d}_${a}_${c}\ng: 1:30\n");
  EXPECT_EQ(composed("c"), R"({"a":true,"b":8,"c":16,"d":0.001,"e":Infinity,"f":"x_0.001_True_16","g":90})");
  EXPECT_EQ(composed("c", {"a=yes", "b=010", "c=1_000", "d=1e3", "e=-INF"}),
            R"({"a":"yes","b":"010","c":1000,"d":1000.0,"e":-Infinity,"f":"x_1000.0_yes_1000","g":90})");
  EXPECT_EQ(composed("c", {"a=x\\,y\\ z", "b=back\\\\slash"}),
            R"({"a":"x,y z","b":"back\\slash","c":16,"d":0.001,"e":Infinity,"f":"x_0.001_x,y z_16","g":90})");
  EXPECT_EQ(composed("c", {"d=1e400", "e=nan", "a=0x10"}),
            R"({"a":"0x10","b":8,"c":16,"d":Infinity,"e":NaN,"f":"x_inf_0x10_16","g":90})");
}

}  // namespace

