#include "verifier/results/oscal_export.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "tests/testing/build_paths.h"
#include "tests/verifier/results/ear_test_util.h"
#include "verifier/simulated_tpm.h"

namespace vigil::verifier {
namespace {

const absl::Time kSince = absl::FromUnixSeconds(1'800'000'000);
const absl::Time kUntil = kSince + absl::Hours(1);

OscalExportOptions Options() {
  OscalExportOptions o;
  o.since = kSince;
  o.until = kUntil;
  o.generated_at = kUntil + absl::Minutes(5);
  o.version = "vigil-verifier 0.1.0";
  return o;
}

// One node, one passing ("api") and one failing ("worker") workload, with an EAR token.
std::vector<StoredVerdict> OneNode() {
  v1::Verdict v = testing::MakeVerdict(kSince + absl::Minutes(10));
  v.set_ear_token("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln");
  return {StoredVerdict{v, "host-1.example"}};
}

// Every value of a "uuid" or "*-uuid" member, anywhere in the document.
void CollectUuids(const nlohmann::json& j, std::vector<std::string>* defined,
                  std::vector<std::string>* referenced) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "uuid")
        defined->push_back(v.get<std::string>());
      else if (k.size() > 5 && k.substr(k.size() - 5) == "-uuid") {
        referenced->push_back(v.get<std::string>());
      }
      CollectUuids(v, defined, referenced);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) CollectUuids(v, defined, referenced);
  }
}

const nlohmann::json* FindByProp(const nlohmann::json& list, const std::string& name,
                                 const std::string& value) {
  for (const auto& item : list) {
    for (const auto& p : item.value("props", nlohmann::json::array())) {
      if (p["name"] == name && p["value"] == value) return &item;
    }
  }
  return nullptr;
}

TEST(OscalControlTest, MapsNistIdsToOscalControlIds) {
  struct Case {
    const char* in;
    const char* framework;
    const char* id;
    const char* oscal;
  } cases[] = {
      {"NIST-800-53r5:AC-6(10)", "NIST-800-53r5", "AC-6(10)", "ac-6.10"},
      {"NIST-800-53r5:AC-6", "NIST-800-53r5", "AC-6", "ac-6"},
      {"NIST-800-53r5:SI-04(02)", "NIST-800-53r5", "SI-04(02)", "si-4.2"},
      {"NIST-800-53r5:AC-6(", "NIST-800-53r5", "AC-6(", ""},
      {"NIST-800-53r5:AC6", "NIST-800-53r5", "AC6", ""},
      {"NIST-800-53r5:AC-6(1)x", "NIST-800-53r5", "AC-6(1)x", ""},
      {"ISO27001:2022:A.8.2", "ISO27001:2022", "A.8.2", ""},
      {"ISO27001:2013:A.9.2.3", "ISO27001:2013", "A.9.2.3", ""},
      {"SOC2:CC6.1", "SOC2", "CC6.1", ""},
  };
  for (const Case& c : cases) {
    auto ref = ParseControl(c.in);
    ASSERT_TRUE(ref.ok()) << c.in << ": " << ref.status();
    EXPECT_EQ(ref->framework, c.framework) << c.in;
    EXPECT_EQ(ref->id, c.id) << c.in;
    EXPECT_EQ(ref->oscal_control_id, c.oscal) << c.in;
  }
  for (const char* bad : {"", "AC-6", ":AC-6", "NIST-800-53r5:"}) {
    EXPECT_FALSE(ParseControl(bad).ok()) << bad;
  }
}

TEST(OscalUuidTest, NameUuidsAreRfc4122Version5) {
  // Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://vigil.invalid/ns/oscal"),
  // "example").
  EXPECT_EQ(NameUuid("example"), "f2800501-5829-59c3-95ec-221404f0bfa3");
  EXPECT_NE(NameUuid("example"), NameUuid("example2"));
}

