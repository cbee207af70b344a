// Each transform alone and chained, on decoded records; config errors name file:line:col.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "support/json_same.h"
#include "transforms/transforms.h"

namespace kbridge {
namespace {

struct Result {
    TransformChain::Outcome outcome;
    std::string value;  // Keep: the new value; else why.reason + ": " + why.detail
};

Result run_chain(const std::string& yaml, const std::string& json) {
    TransformChain chain(YAML::Load(yaml), "p.yaml", "pipelines[0].transforms");
    JsonDecoder decoder;
    json::Value in, out;
    std::string error;
    EXPECT_TRUE(decoder.decode(json, in, error)) << error;
    Record record;
    record.value = json;
    record.key = "k";
    std::string_view value;
    Rejection why;
    const auto outcome = chain.apply(record, in, value, out, why);
    if (outcome != TransformChain::Outcome::Keep) return {outcome, why.reason + ": " + why.detail};
    // The fields handed on are those of the new value, indexed as a parse of it would be.
    JsonDecoder other;
    json::Value again;
    EXPECT_TRUE(other.decode(value, again, error)) << error;
    expect_same_json(out, again);
    return {outcome, std::string(value)};
}

std::string kept(const std::string& yaml, const std::string& json) {
    const Result r = run_chain(yaml, json);
    EXPECT_EQ(r.outcome, TransformChain::Outcome::Keep) << r.value;
    return r.value;
}

std::string config_error(const std::string& yaml) {
    try {
        TransformChain chain(YAML::Load(yaml), "p.yaml", "pipelines[0].transforms");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

const std::string kEvent =
    R"({"id":7,"uid":42,"action":"buy","ts":1700000000000,"price":12345678901234567890.10,)"
    R"("note":"internal","order":{"status":"paid"}})";

TEST(Transforms, DropRemovesFieldsAndIgnoresMissingOnes) {
    EXPECT_EQ(kept("[{drop: [note, price, absent]}]", kEvent),
              R"({"id":7,"uid":42,"action":"buy","ts":1700000000000,"order":{"status":"paid"}})");
    EXPECT_EQ(kept("[{drop: note}]", R"({"a":1,"note":2})"), R"({"a":1})");
}

TEST(Transforms, RenameKeepsPlaceAndValueAndReplacesATarget) {
    EXPECT_EQ(kept("[{rename: {uid: user_id}}]", R"({"id":1,"uid":1e2})"),
              R"({"id":1,"user_id":1e2})");
    EXPECT_EQ(kept("[{rename: {a: b}}]", R"({"b":1,"a":2})"), R"({"b":2})");
    // Nothing to rename: the record passes as it was.
    EXPECT_EQ(kept("[{rename: {x: y}}]", R"({ "a" : 1 })"), R"({ "a" : 1 })");
}

TEST(Transforms, SetConstantsTemplatesDefaultsAndTypedCopies) {
    EXPECT_EQ(
        kept(R"([{set: {source: redis, n: 2, f: 1.50, t: true, z: null, q: "2"}}])", R"({"id":1})"),
        R"({"id":1,"source":"redis","n":2,"f":1.50,"t":true,"z":null,"q":"2"})");
    EXPECT_EQ(kept(R"([{set: {day: "{ts:date}", region: "{region:-eu}", a: "{action:upper}",
                   key: "{_key}-{id}", copy: "{price}", o: "{order}", j: "{action:json}"}}])",
                   kEvent)
                  .substr(kEvent.size() - 1),
              R"(,"day":"2023-11-14","region":"eu","a":"BUY","key":"k-7",)"
              R"("copy":12345678901234567890.10,"o":{"status":"paid"},"j":"\"buy\""})");
    // An existing field is replaced where it stands.
    EXPECT_EQ(kept(R"([{set: {a: "x{b}"}}])", R"({"a":1,"b":"\"q\""})"),
              R"({"a":"x\"q\"","b":"\"q\""})");
}