TEST(OscalExportTest, HasTheRequiredFields) {
  nlohmann::json doc = ExportAssessmentResults(OneNode(), Options());
  const nlohmann::json& ar = doc["assessment-results"];
  for (const char* key : {"uuid", "metadata", "import-ap", "results"}) {
    EXPECT_TRUE(ar.contains(key)) << key;
  }
  EXPECT_EQ(ar["metadata"]["title"], "Vigil continuous attestation assessment results");
  EXPECT_EQ(ar["metadata"]["last-modified"], "2027-01-15T09:05:00Z");
  EXPECT_EQ(ar["metadata"]["version"], "vigil-verifier 0.1.0");
  EXPECT_EQ(ar["metadata"]["oscal-version"], "1.1.2");
  EXPECT_EQ(ar["import-ap"]["href"], "#vigil-assessment-plan");
  ASSERT_EQ(ar["results"].size(), 1u);
  const nlohmann::json& result = ar["results"][0];
  for (const char* key : {"uuid", "title", "description", "start", "end", "reviewed-controls",
                          "observations", "findings", "local-definitions"}) {
    EXPECT_TRUE(result.contains(key)) << key;
  }
  EXPECT_EQ(result["start"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(result["end"], "2027-01-15T09:00:00Z");
  for (const auto& o : result["observations"]) {
    EXPECT_EQ(o["methods"], nlohmann::json::array({"TEST"}));
    EXPECT_EQ(o["collected"], "2027-01-15T08:10:00Z");
    EXPECT_EQ(o["subjects"].size(), 1u);
    EXPECT_EQ(o["relevant-evidence"].size(), 1u);
  }
}

TEST(OscalExportTest, UuidsAreValidUniqueAndEveryReferenceResolves) {
  nlohmann::json doc = ExportAssessmentResults(OneNode(), Options());
  std::vector<std::string> defined, referenced;
  CollectUuids(doc, &defined, &referenced);
  const std::regex rfc4122("^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (const std::string& u : defined) EXPECT_TRUE(std::regex_match(u, rfc4122)) << u;
  std::set<std::string> unique(defined.begin(), defined.end());
  EXPECT_EQ(unique.size(), defined.size());
  // 1 document, 1 result, 1 node, 2 components, 3 observations, 5 findings.
  EXPECT_EQ(defined.size(), 13u);
  for (const std::string& r : referenced) EXPECT_TRUE(unique.count(r)) << r;
}

TEST(OscalExportTest, TheSameVerdictsExportTheSameDocumentInAnyOrder) {
  std::vector<StoredVerdict> verdicts = OneNode();
  v1::Verdict later = testing::MakeVerdict(kSince + absl::Minutes(20));
  later.set_node_id("node-2");
  verdicts.push_back({later, "host-2"});
  nlohmann::json a = ExportAssessmentResults(verdicts, Options());
  std::swap(verdicts[0], verdicts[1]);
  verdicts.push_back(verdicts[0]);  // a duplicate is reported once
  EXPECT_EQ(ExportAssessmentResults(verdicts, Options()), a);
  // Other verdicts make another document.
  verdicts.pop_back();
  verdicts.pop_back();
  EXPECT_NE(ExportAssessmentResults(verdicts, Options())["assessment-results"]["uuid"],
            a["assessment-results"]["uuid"]);
}

TEST(OscalExportTest, LeavesOutVerdictsOutsideTheRange) {
  std::vector<StoredVerdict> verdicts = OneNode();
  verdicts.push_back({testing::MakeVerdict(kUntil), "host-1"});  // until is exclusive
  verdicts.push_back({testing::MakeVerdict(kSince - absl::Nanoseconds(1)), "host-1"});
  nlohmann::json doc = ExportAssessmentResults(verdicts, Options());
  EXPECT_EQ(doc["assessment-results"]["results"][0]["observations"].size(), 3u);
}

// The golden shape: one node, "api" passing AC-6(10) and ISO A.8.2 / A.9.2.3, "worker"
// failing AC-6 and SOC 2 CC6.1.
TEST(OscalExportTest, GoldenShapeForOneNodeWithAPassingAndAFailingWorkload) {
  nlohmann::json doc = ExportAssessmentResults(OneNode(), Options());
  const nlohmann::json& result = doc["assessment-results"]["results"][0];

  EXPECT_EQ(result["reviewed-controls"]["control-selections"],
            nlohmann::json::parse(R"([{"include-controls":[{"control-id":"ac-6"},
                                                         {"control-id":"ac-6.10"}]}])"));
  std::set<std::string> other;
  for (const auto& p : result["reviewed-controls"]["props"]) {
    other.insert(p["class"].get<std::string>() + " " + p["value"].get<std::string>());
  }
  EXPECT_EQ(other, (std::set<std::string>{"ISO27001:2013 ISO27001:2013:A.9.2.3",
                                          "ISO27001:2022 ISO27001:2022:A.8.2", "SOC2 SOC2:CC6.1"}));

  const nlohmann::json& items = result["local-definitions"]["inventory-items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_NE(FindByProp(items, "fqdn", "host-1.example"), nullptr);
  const nlohmann::json& components = result["local-definitions"]["components"];
  ASSERT_EQ(components.size(), 2u);

  const nlohmann::json& obs = result["observations"];
  ASSERT_EQ(obs.size(), 3u);
  const nlohmann::json* node = FindByProp(obs, "trust-status", "contraindicated");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ((*node)["subjects"][0]["type"], "inventory-item");
  EXPECT_EQ((*node)["subjects"][0]["subject-uuid"], items[0]["uuid"]);
  const nlohmann::json& evidence = (*node)["relevant-evidence"][0];
  EXPECT_NE(FindByProp(nlohmann::json::array({evidence}), "evidence-sha256", std::string(64, 'a')),
            nullptr);
  EXPECT_NE(
      FindByProp(nlohmann::json::array({evidence}), "ear-token", "eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"),
      nullptr);
  const nlohmann::json* api = FindByProp(obs, "workload-id", std::string(64, '1'));
  const nlohmann::json* worker = FindByProp(obs, "workload-id", std::string(64, '2'));
  ASSERT_NE(api, nullptr);
  ASSERT_NE(worker, nullptr);
  EXPECT_EQ((*api)["subjects"][0]["type"], "component");
  EXPECT_NE(FindByProp(nlohmann::json::array({*api}), "trust-status", "affirming"), nullptr);
  EXPECT_NE((*worker)["description"].get<std::string>().find("no-cap-sys-admin"),
            std::string::npos);

  // Findings, in control order, with their targets and observations.
  struct Expected {
    const char* control;
    const char* target;
    const char* state;
    const nlohmann::json* observation;
  } expected[] = {
      {"ISO27001:2013:A.9.2.3", "iso27001-2013_a.9.2.3", "satisfied", api},
      {"ISO27001:2022:A.8.2", "iso27001-2022_a.8.2", "satisfied", api},
      {"NIST-800-53r5:AC-6", "ac-6_obj", "not-satisfied", worker},
      {"NIST-800-53r5:AC-6(10)", "ac-6.10_obj", "satisfied", api},
      {"SOC2:CC6.1", "soc2_cc6.1", "not-satisfied", worker},
  };
  const nlohmann::json& findings = result["findings"];
  ASSERT_EQ(findings.size(), std::size(expected));
  for (size_t i = 0; i < findings.size(); ++i) {
    const nlohmann::json& f = findings[i];
    SCOPED_TRACE(expected[i].control);
    EXPECT_EQ(f["props"][0]["value"], expected[i].control);
    EXPECT_EQ(f["target"]["type"], "objective-id");
    EXPECT_EQ(f["target"]["target-id"], expected[i].target);
    EXPECT_EQ(f["target"]["status"]["state"], expected[i].state);
    EXPECT_EQ(f["related-observations"],
              nlohmann::json::array({{{"observation-uuid", (*expected[i].observation)["uuid"]}}}));
  }
}

// The node's own rule (vigil.node.self) is the node's observation, beside its workloads', and
// a failing one leaves the controls it evidences not satisfied.
TEST(OscalExportTest, TheNodeSelfRuleIsTheNodesObservationBesideItsWorkloads) {
  std::vector<StoredVerdict> verdicts = OneNode();
  v1::RuleOutcome* self = verdicts[0].verdict.add_rules();
  self->set_rule_id("vigil.node.self");
  self->set_kind("node_self");
  self->set_status(v1::TRUST_WARNING);
  self->set_reason("the node runs as one process");
  self->add_controls("NIST-800-53r5:AC-6(10)");
  nlohmann::json doc = ExportAssessmentResults(verdicts, Options());
  const nlohmann::json& result = doc["assessment-results"]["results"][0];
  const nlohmann::json* node =
      FindByProp(result["observations"], "trust-status", "contraindicated");
  ASSERT_NE(node, nullptr);
  EXPECT_NE((*node)["description"].get<std::string>().find("the node runs as one process"),
            std::string::npos)
      << (*node)["description"];
  for (const nlohmann::json& f : result["findings"]) {
    if (f["props"][0]["value"] != "NIST-800-53r5:AC-6(10)") continue;
    EXPECT_EQ(f["target"]["status"]["state"], "not-satisfied");
  }
}

TEST(OscalExportTest, ASimulatedTpmsObservationSaysSoAndMakesNoHardwareClaim) {
  std::vector<StoredVerdict> verdicts = OneNode();
  verdicts[0].verdict.mutable_trust_vector()->set_hardware(2);
  MarkTpmSimulated(verdicts[0].verdict);
  nlohmann::json doc = ExportAssessmentResults(verdicts, Options());
  const nlohmann::json& result = doc["assessment-results"]["results"][0];
  const nlohmann::json* node = FindByProp(result["observations"], "tpm-simulated", "true");
  ASSERT_NE(node, nullptr) << result["observations"].dump();
  for (const auto& p : (*node)["props"]) {
    EXPECT_FALSE(p["name"] == "trust-vector" && p.value("class", "") == "hardware") << p;
  }
  EXPECT_NE((*node)["description"].get<std::string>().find("simulated TPM"), std::string::npos);
  // A real TPM's observation has no such property.
  nlohmann::json real = ExportAssessmentResults(OneNode(), Options());
  EXPECT_EQ(
      FindByProp(real["assessment-results"]["results"][0]["observations"], "tpm-simulated", "true"),
      nullptr);
}

TEST(OscalExportTest, AControlBrokenOnceInTheRangeIsNotSatisfied) {
  std::vector<StoredVerdict> verdicts = OneNode();
  v1::Verdict later = testing::MakeVerdict(kSince + absl::Minutes(30));
  // Later, "api" breaks its AC-6(10) rule.
  later.mutable_workloads(0)->set_status(v1::TRUST_WARNING);
  later.mutable_workloads(0)->mutable_rules(0)->set_status(v1::TRUST_WARNING);
  verdicts.push_back({later, "host-1.example"});
  nlohmann::json doc = ExportAssessmentResults(verdicts, Options());
  const nlohmann::json& findings = doc["assessment-results"]["results"][0]["findings"];
  const nlohmann::json* ac610 = FindByProp(findings, "control", "NIST-800-53r5:AC-6(10)");
  ASSERT_NE(ac610, nullptr);
  EXPECT_EQ((*ac610)["target"]["status"]["state"], "not-satisfied");
  EXPECT_EQ((*ac610)["related-observations"].size(), 2u);
}

class OscalSchemaTest : public ::testing::Test {
 protected:
  // Runs python3-jsonschema over `doc` with the schema under testdata/; its exit code.
  int Validate(const nlohmann::json& doc) {
    testing::ScopedTempDir dir("oscal-schema");
    EXPECT_FALSE(dir.path().empty());
    testing::WriteFile(dir.path() + "/doc.json", doc.dump(2));
    std::string root = vigil::testing::SourceDir() + "/tests/verifier/results/";
    testing::CommandResult r = testing::RunCommand(
        absl::StrCat(testing::kSystemPython, " ", root, "oscal_schema_check.py ", root,
                     "testdata/oscal_assessment_results.schema.json ", dir.path(), "/doc.json"));
    last_output_ = r.out;
    return r.exit_code;
  }
  std::string last_output_;
};

TEST_F(OscalSchemaTest, ExportsValidateAgainstTheAssessmentResultsSchema) {
  EXPECT_EQ(Validate(ExportAssessmentResults(OneNode(), Options())), 0) << last_output_;
  // An empty range is a valid document too (no observations, no findings).
  EXPECT_EQ(Validate(ExportAssessmentResults({}, Options())), 0) << last_output_;
  // So is a rejected report with no workloads and no controls.
  v1::Verdict rejected;
  rejected.set_node_id("node-9");
  rejected.set_status(v1::TRUST_REJECTED);
  rejected.set_appraised_unix_nano(absl::ToUnixNanos(kSince));
  EXPECT_EQ(Validate(ExportAssessmentResults({{rejected, ""}}, Options())), 0) << last_output_;
}

TEST_F(OscalSchemaTest, TheSchemaCheckRefusesBrokenDocuments) {
  nlohmann::json good = ExportAssessmentResults(OneNode(), Options());
  nlohmann::json no_target = good;
  no_target["assessment-results"]["results"][0]["findings"][0].erase("target");
  EXPECT_EQ(Validate(no_target), 1);
  nlohmann::json bad_uuid = good;
  bad_uuid["assessment-results"]["uuid"] = "not-a-uuid";
  EXPECT_EQ(Validate(bad_uuid), 1);
  nlohmann::json bad_method = good;
  bad_method["assessment-results"]["results"][0]["observations"][0]["methods"] = {"GUESS"};
  EXPECT_EQ(Validate(bad_method), 1);
}

}  // namespace
}  // namespace vigil::verifier