TEST(Transforms, SetNamingAMissingFieldWithoutADefaultRefusesTheRecord) {
    const Result r = run_chain(R"([{drop: [x]}, {set: {day: "{ts:date}"}}])", R"({"id":1})");
    EXPECT_EQ(r.outcome, TransformChain::Outcome::Refused);
    EXPECT_EQ(r.value, "transform: transforms[1] set day: missing field 'ts'");
    const Result date = run_chain(R"([{set: {day: "{ts:date}"}}])", R"({"ts":"soon"})");
    EXPECT_EQ(date.outcome, TransformChain::Outcome::Refused) << date.value;
}

TEST(Transforms, FilterKeepsListedValuesAndDropsTheRest) {
    EXPECT_EQ(kept("[{filter: {action: [buy, cart]}}]", kEvent), kEvent);  // unchanged bytes
    EXPECT_EQ(kept("[{filter: {order.status: paid, id: 7}}]", kEvent), kEvent);
    const Result view = run_chain("[{filter: {action: [buy, cart]}}]", R"({"action":"view"})");
    EXPECT_EQ(view.outcome, TransformChain::Outcome::Filtered);
    EXPECT_EQ(view.value, "filtered: transforms[0] filter: action is 'view', not one of buy, cart");
    const Result missing = run_chain("[{filter: {action: buy}}]", R"({"id":1})");
    EXPECT_EQ(missing.outcome, TransformChain::Outcome::Filtered);
    EXPECT_EQ(missing.value, "filtered: transforms[0] filter: action is missing, not one of buy");
}

TEST(Transforms, SelectKeepsListedFieldsInListedOrder) {
    EXPECT_EQ(kept("[{select: [action, id, absent]}]", kEvent), R"({"action":"buy","id":7})");
}

TEST(Transforms, AChainAppliesInOrderAndLaterStepsSeeEarlierOnes) {
    const std::string chain = R"([
        {drop: [note]},
        {rename: {uid: user_id}},
        {set: {source: redis, day: "{ts:date}", region: "{region:-eu}", who: "{user_id}"}},
        {filter: {action: [buy, cart], region: eu}},
        {select: [id, user_id, who, action, day, region, source]}])";
    EXPECT_EQ(kept(chain, kEvent),
              R"({"id":7,"user_id":42,"who":42,"action":"buy","day":"2023-11-14",)"
              R"("region":"eu","source":"redis"})");
    EXPECT_EQ(run_chain(chain, R"({"id":8,"uid":1,"action":"view","ts":0})").outcome,
              TransformChain::Outcome::Filtered);
}

TEST(Transforms, KeysWithEscapesAndValuesWithWhitespaceSurviveEveryStep) {
    const std::string event =
        R"({"k\u0065y":1,"tab\t":"a\"b","o" : { "x" : [ 1 , 2.50 ] },"n":-0.0})";
    EXPECT_EQ(kept("[{drop: [n]}]", event), R"({"key":1,"tab\t":"a\"b","o":{"x":[1,2.50]}})");
    EXPECT_EQ(kept("[{rename: {key: k}}, {select: [o, k]}]", event),
              R"({"o":{"x":[1,2.50]},"k":1})");
    EXPECT_EQ(kept(R"([{set: {copy: "{o}", x: "{o.x}", s: "{tab\t}"}}])", event),
              R"({"key":1,"tab\t":"a\"b","o":{"x":[1,2.50]},"n":-0.0,"copy":{"x":[1,2.50]},)"
              R"("x":[1,2.50],"s":"a\"b"})");
}

TEST(Transforms, LaterStepsReadValuesEarlierStepsSet) {
    // A copy of a set value, a template and a filter reading one, a set replacing a copy.
    const std::string chain = R"([
        {set: {a: "x\"y", n: 1.50, z: null, e: "{id:-0}"}},
        {set: {b: "{a}", m: "{n}", c: "{a}-{n}", w: "{z:-dflt}", v: "{z}", d: "{a.q:-none}"}},
        {filter: {b: "x\"y", m: "1.50", c: "x\"y-1.50", z: "null"}},
        {set: {n: "{m}1"}}])";
    EXPECT_EQ(kept(chain, R"({"id":3})"),
              R"({"id":3,"a":"x\"y","n":"1.501","z":null,"e":3,"b":"x\"y","m":1.50,)"
              R"("c":"x\"y-1.50","w":"dflt","v":null,"d":"none"})");
    const Result r = run_chain(R"([{set: {a: "{x:-1}"}}, {filter: {a: "2"}}])", R"({})");
    EXPECT_EQ(r.outcome, TransformChain::Outcome::Filtered);
    EXPECT_EQ(r.value, "filtered: transforms[1] filter: a is '1', not one of 2");
    const Result o = run_chain(R"([{filter: {o: "{}"}}])", R"({"o":{ }})");
    EXPECT_EQ(o.outcome, TransformChain::Outcome::Keep) << o.value;
}

TEST(Transforms, DatesAcrossTheRangeMatchTheCalendar) {
    const std::string chain = R"([{set: {day: "{ts:date}"}}, {select: [day]}])";
    EXPECT_EQ(kept(chain, R"({"ts":0})"), R"({"day":"1970-01-01"})");
    EXPECT_EQ(kept(chain, R"({"ts":-1})"), R"({"day":"1969-12-31"})");
    EXPECT_EQ(kept(chain, R"({"ts":951782400000})"), R"({"day":"2000-02-29"})");
    EXPECT_EQ(kept(chain, R"({"ts":253402300799999})"), R"({"day":"9999-12-31"})");
    EXPECT_EQ(kept(chain, R"({"ts":253402300800000})"), R"({"day":"10000-01-01"})");
    EXPECT_EQ(kept(chain, R"({"ts":-62135596800000})"), R"({"day":"0001-01-01"})");
    EXPECT_EQ(kept(chain, R"({"ts":9223372036854775807})"), R"({"day":"292278994-08-17"})");
    for (const char* bad : {"9223372036854775808", "-9223372036854775809", "1.5", "1e3"})
        EXPECT_EQ(run_chain(chain, std::string(R"({"ts":)") + bad + "}").outcome,
                  TransformChain::Outcome::Refused)
            << bad;
}

TEST(Transforms, ConfigErrorsNameTheirPlace) {
    EXPECT_EQ(config_error("- drop: [a]\n- dorp: [b]\n"),
              "p.yaml:2:3: pipelines[0].transforms[1]: unknown option 'dorp' (did you mean "
              "'drop'?)");
    EXPECT_EQ(config_error("- drop: [a]\n  select: [b]\n"),
              "p.yaml:1:3: pipelines[0].transforms[0]: one transform per list item (write '- "
              "drop: ...' and '- rename: ...' as two items)");
    EXPECT_EQ(config_error("- set: {day: \"{ts:dte}\"}\n"),
              "p.yaml:1:14: pipelines[0].transforms[0].set.day: unknown formatter ':dte' in "
              "template '{ts:dte}' (known: date, upper, lower, json)");
    EXPECT_EQ(config_error("- rename: [a]\n"),
              "p.yaml:1:11: pipelines[0].transforms[0].rename: expected a map of strings");
    EXPECT_EQ(config_error("- filter: {a: {b: c}}\n"),
              "p.yaml:1:15: pipelines[0].transforms[0].filter.a: expected a value or a list of "
              "values");
    EXPECT_EQ(config_error("- drop: [a.b]\n"),
              "p.yaml:1:9: pipelines[0].transforms[0].drop: 'a.b': this transform works on "
              "top-level fields only");
    EXPECT_EQ(config_error("drop: [a]\n"),
              "p.yaml:1:1: pipelines[0].transforms: expected a list of transforms, e.g. '- drop: "
              "[note]'");
}

}  // namespace
}  // namespace kbridge
